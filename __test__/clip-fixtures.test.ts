/**
 * Gradient clipping against real TensorFlow, Keras 3 and Optax (fixtures/clip-*.json, made by
 * scripts/clip-fixtures/generate.py): tf.clip_by_norm / clip_by_global_norm / clip_by_value /
 * global_norm bit patterns, Optax' per-example clipping, and Keras 3 training runs replayed step by
 * step in tfjs with withGradientClipping. Deviations are measured and printed, then bounded.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { clipByGlobalNorm, clipByNorm, clipByValue, clipPerExample, globalNorm, withGradientClipping } from '../src/index'
import { referenceNorms, reducedAxes } from './reference'
import { onCpuBackend } from './support/cpu-backend'

interface Encoded {
  dtype: 'float32' | 'float64'
  shape: number[]
  bits?: number[]
  values?: string[]
}

const fixtures = join(__dirname, 'fixtures')
const load = (name: string) => JSON.parse(readFileSync(join(fixtures, name), 'utf8'))

function decode(e: Encoded): Float32Array | Float64Array {
  if (e.dtype === 'float32') return new Float32Array(new Uint32Array(e.bits!).buffer)
  return Float64Array.from(e.values!, Number)
}

const f32bits = new Uint32Array(1)
const f32view = new Float32Array(f32bits.buffer)
function ordered32(x: number): number {
  f32view[0] = x
  const b = f32bits[0]!
  return b & 0x80000000 ? 0x80000000 - (b & 0x7fffffff) : 0x80000000 + b
}
function ulps(a: number, b: number, dtype: 'float32' | 'float64'): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity
  if (a === b) return 0
  if (dtype === 'float32') return Math.abs(ordered32(a) - ordered32(b))
  return Math.abs(a - b) / (Number.EPSILON * Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE))
}

/** The true formula in f64: x · c / max(‖x‖, c) with exact slice norms. */
function trueClipByNorm(x: ArrayLike<number>, shape: number[], axes: number[] | null, c: number): number[] {
  // Scaled by the largest magnitude, so that f64 squares of 1e160 do not overflow.
  const m = Math.max(...Array.from(x, Math.abs))
  const norms =
    m > 0 && Number.isFinite(m)
      ? referenceNorms(
          Array.from(x, (v) => v / m),
          shape,
          axes,
        ).map((n) => n * m)
      : referenceNorms(x, shape, axes)
  const reduced = reducedAxes(shape, axes)
  // Slice index of each element, as reference.ts computes it.
  const out: number[] = []
  const keptShape = shape.map((d, i) => (reduced[i] ? 1 : d))
  const position = shape.map(() => 0)
  for (let flat = 0; flat < x.length; flat++) {
    let slice = 0
    for (let i = 0; i < shape.length; i++) slice = slice * keptShape[i]! + (reduced[i] ? 0 : position[i]!)
    out.push(x[flat]! * (c / Math.max(norms[slice]!, c)))
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++position[i]! < shape[i]!) break
      position[i] = 0
    }
  }
  return out
}

onCpuBackend()

