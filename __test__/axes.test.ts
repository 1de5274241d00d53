import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { MaxNorm, MinMaxNorm, NonNeg, UnitNorm, checkConstraintAxes, perUnitAxes } from '../src/index'
import { onCpuBackend } from './support/cpu-backend'

onCpuBackend()

/** How many norms `axis` gives on `shape` (the product of the axes it does not reduce). */
function normCount(shape: number[], axis: number | number[]): number {
  const reduced = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a))
  return shape.reduce((n, d, a) => (reduced.includes(a) ? n : n * d), 1)
}

/** A built tfjs layer (inside a one-layer model) and the model, to dispose. */
function built(layer: tf.layers.Layer, inputShape: number[]): tf.layers.Layer {
  tf.sequential({ layers: [tf.layers.inputLayer({ inputShape }), layer] })
  return layer
}

describe('perUnitAxes: the table', () => {
  it("Keras' documented layouts", () => {
    expect(perUnitAxes('Dense')).toBe(0)
    expect(perUnitAxes('Conv1D')).toEqual([0, 1])
    expect(perUnitAxes('Conv2D')).toEqual([0, 1, 2])
    expect(perUnitAxes('Conv3D')).toEqual([0, 1, 2, 3])
    expect(perUnitAxes('Conv2DTranspose')).toEqual([0, 1, 3])
    expect(perUnitAxes('Conv3DTranspose')).toEqual([0, 1, 2, 4])
    expect(perUnitAxes('DepthwiseConv2D')).toEqual([0, 1])
    expect(perUnitAxes('SeparableConv2D')).toEqual([0, 1])
    expect(perUnitAxes('SeparableConv2D', undefined, 'pointwise_kernel')).toEqual([0, 1, 2])
    expect(perUnitAxes('SeparableConv2D', undefined, 'pointwiseKernel')).toEqual([0, 1, 2])
    expect(perUnitAxes('LSTM')).toBe(0)
    expect(perUnitAxes('GRU', undefined, 'recurrent_kernel')).toBe(0)
    expect(perUnitAxes('ConvLSTM2D', undefined, 'recurrentKernel')).toEqual([0, 1, 2])
    expect(perUnitAxes('Embedding')).toBe(1)
  })

  it('a class it does not know: every axis but the last, given the kernel shape', () => {
    expect(perUnitAxes('MyConv', [3, 3, 8, 16])).toEqual([0, 1, 2])
    expect(() => perUnitAxes('constructor')).toThrow(/no kernel layout known for "constructor"/)
    expect(() => perUnitAxes('MyConv')).toThrow(/no kernel layout known for "MyConv"; pass its kernelShape .* or one of Dense, Conv1D/)
  })

  it('checks the kernel shape and weight name', () => {
    expect(perUnitAxes('Conv2DTranspose', [3, 3, 64, 32])).toEqual([0, 1, 3])
    expect(() => perUnitAxes('Conv2D', [3, 16, 32])).toThrow(/kernelShape: a Conv2D kernel has rank 4, got \[3, 16, 32\]/)
    expect(() => perUnitAxes('Dense', undefined, 'recurrent_kernel')).toThrow(/weight: Dense has kernel, got "recurrent_kernel"/)
    expect(() => perUnitAxes('Dense', [2, -1])).toThrow(/kernelShape: expected an array of non-negative integers/)
    expect(() => perUnitAxes(42 as never)).toThrow(/layer: expected a tfjs layer or a class name, got number 42/)
  })
})

