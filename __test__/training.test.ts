/**
 * Constraints during tfjs training: `applyConstraints` and `constraintCallback` against the real
 * @tensorflow/tfjs (cpu backend), with fit, fitDataset and trainOnBatch.
 *
 * Every "with normclip" test has a twin "without normclip" run of the same training, which must
 * break the bound: the bounds are tight enough that tfjs' own training violates them, so the
 * checks below can fail.
 */
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { MaxNorm, MinMaxNorm, NonNeg, RadialConstraint, UnitNorm, applyConstraints, constraintCallback } from '../src/index'
import { referenceNorms, rng, type Axis } from './reference'
import { onCpuBackend } from './support/cpu-backend'

/** f32 rounding of a norm computed from f32 values: far below this relative slack. */
const REL_TOL = 1e-6

onCpuBackend()

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Seeded Glorot-uniform weights: the same model on every run. */
const glorot = (seed: number) => tf.initializers.glorotUniform({ seed })

/** Deterministic inputs in [-scale, scale). */
function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const next = rng(seed)
  const size = shape.reduce((a, b) => a * b, 1)
  return tf.tensor(
    Float32Array.from({ length: size }, () => (next() * 2 - 1) * scale),
    shape,
  )
}

/** One-hot labels of a linearly separable rule on the first input feature pair, so training keeps growing the weights. */
function separableLabels(x: tf.Tensor, classes = 2): tf.Tensor {
  return tf.tidy(() => {
    const rows = x.shape[0]!
    const score = x.slice([0, 0], [rows, 1]).add(x.slice([0, 1], [rows, 1]).mul(0.5))
    const label = score.greater(0).cast('int32').reshape([rows])
    return tf.oneHot(label, classes).cast('float32')
  })
}

/** The L2 norms of a weight's slices along `axis` (Keras' axis semantics), in f64. */
function sliceNorms(weight: tf.LayerVariable | tf.Tensor, axis: Axis): number[] {
  const tensor = weight instanceof tf.LayerVariable ? weight.read() : weight
  return Array.from(referenceNorms(tensor.dataSync(), tensor.shape, axis))
}

function maxSliceNorm(weight: tf.LayerVariable | tf.Tensor, axis: Axis): number {
  return Math.max(...sliceNorms(weight, axis))
}

/** The trainable weight of `layer` whose name ends with `suffix` (e.g. 'kernel', 'recurrent_kernel'). */
function weightOf(layer: tf.layers.Layer, suffix: string): tf.LayerVariable {
  const found = layer.trainableWeights.find((w) => w.originalName.endsWith(`/${suffix}`))
  if (found === undefined) {
    throw new Error(`${layer.name} has no weight ${suffix}: ${layer.trainableWeights.map((w) => w.originalName).join(', ')}`)
  }
  return found
}

/** A callback that runs `check` after every batch (placed after the constraint callback). */
function afterEveryBatch(check: () => void): tf.Callback {
  return new (class extends tf.Callback {
    override async onBatchEnd(): Promise<void> {
      check()
    }
  })()
}

/** `fit` without shuffling or logs, `check` after every batch, and normclip's callback before it when asked. */
async function fitChecked(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, epochs: number, batchSize: number, withNormclip: boolean, check: tf.Callback) {
  await model.fit(x, y, { epochs, batchSize, shuffle: false, verbose: 0, callbacks: withNormclip ? [constraintCallback(), check] : [check] })
}

/** Overwrites a variable directly (setWeights would apply tfjs' constraint on the way). */
function assignRaw(weight: tf.LayerVariable, values: tf.Tensor): void {
  ;(weight.read() as tf.Variable).assign(values)
}

// ---------------------------------------------------------------------------------------------
// fit: a Dense stack with normclip's MaxNorm, tfjs' maxNorm and tfjs' nonNeg
// ---------------------------------------------------------------------------------------------