describe('tf.clip_by_norm, clip_by_global_norm, clip_by_value, global_norm (real TensorFlow)', () => {
  const fx = load('clip-tf.json')
  const worst = { byNorm: 0, global: 0, differs: 0 }

  it('clip_by_norm: every case within 2 ulp of TF, or of the true formula where normclip differs', () => {
    let count = 0
    for (const c of fx.cases.filter((k: { op: string }) => k.op === 'clip_by_norm')) {
      const x = decode(c.input)
      const clip = Number(c.clip_norm)
      if (c.normclip_rejects) {
        const before = x.slice()
        expect(() => clipByNorm(x, clip, c.axes, c.input.shape), c.name).toThrow(RangeError)
        expect(x).toEqual(before)
        continue
      }
      const input = x.slice()
      clipByNorm(x, clip, c.axes, c.input.shape)
      if (c.normclip_differs) {
        const want = trueClipByNorm(input, c.input.shape, c.axes, clip)
        const cast = c.input.dtype === 'float32' ? want.map(Math.fround) : want
        const d = Math.max(...cast.map((w, i) => ulps(x[i]!, w, c.input.dtype)))
        worst.differs = Math.max(worst.differs, d)
        expect(d, `${c.name}: ${Array.from(x)} vs ${cast}`).toBeLessThanOrEqual(2)
      } else {
        const want = decode(c.output)
        const d = Math.max(0, ...Array.from(x, (v, i) => ulps(v, want[i]!, c.input.dtype)))
        worst.byNorm = Math.max(worst.byNorm, d)
        expect(d, `${c.name}: ${Array.from(x)} vs ${Array.from(want)}`).toBeLessThanOrEqual(2)
      }
      count++
    }
    expect(count).toBeGreaterThan(50)
  })

  it('clip_by_global_norm: outputs within 2 ulp of TF (NaN where TF is NaN), the norm within 1e-6', () => {
    for (const c of fx.cases.filter((k: { op: string }) => k.op === 'clip_by_global_norm')) {
      const xs = c.inputs.map(decode)
      const inputs = xs.map((x: Float32Array) => x.slice())
      const clip = Number(c.clip_norm)
      const useNorm = c.use_norm === null ? undefined : Number(c.use_norm)
      const [, norm] = clipByGlobalNorm(xs, clip, useNorm)
      if (c.normclip_differs) {
        // TF's float32 sum overflows (N = inf: all NaN); the true norm clips properly.
        const flat = inputs.flatMap((x: Float32Array) => Array.from(x, Number))
        const n = Math.hypot(...flat)
        expect(norm / n - 1).toBeLessThan(1e-12)
        xs.forEach((x: Float32Array, t: number) =>
          x.forEach((v, i) => expect(ulps(v, Math.fround(inputs[t][i] * (clip / n)), 'float32')).toBeLessThanOrEqual(1)),
        )
        continue
      }
      const tfNorm = Number(c.global_norm)
      if (Number.isFinite(tfNorm) && tfNorm > 0) expect(Math.abs(norm / tfNorm - 1), c.name).toBeLessThan(1e-6)
      else expect(Object.is(norm, tfNorm) || (Number.isNaN(norm) && Number.isNaN(tfNorm)), c.name).toBe(true)
      c.outputs.forEach((o: Encoded, t: number) => {
        const want = decode(o)
        const d = Math.max(0, ...Array.from(xs[t] as Float32Array, (v: number, i: number) => ulps(v, want[i]!, o.dtype)))
        worst.global = Math.max(worst.global, d)
        expect(d, `${c.name}[${t}]`).toBeLessThanOrEqual(2)
      })
    }
  })

  it('global_norm and clip_by_value', () => {
    for (const c of fx.cases.filter((k: { op: string }) => k.op === 'global_norm')) {
      expect(Math.abs(globalNorm(c.inputs.map(decode)) / Number(c.global_norm) - 1)).toBeLessThan(1e-6)
    }
    const c = fx.cases.find((k: { op: string }) => k.op === 'clip_by_value')
    const x = decode(c.input)
    clipByValue([x], Number(c.clip_value))
    expect(Array.from(new Uint32Array(x.buffer))).toEqual(c.output.bits)
    console.log(
      `clip-tf: max deviation clip_by_norm ${worst.byNorm} ulp, clip_by_global_norm ${worst.global} ulp, ` +
        `cases where normclip differs on purpose: ${worst.differs} ulp from the true formula`,
    )
  })
})

describe('Optax per-example clipping (real optax on jax CPU)', () => {
  const fx = load('clip-optax.json')
  it('clipped sums within float32 summation error of Optax, counts equal', () => {
    let worst = 0
    for (const c of fx.cases) {
      const grads = c.grads.map((g: Encoded) => ({ array: decode(g), shape: g.shape }))
      const clip = Number(c.clip_norm)
      let result: ReturnType<typeof clipPerExample>
      if (c.fn === 'per_example_global_norm_clip') {
        result = clipPerExample(grads, clip, { style: 'optax' })
      } else {
        const sizes = grads.map((g: { shape: number[] }) => g.shape.slice(1).reduce((a, b) => a * b, 1))
        const total = sizes.reduce((a: number, b: number) => a + b, 0)
        const bounds = c.uniform ? clip : sizes.map((s: number) => clip * Math.sqrt(s / total))
        result = clipPerExample(grads, bounds, { style: 'optax', perLayer: true })
      }
      expect(result.clipped, c.name).toEqual(c.clipped)
      c.sums.forEach((s: Encoded, t: number) => {
        const want = decode(s)
        const got = result.sums[t] as Float32Array
        // Optax sums B float32 products (tensordot), normclip in float64 rounded once: they may
        // differ by float32 summation error, B · 2^-24 · Σ|g_i| at most (every factor is ≤ 1).
        const g = grads[t]!.array
        const per = got.length
        const batch = c.grads[t].shape[0]
        got.forEach((v, i) => {
          if (Number.isNaN(want[i]!)) return expect(v).toBeNaN()
          let mass = 0
          for (let b = 0; b < batch; b++) mass += Math.abs(g[b * per + i]!)
          const err = Math.abs(v - want[i]!)
          worst = Math.max(worst, err / (mass * 2 ** -24))
          expect(err, `${c.name}[${t}][${i}]: ${v} vs ${want[i]}`).toBeLessThanOrEqual(batch * 2 ** -24 * mass)
        })
      })
    }
    console.log(`clip-optax: max deviation ${worst.toFixed(2)} × 2^-24 · Σ|g| (bound: the batch size)`)
  })
})

