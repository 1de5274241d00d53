// Global-norm gradient clipping of a model's gradients: normclip's native step (data out of the
// backend, one native call for every gradient, tensors back) against the same clipping written
// with tfjs ops (tf.sum(tf.square(g)) per tensor, tf.addN, the TF scale: what users write today),
// plain JS over typed arrays, and the bandwidth probe (12 B/element) on the same element count, on
// every backend; then the share of a training step (fit with compileKeras) it costs.
//
// `npm run bench` runs it (bench/run.ts); alone: `npx tsx bench/clipping.ts` (BENCH_QUICK=1 or --quick
// for a short run). Writes clipping.md through bench/harness.ts. Medians with the interquartile range, methods
// interleaved in one process (bench/measure.ts).
import { execSync } from 'node:child_process'
import { loadavg } from 'node:os'
import * as tf from '@tensorflow/tfjs'
import * as native from '../src/native/index.js'
import { compileKeras, simdTier, tfClipByGlobalNorm } from '../src/index'
import { ownedFloat32Data } from '../src/tfjs'
import { measureInterleaved, median, type Method } from './measure'
import { backendLabel, loadBackends, useBackend, type BackendName } from './backends'
import { benchArgs, writeResult } from './harness'
import { probeAddon } from './probe'

const quick = benchArgs().quick
const CLIP = 1.0

/** Gradient shapes of the two models of bench/training.ts. */
const models: { name: string; shapes: number[][]; build: () => tf.LayersModel; input: number[]; batch: number }[] = [
  {
    name: 'MLP 784-512-256-10',
    shapes: [[784, 512], [512], [512, 256], [256], [256, 10], [10]],
    input: [784],
    batch: 64,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu' }),
          tf.layers.dense({ units: 256, activation: 'relu' }),
          tf.layers.dense({ units: 10, activation: 'softmax' }),
        ],
      }),
  },
  {
    name: 'CNN conv8-conv16-dense32 (28×28×1)',
    shapes: [[3, 3, 1, 8], [8], [3, 3, 8, 16], [16], [9216, 32], [32], [32, 10], [10]],
    input: [28, 28, 1],
    batch: 32,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu' }),
          tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 32, activation: 'relu' }),
          tf.layers.dense({ units: 10, activation: 'softmax' }),
        ],
      }),
  },
]

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s / 2 ** 32 - 0.5) * 0.2
  })
}

/** The same clipping as plain JS loops (f64 sum, one scale pass), for the JS-only baseline. */
function plainJsGlobalClip(arrays: Float32Array[], clip: number): number {
  let sum = 0
  for (const a of arrays) for (let i = 0; i < a.length; i++) sum += a[i]! * a[i]!
  const norm = Math.sqrt(sum)
  const scale = Math.fround(clip * Math.min(1 / norm, 1 / clip))
  for (const a of arrays) for (let i = 0; i < a.length; i++) a[i] = a[i]! * scale
  return norm
}

interface Row {
  model: string
  backend: BackendName
  elements: number
  results: Record<string, { median: number; iqr: [number, number] }>
}

/** Median and quartiles from repeated interleaved measurements (each a median of its samples). */
async function measure(methods: Method[], rounds: number): Promise<Row['results']> {
  const all = new Map<string, number[]>()
  for (let r = 0; r < rounds; r++) {
    const m = await measureInterleaved(methods, { budgetMs: quick ? 150 : 600, minSampleMs: 5, maxSamples: quick ? 9 : 31 })
    for (const [k, v] of m) all.set(k, [...(all.get(k) ?? []), v.median])
  }
  const out: Row['results'] = {}
  for (const [k, v] of all) {
    const s = [...v].sort((a, b) => a - b)
    out[k] = { median: median(s), iqr: [s[Math.floor((s.length - 1) / 4)]!, s[Math.ceil((3 * (s.length - 1)) / 4)]!] }
  }
  return out
}

