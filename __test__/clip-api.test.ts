/**
 * The clipping API end to end through the addon: PyTorch's and Opacus' formulas against an f64
 * reference, every error path with the buffers checked unchanged, and the optimizer step in every
 * tfjs training loop (fit, fitDataset, trainOnBatch, minimize), serialization and config loading.
 */
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import {
  MaxNorm,
  clipByGlobalNorm,
  clipByNorm,
  clipGradNorm,
  clipGradsWithNorm,
  clipPerExample,
  clipUpdate,
  compileKeras,
  constraintCallback,
  getTotalNorm,
  globalNorm,
  withGradientClipping,
  tfClipByGlobalNorm,
} from '../src/index'
import { rng } from './reference'
import { onCpuBackend } from './support/cpu-backend'

onCpuBackend()

function random(n: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed)
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale)
}

const norm2 = (xs: ArrayLike<number>[]) => Math.sqrt(xs.reduce((s, x) => s + Array.from(x).reduce((a, v) => a + v * v, 0), 0))

describe('PyTorch clip_grad_norm_ / get_total_norm / clip_grads_with_norm_ (f64 reference of the documented formula)', () => {
  it.each([1, 2, Infinity] as const)('normType %s: total = p-norm of the per-tensor p-norms, coef = min(1, max/(total+1e-6)) always applied', (p) => {
    const a0 = random(100, 1, 2)
    const b0 = random(37, 2, 5)
    const [a, b] = [a0.slice(), b0.slice()]
    const pn = (x: Float32Array) =>
      p === Infinity ? Math.max(...Array.from(x, Math.abs)) : p === 1 ? Array.from(x).reduce((s, v) => s + Math.abs(v), 0) : norm2([x])
    const want = p === Infinity ? Math.max(pn(a0), pn(b0)) : p === 1 ? pn(a0) + pn(b0) : Math.hypot(pn(a0), pn(b0))
    expect(getTotalNorm([a0, b0], p)).toBeCloseTo(want, 4)
    const total = clipGradNorm([a, b], 0.75, { normType: p })
    expect(Math.abs(total / want - 1)).toBeLessThan(1e-6)
    const coef = Math.fround(Math.min(1, 0.75 / (total + 1e-6)))
    a.forEach((v, i) => expect(v).toBe(Math.fround(a0[i]! * coef)))
    b.forEach((v, i) => expect(v).toBe(Math.fround(b0[i]! * coef)))
  })

  it('errorIfNonfinite throws before writing; without it an infinite total zeroes finite entries (coef 0)', () => {
    const a = new Float32Array([1, Infinity, 2])
    const before = a.slice()
    expect(() => clipGradNorm([a], 1, { errorIfNonfinite: true })).toThrow(/errorIfNonfinite/)
    expect(a).toEqual(before)
    clipGradNorm([a], 1)
    expect(Array.from(a)).toEqual([0, NaN, 0])
    const g = new Float32Array([3, 4])
    clipGradsWithNorm([g], 1, 10) // a given total norm
    expect(Array.from(g)).toEqual([Math.fround(3 * Math.fround(1 / (10 + 1e-6))), Math.fround(4 * Math.fround(1 / (10 + 1e-6)))])
  })

  it('works on tf.Variables in place and rejects plain tensors', () => {
    const v = tf.variable(tf.tensor1d([3, 4]))
    clipGradNorm([v], 1)
    expect(norm2([v.dataSync()])).toBeCloseTo(1, 5)
    expect(() => clipGradNorm([tf.tensor1d([1]) as unknown as tf.Variable], 1)).toThrow(/immutable/)
    v.dispose()
  })
})