describe('fit', () => {
  const BOUND = 1

  function denseModel(): tf.Sequential {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [8],
          units: 16,
          activation: 'relu',
          kernelInitializer: glorot(1),
          kernelConstraint: new MaxNorm({ maxValue: BOUND }),
          biasConstraint: tf.constraints.nonNeg(),
        }),
        tf.layers.dense({
          units: 2,
          activation: 'softmax',
          kernelInitializer: glorot(2),
          kernelConstraint: tf.constraints.maxNorm({ maxValue: BOUND }),
        }),
      ],
    })
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' })
    return model
  }

  /** Trains, and returns the largest kernel norm and the smallest bias entry seen after any batch. */
  async function train(withNormclip: boolean): Promise<{ worstNorm: number; smallestBias: number; batches: number; ms: number }> {
    const model = denseModel()
    const [hidden, output] = model.layers as [tf.layers.Layer, tf.layers.Layer]
    const x = randomTensor([64, 8], 11, 2)
    const y = separableLabels(x)
    let worstNorm = 0
    let smallestBias = Infinity
    let batches = 0
    const check = afterEveryBatch(() => {
      batches += 1
      worstNorm = Math.max(worstNorm, maxSliceNorm(weightOf(hidden, 'kernel'), 0), maxSliceNorm(weightOf(output, 'kernel'), 0))
      smallestBias = Math.min(smallestBias, ...weightOf(hidden, 'bias').read().dataSync())
    })
    const constraints = constraintCallback()
    await model.fit(x, y, {
      epochs: 6,
      batchSize: 16,
      shuffle: false,
      verbose: 0,
      callbacks: withNormclip ? [constraints, check] : [check],
    })
    tf.dispose([x, y])
    model.dispose()
    return { worstNorm, smallestBias, batches, ms: constraints.elapsedMs }
  }

  it('with constraintCallback: after every batch every unit norm is ≤ the bound and the bias ≥ 0', async () => {
    const run = await train(true)
    expect(run.batches).toBe(24)
    expect(run.worstNorm).toBeLessThanOrEqual(BOUND * (1 + REL_TOL))
    expect(run.worstNorm).toBeGreaterThan(BOUND * 0.99) // the bound was reached, i.e. it did bind
    expect(run.smallestBias).toBeGreaterThanOrEqual(0)
    expect(run.ms).toBeGreaterThan(0)
  })

  it('the same training without normclip breaks the bound (tfjs never applies constraints in fit)', async () => {
    const run = await train(false)
    expect(run.worstNorm).toBeGreaterThan(BOUND * 1.2)
  })

  it('counts its steps and time, one step per batch', async () => {
    const model = denseModel()
    const x = randomTensor([40, 8], 3)
    const y = separableLabels(x)
    const constraints = constraintCallback()
    await model.fit(x, y, { epochs: 2, batchSize: 10, verbose: 0, callbacks: [constraints] })
    expect(constraints.steps).toBe(8)
    expect(constraints.elapsedMs).toBeGreaterThan(0)
    expect(constraints.elapsedMs).toBeLessThan(5_000)
    tf.dispose([x, y])
    model.dispose()
  })

  it('works after a plain-object callback when given the model, and refuses to run blind without it', async () => {
    const x = randomTensor([32, 8], 5, 2)
    const y = separableLabels(x)
    const model = denseModel()
    const hidden = model.layers[0]!
    let epochs = 0
    const plain = {
      onEpochEnd: async () => {
        epochs += 1
      },
    }
    // tfjs wraps every entry in a CustomCallback when the first one is a plain object and never
    // hands the model to them: the explicit model is what makes this work. (tfjs' types do not
    // allow such a mixed array, its users write it anyway.)
    const mixed = (callback: tf.Callback) => [plain, callback] as unknown as tf.CustomCallbackArgs[]
    await model.fit(x, y, { epochs: 3, batchSize: 8, verbose: 0, callbacks: mixed(constraintCallback({ model })) })
    expect(epochs).toBe(3)
    expect(maxSliceNorm(weightOf(hidden, 'kernel'), 0)).toBeLessThanOrEqual(BOUND * (1 + REL_TOL))

    await expect(model.fit(x, y, { epochs: 1, batchSize: 8, verbose: 0, callbacks: mixed(constraintCallback()) })).rejects.toThrow(
      /did not give the callback its model/,
    )
    tf.dispose([x, y])
    model.dispose()
  })
})

// ---------------------------------------------------------------------------------------------
// fitDataset: tfjs' unitNorm and minMaxNorm
// ---------------------------------------------------------------------------------------------

