/**
 * The constraint of each weight in a file: declared by its layer config or given by the user,
 * turned into normclip's classes by `deserialize` (which owns every Keras and tfjs identifier),
 * and from there into the native job's resolved parameters. Also: the axes norms are reported
 * along, the bound check, and the axis advice of `checkConstraintAxes`.
 */
import type { NativeAxes, NativeFileConstraint } from '../binding'
import { checkConstraintAxes, perUnitAxes, type LayerLike } from '../per-unit-axes'
import { MaxNorm, MinMaxNorm, NonNeg, RadialConstraint, UnitNorm, type Axis } from '../constraints'
import { DEFAULT_EPSILON, DEFAULT_MODE } from '../options'
import { deserialize, serialize, type ConstraintIdentifier } from '../serialization'
import { weightKey } from './keras-config'
import type { StoredWeight } from './model'

export type FileConstraint = MaxNorm | MinMaxNorm | UnitNorm | NonNeg | RadialConstraint

/** A constraint identifier turned into one of normclip's classes; a string describing why not otherwise. */
export function resolveConstraint(identifier: unknown): FileConstraint | string {
  let c: unknown
  try {
    c = deserialize(identifier as ConstraintIdentifier)
  } catch (error) {
    return (error as Error).message
  }
  if (c instanceof MaxNorm || c instanceof MinMaxNorm || c instanceof UnitNorm || c instanceof NonNeg || c instanceof RadialConstraint) {
    return c
  }
  return `not a constraint normclip can apply to a file: ${JSON.stringify(identifier)}`
}

/** Keras' class name and config (`{class_name, config}`) of a constraint, for reports. */
export function describeConstraint(c: FileConstraint): { className: string; config: Record<string, unknown> } {
  const dict = serialize(c, { format: 'keras2' })
  return { className: dict.class_name, config: dict.config }
}

export function isNormConstraint(c: FileConstraint | undefined): c is MaxNorm | MinMaxNorm | UnitNorm {
  return c instanceof MaxNorm || c instanceof MinMaxNorm || c instanceof UnitNorm
}

/** Axes in storage order: NumPy Fortran-order bytes are the C-order tensor of the reversed shape. */
export function nativeAxes(axis: Axis, rank: number, fortranOrder: boolean): NativeAxes {
  if (axis === null) return { all: true, list: [] }
  const list = Array.isArray(axis) ? axis : [axis]
  if (!fortranOrder) return { all: false, list: [...list] }
  return { all: false, list: list.map((a) => rank - 1 - (a < 0 ? a + rank : a)) }
}

/** The resolved parameters the native job takes. */
export function toNative(c: FileConstraint, rank: number, fortranOrder: boolean): NativeFileConstraint {
  const base = { maxValue: 0, minValue: 0, rate: 1, mode: DEFAULT_MODE, epsilon: DEFAULT_EPSILON, axes: { all: false, list: [] } as NativeAxes }
  if (c instanceof NonNeg) return { ...base, kind: 'nonNeg' }
  if (c instanceof RadialConstraint) return { ...base, kind: 'radialConstraint' }
  const common = { ...base, axes: nativeAxes(c.axis, rank, fortranOrder), mode: c.mode, epsilon: c.epsilon }
  if (c instanceof MaxNorm) return { ...common, kind: 'maxNorm', maxValue: c.maxValue }
  if (c instanceof MinMaxNorm) return { ...common, kind: 'minMaxNorm', minValue: c.minValue, maxValue: c.maxValue, rate: c.rate }
  return { ...common, kind: 'unitNorm', maxValue: 1, minValue: 1 }
}

/**
 * The axes norms are reported along: the constraint's for a norm constraint, else one norm per
 * output unit of the layer (`perUnitAxes`), else — no layer known — every axis but the last
 * (Keras' layout: output units last) for rank ≥ 2 and one norm for vectors and scalars.
 */
export function reportAxis(w: StoredWeight, c: FileConstraint | undefined, override?: Axis): Axis {
  if (isNormConstraint(c)) return c.axis
  if (override !== undefined) return override
  if (w.layer !== undefined) {
    try {
      return perUnitAxes(w.layer.className, w.shape, weightKey(w.name))
    } catch {
      // not a kernel of a known layer: the defaults below
    }
  }
  if (w.shape.length >= 2) return Array.from({ length: w.shape.length - 1 }, (_, i) => i)
  return null
}

/**
 * How far a norm may pass its bound before it counts as a violation: the rounding of the stored
 * type (an element of bfloat16 carries 8 significant bits), so a freshly constrained weight
 * passes its own check.
 */
export function tolerance(dtype: string): number {
  switch (dtype) {
    case 'float64':
      return 1e-12
    case 'float32':
      return 1e-6
    case 'float16':
      return 1e-3
    default:
      return 4e-3 // bfloat16, quantized
  }
}

/**
 * How many norms lie outside the constraint's bounds, beyond `tol` (relative) and the
 * constraint's epsilon (absolute): Keras' formula divides by `eps + n`, so a unit it moves onto a
 * bound ends up to `eps` short of it.
 */
export function countViolations(c: FileConstraint | undefined, norms: ArrayLike<number>, tol: number): number {
  if (!isNormConstraint(c)) return 0
  const [min, max] = c instanceof MaxNorm ? [0, c.maxValue] : c instanceof MinMaxNorm ? [c.minValue, c.maxValue] : [1, 1]
  const slack = c.mode === 'keras' ? c.epsilon : 0
  let count = 0
  for (let i = 0; i < norms.length; i++) {
    const n = norms[i]!
    if (!(n <= max * (1 + tol) + slack) || n < min * (1 - tol) - slack) count++
  }
  return count
}

/** `checkConstraintAxes`' finding for each constrained weight, by weight name. */
export function axisAdvice(weights: readonly { stored: StoredWeight; constraint?: FileConstraint }[]): Map<string, string> {
  const layers = new Map<string, LayerLike & { weights: { name: string; shape: number[]; constraint: unknown }[] }>()
  for (const { stored, constraint } of weights) {
    if (constraint === undefined) continue
    const key = stored.layer?.name ?? stored.name
    let layer = layers.get(key)
    if (layer === undefined) {
      const className = stored.layer?.className ?? 'unknown'
      layer = { name: stored.layer?.name ?? '', getClassName: () => className, weights: [] }
      layers.set(key, layer)
    }
    layer.weights.push({ name: stored.name, shape: stored.shape, constraint })
  }
  const model: LayerLike & { layers: LayerLike[] } = { name: 'model', getClassName: () => 'Model', layers: [...layers.values()] }
  return new Map(checkConstraintAxes(model).map((issue) => [issue.weight, issue.message]))
}