describe('Keras 3 training runs replayed in tfjs', () => {
  const fx = load('clip-keras.json')
  const runs = new Map<string, { optimizer: { config: Record<string, number | null> }; steps: { weights: Encoded[] }[] }>(
    fx.runs.map((r: { name: string }) => [r.name, r]),
  )
  const x = decode(fx.x) as Float32Array
  const y = decode(fx.y) as Float32Array

  function model(): tf.Sequential {
    const m = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 8, activation: 'tanh' }), tf.layers.dense({ units: 3 })],
    })
    m.setWeights(fx.initial_weights.map((w: Encoded) => tf.tensor(decode(w) as Float32Array, w.shape)))
    return m
  }

  function optimizerFor(name: string): tf.Optimizer {
    const c = runs.get(name)!.optimizer.config
    const base = name.startsWith('sgd') ? tf.train.sgd(c.learning_rate!) : tf.train.adam(c.learning_rate!, c.beta_1!, c.beta_2!, c.epsilon!)
    return withGradientClipping(base, { clipnorm: c.clipnorm, globalClipnorm: c.global_clipnorm, clipvalue: c.clipvalue })
  }

  /** Largest |tfjs − Keras| over every weight after every step. */
  async function replay(name: string, loop: 'trainOnBatch' | 'fit'): Promise<number> {
    const m = model()
    m.compile({ optimizer: optimizerFor(name), loss: 'meanSquaredError' })
    const steps = runs.get(name)!.steps
    const { batch_size: batch, epochs } = fx.model
    const xs = tf.tensor(x, [32, 4])
    const ys = tf.tensor(y, [32, 3])
    let worst = 0
    const compare = (step: number) => {
      const want = steps[step]!.weights
      m.getWeights().forEach((w, i) => {
        const got = w.dataSync()
        const ref = decode(want[i]!)
        got.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - ref[j]!))))
      })
    }
    if (loop === 'trainOnBatch') {
      let step = 0
      for (let e = 0; e < epochs; e++) {
        for (let s = 0; s < 32; s += batch) {
          await m.trainOnBatch(xs.slice([s, 0], [batch, 4]), ys.slice([s, 0], [batch, 3]))
          compare(step++)
        }
      }
    } else {
      let step = 0
      await m.fit(xs, ys, { batchSize: batch, epochs, shuffle: false, verbose: 0, callbacks: { onBatchEnd: async () => compare(step++) } })
      expect(step).toBe(steps.length)
    }
    tf.dispose([xs, ys])
    m.dispose()
    return worst
  }

  it('step by step within the float32 noise floor of plain tfjs vs plain Keras, in trainOnBatch and fit', async () => {
    const floorSgd = await replay('sgd', 'trainOnBatch')
    const floorAdam = await replay('adam', 'trainOnBatch')
    const report: string[] = [`noise floor: SGD ${floorSgd.toExponential(2)}, Adam ${floorAdam.toExponential(2)}`]
    for (const name of ['sgd-clipnorm', 'sgd-global-clipnorm', 'sgd-clipvalue', 'adam-global-clipnorm', 'adam-clipnorm']) {
      const floor = name.startsWith('sgd') ? floorSgd : floorAdam
      for (const loop of ['trainOnBatch', 'fit'] as const) {
        const d = await replay(name, loop)
        report.push(`${name}/${loop} ${d.toExponential(2)}`)
        // Within 4× the unclipped floor (and 1e-6 absolute for runs whose floor is near 0).
        expect(d, `${name} ${loop}`).toBeLessThanOrEqual(Math.max(4 * floor, 1e-6))
      }
    }
    console.log(`clip-keras: max |tfjs − Keras 3| over 12 steps × 4 weights: ${report.join('; ')}`)
  })

  it('the clipped runs really differ from the unclipped ones (the clip was active at every step)', () => {
    const last = (name: string) => decode(runs.get(name)!.steps.at(-1)!.weights[0]!)
    for (const name of ['sgd-clipnorm', 'sgd-global-clipnorm', 'sgd-clipvalue']) {
      const a = last(name)
      const b = last('sgd')
      expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-2)
    }
  })
})