describe('fitDataset', () => {
  async function train(withNormclip: boolean): Promise<{ hiddenNorms: number[][]; outputNorms: number[][] }> {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [6],
          units: 8,
          activation: 'tanh',
          kernelInitializer: glorot(3),
          kernelConstraint: tf.constraints.unitNorm({ axis: 0 }),
        }),
        tf.layers.dense({
          units: 2,
          activation: 'softmax',
          kernelInitializer: glorot(4),
          kernelConstraint: tf.constraints.minMaxNorm({ minValue: 0.5, maxValue: 1, rate: 1 }),
        }),
      ],
    })
    model.compile({ optimizer: tf.train.adam(0.1), loss: 'categoricalCrossentropy' })
    const x = randomTensor([48, 6], 21, 2)
    const y = separableLabels(x)
    const dataset = tf.data.zip({ xs: tf.data.array(tf.unstack(x)), ys: tf.data.array(tf.unstack(y)) }).batch(12)
    const [hidden, output] = model.layers as [tf.layers.Layer, tf.layers.Layer]
    const hiddenNorms: number[][] = []
    const outputNorms: number[][] = []
    const check = afterEveryBatch(() => {
      hiddenNorms.push(sliceNorms(weightOf(hidden, 'kernel'), 0))
      outputNorms.push(sliceNorms(weightOf(output, 'kernel'), 0))
    })
    await model.fitDataset(dataset as tf.data.Dataset<tf.TensorContainer>, {
      epochs: 4,
      verbose: 0,
      callbacks: withNormclip ? [constraintCallback(), check] : [check],
    })
    tf.dispose([x, y])
    model.dispose()
    return { hiddenNorms, outputNorms }
  }

  it('with constraintCallback: unit norms stay 1 and min-max norms stay in [0.5, 1] after every batch', async () => {
    const { hiddenNorms, outputNorms } = await train(true)
    expect(hiddenNorms).toHaveLength(16)
    for (const norms of hiddenNorms) for (const n of norms) expect(Math.abs(n - 1)).toBeLessThanOrEqual(REL_TOL)
    for (const norms of outputNorms) {
      for (const n of norms) {
        expect(n).toBeGreaterThanOrEqual(0.5 * (1 - REL_TOL))
        expect(n).toBeLessThanOrEqual(1 * (1 + REL_TOL))
      }
    }
  })

  it('the same training without normclip leaves both constraints unapplied', async () => {
    const { hiddenNorms, outputNorms } = await train(false)
    const hiddenDeviation = Math.max(...hiddenNorms.flat().map((n) => Math.abs(n - 1)))
    expect(hiddenDeviation).toBeGreaterThan(0.05)
    expect(Math.max(...outputNorms.flat())).toBeGreaterThan(1.05)
  })
})

// ---------------------------------------------------------------------------------------------
// trainOnBatch + applyConstraints, and what applyConstraints computes
// ---------------------------------------------------------------------------------------------

