// `npm run bench`: normclip against every peer, in one process and one run. Single thread unless
// BENCH_THREADS is set. Writes bench/RESULTS.md (tables, goals) and bench/results.svg (GB/s
// against tensor size). BENCH_QUICK=1 runs short budgets (a smoke run, figures not for quoting);
// BENCH_ONLY=<regex> keeps the cases whose label matches; BENCH_TRAINING=0 skips the training part;
// BENCH_RENDER=1 redraws RESULTS.md and results.svg from the last run's bench/results.json.
//
// For every case (one weight, or a whole model's constrained weights) the methods take turns,
// one sample each per round (see measure.ts), in both weight states:
// - over the bound (every slice rescaled on every call: 12 B/element). Tensors of 64K elements
//   and more are refilled from a pristine copy before each sample (untimed), so every call sees
//   fresh over-bound data, as after an optimizer step. Smaller ones are timed as runs of calls on
//   the same buffer with maxValue 1: after the first call each norm sits just under 1, where
//   Keras' factor n / (eps + n) is not 1 in f32, so every call still rescales and writes every slice
//   (checked at start-up).
// - compliant (every norm in [2, maxValue]: Keras' factor is exactly 1, so normclip writes nothing).
process.env.NORMCLIP_THREADS ??= process.env.BENCH_THREADS ?? '1'

import { execSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus, loadavg } from 'node:os'
import * as tf from '@tensorflow/tfjs'
import * as native from '../src/native/index.js'
import { NativeConstraint, constrain, simdTier, threadCount } from '../src/index'
import { MaxNorm } from '../src/constraints'
import { plainJsMaxNorm } from './plain-js'
import { measureInterleaved, type Method, type Sampled } from './measure'
import { backendLabel, loadBackends, useBackend, wasmFeatures, type BackendName } from './backends'
import { logLogChart, type Series } from './svg'
import { measureTraining, type TrainingRow } from './training'

type Axis = number | number[] | null
interface Weight {
  shape: number[]
  axis: Axis
}
interface Case {
  label: string
  weights: Weight[]
  /** Whole models are tabled but not plotted. */
  model?: boolean
  /** In the chart: a marker off the joined line (for a second case of the same size), with its x offset. */
  marker?: { shape: 'square' | 'triangle'; jitter: number }
}

const OVER = 1 // maxValue over the bound (Gaussian weights have norms ≥ 4)
const COMPLIANT = 1e6 // maxValue no norm reaches
const SMALL = 1 << 16 // below this many elements, samples time runs of calls without refill

const cases: Case[] = [
  { label: '[16], 0', weights: [{ shape: [16], axis: 0 }] },
  { label: '[64,64], 0', weights: [{ shape: [64, 64], axis: 0 }] },
  { label: '[784,512], 0 (Dense)', weights: [{ shape: [784, 512], axis: 0 }] },
  { label: '[3,3,256,256], [0,1,2] (Conv2D)', weights: [{ shape: [3, 3, 256, 256], axis: [0, 1, 2] }] },
  { label: '[100000,10], 0', weights: [{ shape: [100000, 10], axis: 0 }] },
  { label: '[4096,4096], -1', weights: [{ shape: [4096, 4096], axis: -1 }], marker: { shape: 'square', jitter: 0.7 } },
  { label: '[4096,4096], 0', weights: [{ shape: [4096, 4096], axis: 0 }] },
  { label: '[16M], null', weights: [{ shape: [16777216], axis: null }], marker: { shape: 'triangle', jitter: 1.4 } },
  {
    label: 'MLP 784-512-256-10: 3 kernels',
    model: true,
    weights: [
      { shape: [784, 512], axis: 0 },
      { shape: [512, 256], axis: 0 },
      { shape: [256, 10], axis: 0 },
    ],
  },
  {
    label: 'CNN (CIFAR-style): 4 conv + 2 dense kernels',
    model: true,
    weights: [
      { shape: [3, 3, 3, 32], axis: [0, 1, 2] },
      { shape: [3, 3, 32, 32], axis: [0, 1, 2] },
      { shape: [3, 3, 32, 64], axis: [0, 1, 2] },
      { shape: [3, 3, 64, 64], axis: [0, 1, 2] },
      { shape: [1600, 256], axis: 0 },
      { shape: [256, 10], axis: 0 },
    ],
  },
]

