/**
 * Norm clipping of gradients and updates, with the formulas of TensorFlow, Keras, PyTorch,
 * Opacus / Optax / TF Privacy (per-example, DP-SGD) and federated learning, over typed arrays and
 * tfjs tensors of any backend. Each call crosses into the native core once for its whole list:
 * one read of every element for the norms, one read+write for the scale.
 *
 * Typed arrays (Float32Array / Float64Array) are clipped in place and returned; tensors are
 * immutable, so a tensor comes back as a new float32 tensor the caller owns; a `tf.Variable`
 * passed to the in-place (PyTorch-style) functions is assigned its clipped value.
 *
 * ```ts
 * import { clipByGlobalNorm, clipGradNorm, clipPerExample } from 'normclip'
 * const [clipped, norm] = clipByGlobalNorm(grads, 1.0)        // TF: grads · c / max(N, c)
 * const total = clipGradNorm([g1, g2], 1.0)                    // PyTorch clip_grad_norm_, in place
 * const { sums, clipped: n } = clipPerExample([perExampleGrad], 1.0, { style: 'opacus' })
 * ```
 */
import * as native from './binding'
import type { FloatArray } from './arrays'
import { describe } from './options'
import { assignFloat32, float32Tensor, isTensor, isVariable, ownedFloat32Data, type Tensor, type Variable } from './tfjs'

/** A clippable value: a typed array, or a tfjs tensor (a `tf.Variable` is one too). */
export type Clippable = FloatArray | Tensor

/** A typed array with its shape (for the functions that need one: axes, a batch axis). */
export interface ShapedArray {
  array: FloatArray
  shape: readonly number[]
}

/** How each input goes to the core and comes back. */
interface Staged {
  array: FloatArray
  shape: number[]
  /** The value handed back: the array itself, a new tensor, or the assigned variable. */
  finish: () => Clippable
}

function isFloatArray(value: unknown): value is FloatArray {
  return value instanceof Float32Array || value instanceof Float64Array
}

/** Reads one input into the buffer the core works on (the user's array itself, or a copy we own). */
function stage(value: unknown, argument: string, tensors: 'copy' | 'assign' | 'reject'): Staged {
  if (isFloatArray(value)) {
    return { array: value, shape: [value.length], finish: () => value }
  }
  if (isTensor(value)) {
    if (tensors === 'reject' || (tensors === 'assign' && !isVariable(value))) {
      throw new TypeError(
        `${argument}: expected a Float32Array, Float64Array or tf.Variable (clipped in place), got a tf.Tensor ` +
          '(tensors are immutable: use clipByGlobalNorm, which returns new tensors)',
      )
    }
    const data = ownedFloat32Data(value, argument)
    const shape = [...value.shape]
    if (tensors === 'assign') {
      return { array: data, shape, finish: () => assignFloat32(value as Variable, data, shape) }
    }
    return { array: data, shape, finish: () => float32Tensor(data, shape) }
  }
  throw new TypeError(`${argument}: expected a Float32Array, Float64Array or tf.Tensor, got ${describe(value)}`)
}

function stageList(values: unknown, argument: string, tensors: 'copy' | 'assign' | 'reject'): Staged[] {
  if (!Array.isArray(values)) {
    throw new TypeError(`${argument}: expected an array of Float32Array / Float64Array / tf.Tensor, got ${describe(values)}`)
  }
  return values.map((value, index) => stage(value, `${argument}[${index}]`, tensors))
}

function checkNumber(value: unknown, argument: string): number {
  if (typeof value !== 'number') throw new TypeError(`${argument}: expected a number, got ${describe(value)}`)
  return value
}

function checkOptions(options: unknown, allowed: readonly string[], argument = 'options'): Record<string, unknown> {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${argument}: expected an object, got ${describe(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new RangeError(`${argument}.${key}: unknown option (expected one of ${allowed.join(', ')})`)
    }
  }
  return options as Record<string, unknown>
}

