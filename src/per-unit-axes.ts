/**
 * Which `axis` gives one norm per output unit, for every tfjs / Keras layer that has a kernel,
 * and a check that a model's norm constraints use it.
 *
 * MaxNorm (and MinMaxNorm, UnitNorm) default to `axis: 0`, right for a Dense kernel
 * `[in, units]` (one norm per column) but wrong for a Conv2D kernel `[kh, kw, in, out]`, where
 * axis 0 gives kw·in·out norms over kh weights each instead of one norm per filter. Nothing in
 * Keras or tfjs warns about it.
 *
 * Kernel layouts (tfjs-layers `build()` methods; Keras uses the same, whatever the data format):
 *
 * | layer | weight | shape | per-unit axes |
 * |---|---|---|---|
 * | Dense | kernel | [in, units] | 0 |
 * | Conv1D | kernel | [k, in, filters] | [0, 1] |
 * | Conv2D | kernel | [kh, kw, in, filters] | [0, 1, 2] |
 * | Conv3D | kernel | [kd, kh, kw, in, filters] | [0, 1, 2, 3] |
 * | Conv2DTranspose | kernel | [kh, kw, filters, in] | [0, 1, 3] |
 * | Conv3DTranspose | kernel | [kd, kh, kw, filters, in] | [0, 1, 2, 4] |
 * | DepthwiseConv2D | depthwise_kernel | [kh, kw, in, multiplier] | [0, 1] (one per output channel) |
 * | SeparableConv2D | depthwise_kernel | [kh, kw, in, multiplier] | [0, 1] |
 * | SeparableConv2D | pointwise_kernel | [1, 1, in·multiplier, filters] | [0, 1, 2] |
 * | SimpleRNN, GRU, LSTM (and cells) | kernel | [in, units·gates] | 0 (one per unit and gate) |
 * | SimpleRNN, GRU, LSTM (and cells) | recurrent_kernel | [units, units·gates] | 0 |
 * | ConvLSTM2D (and cell) | kernel | [kh, kw, in, 4·filters] | [0, 1, 2] |
 * | ConvLSTM2D (and cell) | recurrent_kernel | [kh, kw, filters, 4·filters] | [0, 1, 2] |
 * | Embedding | embeddings | [inputDim, outputDim] | 1 (one norm per token vector, like `torch.nn.Embedding(max_norm)`) |
 *
 * Keras-only layers (SeparableConv1D, DepthwiseConv1D, ConvLSTM1D/3D) follow the same rules.
 * TimeDistributed and Bidirectional use their inner layer's. Biases, BatchNormalization's gamma
 * and beta and PReLU's alpha have no per-unit norm and are not checked.
 */
import { tfjsBuiltInKind, MaxNorm, MinMaxNorm, UnitNorm } from './constraints'
import { describe, type Axis } from './options'

/** Per-unit axes of a kernel of the given rank. */
type AxesRule = (rank: number) => number | number[]

/** Every axis but the ones listed (negative counts from the end). */
const allBut =
  (...excluded: number[]): AxesRule =>
  (rank) => {
    const drop = excluded.map((a) => (a < 0 ? a + rank : a))
    return range(rank).filter((a) => !drop.includes(a))
  }
const fixed =
  (axes: number | number[]): AxesRule =>
  () =>
    axes

/** Output units last: Keras' layout for everything but the transposed convolutions. */
const OUTPUT_LAST = allBut(-1)

interface LayerRule {
  /** Expected rank of each weight (checked when a shape is known) and its rule; first = main kernel. */
  weights: Record<string, { rank: number; axes: AxesRule }>
}

const rnn = (): LayerRule => ({
  weights: { kernel: { rank: 2, axes: fixed(0) }, recurrent_kernel: { rank: 2, axes: fixed(0) } },
})
const convRnn = (spatial: number): LayerRule => ({
  weights: {
    kernel: { rank: spatial + 2, axes: OUTPUT_LAST },
    recurrent_kernel: { rank: spatial + 2, axes: OUTPUT_LAST },
  },
})
const conv = (spatial: number): LayerRule => ({ weights: { kernel: { rank: spatial + 2, axes: OUTPUT_LAST } } })
const convTranspose = (spatial: number): LayerRule => ({
  weights: { kernel: { rank: spatial + 2, axes: allBut(-2) } },
})
const depthwise = (spatial: number): LayerRule => ({
  weights: { depthwise_kernel: { rank: spatial + 2, axes: allBut(-2, -1) } },
})
const separable = (spatial: number): LayerRule => ({
  weights: {
    depthwise_kernel: { rank: spatial + 2, axes: allBut(-2, -1) },
    pointwise_kernel: { rank: spatial + 2, axes: OUTPUT_LAST },
  },
})