describe('Opacus per-example clipping (f64 reference of min(1, C/(n+1e-6)))', () => {
  it('flat and per-layer: the clipped sum and the clipped count', () => {
    const B = 5
    const g0 = random(B * 6, 3, 2)
    const g1 = random(B * 2, 4, 0.1)
    const grads = [tf.tensor(g0, [B, 2, 3]), tf.tensor(g1, [B, 2])]
    const { sums, clipped } = clipPerExample(grads, 1.2, { style: 'opacus' })
    let count = 0
    const want0 = new Float64Array(6)
    const want1 = new Float64Array(2)
    for (let i = 0; i < B; i++) {
      const e0 = g0.subarray(i * 6, i * 6 + 6)
      const e1 = g1.subarray(i * 2, i * 2 + 2)
      const f = Math.fround(Math.min(1, Math.fround(1.2 / Math.fround(Math.fround(norm2([e0, e1])) + Math.fround(1e-6)))))
      if (f < 1) count++
      e0.forEach((v, j) => (want0[j]! += f * v))
      e1.forEach((v, j) => (want1[j]! += f * v))
    }
    expect(clipped).toBe(count)
    expect(count).toBeGreaterThan(0)
    expect(sums[0]!.shape).toEqual([2, 3])
    sums[0]!.dataSync().forEach((v, j) => expect(v).toBeCloseTo(want0[j]!, 6))
    sums[1]!.dataSync().forEach((v, j) => expect(v).toBeCloseTo(want1[j]!, 6))
    const layer = clipPerExample(grads, [1, 0.05], { style: 'opacus', perLayer: true })
    expect((layer.clipped as number[]).length).toBe(2)
    tf.dispose([...grads, ...sums, ...layer.sums])
  })

  it('mismatched batch sizes, bad bounds, unknown options and styles throw; nothing is allocated as a tensor', () => {
    const a = { array: new Float32Array(6), shape: [3, 2] }
    const b = { array: new Float32Array(4), shape: [2, 2] }
    const before = tf.memory().numTensors
    expect(() => clipPerExample([a, b], 1)).toThrow(/batch size 3/)
    expect(() => clipPerExample([a], -1)).toThrow(RangeError)
    expect(() => clipPerExample([a], Number.NaN)).toThrow(RangeError)
    expect(() => clipPerExample([a], 1, { style: 'jax' as 'optax' })).toThrow(/style/)
    expect(() => clipPerExample([a], 1, { perlayer: true } as never)).toThrow(/unknown option/)
    expect(() => clipPerExample([tf.tensor([1, 2], [2], 'int32')], 1)).toThrow(/float32/)
    expect(tf.memory().numTensors).toBe(before + 1) // only the int32 tensor made here
  })
})

describe('errors leave every buffer unchanged', () => {
  const snapshot = (xs: Float32Array[]) => xs.map((x) => x.slice())

  it('negative, NaN and infinite clip norms (TF clamps a negative one to 0; normclip refuses)', () => {
    const xs = [random(8, 5), random(3, 6)]
    const before = snapshot(xs)
    for (const bad of [-1, Number.NaN, Infinity]) {
      expect(() => clipByGlobalNorm(xs, bad)).toThrow(RangeError)
      expect(() => clipByNorm(xs[0]!, bad)).toThrow(RangeError)
      expect(() => clipGradNorm(xs, bad)).toThrow(RangeError)
      expect(() => clipUpdate(xs, bad)).toThrow(RangeError)
    }
    expect(() => clipByGlobalNorm(xs, '1' as unknown as number)).toThrow(TypeError)
    expect(xs).toEqual(before)
  })

  it('overlapping arrays (the same buffer twice, or two views that share bytes)', () => {
    const buffer = new Float32Array(16).fill(3)
    const a = buffer.subarray(0, 10)
    const b = buffer.subarray(8, 16)
    const before = buffer.slice()
    expect(() => clipByGlobalNorm([a, b], 1)).toThrow(/overlaps/)
    expect(() => clipGradNorm([a, a], 1)).toThrow(/overlaps/)
    expect(() => clipUpdate([buffer, b], 1)).toThrow(/overlaps/)
    expect(buffer).toEqual(before)
  })

  it('non-float inputs, bad shapes and axes', () => {
    const x = random(6, 7)
    const before = x.slice()
    expect(() => clipByGlobalNorm([new Int32Array(3) as unknown as Float32Array], 1)).toThrow(TypeError)
    expect(() => clipByGlobalNorm([tf.tensor([1, 2], [2], 'int32')], 1)).toThrow(/float32/)
    expect(() => clipByNorm(x, 1, [0], [4, 2])).toThrow(/length/)
    expect(() => clipByNorm(x, 1, [2], [2, 3])).toThrow(/axis/)
    expect(() => clipByGlobalNorm(x as unknown as Float32Array[], 1)).toThrow(TypeError)
    expect(x).toEqual(before)
  })
})