describe('trainOnBatch + applyConstraints', () => {
  const BOUND = 0.8

  function model(): tf.Sequential {
    const m = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [5], units: 4, kernelInitializer: glorot(7), kernelConstraint: tf.constraints.maxNorm({ maxValue: BOUND }) })],
    })
    m.compile({ optimizer: tf.train.sgd(1), loss: 'meanSquaredError' })
    return m
  }

  it('holds the bound after every step, and without it tfjs breaks the bound', async () => {
    const x = randomTensor([16, 5], 31, 2)
    const y = tf.mul(randomTensor([16, 4], 32), 20)
    for (const withNormclip of [true, false]) {
      const m = model()
      const kernel = weightOf(m.layers[0]!, 'kernel')
      let worst = 0
      for (let step = 0; step < 10; step++) {
        await m.trainOnBatch(x, y)
        if (withNormclip) applyConstraints(m)
        worst = Math.max(worst, maxSliceNorm(kernel, 0))
        if (withNormclip) expect(worst).toBeLessThanOrEqual(BOUND * (1 + REL_TOL))
      }
      if (withNormclip) expect(worst).toBeGreaterThan(BOUND * 0.99)
      else expect(worst).toBeGreaterThan(BOUND * 2)
      m.dispose()
    }
    tf.dispose([x, y])
  })

  it("gives the values of tfjs' own constraint.apply (MaxNorm, UnitNorm, MinMaxNorm, NonNeg, a config only tfjs takes)", () => {
    const cases: Array<[string, ReturnType<typeof tf.constraints.maxNorm>]> = [
      ['maxNorm', tf.constraints.maxNorm({ maxValue: 1.5, axis: 0 })],
      ['unitNorm', tf.constraints.unitNorm({ axis: 1 })],
      ['minMaxNorm', tf.constraints.minMaxNorm({ minValue: 2, maxValue: 3, rate: 0.5, axis: 0 })],
      ['nonNeg', tf.constraints.nonNeg()],
      // tfjs accepts a rate outside [0, 1], normclip's core does not: tfjs' own apply runs it.
      ['minMaxNorm, rate 3', tf.constraints.minMaxNorm({ minValue: 0.5, maxValue: 1, rate: 3, axis: 0 })],
    ]
    for (const [name, constraint] of cases) {
      const layer = tf.layers.dense({ units: 6, inputShape: [7], kernelConstraint: constraint })
      tf.sequential({ layers: [layer] })
      const kernel = weightOf(layer, 'kernel')
      const raw = randomTensor([7, 6], 41, 4)
      assignRaw(kernel, raw)
      const expected = constraint.apply(raw)
      applyConstraints([layer])
      const actual = kernel.read().dataSync()
      const wanted = expected.dataSync()
      for (let i = 0; i < wanted.length; i++) {
        expect(Math.abs(actual[i]! - wanted[i]!), `${name}[${i}]`).toBeLessThanOrEqual(REL_TOL * Math.max(1, Math.abs(wanted[i]!)))
      }
      tf.dispose([raw, expected])
      layer.dispose()
    }
  })

  it("gives exactly what normclip's own constraint.apply gives (all five classes, one batched call)", () => {
    const layers = [
      tf.layers.dense({ inputShape: [7], units: 6, kernelConstraint: new MaxNorm({ maxValue: 1.5 }) }),
      tf.layers.dense({
        units: 5,
        kernelConstraint: new MinMaxNorm({ minValue: 2, maxValue: 3, rate: 0.5 }),
        biasConstraint: new NonNeg(),
      }),
      tf.layers.dense({ units: 4, kernelConstraint: new UnitNorm({ axis: 1 }) }),
    ]
    const conv = tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 3, kernelConstraint: new RadialConstraint() })
    tf.sequential({ layers })
    tf.sequential({ layers: [conv] })
    const targets = [...layers, conv]
    const weights = targets.flatMap((layer) => layer.trainableWeights).filter((weight) => weight.constraint != null)
    expect(weights).toHaveLength(5)
    const expected = weights.map((weight, index) => {
      const raw = randomTensor(weight.shape as number[], 200 + index, 4)
      assignRaw(weight, raw)
      const constrained = weight.constraint.apply(raw)
      const values = Array.from(constrained.dataSync())
      tf.dispose([raw, constrained])
      return values
    })
    applyConstraints(targets)
    weights.forEach((weight, index) => expect(Array.from(weight.read().dataSync()), weight.name).toEqual(expected[index]))
    for (const layer of targets) layer.dispose()
  })

  it('leaks no tensor: tf.memory().numTensors is unchanged by each call', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [5],
          units: 4,
          kernelConstraint: tf.constraints.maxNorm({ maxValue: BOUND }),
          biasConstraint: tf.constraints.nonNeg(),
        }),
        tf.layers.dense({ units: 3, kernelConstraint: new ClipValues(0.1) }),
      ],
    })
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' })
    const x = randomTensor([8, 5], 51)
    const y = randomTensor([8, 3], 52)
    for (let step = 0; step < 5; step++) {
      await m.trainOnBatch(x, y)
      const before = tf.memory().numTensors
      applyConstraints(m)
      expect(tf.memory().numTensors).toBe(before)
    }
    tf.dispose([x, y])
    m.dispose()
  })

  it('does not overwrite a snapshot of a weight (a clone) at the next step', async () => {
    const m = model()
    const kernel = weightOf(m.layers[0]!, 'kernel')
    const x = randomTensor([16, 5], 61, 2)
    const y = tf.mul(randomTensor([16, 4], 62), 20)
    await m.trainOnBatch(x, y)
    applyConstraints(m)
    // A clone shares the variable's data; on the cpu backend that data is normclip's buffer.
    const snapshot = kernel.read().clone()
    const snapshotValues = Array.from(snapshot.dataSync())
    for (let step = 0; step < 3; step++) {
      await m.trainOnBatch(x, y)
      applyConstraints(m)
    }
    expect(Array.from(snapshot.dataSync())).toEqual(snapshotValues)
    expect(Array.from(kernel.read().dataSync())).not.toEqual(snapshotValues)
    tf.dispose([snapshot, x, y])
    m.dispose()
  })

  it('follows changes: a replaced constraint, a frozen layer (left alone), a layer added later', () => {
    const first = tf.layers.dense({ inputShape: [4], units: 3, kernelConstraint: tf.constraints.maxNorm({ maxValue: 1 }) })
    const m = tf.sequential({ layers: [first] })
    const kernel = weightOf(first, 'kernel')
    const big = tf.mul(tf.ones([4, 3]), 5)
    assignRaw(kernel, big)
    applyConstraints(m)
    expect(maxSliceNorm(kernel, 0)).toBeCloseTo(1, 5)

    // A replaced constraint object is picked up (tfjs types `constraint` readonly; JS can set it).
    ;(kernel as { constraint: unknown }).constraint = tf.constraints.maxNorm({ maxValue: 0.5 })
    applyConstraints(m)
    expect(maxSliceNorm(kernel, 0)).toBeCloseTo(0.5, 5)

    // A frozen layer is not trained, so its weights are not constrained (as in Keras).
    first.trainable = false
    assignRaw(kernel, big)
    applyConstraints(m)
    expect(maxSliceNorm(kernel, 0)).toBeCloseTo(10, 5)
    first.trainable = true
    applyConstraints(m)
    expect(maxSliceNorm(kernel, 0)).toBeCloseTo(0.5, 5)

    // A layer added after the first call is constrained from the next call on.
    const second = tf.layers.dense({ units: 2, kernelConstraint: new MaxNorm({ maxValue: 0.25 }) })
    m.add(second)
    const secondKernel = weightOf(second, 'kernel')
    assignRaw(secondKernel, tf.mul(tf.ones([3, 2]), 5))
    applyConstraints(m)
    expect(maxSliceNorm(secondKernel, 0)).toBeCloseTo(0.25, 5)
    big.dispose()
    m.dispose()
  })

  it('throws before writing anything when a constraint does not fit its weight', () => {
    const layer = tf.layers.dense({ inputShape: [4], units: 3, kernelConstraint: new MaxNorm({ maxValue: 1, axis: 5 }) })
    const other = tf.layers.dense({ units: 2, kernelConstraint: tf.constraints.maxNorm({ maxValue: 0.1 }) })
    tf.sequential({ layers: [layer, other] })
    const otherKernel = weightOf(other, 'kernel')
    const before = Array.from(otherKernel.read().dataSync())
    expect(() => applyConstraints([layer, other])).toThrow()
    expect(Array.from(otherKernel.read().dataSync())).toEqual(before)
  })
})