describe('perUnitAxes on real tfjs layers: one norm per output unit', () => {
  // [layer, input shape, per weight: how many output units it has]
  const cases: Array<[string, () => tf.layers.Layer, number[], Record<string, number>]> = [
    ['dense', () => tf.layers.dense({ units: 5 }), [3], { kernel: 5 }],
    ['conv1d', () => tf.layers.conv1d({ filters: 4, kernelSize: 3 }), [10, 2], { kernel: 4 }],
    ['conv2d', () => tf.layers.conv2d({ filters: 4, kernelSize: 3 }), [8, 8, 2], { kernel: 4 }],
    ['conv2d channelsFirst', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, dataFormat: 'channelsFirst' }), [2, 8, 8], { kernel: 4 }],
    ['conv3d', () => tf.layers.conv3d({ filters: 4, kernelSize: 2 }), [4, 4, 4, 2], { kernel: 4 }],
    ['conv2dTranspose', () => tf.layers.conv2dTranspose({ filters: 4, kernelSize: 3 }), [8, 8, 2], { kernel: 4 }],
    ['conv3dTranspose', () => tf.layers.conv3dTranspose({ filters: 4, kernelSize: 2 }), [4, 4, 4, 2], { kernel: 4 }],
    ['depthwiseConv2d', () => tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2 }), [8, 8, 3], { depthwise_kernel: 6 }],
    [
      'separableConv2d',
      () => tf.layers.separableConv2d({ filters: 4, kernelSize: 3, depthMultiplier: 2 }),
      [8, 8, 3],
      { depthwise_kernel: 6, pointwise_kernel: 4 },
    ],
    ['simpleRNN', () => tf.layers.simpleRNN({ units: 5 }), [4, 3], { kernel: 5, recurrent_kernel: 5 }],
    ['gru', () => tf.layers.gru({ units: 5 }), [4, 3], { kernel: 15, recurrent_kernel: 15 }],
    ['lstm', () => tf.layers.lstm({ units: 5 }), [4, 3], { kernel: 20, recurrent_kernel: 20 }],
    ['convLstm2d', () => tf.layers.convLstm2d({ filters: 4, kernelSize: 3 }), [2, 8, 8, 3], { kernel: 16, recurrent_kernel: 16 }],
    ['embedding (one norm per token vector)', () => tf.layers.embedding({ inputDim: 10, outputDim: 4 }), [7], { embeddings: 10 }],
  ]
  for (const [name, make, inputShape, units] of cases) {
    it(name, () => {
      const layer = built(make(), inputShape)
      const seen: string[] = []
      for (const weight of layer.weights) {
        const role = weight.originalName.split('/').pop()!
        if (!(role in units)) continue
        seen.push(role)
        const axes = perUnitAxes(layer, weight.shape as number[], role)
        expect(normCount(weight.shape as number[], axes)).toBe(units[role])
        // The same through a real constraint's norms.
        const size = (weight.shape as number[]).reduce((a, b) => a * b, 1)
        const { norms } = new MaxNorm({ axis: axes }).norms(new Float32Array(size), weight.shape as number[])
        expect(norms.length).toBe(units[role])
      }
      expect(seen.sort()).toEqual(Object.keys(units).sort())
      layer.dispose()
    })
  }

  it('a layer class not in the table: every axis but the last of its built kernel', () => {
    class OutputsLast extends tf.layers.Layer {
      static className = 'OutputsLast'
      override build(): void {
        this.addWeight('kernel', [5, 4, 3], 'float32', tf.initializers.zeros(), undefined, true, new MaxNorm())
        this.built = true
      }
    }
    const layer = new OutputsLast({})
    expect(() => perUnitAxes(layer)).toThrow(/no kernel layout known for "OutputsLast"/) // not built: no kernel yet
    layer.build()
    expect(perUnitAxes(layer)).toEqual([0, 1])
    const [issue] = checkConstraintAxes(layer)
    expect(issue!.message).toMatch(
      /MaxNorm with axis 0 takes 12 norms of 5 weights each, not one norm per output unit \(3 norms of 20 weights each\); use axis \[0, 1\]/,
    )
    tf.dispose(layer.weights.map((w) => w.read()))
  })

  it('TimeDistributed and Bidirectional answer for their inner layer', () => {
    const td = built(tf.layers.timeDistributed({ layer: tf.layers.conv2d({ filters: 4, kernelSize: 3 }) }), [2, 8, 8, 3])
    expect(perUnitAxes(td)).toEqual([0, 1, 2])
    const bi = built(tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN }), [4, 2])
    expect(perUnitAxes(bi, undefined, 'recurrent_kernel')).toBe(0)
    td.dispose()
    bi.dispose()
  })
})