const LAYER_RULES: Readonly<Record<string, LayerRule>> = {
  Dense: { weights: { kernel: { rank: 2, axes: fixed(0) } } },
  Conv1D: conv(1),
  Conv2D: conv(2),
  Conv3D: conv(3),
  Conv2DTranspose: convTranspose(2),
  Conv3DTranspose: convTranspose(3),
  Conv1DTranspose: convTranspose(1),
  DepthwiseConv1D: depthwise(1),
  DepthwiseConv2D: depthwise(2),
  SeparableConv1D: separable(1),
  SeparableConv2D: separable(2),
  SimpleRNN: rnn(),
  SimpleRNNCell: rnn(),
  GRU: rnn(),
  GRUCell: rnn(),
  LSTM: rnn(),
  LSTMCell: rnn(),
  ConvLSTM1D: convRnn(1),
  ConvLSTM2D: convRnn(2),
  ConvLSTM2DCell: convRnn(2),
  ConvLSTM3D: convRnn(3),
  Embedding: { weights: { embeddings: { rank: 2, axes: fixed(1) } } },
}

/** The bits of a tfjs layer this module reads (a `tf.layers.Layer` has them). */
export interface LayerLike {
  name?: string
  getClassName(): string
  weights?: readonly WeightLike[]
}

/** The bits of a tfjs `LayerVariable` this module reads. */
interface WeightLike {
  name: string
  originalName?: string
  shape: readonly (number | null)[]
  constraint?: unknown
}

/**
 * The `axis` that gives one norm per output unit for a layer's kernel, in Keras' form (an int or
 * a list), to pass to MaxNorm, MinMaxNorm or UnitNorm.
 *
 * - `layer`: a tfjs layer or a Keras / tfjs class name (`'Conv2D'`). TimeDistributed and
 *   Bidirectional layers answer for their inner layer.
 * - `kernelShape`: checked against the layer's kernel rank when given. For a class normclip does
 *   not know, needed (a built layer gives its own), and the answer is every axis but the last
 *   (Keras puts output units last).
 * - `weight`: which kernel, for layers with several (`'recurrent_kernel'`, `'pointwise_kernel'`,
 *   camelCase or a full weight name too); default the layer's main kernel.
 *
 * ```ts
 * perUnitAxes('Dense')                                   // 0
 * perUnitAxes('Conv2D')                                  // [0, 1, 2]
 * perUnitAxes('Conv2DTranspose', [3, 3, 64, 32])         // [0, 1, 3]
 * perUnitAxes('SeparableConv2D', undefined, 'pointwise_kernel') // [0, 1, 2]
 * tf.layers.conv2d({ filters: 32, kernelSize: 3,
 *   kernelConstraint: new MaxNorm({ maxValue: 3, axis: perUnitAxes('Conv2D') }) })
 * ```
 */
export function perUnitAxes(layer: LayerLike | string, kernelShape?: readonly number[], weight?: string): number | number[] {
  const className = layerClassName(layer)
  const rule = ruleFor(className)
  if (kernelShape !== undefined && (!Array.isArray(kernelShape) || kernelShape.some((d) => !Number.isInteger(d) || d < 0))) {
    throw new TypeError(`perUnitAxes: kernelShape: expected an array of non-negative integers, got ${describe(kernelShape)}`)
  }
  // A built layer of a class not in the table still tells its kernel's rank.
  kernelShape ??= typeof layer === 'string' ? undefined : builtWeightShape(layer, weight ?? 'kernel')
  if (rule === undefined) {
    if (kernelShape === undefined) {
      throw new RangeError(
        `perUnitAxes: layer: no kernel layout known for ${JSON.stringify(className)}; pass its kernelShape ` +
          `(then every axis but the last is used) or one of ${Object.keys(LAYER_RULES).join(', ')}`,
      )
    }
    return OUTPUT_LAST(kernelShape.length)
  }
  const weightNames = Object.keys(rule.weights)
  const key = weight === undefined ? (weightNames[0] as string) : weightKey(weight)
  const entry = rule.weights[key]
  if (entry === undefined) {
    throw new RangeError(`perUnitAxes: weight: ${className} has ${weightNames.join(', ')}, got ${JSON.stringify(weight)}`)
  }
  const rank = kernelShape?.length ?? entry.rank
  if (rank !== entry.rank) {
    throw new RangeError(`perUnitAxes: kernelShape: a ${className} ${key} has rank ${entry.rank}, got [${kernelShape?.join(', ')}]`)
  }
  return entry.axes(rank)
}