async function clippingRows(backends: BackendName[]): Promise<Row[]> {
  const rows: Row[] = []
  for (const backend of backends) {
    await useBackend(backend)
    for (const model of models) {
      const grads = model.shapes.map((s, i) =>
        tf.tensor(
          random(
            s.reduce((a, b) => a * b, 1),
            i + 1,
          ),
          s,
        ),
      )
      const elements = grads.reduce((n, g) => n + g.size, 0)
      const arrays = grads.map((g) => g.dataSync().slice() as Float32Array)
      const probe = new Float32Array(elements).fill(0.01)
      const methods: Method[] = [
        {
          key: 'normclip',
          run: () => {
            const data = grads.map((g, i) => ownedFloat32Data(g, `g${i}`))
            native.clipByGlobalNorm(data, CLIP, null)
            // The tensors the optimizer then takes (tfjs-node uploads them on first use).
            tf.dispose(data.map((d, i) => tf.tensor(d, grads[i]!.shape, 'float32')))
          },
          repeatable: true,
        },
        {
          key: 'tfjs ops',
          run: () => {
            const [out, norm] = tfClipByGlobalNorm(tf, grads, CLIP)
            norm.dataSync() // the step needs the values computed, as the optimizer's next op would
            tf.dispose([...out, norm])
          },
          repeatable: true,
        },
        { key: 'plain JS', run: () => void plainJsGlobalClip(arrays, CLIP), repeatable: true },
        { key: 'probe', run: () => void probeAddon().bandwidthProbe(probe, 1), repeatable: true },
      ]
      rows.push({ model: model.name, backend, elements, results: await measure(methods, quick ? 1 : 3) })
      tf.dispose(grads)
      log(
        `${backendLabel[backend]} ${model.name}: ${JSON.stringify(Object.fromEntries(Object.entries(rows.at(-1)!.results).map(([k, v]) => [k, +v.median.toFixed(3)])))}`,
      )
    }
  }
  return rows
}

interface StepRow {
  model: string
  backend: BackendName
  plain: number
  native: number
  tfjs: number
}

/** ms per batch of `fit`: no clipping, compileKeras(globalClipnorm) native, and with tfjs ops. */
async function stepRows(backends: BackendName[]): Promise<StepRow[]> {
  const rows: StepRow[] = []
  for (const backend of backends) {
    await useBackend(backend)
    for (const spec of models) {
      const batches = quick ? 3 : 12
      const n = spec.batch * batches
      const x = tf.tensor(random(n * spec.input.reduce((a, b) => a * b, 1), 7), [n, ...spec.input])
      const y = tf
        .oneHot(
          tf.tensor1d(
            Array.from({ length: n }, (_, i) => i % 10),
            'int32',
          ),
          10,
        )
        .cast('float32')
      const time = async (setup: (m: tf.LayersModel) => void): Promise<number> => {
        const m = spec.build()
        setup(m)
        await m.fit(x, y, { batchSize: spec.batch, epochs: 1, verbose: 0 }) // warm-up
        const times: number[] = []
        let t0 = 0
        await m.fit(x, y, {
          batchSize: spec.batch,
          epochs: quick ? 1 : 3,
          verbose: 0,
          callbacks: {
            onBatchBegin: async () => {
              t0 = performance.now()
            },
            onBatchEnd: async () => {
              times.push(performance.now() - t0)
            },
          },
        })
        m.dispose()
        return median(times)
      }
      const base = { loss: 'categoricalCrossentropy' as const }
      try {
        const plain = await time((m) => m.compile({ ...base, optimizer: tf.train.sgd(0.01) }))
        const nat = await time((m) => compileKeras(m, { ...base, optimizer: tf.train.sgd(0.01), globalClipnorm: CLIP, engine: 'native' }))
        const ops = await time((m) => compileKeras(m, { ...base, optimizer: tf.train.sgd(0.01), globalClipnorm: CLIP, engine: 'tfjs' }))
        rows.push({ model: spec.name, backend, plain, native: nat, tfjs: ops })
        log(`step ${backendLabel[backend]} ${spec.name}: plain ${plain.toFixed(2)} ms, native ${nat.toFixed(2)}, tfjs ops ${ops.toFixed(2)}`)
      } catch (error) {
        // A model this backend cannot train (tfjs wasm has no Conv2DBackpropFilter): no row.
        log(`step ${backendLabel[backend]} ${spec.name}: not measured (${String(error instanceof Error ? error.message : error).split('\n')[0]})`)
        tf.disposeVariables()
      } finally {
        tf.dispose([x, y])
      }
    }
  }
  return rows
}