// ---------------------------------------------------------------------------------------------
// Every kind of constrained weight: recurrent, embedding, conv, separable conv, batch norm, nested
// ---------------------------------------------------------------------------------------------

describe('constrained weights of every layer kind', () => {
  it('LSTM kernel, recurrent kernel and bias; Embedding vectors (axis 1); trained with fit', async () => {
    const vocabulary = 20
    const build = () => {
      const embedding = tf.layers.embedding({
        inputDim: vocabulary,
        outputDim: 6,
        inputLength: 5,
        embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 8 }),
        embeddingsConstraint: tf.constraints.maxNorm({ maxValue: 0.6, axis: 1 }),
      })
      const lstm = tf.layers.lstm({
        units: 4,
        kernelInitializer: glorot(9),
        recurrentInitializer: tf.initializers.orthogonal({ seed: 10 }),
        kernelConstraint: new MaxNorm({ maxValue: 0.8 }),
        recurrentConstraint: tf.constraints.maxNorm({ maxValue: 0.8 }),
        biasConstraint: tf.constraints.nonNeg(),
        biasInitializer: tf.initializers.zeros(),
      })
      const head = tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: glorot(11) })
      const m = tf.sequential({ layers: [embedding, lstm, head] })
      m.compile({ optimizer: tf.train.adam(0.2), loss: 'categoricalCrossentropy' })
      return { m, embedding, lstm }
    }
    const next = rng(77)
    const tokens = Array.from({ length: 32 * 5 }, () => Math.floor(next() * vocabulary))
    const x = tf.tensor2d(tokens, [32, 5])
    const y = tf
      .oneHot(
        tf.tensor1d(
          tokens.filter((_, i) => i % 5 === 0).map((t) => (t < vocabulary / 2 ? 0 : 1)),
          'int32',
        ),
        2,
      )
      .cast('float32')

    for (const withNormclip of [true, false]) {
      const { m, embedding, lstm } = build()
      const worst = { embedding: 0, kernel: 0, recurrent: 0, bias: Infinity }
      const check = afterEveryBatch(() => {
        worst.embedding = Math.max(worst.embedding, maxSliceNorm(weightOf(embedding, 'embeddings'), 1))
        worst.kernel = Math.max(worst.kernel, maxSliceNorm(weightOf(lstm, 'kernel'), 0))
        worst.recurrent = Math.max(worst.recurrent, maxSliceNorm(weightOf(lstm, 'recurrent_kernel'), 0))
        worst.bias = Math.min(worst.bias, ...weightOf(lstm, 'bias').read().dataSync())
      })
      await fitChecked(m, x, y, 3, 8, withNormclip, check)
      if (withNormclip) {
        expect(worst.embedding).toBeLessThanOrEqual(0.6 * (1 + REL_TOL))
        expect(worst.kernel).toBeLessThanOrEqual(0.8 * (1 + REL_TOL))
        expect(worst.recurrent).toBeLessThanOrEqual(0.8 * (1 + REL_TOL))
        expect(worst.bias).toBeGreaterThanOrEqual(0)
      } else {
        // Each of the four constraints is broken by plain tfjs training.
        expect(worst.embedding).toBeGreaterThan(0.6 * 1.05)
        expect(worst.kernel).toBeGreaterThan(0.8 * 1.05)
        expect(worst.recurrent).toBeGreaterThan(0.8 * 1.05)
        expect(worst.bias).toBeLessThan(0)
      }
      m.dispose()
    }
    tf.dispose([x, y])
  })

  it('SimpleRNN recurrent kernel under tfjs unitNorm', async () => {
    const x = randomTensor([8, 4, 2], 81)
    const y = tf.mul(randomTensor([8, 3], 82), 3)
    for (const withNormclip of [true, false]) {
      const rnn = tf.layers.simpleRNN({
        units: 3,
        inputShape: [4, 2],
        activation: 'linear',
        kernelInitializer: glorot(18),
        recurrentInitializer: tf.initializers.orthogonal({ seed: 19 }),
        recurrentConstraint: tf.constraints.unitNorm({ axis: 0 }),
      })
      const m = tf.sequential({ layers: [rnn] })
      m.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' })
      let deviation = 0
      const check = afterEveryBatch(() => {
        for (const n of sliceNorms(weightOf(rnn, 'recurrent_kernel'), 0)) deviation = Math.max(deviation, Math.abs(n - 1))
      })
      await fitChecked(m, x, y, 2, 4, withNormclip, check)
      if (withNormclip) expect(deviation).toBeLessThanOrEqual(REL_TOL)
      else expect(deviation).toBeGreaterThan(0.01)
      m.dispose()
    }
    tf.dispose([x, y])
  })

  it('wrapped layers: bidirectional RNN (both directions) and timeDistributed Dense', () => {
    const bidirectional = tf.layers.bidirectional({
      layer: tf.layers.simpleRNN({
        units: 3,
        returnSequences: true,
        kernelConstraint: tf.constraints.maxNorm({ maxValue: 0.5 }),
      }) as tf.RNN,
      inputShape: [4, 2],
      mergeMode: 'concat',
    })
    const timeDistributed = tf.layers.timeDistributed({
      layer: tf.layers.dense({ units: 2, kernelConstraint: new MaxNorm({ maxValue: 0.25 }) }),
    })
    const m = tf.sequential({ layers: [bidirectional, timeDistributed] })
    const kernels = m.trainableWeights.filter((w) => w.originalName.endsWith('/kernel'))
    expect(kernels).toHaveLength(3) // forward RNN, backward RNN, the time-distributed Dense
    for (const kernel of kernels) assignRaw(kernel, tf.mul(tf.ones(kernel.shape as number[]), 5))
    applyConstraints(m)
    const [forward, backward, dense] = kernels.map((kernel) => maxSliceNorm(kernel, 0))
    expect(forward).toBeCloseTo(0.5, 6)
    expect(backward).toBeCloseTo(0.5, 6)
    expect(dense).toBeCloseTo(0.25, 6)
    m.dispose()
  })

  it('Conv2D kernel per filter (axis [0,1,2]), separable conv depthwise/pointwise, batch-norm gamma/beta, in a nested model', async () => {
    const conv = tf.layers.conv2d({
      filters: 4,
      kernelSize: 3,
      inputShape: [6, 6, 2],
      kernelInitializer: glorot(12),
      kernelConstraint: new MaxNorm({ maxValue: 0.5, axis: [0, 1, 2] }),
    })
    const separable = tf.layers.separableConv2d({
      filters: 3,
      kernelSize: 2,
      depthwiseInitializer: glorot(14),
      pointwiseInitializer: glorot(15),
      depthwiseConstraint: tf.constraints.maxNorm({ maxValue: 0.4, axis: [0, 1] as unknown as number }),
      pointwiseConstraint: tf.constraints.maxNorm({ maxValue: 0.4, axis: [0, 1, 2] as unknown as number }),
    })
    const norm = tf.layers.batchNormalization({
      gammaConstraint: tf.constraints.maxNorm({ maxValue: 0.9, axis: [] as unknown as number }),
      betaConstraint: tf.constraints.nonNeg(),
    })
    // The convolutional part is a model of its own, used as a layer of the outer model.
    const features = tf.sequential({ layers: [conv, separable, norm, tf.layers.flatten()] })
    const outer = tf.sequential({
      layers: [features, tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: glorot(16) })],
    })
    outer.compile({ optimizer: tf.train.sgd(2), loss: 'categoricalCrossentropy' })
    const x = randomTensor([16, 6, 6, 2], 91, 3)
    const y = separableLabels(x.reshape([16, 72]))

    const check = afterEveryBatch(() => {
      expect(maxSliceNorm(weightOf(conv, 'kernel'), [0, 1, 2])).toBeLessThanOrEqual(0.5 * (1 + REL_TOL))
      expect(maxSliceNorm(weightOf(separable, 'depthwise_kernel'), [0, 1])).toBeLessThanOrEqual(0.4 * (1 + REL_TOL))
      expect(maxSliceNorm(weightOf(separable, 'pointwise_kernel'), [0, 1, 2])).toBeLessThanOrEqual(0.4 * (1 + REL_TOL))
      for (const g of weightOf(norm, 'gamma').read().dataSync()) expect(Math.abs(g)).toBeLessThanOrEqual(0.9 * (1 + REL_TOL))
      for (const b of weightOf(norm, 'beta').read().dataSync()) expect(b).toBeGreaterThanOrEqual(0)
    })
    await fitChecked(outer, x, y, 2, 8, true, check)
    // The conv kernel did bind (so the check above was not vacuous).
    expect(maxSliceNorm(weightOf(conv, 'kernel'), [0, 1, 2])).toBeGreaterThan(0.5 * 0.99)
    tf.dispose([x, y])
    outer.dispose()
  })
})