/** One constrained weight whose norm is not taken per output unit. */
export interface ConstraintAxisIssue {
  /** The layer's name, e.g. `conv2d_Conv2D1`. */
  layer: string
  /** The layer's class, e.g. `Conv2D`. */
  layerClass: string
  /** The weight's name, e.g. `conv2d_Conv2D1/kernel`. */
  weight: string
  /** The weight's shape. */
  shape: number[]
  /** The constraint's class name, e.g. `MaxNorm`. */
  constraint: string
  /** The axis the constraint uses. */
  axis: Axis
  /** The axis that would give one norm per output unit ({@link perUnitAxes}). */
  expectedAxes: number | number[]
  /** What is wrong and what to use instead. */
  message: string
}

/**
 * Every norm constraint (MaxNorm, MinMaxNorm, UnitNorm; normclip's or tfjs' own) in a model
 * whose `axis` does not give one norm per output unit — above all the default `axis: 0` on a
 * convolution kernel. Walks nested models, TimeDistributed and Bidirectional. The model must be
 * built (its weights created). Returns an empty array when all is well.
 *
 * ```ts
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3,
 *                      kernelConstraint: new MaxNorm({ maxValue: 3 }) }),  // axis 0: wrong here
 * ] })
 * checkConstraintAxes(model)
 * // [{ layer: 'conv2d_Conv2D1', layerClass: 'Conv2D', weight: 'conv2d_Conv2D1/kernel', shape: [3, 3, 1, 32],
 * //    constraint: 'MaxNorm', axis: 0, expectedAxes: [0, 1, 2],
 * //    message: 'conv2d_Conv2D1/kernel (Conv2D, shape [3, 3, 1, 32]): MaxNorm with axis 0 takes 96 norms
 * //              of 3 weights each, not one norm per output unit (32 norms of 9 weights); use axis [0, 1, 2]' }]
 * ```
 */
export function checkConstraintAxes(model: LayerLike): ConstraintAxisIssue[] {
  if (model === null || typeof model !== 'object' || typeof model.getClassName !== 'function') {
    throw new TypeError(`checkConstraintAxes: model: expected a tfjs model or layer, got ${describe(model)}`)
  }
  const issues: ConstraintAxisIssue[] = []
  for (const layer of leafLayers(model)) {
    const className = layer.getClassName()
    for (const weight of layer.weights ?? []) {
      const issue = checkWeight(layer, className, weight)
      if (issue !== undefined) issues.push(issue)
    }
  }
  return issues
}

function checkWeight(layer: LayerLike, className: string, weight: WeightLike): ConstraintAxisIssue | undefined {
  const norm = normConstraintOf(weight.constraint)
  if (norm === undefined) return undefined
  const key = weightKey(weight.originalName ?? weight.name)
  const rule = ruleFor(className)
  const isKernel = rule !== undefined ? key in rule.weights : key === 'kernel'
  if (!isKernel) return undefined
  const shape = weight.shape.map((d) => d ?? 0)
  const expectedAxes = perUnitAxes(className, shape, key)
  const actual = normalizeAxes(norm.axis, shape.length)
  const expected = normalizeAxes(expectedAxes, shape.length) ?? []
  if (actual !== undefined && sameAxes(actual, expected)) return undefined
  const name = weight.originalName ?? weight.name
  const where = `${name} (${className}, shape [${shape.join(', ')}])`
  const message =
    actual === undefined
      ? `${where}: ${norm.className} has axis ${formatAxis(norm.axis)}, out of range for rank ${shape.length}; use axis ${formatAxis(expectedAxes)}`
      : `${where}: ${norm.className} with axis ${formatAxis(norm.axis)} takes ${normsDescription(shape, actual)}, ` +
        `not one norm per output unit (${normsDescription(shape, expected)}); use axis ${formatAxis(expectedAxes)}`
  return {
    layer: layer.name ?? '',
    layerClass: className,
    weight: name,
    shape,
    constraint: norm.className,
    axis: norm.axis,
    expectedAxes,
    message,
  }
}