function log(line: string): void {
  process.stderr.write(`[bench:clipping] ${line}\n`)
}

function cpuName(): string {
  try {
    return (
      execSync('lscpu', { encoding: 'utf8' })
        .match(/Model name:\s*(.+)/)?.[1]
        ?.trim() ?? 'unknown'
    )
  } catch {
    return 'unknown'
  }
}

function fmt(v: { median: number; iqr: [number, number] }): string {
  return `${v.median.toFixed(3)} ms (${v.iqr[0].toFixed(3)}–${v.iqr[1].toFixed(3)})`
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!
  const { available } = await loadBackends()
  const rows = await clippingRows(available)
  const steps = await stepRows(available.filter((b) => b !== 'cpu' || !available.includes('tensorflow')))
  const lines = [
    '# Gradient clipping benchmark',
    '',
    `CPU: ${cpuName()}; SIMD tier ${simdTier()}; Node ${process.version}; backends: ${available.map((b) => backendLabel[b]).join(', ')}; ` +
      `load average ${startLoad.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}${startLoad > 1 ? ' (machine shared: timings are noisy)' : ''}.`,
    '',
    'Global-norm clipping (TF `clip_by_global_norm`, clip 1.0) of every gradient of a model, one step. Median of 3 interleaved runs (IQR).',
    '`normclip`: data out of the backend, one native call, tensors back; `tfjs ops`: `tf.sum(tf.square(g))` per tensor, `tf.addN`, the TF scale, on the backend;',
    '`plain JS`: loops over Float32Arrays already out of the backend; `probe`: sum of squares + scale over a buffer of the same size (12 B/element).',
    '',
    '| model | backend | elements | normclip | tfjs ops | ×  | plain JS | × | probe |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const n = r.results['normclip']!
      const o = r.results['tfjs ops']!
      const j = r.results['plain JS']!
      return `| ${r.model} | ${backendLabel[r.backend]} | ${r.elements} | ${fmt(n)} | ${fmt(o)} | ${(o.median / n.median).toFixed(1)} | ${fmt(j)} | ${(j.median / n.median).toFixed(1)} | ${fmt(r.results['probe']!)} |`
    }),
    '',
    "Share of a training step (`fit`, SGD, median ms per batch): no clipping, `compileKeras(…, { globalClipnorm: 1 })` native, and with `engine: 'tfjs'`.",
    '',
    '| model | backend | no clipping | native clip | share | tfjs-ops clip | share |',
    '|---|---|---|---|---|---|---|',
    ...steps.map(
      (s) =>
        `| ${s.model} | ${backendLabel[s.backend]} | ${s.plain.toFixed(2)} | ${s.native.toFixed(2)} | ${(((s.native - s.plain) / s.native) * 100).toFixed(1)}% | ${s.tfjs.toFixed(2)} | ${(((s.tfjs - s.plain) / s.tfjs) * 100).toFixed(1)}% |`,
    ),
    '',
  ]
  // Into this run's directory (bench/harness.ts), and with --update into bench/results/<cpu kind>/.
  log(`wrote ${writeResult(benchArgs(), 'clipping.md', lines.join('\n')).join(', ')}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