const quick = process.env.BENCH_QUICK === '1'
const log = (line: string) => console.log(line)
const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)

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

/** tfjs types `axis` as a number; arrays and negatives work at runtime; on a 1-D tensor axis 0 is the whole tensor. */
const tfjsAxis = (w: Weight) => (w.axis === null ? 0 : w.axis) as number

/** Keys of the methods, in table order. */
const overKeys = (backends: readonly BackendName[]) => [
  'probe',
  'inPlace',
  'copy',
  'async',
  'batch',
  ...backends.map((b) => `e2e:${b}`),
  ...backends.map((b) => `tfjs:${b}`),
  'plain',
]

async function methodsFor(c: Case, backends: readonly BackendName[]): Promise<{ methods: Method[]; dispose: () => void }> {
  const small = c.weights.reduce((a, w) => a + sizeOf(w.shape), 0) < SMALL
  const weights = c.weights.map((w, i) => {
    const len = sizeOf(w.shape)
    const pristine = gaussian(len, len + 7919 * i)
    const spec = (maxValue: number) => ({ kind: 'maxNorm' as const, maxValue, axis: w.axis })
    return {
      ...w,
      pristine,
      buffers: { over: Float32Array.from(pristine), compliant: Float32Array.from(pristine) },
      bound: { over: constrain(spec(OVER)), compliant: constrain(spec(COMPLIANT)) },
      nativeConstraint: { over: NativeConstraint.create(spec(OVER)), compliant: NativeConstraint.create(spec(COMPLIANT)) },
      ours: { over: new MaxNorm({ maxValue: OVER, axis: w.axis }), compliant: new MaxNorm({ maxValue: COMPLIANT, axis: w.axis }) },
      theirs: { over: tf.constraints.maxNorm({ maxValue: OVER, axis: tfjsAxis(w) }), compliant: tf.constraints.maxNorm({ maxValue: COMPLIANT, axis: tfjsAxis(w) }) },
      tensors: new Map<BackendName, tf.Tensor>(),
    }
  })
  type State = 'over' | 'compliant'
  const refill = (state: State) => () => {
    for (const w of weights) w.buffers[state].set(w.pristine)
  }
  const methods: Method[] = []
  // A native method in state `state`: refilled before each sample unless the case is small.
  const nativeMethod = (key: string, state: State, run: () => void | Promise<void>) =>
    methods.push(small ? { key, run, repeatable: true } : { key, run, prepare: refill(state) })

  nativeMethod('probe', 'over', () => {
    for (const w of weights) native.bandwidthProbe(w.buffers.over, 1.0000001)
  })
  for (const state of ['over', 'compliant'] as const) {
    const suffix = state === 'over' ? '' : ':compliant'
    const items = weights.map((w) => ({ array: w.buffers[state], shape: w.shape, constraint: w.nativeConstraint[state] }))
    nativeMethod(`inPlace${suffix}`, state, () => {
      for (const w of weights) w.bound[state](w.buffers[state], w.shape)
    })
    nativeMethod(`copy${suffix}`, state, () => {
      for (const w of weights) w.nativeConstraint[state].applyCopy(w.pristine, w.shape)
    })
    nativeMethod(`async${suffix}`, state, async () => {
      for (const w of weights) await w.nativeConstraint[state].applyInPlaceAsync(w.buffers[state], w.shape)
    })
    nativeMethod(`batch${suffix}`, state, () => native.applyBatch(items))
    nativeMethod(`plain${suffix}`, state, () => {
      for (const w of weights) plainJsMaxNorm(w.buffers[state], w.shape, w.axis, state === 'over' ? OVER : COMPLIANT)
    })
    for (const backend of backends) {
      const prepare = () => useBackend(backend)
      // normclip's Keras API on this backend's tensors, end to end: data out, constraint, a tensor back.
      methods.push({
        key: `e2e:${backend}${suffix}`,
        prepare,
        repeatable: true,
        run: () => {
          for (const w of weights) {
            const out = w.ours[state].apply(w.tensors.get(backend)!)
            out.dataSync()
            out.dispose()
          }
        },
      })
      // tfjs' own constraint; the cpu backend does the same work in both states, so it is timed once.
      if (state === 'over' || backend !== 'cpu') {
        methods.push({
          key: `tfjs:${backend}${suffix}`,
          prepare,
          repeatable: true,
          run: () => {
            for (const w of weights) {
              const out = tf.tidy(() => w.theirs[state].apply(w.tensors.get(backend)!))
              out.dataSync()
              out.dispose()
            }
          },
        })
      }
    }
  }
  for (const backend of backends) {
    await useBackend(backend)
    for (const w of weights) w.tensors.set(backend, tf.tensor(w.pristine, w.shape, 'float32'))
  }
  await useBackend('cpu')
  return {
    methods,
    dispose: () => {
      for (const w of weights) for (const t of w.tensors.values()) t.dispose()
    },
  }
}