describe('primitives on tensors and arrays', () => {
  it('tensors come back as new tensors, the input untouched, nothing leaked', () => {
    const t = tf.tensor([3, 4], [2])
    const before = tf.memory().numTensors
    const [[c], n] = clipByGlobalNorm([t], 1)
    expect(n).toBe(5)
    expect(Array.from(c!.dataSync())).toEqual([Math.fround(3 * Math.fround(1 / 5)), Math.fround(4 * Math.fround(1 / 5))])
    expect(Array.from(t.dataSync())).toEqual([3, 4])
    c!.dispose()
    expect(tf.memory().numTensors).toBe(before)
    expect(globalNorm([t, new Float64Array([12])])).toBe(13)
    t.dispose()
  })

  it('clipByNorm along axes, and clipUpdate semantics (zero update untouched, NaN not clipped)', () => {
    const x = new Float32Array([3, 0, 4, 1]) // [2, 2], axis 0: columns (3,4) and (0,1)
    clipByNorm(x, 1, [0], [2, 2])
    expect(Array.from(x)).toEqual([Math.fround(3 / 5), 0, Math.fround(4 / 5), 1])
    const z = new Float32Array([0, -0])
    expect(clipUpdate([z], 1)).toMatchObject({ norm: 0, clipped: false })
    expect(Object.is(z[1], -0)).toBe(true)
    const d = new Float32Array([30, 40])
    expect(clipUpdate([d], 5)).toMatchObject({ norm: 50, clipped: true })
    expect(Array.from(d)).toEqual([3, 4])
  })
})

