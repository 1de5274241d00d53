// `npm run bench`: normclip called from JavaScript against its peers and a native bandwidth probe,
// all in one process. Single thread unless BENCH_THREADS is set. Writes bench/RESULTS.md.
//
// Each shape runs MaxNorm two ways: weights over the bound on every call (the buffer is refilled
// from a pristine copy before each timed call, untimed, so every slice is rescaled: 12 B/element)
// and compliant weights (every norm within bounds: the skip-write path, 4 B/element).
process.env.NORMCLIP_THREADS ??= process.env.BENCH_THREADS ?? '1'

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus } from 'node:os'
import * as tf from '@tensorflow/tfjs'
import * as native from '../src/native/index.js'
import { NativeConstraint, constrain, simdTier, threadCount } from '../src/index'
import { plainJsMaxNorm } from './plain-js'

type Axis = number | number[] | null
interface Case {
  shape: number[]
  axis: Axis
}

const cases: Case[] = [
  { shape: [16], axis: 0 },
  { shape: [64, 64], axis: 0 },
  { shape: [512, 512], axis: 0 },
  { shape: [784, 512], axis: 0 },
  { shape: [3, 3, 256, 256], axis: [0, 1, 2] },
  { shape: [100000, 10], axis: 0 },
  { shape: [4096, 4096], axis: -1 },
  { shape: [4096, 4096], axis: 0 },
  { shape: [16777216], axis: null },
]

/** Median milliseconds of `run` after a warm-up; `prepare` runs untimed before each call. */
function measure(run: () => void, prepare?: () => void, budgetMs = 400, maxRuns = 200): number {
  for (let i = 0; i < 3; i++) {
    prepare?.()
    run()
  }
  const times: number[] = []
  const deadline = performance.now() + budgetMs
  while (times.length < 5 || (times.length < maxRuns && performance.now() < deadline)) {
    prepare?.()
    const start = process.hrtime.bigint()
    run()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

function gaussian(len: number, seed: number): Float32Array {
  let state = seed >>> 0
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return (state + 0.5) / 4294967296
  }
  const out = new Float32Array(len)
  for (let i = 0; i < len; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
  return out
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(4))
const gbps = (bytes: number, ms: number) => (bytes / ms / 1e6).toFixed(1)

async function main() {
  await tf.setBackend('cpu')
  const header = [
    `normclip bench — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`,
    `SIMD tier ${simdTier()}, ${threadCount()} thread(s); median ms per call, in place; ` +
      `ratios are peer time / normclip time (over-bound case)`,
  ]
  console.log(header.join('\n'))
  const rows: string[] = []
  rows.push(
    '| shape, axis | probe ms (12 B/el) | normclip over-bound ms | GB/s | % of probe | compliant ms | % of 1-pass | plain JS ms (×) | tfjs cpu ms (×) |',
    '|---|---|---|---|---|---|---|---|---|',
  )
  for (const { shape, axis } of cases) {
    const len = shape.reduce((a, b) => a * b, 1)
    const pristine = gaussian(len, len)
    const buffer = new Float32Array(len)
    const refill = () => buffer.set(pristine)
    const overBound = new NativeConstraint({ kind: 'maxNorm', maxValue: 2, axis })
    const apply = constrain({ kind: 'maxNorm', maxValue: 2, axis })
    const compliant = constrain({ kind: 'maxNorm', maxValue: 1e30, axis })

    const probe = measure(() => native.bandwidthProbe(buffer, 1.0000001), refill)
    const ours = measure(() => apply(buffer, shape), refill)
    refill()
    const skip = measure(() => compliant(buffer, shape))
    const plain = measure(() => plainJsMaxNorm(buffer, shape, axis, 2), refill, 300, len > 4e6 ? 5 : 200)
    let tfjsMs = NaN
    if (axis !== null) {
      // tfjs treats axis null as 0 (see performance-baseline.md), so it has no whole-tensor case.
      const constraint = tf.constraints.maxNorm({ maxValue: 2, axis: axis as number })
      const tensor = tf.tensor(pristine, shape)
      tfjsMs = measure(() => tf.tidy(() => constraint.apply(tensor)).dataSync(), undefined, 500, len > 4e6 ? 3 : 50)
      tensor.dispose()
    }
    // The compliant case needs one read pass: compare it with a third of the probe's traffic.
    const onePass = probe / 3
    rows.push(
      `| [${shape.join(',')}], ${JSON.stringify(axis)} | ${fmt(probe)} | ${fmt(ours)} | ${gbps(12 * len, ours)} | ` +
        `${((probe / ours) * 100).toFixed(0)}% | ${fmt(skip)} | ${((onePass / skip) * 100).toFixed(0)}% | ` +
        `${fmt(plain)} (${(plain / ours).toFixed(1)}×) | ${Number.isNaN(tfjsMs) ? 'n/a' : `${fmt(tfjsMs)} (${(tfjsMs / ours).toFixed(0)}×)`} |`,
    )
    console.log(rows[rows.length - 1])
    void overBound
  }

  // Per-call overhead on a 16-element tensor, through each entry point.
  const small = new Float32Array(16).fill(0.1)
  const handleCall = constrain({ kind: 'maxNorm', maxValue: 2 })
  const classCall = new NativeConstraint({ kind: 'maxNorm', maxValue: 2 })
  const perCall = (run: () => void) => {
    const calls = 200_000
    const samples: number[] = []
    for (let r = 0; r < 7; r++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < calls; i++) run()
      samples.push(Number(process.hrtime.bigint() - start) / calls)
    }
    samples.sort((a, b) => a - b)
    return samples[3]!
  }
  const overheadHandle = perCall(() => handleCall(small, [16]))
  const overheadClass = perCall(() => classCall.applyInPlace(small, [16]))
  const overhead = `Per-call overhead, 16 elements, in place: ${overheadHandle.toFixed(0)} ns through \`constrain()\`, ` +
    `${overheadClass.toFixed(0)} ns through \`NativeConstraint.applyInPlace\` (median of 7 × 200k calls).`
  console.log(overhead)

  const notes = [
    '',
    '- probe: a native sum-of-squares pass plus an in-place scale pass over the same buffer (the two-pass bound, 12 B/element), same tier, same run.',
    '- over-bound: every slice rescaled on every call (buffer refilled from a pristine copy before each call, untimed).',
    '- compliant: every norm within bounds, so no slice is written (4 B/element); "% of 1-pass" compares it with a third of the probe.',
    '- plain JS: a straightforward Float32Array loop of the Keras formula (`bench/plain-js.ts`). tfjs cpu: `tf.constraints.maxNorm(...).apply(tensor)` + `dataSync()` on @tensorflow/tfjs 4.22 (no whole-tensor case: tfjs reads axis null as 0).',
  ]
  const text = ['# `npm run bench` results', '', ...header.map((h) => `${h}  `), '', ...rows, '', overhead, ...notes, ''].join('\n')
  writeFileSync(join(__dirname, 'RESULTS.md'), text)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