/** The CPU and its caches, from lscpu when it is there. */
function machine(): string[] {
  const lines: string[] = []
  let model = cpus()[0]?.model ?? 'unknown CPU'
  let caches = ''
  try {
    const info = execSync('lscpu', { encoding: 'utf8' })
    const field = (name: string) => info.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim()
    model = field('Model name') ?? model
    caches = ['L1d', 'L2', 'L3'].map((c) => `${c} ${field(`${c} cache`) ?? '?'}`).join(', ')
    const hv = field('Hypervisor vendor')
    if (hv) caches += `; ${hv} VM`
  } catch {
    caches = 'caches unknown (no lscpu)'
  }
  lines.push(`${model}, ${cpus().length} logical CPUs; ${caches}`)
  return lines
}

const fmtMs = (ms: number) => (!Number.isFinite(ms) ? 'n/a' : ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms >= 0.01 ? ms.toFixed(4) : ms.toFixed(5))
const share = (ms: number, step: number) => `${fmtMs(ms)} (${((100 * ms) / step).toFixed(2)}%)`
const ratio = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

interface CaseResult {
  c: Case
  elements: number
  results: Map<string, Sampled>
}

async function main() {
  const startLoad = loadavg()
  const started = performance.now()
  const backends = await loadBackends()
  const avail = backends.available
  const header = [
    ...machine(),
    `normclip SIMD tier ${simdTier()}, ${threadCount()} thread(s) (NORMCLIP_THREADS=${process.env.NORMCLIP_THREADS}); Node ${process.version}; ` +
      Object.entries(backends.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    `tfjs backends measured: ${avail.map((b) => backendLabel[b]).join(', ')} (wasm: ${wasmFeatures})` +
      (Object.keys(backends.missing).length
        ? `; unavailable: ${Object.entries(backends.missing)
            .map(([k, v]) => `${backendLabel[k as BackendName]} (${v})`)
            .join('; ')}`
        : ''),
  ]
  header.forEach((h) => log(h))

  // The small-tensor protocol relies on every call rescaling: check that the second call still writes.
  {
    const a = gaussian(4096, 1)
    const apply = constrain({ kind: 'maxNorm', maxValue: OVER, axis: 0 })
    apply(a, [64, 64])
    const before = Float32Array.from(a)
    apply(a, [64, 64])
    const changed = a.some((v, i) => v !== before[i])
    if (!changed) throw new Error('bench: a repeated over-bound call wrote nothing; the small-tensor protocol does not hold')
  }

  const budgetMs = quick ? 60 : 450
  const caseResults: CaseResult[] = []
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined
  for (const c of cases.filter((c) => !only || only.test(c.label))) {
    const elements = c.weights.reduce((a, w) => a + sizeOf(w.shape), 0)
    const set = await methodsFor(c, avail)
    const t0 = performance.now()
    const results = await measureInterleaved(set.methods, { budgetMs, minSampleMs: 0.2, maxSamples: quick ? 15 : 300 })
    set.dispose()
    await useBackend('cpu')
    caseResults.push({ c, elements, results })
    const get = (k: string) => results.get(k)?.median ?? NaN
    const ip = get('inPlace')
    log(
      `${c.label}: probe ${fmtMs(get('probe'))} ms, in place ${fmtMs(ip)} ms (${((100 * get('probe')) / ip).toFixed(0)}% of probe), ` +
        overKeys(avail)
          .slice(2)
          .map((k) => `${k} ${ratio(get(k) / ip)}×`)
          .join(', ') +
        ` [${((performance.now() - t0) / 1000).toFixed(1)} s]`,
    )
  }

  log('training step overhead…')
  const trainingBackends = avail.filter((b) => b !== 'cpu' || !avail.includes('tensorflow'))
  const training = process.env.BENCH_TRAINING === '0' ? [] : await measureTraining(trainingBackends, quick ? 1 : 5, log)
  const endLoad = loadavg()
  const elapsed = (performance.now() - started) / 1000
  log(`done in ${elapsed.toFixed(0)} s; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')} at start, ${endLoad.map((l) => l.toFixed(2)).join(' ')} at end`)

  const saved: Saved = {
    header,
    cases: caseResults.map((r) => ({ label: r.c.label, elements: r.elements, results: Object.fromEntries(r.results) })),
    training,
    avail,
    missing: backends.missing,
    startLoad,
    endLoad,
    elapsed,
  }
  writeFileSync(join(__dirname, 'results.json'), JSON.stringify(saved, null, 1) + '\n')
  render(saved)
}

/** What a run saves in bench/results.json (so that the report and chart can be redrawn without measuring: BENCH_RENDER=1). */
interface Saved {
  header: string[]
  cases: { label: string; elements: number; results: Record<string, Sampled> }[]
  training: TrainingRow[]
  avail: BackendName[]
  missing: Partial<Record<BackendName, string>>
  startLoad: number[]
  endLoad: number[]
  elapsed: number
}

function render(saved: Saved): void {
  const rows: CaseResult[] = saved.cases.map((r) => ({
    c: cases.find((c) => c.label === r.label) ?? { label: r.label, weights: [] },
    elements: r.elements,
    results: new Map(Object.entries(r.results)),
  }))
  writeFileSync(join(__dirname, 'RESULTS.md'), report(saved.header, rows, saved.training, saved.avail, saved.missing, saved.startLoad, saved.endLoad, saved.elapsed))
  writeFileSync(join(__dirname, 'results.svg'), chart(rows, saved.avail))
}

const labels: Record<string, string> = {
  probe: 'bandwidth probe (2-pass bound)',
  inPlace: 'normclip in place',
  copy: 'normclip copy',
  async: 'normclip async',
  batch: 'normclip applyBatch',
  plain: 'plain JS loop',
}
const labelOf = (key: string) => {
  const [base, backend] = key.split(':') as [string, BackendName | undefined]
  if (base === 'e2e') return `normclip MaxNorm.apply, ${backendLabel[backend!]} tensors`
  if (base === 'tfjs') return `${backendLabel[backend!]} maxNorm.apply`
  return labels[base] ?? key
}

function report(
  header: string[],
  rows: CaseResult[],
  training: TrainingRow[],
  avail: BackendName[],
  missing: Partial<Record<BackendName, string>>,
  startLoad: number[],
  endLoad: number[],
  elapsed: number,
): string {
  const out: string[] = ['# `npm run bench` results', '']
  out.push(...header.map((h) => `${h}  `))
  out.push(
    `Load average ${startLoad.map((l) => l.toFixed(2)).join(' / ')} at start, ${endLoad.map((l) => l.toFixed(2)).join(' / ')} at end (1/5/15 min; 2 cores, shared); run took ${elapsed.toFixed(0)} s.`,
    '',
    'Median ms per call (per model for the model rows); all methods of a case sampled in turn, one sample each per round, in a new shuffled order each round with a garbage collection between rounds, in one process. ' +
      '(×) = time / normclip in place in the same state; GB/s = 12 B/element / time (the two-pass traffic).',
    '',
  )
  // Over the bound.
  const keys = overKeys(avail)
  out.push('## Over the bound (every slice rescaled on every call)', '')
  out.push(`| case | elements | ${keys.map(labelOf).join(' | ')} |`, `|---|---:|${keys.map(() => '---:|').join('')}`)
  for (const { c, elements, results } of rows) {
    const ip = results.get('inPlace')!.median
    const cells = keys.map((k) => {
      const m = results.get(k)?.median ?? NaN
      if (k === 'probe') return `${fmtMs(m)}`
      if (k === 'inPlace') return `**${fmtMs(m)}** (${((12 * elements) / m / 1e6).toFixed(1)} GB/s, ${((100 * results.get('probe')!.median) / m).toFixed(0)}% of probe)`
      return `${fmtMs(m)} (${ratio(m / ip)}×)`
    })
    out.push(`| ${c.label} | ${elements.toLocaleString('en-US')} | ${cells.join(' | ')} |`)
  }
  // Compliant.
  const ckeys = ['inPlace', 'copy', 'async', 'batch', ...avail.map((b) => `e2e:${b}`), ...avail.filter((b) => b !== 'cpu').map((b) => `tfjs:${b}`), 'plain']
  out.push('', '## Compliant weights (every norm within bounds: normclip writes nothing)', '')
  out.push(
    `| case | ${ckeys.map(labelOf).join(' | ')} |`,
    `|---|${ckeys.map(() => '---:|').join('')}`,
  )
  for (const { c, results } of rows) {
    const ip = results.get('inPlace:compliant')!.median
    const onePass = results.get('probe')!.median / 3
    const cells = ckeys.map((k) => {
      const m = results.get(`${k}:compliant`)?.median ?? NaN
      if (k === 'inPlace') return `**${fmtMs(m)}** (${((100 * onePass) / m).toFixed(0)}% of ⅓ probe; ${ratio(results.get('inPlace')!.median / m)}× faster than over-bound)`
      return `${fmtMs(m)} (${ratio(m / ip)}×)`
    })
    out.push(`| ${c.label} | ${cells.join(' | ')} |`)
  }
  // Training.
  out.push('', '## Training: constraint step per batch of `fit`', '')
  out.push(
    '| model | backend | params | constrained | batch | step, no constraints (ms) | normclip `constraintCallback` ms (share) | + upload of the new values ms | normclip total ms (share of step) | normclip: step increase ms (share) | tfjs own constraints: in callback ms (share) | tfjs own: step increase ms (share) | tfjs own / normclip total |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  )
  for (const t of training) {
    if (t.error !== undefined) {
      out.push(`| ${t.model} | ${backendLabel[t.backend]} | | | ${t.batchSize} | n/a: ${t.error} | | | | | | | |`)
      continue
    }
    out.push(
      `| ${t.model} | ${backendLabel[t.backend]} | ${t.parameters.toLocaleString('en-US')} | ${t.constrainedElements.toLocaleString('en-US')} | ${t.batchSize} | ${fmtMs(t.stepNone)} | ` +
        `${share(t.constraintNormclip, t.stepNormclip)} | ${fmtMs(t.uploadNormclip)} | **${share(t.constraintNormclip + t.uploadNormclip, t.stepNormclip)}** | ${share(t.stepNormclip - t.stepNone, t.stepNormclip)} | ` +
        `${share(t.constraintTfjs, t.stepTfjs)} | ${share(t.stepTfjs - t.stepNone, t.stepTfjs)} | ${ratio(t.constraintTfjs / (t.constraintNormclip + t.uploadNormclip))} |`,
    )
  }
  // Goals.
  out.push('', '## Goals', '')
  const single = rows.filter((r) => !r.c.model)
  const get = (r: CaseResult, k: string) => r.results.get(k)?.median ?? NaN
  const mark = (ok: boolean) => (ok ? 'met' : '**missed**')
  const boundLines = single.map((r) => {
    const share = get(r, 'probe') / get(r, 'inPlace')
    const goal = r.c.label.startsWith('[100000,10]') ? 0.6 : 0.85
    return `${r.c.label} ${(100 * share).toFixed(0)}% (${mark(share >= goal)})`
  })
  out.push(`- In place ≥ 85% of the same-run two-pass bound (≥ 60% for [100000,10]), single thread: ${boundLines.join('; ')}.`)
  const e2eBackends: BackendName[] = avail.includes('tensorflow') ? ['tensorflow'] : avail
  for (const b of e2eBackends) {
    const lines = rows.map((r) => {
      const x = get(r, `tfjs:${b}`) / get(r, `e2e:${b}`)
      const needs10 = r.elements <= 1 << 20
      return `${r.c.label} ${ratio(x)}× (${mark(x > 1 && (!needs10 || x >= 10))})`
    })
    out.push(
      `- normclip's \`MaxNorm.apply\` faster than ${backendLabel[b]}'s own \`maxNorm.apply\`, end to end on ${backendLabel[b]} tensors, ≥ 10× up to 1M elements: ${lines.join('; ')}.`,
    )
  }
  if (!avail.includes('tensorflow')) out.push(`  (tfjs-node unavailable: ${missing.tensorflow ?? '?'}; the goal is checked on the backends that load.)`)
  const big = rows.filter((r) => r.elements >= 1 << 16)
  if (avail.includes('wasm')) {
    out.push(`- ≥ 20× tfjs wasm (in place vs apply + dataSync), shapes ≥ 64K elements: ${big.map((r) => `${r.c.label} ${ratio(get(r, 'tfjs:wasm') / get(r, 'inPlace'))}× (${mark(get(r, 'tfjs:wasm') / get(r, 'inPlace') >= 20)})`).join('; ')}.`)
  }
  out.push(`- ≥ 10× the plain-JS loop, shapes ≥ 64K elements: ${big.map((r) => `${r.c.label} ${ratio(get(r, 'plain') / get(r, 'inPlace'))}× (${mark(get(r, 'plain') / get(r, 'inPlace') >= 10)})`).join('; ')}.`)
  out.push(
    `- Constraint overhead < 2% of the training step (normclip's callback plus the upload of the new values into the backend): ${training
      .filter((t) => t.error === undefined)
      .map((t) => {
        const overhead = (t.constraintNormclip + t.uploadNormclip) / t.stepNormclip
        return `${t.model} on ${backendLabel[t.backend]} ${(100 * overhead).toFixed(2)}% (${mark(overhead < 0.02)})`
      })
      .join('; ')}.`,
  )
  out.push(
    '',
    '## How it is measured',
    '',
    '- Single thread for normclip (`NORMCLIP_THREADS=1`, set before the addon loads); tfjs-node uses its own thread pool, tfjs wasm runs single-threaded under Node.',
    "- probe: `bandwidthProbe`, a native sum-of-squares pass then an in-place scale pass over the same buffer (12 B/element), built for the same SIMD tier: the two-pass bound. \"% of probe\" = probe time / normclip time.",
    `- Over the bound: maxValue ${OVER}. Cases of ≥ 64K elements are refilled from a pristine copy before each sample (untimed); smaller ones are timed as runs of calls on one buffer (every call still rescales every slice, checked at start-up). Compliant: maxValue ${COMPLIANT}, all norms in [2, maxValue], Keras' factor is exactly 1; \"% of ⅓ probe\" compares with a third of the probe's time, a rough one-read-pass reference.`,
    '- in place: `constrain(spec)(array, shape)` (the shape-bound fast path). copy: `NativeConstraint.applyCopy` (a new array each call). async: `await applyInPlaceAsync` (libuv pool, one weight at a time). applyBatch: one native `applyBatch` call for all the case\'s weights.',
    "- normclip MaxNorm.apply: `new MaxNorm({maxValue, axis}).apply(tensor)` from src/constraints.ts (data out of the tensor, native constraint, a new tensor), then `dataSync()` and `dispose()`. tfjs maxNorm.apply: `tf.tidy(() => tf.constraints.maxNorm({maxValue, axis}).apply(tensor)).dataSync()` then `dispose()`. The tensor normclip returns holds its values in JS until first used: on tfjs-node the upload into TensorFlow (about as long as the `dataSync` out) is not in this figure, whereas tfjs-node's own result is already in TensorFlow (the training rows count that upload). tfjs has no `axis: null`; on the 1-D [16M] tensor its axis 0 is the same reduction. The cpu backend does the same work in both states, so it is timed over the bound only.",
    '- plain JS: `bench/plain-js.ts`, the Keras formula as Float32Array loops (f64 sums, row streaming for leading axes); it always writes.',
    '- Training: `model.fit` one epoch at a time, three configurations taking turns on the same model and data (no constraint step; normclip `constraintCallback()`; a callback applying tfjs\' own constraint to every constrained trainable weight, `variable.assign(tidy(() => constraint.apply(variable)))`). Step = median time between consecutive batch ends (constraint step included); \"in callback\" = median time of the constraint callback. tfjs-node keeps values written from JS in JS until an op reads them, so after the constraint callback every configuration runs one reshape per constrained weight (an op that moves no data): \"upload\" = its median time with normclip minus without constraints, i.e. the upload of normclip\'s new values that would otherwise land in the next step. \"step increase\" = step − step without constraints: it counts everything but is noisy (±1 ms here); shares are of the step with that configuration. Kernels carry `tf.constraints.maxNorm({maxValue: 3})`.',
    '',
  )
  return out.join('\n')
}

function chart(rows: CaseResult[], avail: BackendName[]): string {
  const single = rows.filter((r) => !r.c.model)
  const palette: Record<string, { color: string; dash?: string; width?: number }> = {
    probe: { color: '#000000', dash: '8 5', width: 3 },
    inPlace: { color: '#1f5fd6', width: 3.5 },
    'inPlace:compliant': { color: '#1f5fd6', dash: '3 3', width: 2 },
    copy: { color: '#6baed6' },
    async: { color: '#17becf' },
    batch: { color: '#3a2fa0', dash: '2 2' },
    'e2e:tensorflow': { color: '#2ca02c' },
    'e2e:wasm': { color: '#8c6d31' },
    'e2e:cpu': { color: '#9467bd' },
    'tfjs:tensorflow': { color: '#ff7f0e' },
    'tfjs:wasm': { color: '#d62728' },
    'tfjs:cpu': { color: '#e377c2' },
    plain: { color: '#7f7f7f' },
  }
  const keys = ['probe', 'inPlace', 'inPlace:compliant', 'copy', 'async', 'batch', ...avail.map((b) => `e2e:${b}`), ...avail.map((b) => `tfjs:${b}`), 'plain']
  const xOf = (r: CaseResult) => 4 * r.elements * (r.c.marker?.jitter ?? 1)
  const series: Series[] = keys.map((k) => ({
    label: k === 'probe' ? 'two-pass bound (bandwidth probe)' : k === 'inPlace:compliant' ? 'normclip in place, compliant weights' : labelOf(k),
    ...(palette[k] ?? { color: '#999' }),
    points: single.map((r) => ({ x: xOf(r), y: (12 * r.elements) / (r.results.get(k)?.median ?? NaN) / 1e6, shape: r.c.marker?.shape ?? 'circle' })),
  }))
  return logLogChart(series, {
    title: 'normclip MaxNorm throughput vs tensor size',
    subtitle: `single thread, SIMD ${simdTier()}, ${cpus()[0]?.model ?? ''}; effective GB/s = 12 B/element / median time; over-bound weights unless noted`,
    xLabel: 'tensor size (bytes, float32)',
    yLabel: 'effective throughput (GB/s, 12 B/element)',
    ticks: single.map((r) => ({ x: xOf(r), label: r.c.label.replace(/ \(.*\)$/, '') })),
    markerNotes: single.filter((r) => r.c.marker).map((r) => ({ shape: r.c.marker!.shape, label: `${r.c.label} (64 MiB, not joined)` })),
  })
}

const entry = process.env.BENCH_RENDER === '1' ? async () => render(JSON.parse(readFileSync(join(__dirname, 'results.json'), 'utf8')) as Saved) : main
entry().catch((error) => {
  console.error(error)
  process.exit(1)
})