/**
 * TF's `tf.clip_by_norm(x, clipNorm, axes)`: `x · c / max(‖x‖, c)` with the norm over `axes`
 * (normclip's `axis` forms: an integer, a list, `null` for all — the default). A typed array needs
 * its `shape` when `axes` is not `null` (default `[length]`). A zero slice stays zero, NaN stays
 * NaN. `clipNorm` must be a finite number ≥ 0 (TF clamps a negative one to 0, which zeroes `x`).
 *
 * @returns The array itself (clipped in place) or, for a tensor, a new tensor.
 */
export function clipByNorm<T extends Clippable>(x: T, clipNorm: number, axes: number | readonly number[] | null = null, shape?: readonly number[]): T {
  const staged = stage(x, 'x', 'copy')
  checkNumber(clipNorm, 'clipNorm')
  const axisList = axes === null ? null : typeof axes === 'number' ? [axes] : Array.isArray(axes) ? [...axes] : undefined
  if (axisList === undefined) throw new TypeError(`axes: expected an integer, an array of integers or null, got ${describe(axes)}`)
  const useShape = shape !== undefined ? [...shape] : staged.shape
  native.clipByNorm(staged.array, useShape, axisList, clipNorm)
  return staged.finish() as T
}

/** TF's `tf.linalg.global_norm`: the L2 norm of every element of every input, in float64. */
export function globalNorm(xs: readonly Clippable[]): number {
  const staged = stageList(xs, 'xs', 'copy')
  return Math.sqrt(
    native
      .clipTensorNorms(
        staged.map((s) => s.array),
        2,
      )
      .reduce((sum, n) => sum + n * n, 0),
  )
}

/**
 * TF's `tf.clip_by_global_norm(xs, clipNorm, useNorm)`: every input times
 * `c · min(1/N, 1/c) + (N − N)` (computed in float32 for float32 data, as TF). N = 0 leaves the
 * inputs as they are (scale `c · (1/c)`); a NaN or infinite N makes every output NaN, as TF
 * documents. Where TF's float32 sum overflows (|x| > 1.8e19) normclip computes the true norm.
 *
 * @returns `[clipped, N]`: the arrays themselves (in place) or new tensors, and the global norm.
 */
export function clipByGlobalNorm<T extends Clippable>(xs: readonly T[], clipNorm: number, useNorm?: number): [T[], number] {
  const staged = stageList(xs, 'xs', 'copy')
  checkNumber(clipNorm, 'clipNorm')
  if (useNorm !== undefined) checkNumber(useNorm, 'useNorm')
  const norm = native.clipByGlobalNorm(
    staged.map((s) => s.array),
    clipNorm,
    useNorm ?? null,
  )
  return [staged.map((s) => s.finish() as T), norm]
}

/** PyTorch's `norm_type`. */
export type NormType = 1 | 2 | typeof Infinity

/** Options of {@link clipGradNorm} and {@link getTotalNorm}. */
export interface ClipGradNormOptions {
  /** 1, 2 (default) or `Infinity`. */
  normType?: NormType
  /** Throw (before anything is written) when the total norm is NaN or infinite. Default false. */
  errorIfNonfinite?: boolean
}

function gradNormOptions(options: unknown): { normType: number; errorIfNonfinite: boolean } {
  const o = checkOptions(options, ['normType', 'errorIfNonfinite'])
  const normType = o.normType === undefined ? 2 : checkNumber(o.normType, 'options.normType')
  if (o.errorIfNonfinite !== undefined && typeof o.errorIfNonfinite !== 'boolean') {
    throw new TypeError(`options.errorIfNonfinite: expected a boolean, got ${describe(o.errorIfNonfinite)}`)
  }
  return { normType, errorIfNonfinite: o.errorIfNonfinite === true }
}

/**
 * PyTorch's `get_total_norm`: the p-norm of the per-tensor p-norms (∞: the largest |x|).
 */
export function getTotalNorm(grads: readonly Clippable[], normType: NormType = 2, errorIfNonfinite = false): number {
  const staged = stageList(grads, 'grads', 'copy')
  const o = gradNormOptions({ normType, errorIfNonfinite })
  return native.clipTotalNorm(
    staged.map((s) => s.array),
    o.normType,
    o.errorIfNonfinite,
  )
}

