// The constraints suite of `npm run bench` (bench/run.ts runs it; alone: `npx tsx bench/constraints.ts
// [--quick] [--only=<regex>] [--update]`): normclip's MaxNorm against every peer, in one process and
// one run, single thread unless BENCH_THREADS is set. Writes constraints.md (tables, goals),
// constraints.json (every sample summary) and constraints.svg (GB/s against tensor size) through
// bench/harness.ts: into target/bench/…, and with --update into bench/results/<cpu kind>/.
// BENCH_RENDER=<path of a constraints.json> redraws the report and chart from a saved run.
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

import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import * as tf from '@tensorflow/tfjs'
import * as native from '../src/native/index.js'
import { NativeConstraint } from '../src/binding'
import { constrain, simdTier, threadCount } from '../src/index'
import { MaxNorm } from '../src/constraints'
import { fastPathStatus, setFastPaths } from '../src/backends'
import type { TfOpsStatus } from '../src/native/index.js'
import { plainJsMaxNorm } from './plain-js'
import { probeAddon } from './probe'
import { measureInterleaved, type Method, type Sampled } from './measure'
import { backendLabel, loadBackends, useBackend, wasmFeatures, type BackendName } from './backends'
import { logLogChart, type Series } from './svg'
import { measureTraining, type TrainingRow } from './training'
import { SPREAD_NOTE, benchArgs, fmtMs, fmtSample, gaussian, loadNote, machine, revision, writeResult } from './harness'

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

const args = benchArgs()
const quick = args.quick
const log = (line: string) => console.log(line)
const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)

/** tfjs types `axis` as a number; arrays and negatives work at runtime; on a 1-D tensor axis 0 is the whole tensor. */
const tfjsAxis = (w: Weight) => (w.axis === null ? 0 : w.axis) as number

/** The backends where `MaxNorm.apply` has a zero-copy path, also timed without it (`e2eCopy:`). */
const zeroCopyBackends = (backends: readonly BackendName[]): BackendName[] => backends.filter((b) => b !== 'cpu')

/** Keys of the methods, in table order. */
const overKeys = (backends: readonly BackendName[]) => [
  'probe',
  'inPlace',
  'copy',
  'async',
  'batch',
  ...backends.map((b) => `e2e:${b}`),
  ...zeroCopyBackends(backends).map((b) => `e2eCopy:${b}`),
  ...backends.map((b) => `tfjs:${b}`),
  'plain',
]

/**
 * tfjs-node keeps a tensor made from JS values in JS until an op first reads it; the copy path's
 * result is such a tensor, so its upload into TensorFlow (a copy: libtensorflow copies unaligned
 * JS memory) is made here, where the zero-copy path and tfjs' own constraint already paid it.
 */
function materialize(backend: BackendName, t: tf.Tensor): void {
  if (backend !== 'tensorflow') return
  const b = tf.backend() as unknown as { getInputTensorIds?(ts: tf.Tensor[]): number[] }
  b.getInputTensorIds?.([t])
}

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
      theirs: {
        over: tf.constraints.maxNorm({ maxValue: OVER, axis: tfjsAxis(w) }),
        compliant: tf.constraints.maxNorm({ maxValue: COMPLIANT, axis: tfjsAxis(w) }),
      },
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

  const probe = probeAddon()
  nativeMethod('probe', 'over', () => {
    for (const w of weights) probe.bandwidthProbe(w.buffers.over, 1.0000001)
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
      // normclip's Keras API on this backend's tensors, end to end: a new tensor in the backend.
      const e2e = (key: string, zeroCopy: boolean) =>
        methods.push({
          key: `${key}:${backend}${suffix}`,
          prepare: async () => {
            await useBackend(backend)
            setFastPaths({ tfjsNode: zeroCopy, wasm: zeroCopy })
          },
          repeatable: true,
          run: () => {
            for (const w of weights) {
              const out = w.ours[state].apply(w.tensors.get(backend)!)
              if (!zeroCopy) materialize(backend, out)
              out.dispose()
            }
          },
        })
      e2e('e2e', true)
      if (zeroCopyBackends(backends).includes(backend)) e2e('e2eCopy', false)
      // tfjs' own constraint; the cpu backend does the same work in both states, so it is timed once.
      if (state === 'over' || backend !== 'cpu') {
        methods.push({
          key: `tfjs:${backend}${suffix}`,
          prepare: () => useBackend(backend),
          repeatable: true,
          run: () => {
            for (const w of weights) tf.tidy(() => w.theirs[state].apply(w.tensors.get(backend)!)).dispose()
          },
        })
      }
    }
  }
  for (const backend of backends) {
    await useBackend(backend)
    for (const w of weights) w.tensors.set(backend, tf.tensor(w.pristine, w.shape, 'float32'))
    // tfjs-node uploads a tensor made from JS values on first use: once, here.
    for (const w of weights) materialize(backend, w.tensors.get(backend)!)
  }
  await useBackend('cpu')
  return {
    methods,
    dispose: () => {
      setFastPaths({ tfjsNode: true, wasm: true })
      for (const w of weights) for (const t of w.tensors.values()) t.dispose()
    },
  }
}