/** The class name and axis of a norm constraint, normclip's or tfjs' own; undefined for others. */
function normConstraintOf(c: unknown): { className: string; axis: Axis } | undefined {
  if (c instanceof MaxNorm || c instanceof MinMaxNorm || c instanceof UnitNorm) {
    return { className: c.kindName(), axis: c.axis }
  }
  const kind = tfjsBuiltInKind(c)
  if (kind === undefined || kind === 'nonNeg') return undefined
  const builtIn = c as { getClassName(): string; getConfig(): Record<string, unknown> }
  return { className: builtIn.getClassName(), axis: (builtIn.getConfig()['axis'] ?? 0) as Axis }
}

/** The layers that own weights: nested models and wrappers are opened up. */
function leafLayers(layer: LayerLike): LayerLike[] {
  const inner = layer as LayerLike & {
    layers?: LayerLike[]
    layer?: LayerLike
    forwardLayer?: LayerLike
    backwardLayer?: LayerLike
  }
  if (Array.isArray(inner.layers)) return inner.layers.flatMap(leafLayers)
  if (inner.forwardLayer !== undefined && inner.backwardLayer !== undefined) {
    return [...leafLayers(inner.forwardLayer), ...leafLayers(inner.backwardLayer)]
  }
  if (inner.layer !== undefined && typeof inner.layer.getClassName === 'function') return leafLayers(inner.layer)
  return [layer]
}

function ruleFor(className: string): LayerRule | undefined {
  return Object.hasOwn(LAYER_RULES, className) ? LAYER_RULES[className] : undefined
}

/** The shape of a built layer's weight (`kernel`, `recurrent_kernel`, …), if it has it. */
function builtWeightShape(layer: LayerLike, weight: string): number[] | undefined {
  const key = weightKey(weight)
  const found = (layer.weights ?? []).find((w) => weightKey(w.originalName ?? w.name) === key)
  return found?.shape.every((d) => d !== null) ? (found.shape as number[]) : undefined
}

function layerClassName(layer: LayerLike | string): string {
  if (typeof layer === 'string') return layer
  if (layer === null || typeof layer !== 'object' || typeof layer.getClassName !== 'function') {
    throw new TypeError(`perUnitAxes: layer: expected a tfjs layer or a class name, got ${describe(layer)}`)
  }
  const wrapped = (layer as { layer?: LayerLike }).layer
  if (wrapped !== undefined && typeof wrapped.getClassName === 'function') return layerClassName(wrapped)
  return layer.getClassName()
}

/** `dense_Dense1/recurrentKernel:0` → `recurrent_kernel`. */
function weightKey(name: string): string {
  const last = name.split('/').pop() ?? name
  return last.replace(/:\d+$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

/** Sorted non-negative axes, or undefined when an axis is out of range for the rank. */
function normalizeAxes(axis: Axis, rank: number): number[] | undefined {
  if (axis === null) return range(rank)
  const list = Array.isArray(axis) ? axis : [axis]
  const normalized = list.map((a) => (a < 0 ? a + rank : a))
  if (normalized.some((a) => !Number.isInteger(a) || a < 0 || a >= rank)) return undefined
  return [...new Set(normalized)].sort((a, b) => a - b)
}

function sameAxes(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function normsDescription(shape: number[], axes: number[]): string {
  const sliceSize = axes.reduce((n, a) => n * (shape[a] ?? 1), 1)
  const count = shape.reduce((n, d, a) => (axes.includes(a) ? n : n * d), 1)
  return `${count} norm${count === 1 ? '' : 's'} of ${sliceSize} weight${sliceSize === 1 ? '' : 's'}${count === 1 ? '' : ' each'}`
}

function formatAxis(axis: Axis): string {
  return Array.isArray(axis) ? `[${axis.join(', ')}]` : String(axis)
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}
