/**
 * Keras' weight constraints as TensorFlow.js constraints that run on normclip's native core.
 *
 * Each class is a real tfjs-layers `Constraint` (it extends tfjs' own base class, see
 * `./tfjs.ts`), so it goes anywhere tfjs takes one:
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs'
 * import { MaxNorm } from 'normclip'
 * tf.layers.dense({ units: 64, kernelConstraint: new MaxNorm({ maxValue: 3 }) })
 * ```
 *
 * and also works on plain typed arrays without tfjs installed (`applyInPlace`, `applyCopy`,
 * `applyInPlaceAsync`, `norms`).
 *
 * Arguments are Keras' and tfjs' (either spelling: `maxValue` or `max_value`), with Keras'
 * defaults, plus `mode` and `epsilon` (see {@link Mode}). Unlike Keras and tfjs, which accept
 * anything, bad arguments throw here at construction (a negative `maxValue`, `rate` outside
 * [0, 1], an unknown option name).
 *
 * Serialization: each class is registered with tfjs under `normclip>ClassName` (e.g.
 * `normclip>MaxNorm`), distinct from tfjs' own `MaxNorm`, so `model.save` / `tf.loadLayersModel`
 * round-trip normclip's classes while tfjs' built-ins keep resolving to tfjs' classes. For
 * Keras-named JSON see `serialize` and `useNativeConstraints` in `./serialization.ts`.
 */
import * as native from './binding'
import { NativeConstraint, type NativeConstraintSpec, type NativeNorms } from './binding'
import { fastApply } from './backends'
import { copyShape, type FloatArray } from './arrays'
import { boundApplier } from './bound'
import {
  AXIS,
  DEFAULT_EPSILON,
  DEFAULT_MODE,
  EPSILON,
  MAX_VALUE,
  MIN_VALUE,
  MODE,
  RATE,
  axisOption,
  describe,
  numberOption,
  readOptions,
  type Axis,
  type Mode,
  type OptionName,
} from './options'
import {
  TfjsConstraintBase,
  checkFloat32,
  dataSyncIsFresh,
  float32Tensor,
  isTensor,
  loadTfjs,
  ownedFloat32DataAsync,
  requireTfjs,
  type ConfigDict,
  type Tensor,
  type TfjsConstraintLike,
  type TfModule,
} from './tfjs'

export type { Axis, Mode } from './options'

/** The package tfjs registers our classes under: class names become `normclip>MaxNorm`, … */
export const REGISTRY_PACKAGE = 'normclip'

/** The keepdims L2 norms of a tensor (`norms`) and their shape. */
export type Norms = NativeNorms

/** Options every norm constraint takes besides its bounds. */
export interface NormOptions {
  /** Axes of the norm (Keras' `axis`): default 0, one norm per column of a Dense kernel. See {@link Axis}. */
  axis?: Axis
  /** `'keras'` (default) or `'projection'`, see {@link Mode}. */
  mode?: Mode
  /** Added to every norm in Keras mode; default 1e-7 (Keras' `backend.epsilon()`). */
  epsilon?: number
}

/**
 * Base class, as Keras' `keras.constraints.Constraint`: on its own the identity. Extend it and
 * override `apply` for a constraint of your own; the typed-array methods then go through tfjs.
 */
export class Constraint extends TfjsConstraintBase implements TfjsConstraintLike {
  /** The name tfjs' serialization registry knows this class by. */
  static readonly className: string = `${REGISTRY_PACKAGE}>Constraint`

  /** The constrained weight, as a new tensor (the identity here, as in Keras). */
  apply(w: Tensor): Tensor {
    checkTensorArgument(w, `${this.kindName()}.apply: w`)
    return w.clone()
  }

  override getConfig(): ConfigDict {
    return {}
  }

  /**
   * tfjs' `Serializable.fromConfig(cls, config)`. tfjs adds a `customObjects` entry to the config
   * it passes; it is not an option of ours, so it is dropped here.
   */
  static fromConfig<T>(cls: new (args: Record<string, unknown>) => T, config: ConfigDict): T {
    const { customObjects: _ignored, ...options } = config
    return new cls(options)
  }

  /** Keras' class name (`MaxNorm`, …), as used in Keras and tfjs JSON. */
  kindName(): string {
    return this.getClassName().replace(`${REGISTRY_PACKAGE}>`, '')
  }