/**
 * PyTorch's `clip_grads_with_norm_`: every gradient times `min(1, maxNorm / (totalNorm + 1e-6))`,
 * in place (typed arrays; a `tf.Variable` is assigned).
 */
export function clipGradsWithNorm(grads: readonly (FloatArray | Variable)[], maxNorm: number, totalNorm: number): void {
  const staged = stageList(grads, 'grads', 'assign')
  native.clipGradsWithNorm(
    staged.map((s) => s.array),
    checkNumber(maxNorm, 'maxNorm'),
    checkNumber(totalNorm, 'totalNorm'),
  )
  staged.forEach((s) => s.finish())
}

/**
 * PyTorch's `clip_grad_norm_(grads, maxNorm, normType, errorIfNonfinite)`, in place: the total
 * norm over all gradients, then every gradient times `min(1, maxNorm / (total + 1e-6))` (always
 * applied, as PyTorch: no branch on whether the norm exceeds the bound). Typed arrays are
 * written in place, `tf.Variable`s assigned.
 *
 * @returns The total norm before clipping.
 */
export function clipGradNorm(grads: readonly (FloatArray | Variable)[], maxNorm: number, options?: ClipGradNormOptions): number {
  const o = gradNormOptions(options)
  const staged = stageList(grads, 'grads', 'assign')
  const total = native.clipGradNorm(
    staged.map((s) => s.array),
    checkNumber(maxNorm, 'maxNorm'),
    o.normType,
    o.errorIfNonfinite,
  )
  staged.forEach((s) => s.finish())
  return total
}

/** Whose per-example factor {@link clipPerExample} uses. */
export type PerExampleStyle = 'opacus' | 'optax' | 'tfPrivacy'

/** Options of {@link clipPerExample}. */
export interface ClipPerExampleOptions {
  /**
   * `'opacus'` (default): `min(1, C / (n + 1e-6))`; `'optax'`: `nan_to_num(min(C / n, 1), nan=1)`;
   * `'tfPrivacy'`: `tf.clip_by_global_norm` per example (a NaN or infinite norm gives NaN).
   */
  style?: PerExampleStyle
  /**
   * Clip each tensor of each example to its own bound (Opacus' per-layer mode, Optax'
   * `per_example_layer_norm_clip`). `clipNorm` is then one bound per tensor, or one number split
   * as Optax' uniform rule `C / √L` over the L tensors.
   */
  perLayer?: boolean
}

/** What {@link clipPerExample} returns. */
export interface PerExampleResult<T> {
  /** Per input: the sum over the batch of the clipped examples (shape = one example's shape). */
  sums: T[]
  /** How many examples had a factor below 1 (per tensor with `perLayer`). */
  clipped: number | number[]
}

/**
 * Per-example clipping for DP-SGD: every input has a leading batch axis `[B, …]`; example i's norm
 * is the L2 norm over all of its elements in every input (flat clipping), or per input
 * (`perLayer`); each example is scaled by its style's factor and the scaled examples are summed
 * (in float64, rounded once) — the clipped sum a DP optimizer adds noise to. Inputs are read
 * only. Mismatched batch sizes, a bad bound or unknown options throw before anything is computed.
 */