// ---------------------------------------------------------------------------------------------
// User-defined constraints go through their own apply
// ---------------------------------------------------------------------------------------------

type TfConstraint = ReturnType<typeof tf.constraints.nonNeg>

/**
 * tfjs' Constraint base class. tfjs does not export it, yet a layer accepts a constraint object
 * only if it is an instance of it (anything else is taken for a serialized config).
 */
const ConstraintBase = Object.getPrototypeOf(tf.constraints.nonNeg().constructor) as abstract new () => TfConstraint

/** A constraint neither normclip nor tfjs knows: clip each weight to [-limit, limit]. */
class ClipValues extends ConstraintBase {
  static readonly className = 'ClipValues'
  constructor(readonly limit: number) {
    super()
  }
  override apply(w: tf.Tensor): tf.Tensor {
    return tf.clipByValue(w, -this.limit, this.limit)
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { limit: this.limit }
  }
}

/** A user-defined constraint that returns its input as is. */
class Identity extends ConstraintBase {
  static readonly className = 'Identity'
  override apply(w: tf.Tensor): tf.Tensor {
    return w
  }
  override getConfig(): tf.serialization.ConfigDict {
    return {}
  }
}

describe('user-defined constraints', () => {
  it('are applied through their own apply, next to native ones, after every batch', async () => {
    const limit = Math.fround(0.05) // the f32 value clipByValue clips to
    const x = randomTensor([32, 8], 101, 2)
    const y = separableLabels(x)
    for (const withNormclip of [true, false]) {
      const custom = tf.layers.dense({
        inputShape: [8],
        units: 5,
        kernelInitializer: glorot(13),
        kernelConstraint: new ClipValues(0.05),
      })
      const native = tf.layers.dense({
        units: 2,
        activation: 'softmax',
        kernelInitializer: glorot(17),
        kernelConstraint: tf.constraints.maxNorm({ maxValue: 0.5 }),
      })
      const m = tf.sequential({ layers: [custom, native] })
      m.compile({ optimizer: tf.train.sgd(1), loss: 'categoricalCrossentropy' })
      let largestEntry = 0
      let largestNorm = 0
      const check = afterEveryBatch(() => {
        largestEntry = Math.max(largestEntry, ...Array.from(weightOf(custom, 'kernel').read().dataSync(), Math.abs))
        largestNorm = Math.max(largestNorm, maxSliceNorm(weightOf(native, 'kernel'), 0))
      })
      await m.fit(x, y, { epochs: 3, batchSize: 8, verbose: 0, callbacks: withNormclip ? [constraintCallback(), check] : [check] })
      if (withNormclip) {
        expect(largestEntry).toBeLessThanOrEqual(limit)
        expect(largestEntry).toBe(limit) // glorot init on [8, 5] starts well above 0.05: the clip did bind
        expect(largestNorm).toBeLessThanOrEqual(0.5 * (1 + REL_TOL))
      } else {
        expect(largestEntry).toBeGreaterThan(0.1)
        expect(largestNorm).toBeGreaterThan(0.5 * 1.05)
      }
      m.dispose()
    }
    tf.dispose([x, y])
  })

  it('one that returns its input leaves the weight intact and usable', () => {
    const layer = tf.layers.dense({ inputShape: [3], units: 2, kernelConstraint: new Identity(), biasConstraint: tf.constraints.nonNeg() })
    const m = tf.sequential({ layers: [layer] })
    const before = Array.from(weightOf(layer, 'kernel').read().dataSync())
    const tensors = tf.memory().numTensors
    applyConstraints(m)
    applyConstraints(m)
    expect(tf.memory().numTensors).toBe(tensors)
    expect(Array.from(weightOf(layer, 'kernel').read().dataSync())).toEqual(before)
    const out = m.predict(tf.ones([1, 3])) as tf.Tensor
    expect(out.shape).toEqual([1, 2])
    tf.dispose(out)
    m.dispose()
  })
})