  /** Applies the constraint to `array` (row-major, of `shape`) in place. */
  applyInPlace(array: FloatArray, shape: readonly number[]): void {
    array.set(this.applyCopy(array, shape))
  }

  /** A constrained copy of `array`, of the same type; `array` is left untouched. */
  applyCopy(array: FloatArray, shape: readonly number[]): FloatArray {
    // A generic constraint only has `apply(tensor)`, so the array goes through a float32 tensor.
    const tf = requireTfjs(`${this.kindName()}.applyCopy`)
    checkArrayArgument(array)
    const input = tf.tensor(new Float32Array(array), copyShape(shape, 'shape'), 'float32')
    try {
      const result = this.apply(input)
      const values = result.dataSync() as Float32Array
      const copy = array instanceof Float64Array ? new Float64Array(values) : values.slice()
      if (result !== input) result.dispose()
      return copy
    } finally {
      input.dispose()
    }
  }

  /** `applyInPlace` that returns a Promise (on the libuv pool for the native constraints). */
  async applyInPlaceAsync(array: FloatArray, shape: readonly number[]): Promise<void> {
    this.applyInPlace(array, shape)
  }
}

/**
 * A constraint that runs in normclip's native core: everything but the arguments is shared by
 * MaxNorm, MinMaxNorm, UnitNorm, NonNeg and RadialConstraint.
 */
export abstract class NativeBackedConstraint extends Constraint {
  /** The native constraint doing the work (built and validated once, in the constructor). */
  readonly native: NativeConstraint
  /** In-place application through plans bound per shape: ~0.3 µs per call instead of ~1 µs. */
  private readonly applyBound: (array: FloatArray, shape: readonly number[]) => void

  protected constructor(spec: NativeConstraintSpec, owner: string) {
    super()
    try {
      this.native = NativeConstraint.create(spec)
    } catch (error) {
      throw prefixError(error, owner)
    }
    this.applyBound = boundApplier(this.native)
  }

  /** The constrained weight as a new float32 tensor, on whatever backend `w` lives on. */
  override apply(w: Tensor): Tensor {
    const argument = `${this.kindName()}.apply: w`
    checkTensorArgument(w, argument)
    checkFloat32(w, argument)
    // tfjs-node and wasm: computed on the backend's own memory, the data never leaves it.
    const onBackend = fastApply(w, this.native)
    if (onBackend !== undefined) return onBackend
    const data = w.dataSync() as Float32Array
    if (dataSyncIsFresh(w)) {
      // tfjs-node and wasm handed us a copy: constrain it in place.
      this.applyBound(data, w.shape)
      return float32Tensor(data, w.shape)
    }
    // The backend's own storage (cpu): a fused native copy-and-scale, never a write into it.
    return float32Tensor(this.native.applyCopy(data, w.shape.slice()) as Float32Array, w.shape)
  }

  /** `apply` reading the tensor with `dataAsync`, so GPU backends do not block the thread. */
  async applyAsync(w: Tensor): Promise<Tensor> {
    const argument = `${this.kindName()}.applyAsync: w`
    checkTensorArgument(w, argument)
    const data = await ownedFloat32DataAsync(w, argument)
    await this.native.applyInPlaceAsync(data, w.shape)
    return float32Tensor(data, w.shape)
  }

  override applyInPlace(array: FloatArray, shape: readonly number[]): void {
    this.applyBound(array, shape)
  }

  override applyCopy(array: FloatArray, shape: readonly number[]): FloatArray {
    return this.native.applyCopy(array, copyShape(shape, 'shape'))
  }

  /**
   * Runs on the libuv thread pool. An array over a SharedArrayBuffer is constrained where it
   * is; any other array is copied now and written back when the Promise settles (rejecting with
   * a RangeError, nothing written, if it was detached or resized meanwhile).
   */
  override applyInPlaceAsync(array: FloatArray, shape: readonly number[]): Promise<void> {
    return this.native.applyInPlaceAsync(array, copyShape(shape, 'shape'))
  }

  /** The L2 norms along the constraint's axes, keepdims (`{norms, shape}`). */
  norms(array: FloatArray, shape: readonly number[]): Norms {
    return this.native.norms(array, copyShape(shape, 'shape'))
  }
}