const share = (ms: number, step: number) => `${fmtMs(ms)} (${((100 * ms) / step).toFixed(2)}%)`
const ratio = (x: number) => (!Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

interface CaseResult {
  c: Case
  elements: number
  results: Map<string, Sampled>
}

/** Which zero-copy paths were live, for the report. */
function zeroCopyLine(avail: readonly BackendName[], status: TfOpsStatus | undefined): string {
  const parts: string[] = []
  if (avail.includes('tensorflow')) {
    parts.push(
      status?.available
        ? `tfjs-node: op ${status.ops.join(', ')} registered with ${status.library?.split('/').slice(-1)[0]} (TensorFlow ${status.tensorflowVersion})`
        : `tfjs-node: **no op path** (${status?.reason ?? 'not checked'}): e2e = copy path`,
    )
  }
  if (avail.includes('wasm')) parts.push('tfjs wasm: views of the wasm heap')
  return `Zero-copy paths: ${parts.join('; ') || 'none (no tfjs-node, no wasm)'}.`
}

async function main() {
  const startLoad = loadavg()
  const started = performance.now()
  const backends = await loadBackends()
  const avail = backends.available
  let opStatus: TfOpsStatus | undefined
  if (avail.includes('tensorflow')) {
    await useBackend('tensorflow')
    opStatus = fastPathStatus().tfjsNode // registers the op now, so the report can say whether it is there
    await useBackend('cpu')
  }
  const header = [
    machine().line,
    `normclip ${revision()}, SIMD tier ${simdTier()}, ${threadCount()} thread(s) (NORMCLIP_THREADS=${process.env.NORMCLIP_THREADS}); Node ${process.version}; ` +
      Object.entries(backends.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    `tfjs backends measured: ${avail.map((b) => backendLabel[b]).join(', ')} (wasm: ${wasmFeatures})` +
      (Object.keys(backends.missing).length
        ? `; unavailable: ${Object.entries(backends.missing)
            .map(([k, v]) => `${backendLabel[k as BackendName]} (${v})`)
            .join('; ')}`
        : ''),
    zeroCopyLine(avail, opStatus),
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
  for (const c of cases.filter((c) => !args.only || args.only.test(c.label))) {
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
      `${c.label}: probe ${fmtMs(get('probe'))} ms, in place ${fmtSample(results.get('inPlace'))} ms (${((100 * get('probe')) / ip).toFixed(0)}% of probe), ` +
        overKeys(avail)
          .slice(2)
          .map((k) => `${k} ${ratio(get(k) / ip)}×`)
          .join(', ') +
        ` [${((performance.now() - t0) / 1000).toFixed(1)} s]`,
    )
  }

  log('training step overhead…')
  const trainingBackends = avail.filter((b) => b !== 'cpu' || !avail.includes('tensorflow'))
  const training = await measureTraining(trainingBackends, quick ? 1 : 5, log)
  const endLoad = loadavg()
  const elapsed = (performance.now() - started) / 1000
  log(
    `done in ${elapsed.toFixed(0)} s; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')} at start, ${endLoad.map((l) => l.toFixed(2)).join(' ')} at end`,
  )

  const saved: Saved = {
    header,
    cases: caseResults.map((r) => ({ label: r.c.label, elements: r.elements, results: Object.fromEntries(r.results) })),
    training,
    avail,
    missing: backends.missing,
    startLoad,
    endLoad,
    elapsed,
    quick,
  }
  const written = [...writeResult(args, 'constraints.json', `${JSON.stringify(saved, null, 1)}\n`), ...render(saved)]
  log(`wrote ${written.join(', ')}`)
}

/** What a run saves in constraints.json (so that the report and chart can be redrawn without measuring). */
interface Saved {
  header: string[]
  cases: { label: string; elements: number; results: Record<string, Sampled> }[]
  training: TrainingRow[]
  avail: BackendName[]
  missing: Partial<Record<BackendName, string>>
  startLoad: number[]
  endLoad: number[]
  elapsed: number
  quick?: boolean
}

function render(saved: Saved): string[] {
  const rows: CaseResult[] = saved.cases.map((r) => ({
    c: cases.find((c) => c.label === r.label) ?? { label: r.label, weights: [] },
    elements: r.elements,
    results: new Map(Object.entries(r.results)),
  }))
  return [...writeResult(args, 'constraints.md', report(saved, rows)), ...writeResult(args, 'constraints.svg', chart(rows, saved.avail))]
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
  if (base === 'e2eCopy') return `normclip MaxNorm.apply, ${backendLabel[backend!]}, copy path`
  if (base === 'tfjs') return `${backendLabel[backend!]} maxNorm.apply`
  return labels[base] ?? key
}

function report(saved: Saved, rows: CaseResult[]): string {
  const { header, training, avail, missing } = saved
  const out: string[] = ['# `npm run bench`: constraints', '']
  out.push(...header.map((h) => `${h}  `))
  out.push(
    `${loadNote(saved.startLoad, saved.endLoad)} The run took ${saved.elapsed.toFixed(0)} s${saved.quick ? ' (**--quick**: short budgets, figures not for quoting)' : ''}.`,
    '',
    'Median ms per call (per model for the model rows); all methods of a case sampled in turn, one sample each per round, in a new shuffled order each round with a garbage collection between rounds, in one process. ' +
      `${SPREAD_NOTE} (×) = median / normclip in place in the same state; GB/s = 12 B/element / median (the two-pass traffic).`,
    '',
  )
  const cell = (results: Map<string, Sampled>, key: string, reference: number) => {
    const s = results.get(key)
    return s === undefined ? 'n/a' : `${fmtSample(s)} (${ratio(s.median / reference)}×)`
  }
  // Over the bound.
  const keys = overKeys(avail)
  out.push('## Over the bound (every slice rescaled on every call)', '')
  out.push(`| case | elements | ${keys.map(labelOf).join(' | ')} |`, `|---|---:|${keys.map(() => '---:|').join('')}`)
  for (const { c, elements, results } of rows) {
    const ip = results.get('inPlace')!.median
    const cells = keys.map((k) => {
      const s = results.get(k)
      if (k === 'probe') return fmtSample(s)
      if (k === 'inPlace')
        return `**${fmtSample(s)}** (${((12 * elements) / ip / 1e6).toFixed(1)} GB/s, ${((100 * results.get('probe')!.median) / ip).toFixed(0)}% of probe)`
      return cell(results, k, ip)
    })
    out.push(`| ${c.label} | ${elements.toLocaleString('en-US')} | ${cells.join(' | ')} |`)
  }
  // Compliant.
  // The over-bound methods but the probe and tfjs cpu's own constraint (timed once: the same work in both states).
  const ckeys = overKeys(avail).filter((k) => k !== 'probe' && k !== 'tfjs:cpu')
  out.push('', '## Compliant weights (every norm within bounds: normclip writes nothing)', '')
  out.push(`| case | ${ckeys.map(labelOf).join(' | ')} |`, `|---|${ckeys.map(() => '---:|').join('')}`)
  for (const { c, results } of rows) {
    const ip = results.get('inPlace:compliant')!.median
    const onePass = results.get('probe')!.median / 3
    const cells = ckeys.map((k) => {
      if (k === 'inPlace')
        return `**${fmtSample(results.get('inPlace:compliant'))}** (${((100 * onePass) / ip).toFixed(0)}% of ⅓ probe; ${ratio(results.get('inPlace')!.median / ip)}× faster than over-bound)`
      return cell(results, `${k}:compliant`, ip)
    })
    out.push(`| ${c.label} | ${cells.join(' | ')} |`)
  }
  // Training.
  out.push('', '## Training: constraint step per batch of `fit`', '')
  out.push(
    '| model | backend | params | constrained | batch | step, no constraints (ms) | normclip `constraintCallback` ms (share) | + upload of the new values ms | normclip total ms (share of step) | normclip, copy path: total ms (share) | normclip: step increase ms (share) | tfjs own constraints: in callback ms (share) | tfjs own: step increase ms (share) | tfjs own / normclip total |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  )
  for (const t of training) {
    if (t.error !== undefined) {
      out.push(`| ${t.model} | ${backendLabel[t.backend]} | | | ${t.batchSize} | n/a: ${t.error} | | | | | | | | |`)
      continue
    }
    const copyTotal = (t.constraintNormclipCopy ?? NaN) + (t.uploadNormclipCopy ?? NaN)
    out.push(
      `| ${t.model} | ${backendLabel[t.backend]} | ${t.parameters.toLocaleString('en-US')} | ${t.constrainedElements.toLocaleString('en-US')} | ${t.batchSize} | ${fmtMs(t.stepNone)} | ` +
        `${share(t.constraintNormclip, t.stepNormclip)} | ${fmtMs(t.uploadNormclip)} | **${share(t.constraintNormclip + t.uploadNormclip, t.stepNormclip)}** | ` +
        `${Number.isFinite(copyTotal) ? share(copyTotal, t.stepNormclipCopy ?? NaN) : 'n/a (no zero-copy path)'} | ${share(t.stepNormclip - t.stepNone, t.stepNormclip)} | ` +
        `${share(t.constraintTfjs, t.stepTfjs)} | ${share(t.stepTfjs - t.stepNone, t.stepTfjs)} | ${ratio(t.constraintTfjs / (t.constraintNormclip + t.uploadNormclip))} |`,
    )
  }
  out.push(...goals(rows, training, avail, missing))
  out.push(
    '',
    '## How it is measured',
    '',
    '- Single thread for normclip (`NORMCLIP_THREADS=1`, set before the addon loads); tfjs-node uses its own thread pool, tfjs wasm runs single-threaded under Node.',
    '- probe: `bandwidthProbe` (a `probe`-feature build of the addon, bench/probe.ts), a native sum-of-squares pass then an in-place scale pass over the same buffer (12 B/element), built for the same SIMD tier: the two-pass bound. "% of probe" = probe time / normclip time.',
    `- Over the bound: maxValue ${OVER}. Cases of ≥ 64K elements are refilled from a pristine copy before each sample (untimed); smaller ones are timed as runs of calls on one buffer (every call still rescales every slice, checked at start-up). Compliant: maxValue ${COMPLIANT}, all norms in [2, maxValue], Keras' factor is exactly 1; "% of ⅓ probe" compares with a third of the probe's time, a rough one-read-pass reference.`,
    "- in place: `constrain(spec)(array, shape)` (the shape-bound fast path). copy: `NativeConstraint.applyCopy` (a new array each call). async: `await applyInPlaceAsync` (libuv pool, one weight at a time). applyBatch: one native `applyBatch` call for all the case's weights.",
    "- normclip MaxNorm.apply: `new MaxNorm({maxValue, axis}).apply(tensor)` then `dispose()`: the constrained tensor, made on the backend. On tfjs-node it is the output of normclip's TensorFlow op `NormclipConstrain` (one fused pass from the input's TensorFlow buffer into a new one); on tfjs wasm a fused pass between views of the wasm heap into a new heap tensor; on the cpu backend a fused native copy out of the backend's storage. \"copy path\": the same with those two paths turned off (`setFastPaths`): the data out with `dataSync`, the core, `tf.tensor` back — on tfjs-node including the upload of the result into TensorFlow, which tfjs-node otherwise makes on the tensor's first use.",
    '- tfjs maxNorm.apply: `tf.tidy(() => tf.constraints.maxNorm({maxValue, axis}).apply(tensor))` then `dispose()` (its result is in the backend too). tfjs has no `axis: null`; on the 1-D [16M] tensor its axis 0 is the same reduction. The cpu backend does the same work in both states, so it is timed over the bound only.',
    '- plain JS: `bench/plain-js.ts`, the Keras formula as Float32Array loops (f64 sums, row streaming for leading axes); it always writes.',
    '- Training: `model.fit` one epoch at a time, the configurations taking turns on the same model and data (no constraint step; normclip `constraintCallback()`; the same with the zero-copy paths off, on tfjs-node and wasm; a callback applying tfjs\' own constraint to every constrained trainable weight, `variable.assign(tidy(() => constraint.apply(variable)))`). Step = median time between consecutive batch ends (constraint step included); "in callback" = median time of the constraint callback. tfjs-node keeps values written from JS in JS until an op reads them, so after the constraint callback every configuration runs one reshape per constrained weight (an op that moves no data): "upload" = its median time with normclip minus without constraints, i.e. the upload of normclip\'s new values that would otherwise land in the next step (none with the op path: its values are in TensorFlow already). "step increase" = step − step without constraints: it counts everything but is noisy (±1 ms here); shares are of the step with that configuration. Kernels carry `tf.constraints.maxNorm({maxValue: 3})`.',
    '',
  )
  return out.join('\n')
}

/** Issue 13's goals (and the earlier ones still tracked), each marked met or missed. */
function goals(rows: CaseResult[], training: TrainingRow[], avail: BackendName[], missing: Partial<Record<BackendName, string>>): string[] {
  const out = ['', '## Goals', '']
  const single = rows.filter((r) => !r.c.model)
  const get = (r: CaseResult, k: string) => r.results.get(k)?.median ?? NaN
  const mark = (ok: boolean) => (ok ? 'met' : '**missed**')
  const boundLines = rows.map((r) => {
    const fraction = get(r, 'probe') / get(r, 'inPlace')
    const goal = r.c.label.startsWith('[100000,10]') ? 0.7 : r.c.label.startsWith('[64,64]') ? 0.8 : r.c.label.startsWith('[16]') ? NaN : 0.9
    return `${r.c.label} ${(100 * fraction).toFixed(0)}%${Number.isFinite(goal) ? ` (${mark(fraction >= goal)})` : ''}`
  })
  out.push(`- In place ≥ 90% of the same-run two-pass probe (≥ 80% for [64,64], ≥ 70% for [100000,10]), single thread: ${boundLines.join('; ')}.`)
  if (avail.includes('tensorflow')) {
    const lines = rows
      .filter((r) => r.elements <= 1 << 20)
      .map((r) => {
        const x = get(r, 'tfjs:tensorflow') / get(r, 'e2e:tensorflow')
        return `${r.c.label} ${ratio(x)}× (${mark(x >= 10)})`
      })
    out.push(`- \`MaxNorm.apply\` on tfjs-node tensors ≥ 10× tfjs-node's own \`maxNorm\` up to 1M elements: ${lines.join('; ')}.`)
  } else {
    out.push(`- tfjs-node goals not checked: ${missing.tensorflow ?? 'tfjs-node unavailable'}.`)
  }
  if (avail.includes('wasm')) {
    const lines = rows.map((r) => {
      const x = get(r, 'e2e:wasm') / get(r, 'inPlace')
      return `${r.c.label} ${ratio(x)}×${r.elements >= 1 << 16 ? ` (${mark(x <= 1.5)})` : ''}`
    })
    out.push(
      `- \`MaxNorm.apply\` on tfjs wasm tensors within 1.5× of normclip in place, shapes ≥ 64K elements (below, a new tfjs tensor's fixed cost of microseconds dwarfs a sub-microsecond in-place call): ${lines.join('; ')}.`,
    )
  }
  const mlp = training.filter((t) => t.error === undefined && t.model.startsWith('MLP') && t.backend === 'tensorflow')
  for (const t of mlp) {
    const overhead = (t.constraintNormclip + t.uploadNormclip) / t.stepNormclip
    out.push(`- The MLP's constraint share of a tfjs-node \`fit\` step < 1%: ${(100 * overhead).toFixed(2)}% (${mark(overhead < 0.01)}).`)
  }
  out.push(
    `- Constraint overhead < 2% of the training step (normclip's callback plus the upload of the new values into the backend): ${training
      .filter((t) => t.error === undefined)
      .map((t) => {
        const overhead = (t.constraintNormclip + t.uploadNormclip) / t.stepNormclip
        return `${t.model} on ${backendLabel[t.backend]} ${(100 * overhead).toFixed(2)}% (${mark(overhead < 0.02)})`
      })
      .join('; ')}.`,
  )
  const big = single.filter((r) => r.elements >= 1 << 16)
  out.push(
    `- ≥ 10× the plain-JS loop, shapes ≥ 64K elements: ${big.map((r) => `${r.c.label} ${ratio(get(r, 'plain') / get(r, 'inPlace'))}× (${mark(get(r, 'plain') / get(r, 'inPlace') >= 10)})`).join('; ')}.`,
  )
  return out
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
    'e2e:tensorflow': { color: '#2ca02c', width: 2.5 },
    'e2e:wasm': { color: '#8c6d31', width: 2.5 },
    'e2e:cpu': { color: '#9467bd' },
    'e2eCopy:tensorflow': { color: '#2ca02c', dash: '4 3' },
    'e2eCopy:wasm': { color: '#8c6d31', dash: '4 3' },
    'tfjs:tensorflow': { color: '#ff7f0e' },
    'tfjs:wasm': { color: '#d62728' },
    'tfjs:cpu': { color: '#e377c2' },
    plain: { color: '#7f7f7f' },
  }
  // The table's methods, with the compliant in-place line beside the over-bound one.
  const keys = overKeys(avail).flatMap((k) => (k === 'inPlace' ? [k, 'inPlace:compliant'] : [k]))
  const xOf = (r: CaseResult) => 4 * r.elements * (r.c.marker?.jitter ?? 1)
  const series: Series[] = keys.map((k) => ({
    label: k === 'probe' ? 'two-pass bound (bandwidth probe)' : k === 'inPlace:compliant' ? 'normclip in place, compliant weights' : labelOf(k),
    ...(palette[k] ?? { color: '#999' }),
    points: single.map((r) => ({ x: xOf(r), y: (12 * r.elements) / (r.results.get(k)?.median ?? NaN) / 1e6, shape: r.c.marker?.shape ?? 'circle' })),
  }))
  return logLogChart(series, {
    title: 'normclip MaxNorm throughput vs tensor size',
    subtitle: `single thread, SIMD ${simdTier()}, ${machine().kindLabel}; effective GB/s = 12 B/element / median time; over-bound weights unless noted`,
    xLabel: 'tensor size (bytes, float32)',
    yLabel: 'effective throughput (GB/s, 12 B/element)',
    ticks: single.map((r) => ({ x: xOf(r), label: r.c.label.replace(/ \(.*\)$/, '') })),
    markerNotes: single.filter((r) => r.c.marker).map((r) => ({ shape: r.c.marker!.shape, label: `${r.c.label} (64 MiB, not joined)` })),
  })
}

const fromSaved = process.env.BENCH_RENDER
const entry = fromSaved ? async () => void render(JSON.parse(readFileSync(fromSaved, 'utf8')) as Saved) : main
entry().catch((error) => {
  console.error(error)
  process.exit(1)
})