describe('initial weights and setWeights (what the docs of constraintCallback say)', () => {
  it('initializers ignore constraints; tfjs setWeights applies them; applyConstraints after it is one more Keras step', () => {
    const layer = tf.layers.dense({ inputShape: [3], units: 1, kernelInitializer: 'ones', kernelConstraint: new MaxNorm({ maxValue: 1 }) })
    const model = tf.sequential({ layers: [layer] })
    const kernel = () => Array.from(layer.getWeights()[0]!.dataSync())
    // The initializer's [1, 1, 1] has norm √3 > 1: left as it is.
    expect(kernel()).toEqual([1, 1, 1])
    // setWeights goes through LayerVariable.write, which applies the constraint.
    layer.setWeights([tf.tensor2d([[3], [0], [4]]), tf.zeros([1])])
    const afterSet = kernel()
    expect(Math.hypot(...afterSet)).toBeCloseTo(1, 6)
    // applyConstraints once more: norm 1 < 2, so Keras' formula shrinks by eps: n / (eps + n).
    applyConstraints(model)
    const afterApply = kernel()
    const factor = 1 / (1e-7 + Math.hypot(...afterSet))
    afterApply.forEach((v, i) => expect(v).toBeCloseTo(afterSet[i]! * Math.min(1, factor), 7))
    expect(Math.hypot(...afterApply)).toBeLessThanOrEqual(1)
    model.dispose()
  })
})