/** Shared by the three norm constraints: axis, mode and epsilon, with getConfig's clean output. */
abstract class AxisNormConstraint extends NativeBackedConstraint {
  readonly axis: Axis
  readonly mode: Mode
  readonly epsilon: number

  protected constructor(
    kind: 'maxNorm' | 'minMaxNorm' | 'unitNorm',
    owner: string,
    options: Record<string, unknown>,
    bounds: { maxValue?: number; minValue?: number; rate?: number },
  ) {
    const axis = axisOption(options, 0)
    const mode = (options['mode'] ?? DEFAULT_MODE) as Mode
    const epsilon = numberOption(options, 'epsilon', DEFAULT_EPSILON)
    super({ kind, ...bounds, axis, mode, epsilon }, owner)
    this.axis = axis
    this.mode = mode
    this.epsilon = epsilon
  }

  /** mode and epsilon appear only when they differ from Keras, so the JSON stays Keras' own. */
  protected extras(): ConfigDict {
    const extras: ConfigDict = {}
    if (this.mode !== DEFAULT_MODE) extras['mode'] = this.mode
    if (this.epsilon !== DEFAULT_EPSILON) extras['epsilon'] = this.epsilon
    return extras
  }

  protected axisConfig(): number | number[] | null {
    return Array.isArray(this.axis) ? [...this.axis] : this.axis
  }
}

const NORM_OPTIONS: readonly OptionName[] = [AXIS, MODE, EPSILON]

/** Arguments of {@link MaxNorm}. */
export interface MaxNormArgs extends NormOptions {
  /** The largest norm a slice may have; default 2. */
  maxValue?: number
  /** Keras' spelling of `maxValue`. */
  max_value?: number
}

/**
 * MaxNorm: caps the norm of each slice along `axis` (default: each column of a Dense kernel,
 * i.e. the incoming weights of each unit) at `maxValue`, as in Srivastava et al. 2014.
 * `w * clip(n, 0, maxValue) / (eps + n)`.
 *
 * ```ts
 * new MaxNorm({ maxValue: 3, axis: 0 })          // Dense kernel [in, units]
 * new MaxNorm({ max_value: 3, axis: [0, 1, 2] }) // Conv2D kernel [kh, kw, in, out]
 * ```
 */
export class MaxNorm extends AxisNormConstraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>MaxNorm`
  readonly maxValue: number

  constructor(args?: MaxNormArgs) {
    const options = readOptions('MaxNorm', args, [MAX_VALUE, ...NORM_OPTIONS])
    const maxValue = numberOption(options, 'maxValue', native.MAX_NORM_MAX_VALUE)
    super('maxNorm', 'MaxNorm', options, { maxValue })
    this.maxValue = maxValue
  }

  override getConfig(): ConfigDict {
    return { maxValue: this.maxValue, axis: this.axisConfig(), ...this.extras() }
  }
}

/** Arguments of {@link MinMaxNorm}. */
export interface MinMaxNormArgs extends NormOptions {
  /** The smallest norm a slice may have; default 0. */
  minValue?: number
  min_value?: number
  /** The largest norm a slice may have; default 1. */
  maxValue?: number
  max_value?: number
  /** How far each application moves the norm into [minValue, maxValue], in [0, 1]; default 1 (all the way). */
  rate?: number
}

/**
 * MinMaxNorm: keeps the norm of each slice along `axis` within [minValue, maxValue], moving it
 * `rate` of the way there each time.
 * `w * (rate * clip(n, minValue, maxValue) + (1 - rate) * n) / (eps + n)`.
 *
 * ```ts
 * new MinMaxNorm({ minValue: 0.5, maxValue: 2, rate: 0.5, axis: 0 })
 * ```
 */
export class MinMaxNorm extends AxisNormConstraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>MinMaxNorm`
  readonly minValue: number
  readonly maxValue: number
  readonly rate: number

  constructor(args?: MinMaxNormArgs) {
    const options = readOptions('MinMaxNorm', args, [MIN_VALUE, MAX_VALUE, RATE, ...NORM_OPTIONS])
    const minValue = numberOption(options, 'minValue', native.MIN_MAX_NORM_MIN_VALUE)
    const maxValue = numberOption(options, 'maxValue', native.MIN_MAX_NORM_MAX_VALUE)
    const rate = numberOption(options, 'rate', native.MIN_MAX_NORM_RATE)
    super('minMaxNorm', 'MinMaxNorm', options, { minValue, maxValue, rate })
    this.minValue = minValue
    this.maxValue = maxValue
    this.rate = rate
  }

  override getConfig(): ConfigDict {
    return {
      minValue: this.minValue,
      maxValue: this.maxValue,
      rate: this.rate,
      axis: this.axisConfig(),
      ...this.extras(),
    }
  }
}