export function clipPerExample<T extends Tensor | ShapedArray>(
  grads: readonly T[],
  clipNorm: number | readonly number[],
  options?: ClipPerExampleOptions,
): PerExampleResult<T extends Tensor ? Tensor : FloatArray> {
  const o = checkOptions(options, ['style', 'perLayer'])
  const style = o.style === undefined ? 'opacus' : o.style
  if (style !== 'opacus' && style !== 'optax' && style !== 'tfPrivacy') {
    throw new RangeError(`options.style: expected 'opacus', 'optax' or 'tfPrivacy', got ${describe(style)}`)
  }
  if (o.perLayer !== undefined && typeof o.perLayer !== 'boolean') {
    throw new TypeError(`options.perLayer: expected a boolean, got ${describe(o.perLayer)}`)
  }
  const perLayer = o.perLayer === true
  if (!Array.isArray(grads)) throw new TypeError(`grads: expected an array of tensors or {array, shape}, got ${describe(grads)}`)
  const inputs = grads.map((g, index) => {
    const argument = `grads[${index}]`
    if (isTensor(g)) {
      const s = stage(g, argument, 'copy')
      return { array: s.array, shape: s.shape, tensor: true }
    }
    const shaped = g as unknown as ShapedArray
    if (shaped === null || typeof shaped !== 'object' || !isFloatArray(shaped.array) || !Array.isArray(shaped.shape)) {
      throw new TypeError(`${argument}: expected a tf.Tensor or {array, shape}, got ${describe(g)}`)
    }
    return { array: shaped.array, shape: [...shaped.shape], tensor: false }
  })
  if (inputs.length === 0) return { sums: [], clipped: perLayer ? [] : 0 }
  const batch = inputs[0]!.shape[0]
  inputs.forEach((input, index) => {
    if (input.shape.length === 0) throw new RangeError(`grads[${index}]: expected a leading batch axis, got a scalar`)
    if (input.shape[0] !== batch) {
      throw new RangeError(`grads[${index}]: expected batch size ${batch} (that of grads[0]), got ${input.shape[0]}`)
    }
  })
  let bounds: number[]
  if (typeof clipNorm === 'number') {
    bounds = perLayer ? inputs.map(() => clipNorm * Math.sqrt(1 / inputs.length)) : [clipNorm]
  } else if (Array.isArray(clipNorm) && perLayer) {
    bounds = clipNorm.map((c, i) => checkNumber(c, `clipNorm[${i}]`))
  } else {
    throw new TypeError(`clipNorm: expected a number${perLayer ? ' or one number per tensor' : ''}, got ${describe(clipNorm)}`)
  }
  const outs = inputs.map((input) => {
    const per = input.shape.slice(1).reduce((a, b) => a * b, 1)
    return input.array instanceof Float64Array ? new Float64Array(per) : new Float32Array(per)
  })
  const counts = native.clipPerExample(
    inputs.map((i) => i.array),
    batch ?? 0,
    bounds,
    perLayer,
    style,
    outs,
  )
  const sums = inputs.map((input, index) => (input.tensor ? float32Tensor(outs[index] as Float32Array, input.shape.slice(1)) : outs[index]!))
  return { sums: sums as (T extends Tensor ? Tensor : FloatArray)[], clipped: perLayer ? counts : counts[0]! }
}

/** What {@link clipUpdate} returns. */
export interface UpdateClipResult<T> {
  /** The update: the arrays themselves (in place) or new tensors. */
  deltas: T[]
  /** Its L2 norm over all tensors, before clipping. */
  norm: number
  /** Whether it was scaled (norm > clipNorm). */
  clipped: boolean
}

/**
 * Federated update clipping (Flower's `min(1, C / ‖Δ‖)`, TFF's clipping factory): the update is
 * scaled by `C / ‖Δ‖` when its norm over all tensors exceeds `clipNorm`. A zero update is left as
 * it is (Flower divides by zero there); a NaN norm is not clipped (TFF); an infinite one scales
 * by 0.
 */
export function clipUpdate<T extends Clippable>(deltas: readonly T[], clipNorm: number): UpdateClipResult<T> {
  const staged = stageList(deltas, 'deltas', 'copy')
  const [norm, clipped] = native.clipUpdate(
    staged.map((s) => s.array),
    checkNumber(clipNorm, 'clipNorm'),
  )
  return { deltas: staged.map((s) => s.finish() as T), norm: norm!, clipped: clipped === 1 }
}

/** Keras' `clipvalue` on typed arrays (in place) or tensors (new tensors): `clip(x, −v, v)`, NaN kept. */
export function clipByValue<T extends Clippable>(xs: readonly T[], clipValue: number): T[] {
  const staged = stageList(xs, 'xs', 'copy')
  native.clipByValue(
    staged.map((s) => s.array),
    checkNumber(clipValue, 'clipValue'),
  )
  return staged.map((s) => s.finish() as T)
}