describe('withGradientClipping / compileKeras in every training loop', () => {
  function dense(constraint = false): tf.Sequential {
    return tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [4],
          units: 6,
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
          kernelConstraint: constraint ? new MaxNorm({ maxValue: 0.5 }) : undefined,
        }),
        tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    })
  }
  const x = tf.tensor(random(64, 9, 3), [16, 4])
  const y = tf.tensor(random(32, 10, 20), [16, 2])

  it('is a tf.Optimizer; Keras rejects two clip options; a value <= 0 means off; unknown keys are errors', () => {
    const opt = withGradientClipping(tf.train.sgd(0.1), { globalClipnorm: 1 })
    expect(opt instanceof tf.Optimizer).toBe(true)
    expect(opt.getClassName()).toBe('SGD')
    expect(opt.getConfig()).toEqual({ learningRate: 0.1, globalClipnorm: 1 })
    expect(() => withGradientClipping(tf.train.sgd(0.1), { clipnorm: 1, clipvalue: 1 })).toThrow(/only one of clipnorm, clipvalue and globalClipnorm/)
    expect(withGradientClipping(tf.train.sgd(0.1), { clipnorm: 0 }).clipping.clipnorm).toBeNull()
    expect(() => withGradientClipping(tf.train.sgd(0.1), { clipNorm: 1 } as never)).toThrow(/unknown option/)
    expect(() => withGradientClipping({} as tf.Optimizer)).toThrow(TypeError)
  })

  it('minimize in a custom loop clips by the global norm exactly as the tfjs-ops formula (same update)', () => {
    const a = dense()
    const b = dense()
    const optA = withGradientClipping(tf.train.sgd(0.1), { globalClipnorm: 0.5 })
    const optB = tf.train.sgd(0.1)
    const loss = (m: tf.Sequential) => () => tf.losses.meanSquaredError(y, m.predict(x) as tf.Tensor) as tf.Scalar
    optA.minimize(loss(a))
    // The reference step: TF's formula as tfjs ops, then plain SGD.
    const { grads } = tf.variableGrads(loss(b))
    const names = Object.keys(grads)
    const [clipped] = tfClipByGlobalNorm(
      tf,
      names.map((n) => grads[n]!),
      0.5,
    )
    optB.applyGradients(names.map((name, i) => ({ name, tensor: clipped[i]! })))
    expect(optA.lastGlobalNorm).toBeGreaterThan(0.5)
    a.getWeights().forEach((w, i) => {
      const other = b.getWeights()[i]!.dataSync()
      w.dataSync().forEach((v, j) => expect(Math.abs(v - other[j]!)).toBeLessThan(1e-6))
    })
    tf.dispose([...Object.values(grads), ...clipped])
  })

  it('compileKeras: fit, fitDataset and trainOnBatch clip, update and apply constraints — no callback needed', async () => {
    for (const loop of ['fit', 'fitDataset', 'trainOnBatch'] as const) {
      const m = dense(true)
      compileKeras(m, { optimizer: tf.train.adam(0.05), clipnorm: 1, loss: 'meanSquaredError' })
      if (loop === 'fit') await m.fit(x, y, { epochs: 3, batchSize: 4, verbose: 0 })
      if (loop === 'trainOnBatch') for (let i = 0; i < 6; i++) await m.trainOnBatch(x, y)
      if (loop === 'fitDataset') {
        const ds = tf.data.zip({ xs: tf.data.array(x.unstack()), ys: tf.data.array(y.unstack()) }).batch(4)
        await m.fitDataset(ds as never, { epochs: 2, verbose: 0 })
      }
      const kernel = m.layers[0]!.getWeights()[0]!
      const colNorms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(kernel), 0)).dataSync())
      expect(Math.max(...colNorms), loop).toBeLessThanOrEqual(0.5 * (1 + 1e-6))
      expect(m.optimizer.getConfig().clipnorm).toBe(1)
      m.dispose()
    }
    // The same training with tfjs alone breaks the constraint (the check can fail).
    const plain = dense(true)
    plain.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError' })
    await plain.fit(x, y, { epochs: 3, batchSize: 4, verbose: 0 })
    expect(Math.max(...tf.tidy(() => tf.sqrt(tf.sum(tf.square(plain.layers[0]!.getWeights()[0]!), 0)).dataSync()))).toBeGreaterThan(0.6)
    // constraintCallback() keeps working on its own.
    const cb = dense(true)
    cb.compile({ optimizer: 'sgd', loss: 'meanSquaredError' })
    await cb.fit(x, y, { epochs: 1, batchSize: 8, verbose: 0, callbacks: [constraintCallback()] })
    expect(Math.max(...tf.tidy(() => tf.sqrt(tf.sum(tf.square(cb.layers[0]!.getWeights()[0]!), 0)).dataSync()))).toBeLessThanOrEqual(0.5 * (1 + 1e-6))
  })

  it('Keras training configs with clip options load into a clipping optimizer (Keras 2 and 3 keys), others as before', async () => {
    const topology = dense().toJSON(null, false)
    const load = async (optimizerConfig: object) => {
      const artifacts = {
        modelTopology: topology as tf.io.ModelArtifacts['modelTopology'],
        trainingConfig: { loss: 'mean_squared_error', metrics: [], optimizer_config: optimizerConfig } as never,
      }
      const m = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
      return m
    }
    const k3 = await load({
      class_name: 'Adam',
      config: { learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, global_clipnorm: 0.5, clipnorm: null, clipvalue: null },
    })
    expect(k3.optimizer.getConfig()).toMatchObject({ learningRate: 0.01, globalClipnorm: 0.5 })
    const k2 = await load({ class_name: 'SGD', config: { learning_rate: 0.1, clipvalue: 0.2 } })
    expect(k2.optimizer.getConfig()).toMatchObject({ learningRate: 0.1, clipvalue: 0.2 })
    const plain = await load({ class_name: 'SGD', config: { learning_rate: 0.1 } })
    expect((plain.optimizer as { inner?: unknown }).inner).toBeUndefined()
    expect(plain.optimizer.getConfig()).toEqual({ learningRate: 0.1 })
    // A model saved with a clipping optimizer round-trips.
    const m = dense()
    compileKeras(m, { optimizer: tf.train.sgd(0.2), clipnorm: 0.7, loss: 'meanSquaredError' })
    let saved: tf.io.ModelArtifacts | undefined
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        saved = a
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
      }),
      { includeOptimizer: true },
    )
    const again = await tf.loadLayersModel(tf.io.fromMemory(saved!))
    expect(again.optimizer.getConfig()).toEqual({ learningRate: 0.2, clipnorm: 0.7 })
    tf.dispose([k3, k2, plain, m, again] as never)
  })
})