/** Arguments of {@link UnitNorm}. */
export type UnitNormArgs = NormOptions

/**
 * UnitNorm: scales each slice along `axis` to norm 1. `w / (eps + n)`; a zero slice stays zero.
 *
 * ```ts
 * new UnitNorm({ axis: 0 })
 * ```
 */
export class UnitNorm extends AxisNormConstraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>UnitNorm`

  constructor(args?: UnitNormArgs) {
    const options = readOptions('UnitNorm', args, NORM_OPTIONS)
    super('unitNorm', 'UnitNorm', options, {})
  }

  override getConfig(): ConfigDict {
    return { axis: this.axisConfig(), ...this.extras() }
  }
}

/**
 * NonNeg: sets negative weights to zero, `maximum(w, 0)`. No arguments.
 *
 * ```ts
 * new NonNeg()
 * ```
 */
export class NonNeg extends NativeBackedConstraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>NonNeg`

  constructor(args?: Record<string, never>) {
    readOptions('NonNeg', args, [])
    super({ kind: 'nonNeg' }, 'NonNeg')
  }
}

/**
 * RadialConstraint (Keras 2 / tf-keras only): makes each [height, width] filter of a square
 * rank-4 Conv2D kernel radially symmetric, as tf-keras' code does it. No arguments.
 *
 * ```ts
 * new RadialConstraint() // kernel [k, k, in, out]
 * ```
 */