describe('checkConstraintAxes', () => {
  it("flags MaxNorm's default axis 0 on a Conv2D kernel, with what to use instead", () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ name: 'conv', inputShape: [28, 28, 1], filters: 32, kernelSize: 3, kernelConstraint: new MaxNorm({ maxValue: 3 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ name: 'out', units: 10, kernelConstraint: new MaxNorm({ maxValue: 3 }) }),
      ],
    })
    const issues = checkConstraintAxes(model)
    expect(issues).toHaveLength(1)
    expect(issues[0]).toEqual({
      layer: 'conv',
      layerClass: 'Conv2D',
      weight: 'conv/kernel',
      shape: [3, 3, 1, 32],
      constraint: 'MaxNorm',
      axis: 0,
      expectedAxes: [0, 1, 2],
      message:
        'conv/kernel (Conv2D, shape [3, 3, 1, 32]): MaxNorm with axis 0 takes 96 norms of 3 weights each, ' +
        'not one norm per output unit (32 norms of 9 weights each); use axis [0, 1, 2]',
    })
    model.dispose()
  })

  it('accepts per-unit axes in any spelling and ignores NonNeg, biases and other constraints', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [8, 8, 2],
          filters: 4,
          kernelSize: 3,
          kernelConstraint: new UnitNorm({ axis: [-4, -3, -2] }),
          biasConstraint: new MaxNorm(),
        }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelConstraint: new NonNeg() }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, kernelConstraint: tf.constraints.maxNorm({ maxValue: 2, axis: 0 }) }),
      ],
    })
    expect(checkConstraintAxes(model)).toEqual([])
    model.dispose()
  })

  it("flags tfjs' own constraints, recurrent kernels, wrappers and nested models", () => {
    const inner = tf.sequential({
      name: 'inner',
      layers: [tf.layers.dense({ name: 'inner_dense', inputShape: [6], units: 4, kernelConstraint: new MinMaxNorm({ axis: 1 }) })],
    })
    const model = tf.sequential({
      layers: [
        tf.layers.timeDistributed({
          inputShape: [2, 8, 8, 3],
          layer: tf.layers.conv2d({
            name: 'td_conv',
            filters: 4,
            kernelSize: 3,
            kernelConstraint: tf.constraints.maxNorm({ maxValue: 2 }),
          }),
        }),
        tf.layers.reshape({ targetShape: [2, 144] }),
        tf.layers.bidirectional({
          layer: tf.layers.lstm({
            name: 'lstm',
            units: 3,
            recurrentConstraint: new MaxNorm({ axis: 1 }),
            kernelConstraint: new MaxNorm(),
          }) as tf.RNN,
        }),
        tf.layers.dense({ units: 6 }),
        inner,
      ],
    })
    const issues = checkConstraintAxes(model)
    expect(issues.map((i) => [i.layerClass, i.weight.split('/').pop(), i.constraint, i.axis, i.expectedAxes])).toEqual([
      ['Conv2D', 'kernel', 'MaxNorm', 0, [0, 1, 2]],
      ['LSTM', 'recurrent_kernel', 'MaxNorm', 1, 0],
      ['LSTM', 'recurrent_kernel', 'MaxNorm', 1, 0],
      ['Dense', 'kernel', 'MinMaxNorm', 1, 0],
    ])
    model.dispose()
  })

  it('reports an axis out of range for the kernel', () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [3], units: 2, kernelConstraint: tf.constraints.unitNorm({ axis: 5 }) })],
    })
    const [issue] = checkConstraintAxes(model)
    expect(issue!.message).toMatch(/UnitNorm has axis 5, out of range for rank 2; use axis 0/)
    model.dispose()
  })

  it('rejects what is not a model', () => {
    expect(() => checkConstraintAxes({} as never)).toThrow(/checkConstraintAxes: model: expected a tfjs model or layer, got an object/)
  })
})