export class RadialConstraint extends NativeBackedConstraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>RadialConstraint`

  constructor(args?: Record<string, never>) {
    readOptions('RadialConstraint', args, [])
    super({ kind: 'radialConstraint' }, 'RadialConstraint')
  }
}

/**
 * A plain function `(w) => tensor` used as a constraint, as Keras' `get` accepts a callable.
 * It cannot be serialized.
 */
export class FunctionConstraint extends Constraint {
  static override readonly className: string = `${REGISTRY_PACKAGE}>FunctionConstraint`

  constructor(readonly fn: (w: Tensor) => Tensor) {
    super()
    if (typeof fn !== 'function') throw new TypeError(`FunctionConstraint: fn: expected a function, got ${describe(fn)}`)
  }

  override apply(w: Tensor): Tensor {
    return this.fn(w)
  }

  override getConfig(): ConfigDict {
    throw new TypeError(
      `FunctionConstraint: a plain function (${this.fn.name || 'anonymous'}) cannot be serialized; ` +
        'use a class registered with tf.serialization.registerClass instead',
    )
  }
}

/** `new MaxNorm(args)`; unlike tfjs' `tf.constraints.maxNorm`, also takes no argument. */
export function maxNorm(args?: MaxNormArgs): MaxNorm {
  return new MaxNorm(args)
}

/** `new MinMaxNorm(args)`; also takes no argument. */
export function minMaxNorm(args?: MinMaxNormArgs): MinMaxNorm {
  return new MinMaxNorm(args)
}

/** `new UnitNorm(args)`; also takes no argument. */
export function unitNorm(args?: UnitNormArgs): UnitNorm {
  return new UnitNorm(args)
}

/** `new NonNeg()`. */
export function nonNeg(): NonNeg {
  return new NonNeg()
}

/** `new RadialConstraint()`. */
export function radialConstraint(): RadialConstraint {
  return new RadialConstraint()
}

/** normclip's serializable classes, by Keras class name. */
export const CONSTRAINT_CLASSES = {
  Constraint,
  MaxNorm,
  MinMaxNorm,
  UnitNorm,
  NonNeg,
  RadialConstraint,
} as const

export type ConstraintClassName = keyof typeof CONSTRAINT_CLASSES

/** Registers normclip's classes with tfjs' serialization (`normclip>MaxNorm`, …); see `setup.ts`. */
export function registerWithTfjs(tf: TfModule): void {
  for (const [name, cls] of Object.entries(CONSTRAINT_CLASSES)) {
    tf.serialization.registerClass(cls as never, REGISTRY_PACKAGE, name)
  }
}

// ---------------------------------------------------------------------------------------------
// The native form of any constraint the core can run

type TfjsBuiltInKind = 'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg'

/**
 * tfjs' own constraint classes, found through tfjs' factories (not its registry, which
 * `useNativeConstraints` may have pointed at our classes).
 */
function tfjsBuiltIns(): Map<unknown, TfjsBuiltInKind> {
  const builtIns = new Map<unknown, TfjsBuiltInKind>()
  const tf = loadTfjs()
  if (tf === null) return builtIns
  builtIns.set(tf.constraints.maxNorm({}).constructor, 'maxNorm')
  builtIns.set(tf.constraints.minMaxNorm({}).constructor, 'minMaxNorm')
  builtIns.set(tf.constraints.unitNorm({}).constructor, 'unitNorm')
  builtIns.set(tf.constraints.nonNeg().constructor, 'nonNeg')
  return builtIns
}
let builtIns: Map<unknown, TfjsBuiltInKind> | undefined

/** The kind of a tfjs built-in constraint instance, undefined for anything else. */
export function tfjsBuiltInKind(c: unknown): TfjsBuiltInKind | undefined {
  if (c === null || typeof c !== 'object') return undefined
  builtIns ??= tfjsBuiltIns()
  return builtIns.get(c.constructor)
}

const nativeOfTfjsBuiltIn = new WeakMap<object, NativeConstraint>()

/**
 * The {@link NativeConstraint} that computes what `c` computes, or undefined when the core
 * cannot run it (a user-defined constraint, a plain function):
 * - a `NativeConstraint`: itself;
 * - a normclip constraint: its `native`;
 * - tfjs' own `MaxNorm`, `MinMaxNorm`, `UnitNorm`, `NonNeg`: an equivalent one, built from their
 *   `getConfig()` with tfjs' backend epsilon, once per instance. Throws if the core rejects its
 *   configuration (tfjs accepts e.g. a negative `maxValue`).
 */
export function nativeConstraintOf(c: unknown): NativeConstraint | undefined {
  if (c instanceof NativeConstraint) return c
  if (c instanceof NativeBackedConstraint) return c.native
  const kind = tfjsBuiltInKind(c)
  if (kind === undefined) return undefined
  const builtIn = c as TfjsConstraintLike
  let cached = nativeOfTfjsBuiltIn.get(builtIn)
  if (cached === undefined) {
    const config = kind === 'nonNeg' ? {} : builtIn.getConfig()
    // tfjs-layers uses the backend's epsilon (1e-7 on cpu, wasm, tfjs-node; 1e-4 on WebGL without float32).
    const epsilon = requireTfjs('a tfjs constraint').backend().epsilon()
    const spec = kind === 'nonNeg' ? { kind } : { kind, ...(config as object), epsilon }
    try {
      cached = NativeConstraint.create(spec)
    } catch (error) {
      throw prefixError(error, `tfjs ${builtIn.getClassName()} ${JSON.stringify(config)}`)
    }
    nativeOfTfjsBuiltIn.set(builtIn, cached)
  }
  return cached
}

// ---------------------------------------------------------------------------------------------
// Argument checks

function checkTensorArgument(w: unknown, argument: string): asserts w is Tensor {
  if (!isTensor(w)) throw new TypeError(`${argument}: expected a tf.Tensor, got ${describe(w)}`)
}

function checkArrayArgument(array: unknown): void {
  if (!(array instanceof Float32Array || array instanceof Float64Array)) {
    throw new TypeError(`array: expected a Float32Array or Float64Array, got ${describe(array)}`)
  }
}

/** The same kind of error with `owner: ` in front, so the message says which constraint complained. */
function prefixError(error: unknown, owner: string): unknown {
  if (!(error instanceof Error)) return error
  const Kind = error instanceof RangeError ? RangeError : error instanceof TypeError ? TypeError : Error
  return new Kind(`${owner}: ${error.message}`)
}
