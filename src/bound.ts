// The per-call fast path: a constraint planned once per shape, applied through the raw N-API
// `applyBound`. This is what repeated calls (a weight after every training step) go through.
import { type FloatArray, shapeKey } from './arrays'
import * as native from './binding'

/**
 * What `constrain` is built from: `{ kind, maxValue?, minValue?, rate?, axis?, mode?, epsilon? }`,
 * camelCase, Keras' defaults for what is left out; keys a kind does not take are a TypeError.
 */
export type ConstraintSpec = native.NativeConstraintSpec

/** Shapes bound per constraint before the oldest binding is dropped (a model has a few dozen). */
const MAX_BOUND_SHAPES = 256

/**
 * Builds a constraint once (throwing a TypeError or RangeError for a bad spec or an unknown key)
 * and returns a function that applies it in place to `array`, a row-major tensor of `shape`.
 * The spec is read once, here: changing the object later changes nothing. The plan for each
 * shape is made on its first call and reused, so a call costs well under a microsecond plus the
 * work: the path for applying a constraint after every training step.
 *
 * ```ts
 * const clip = constrain({ kind: 'maxNorm', maxValue: 3 })   // axis 0: one norm per unit
 * clip(kernel, [784, 512])
 * ```
 */
export function constrain(spec: ConstraintSpec): (array: FloatArray, shape: readonly number[]) => void {
  return boundApplier(native.NativeConstraint.create(spec))
}

/** `constrain` for a constraint already built. */
export function boundApplier(constraint: native.NativeConstraint): (array: FloatArray, shape: readonly number[]) => void {
  const bound = new Map<string, native.BoundHandle>()
  // The last call's dims and plan: a weight is applied with the same shape call after call, and
  // comparing the dims costs less than building the key (a string per call, the one allocation
  // of a small call).
  let lastDims: readonly number[] = []
  let lastHandle: native.BoundHandle | undefined
  return (array, shape) => {
    let handle = lastHandle !== undefined && sameDims(shape, lastDims) ? lastHandle : undefined
    if (handle === undefined) {
      // One read of the shape: the key and the plan both come from that one read, so a getter
      // that answers differently on each read cannot pair a plan with another shape (the
      // comparison above read it too, but kept nothing: a plan is used only for the dims one
      // whole read gave).
      const key = shapeKey(shape, 'shape')
      const dims = key === '' ? [] : key.split(',').map(Number)
      handle = bound.get(key)
      if (handle === undefined) {
        handle = constraint.bind(dims)
        if (bound.size >= MAX_BOUND_SHAPES) bound.delete(bound.keys().next().value as string)
        bound.set(key, handle)
      }
      lastDims = dims
      lastHandle = handle
    }
    native.applyBound(handle, array)
  }
}

/** Whether `shape` is an array of exactly `dims`, each element read once. */
function sameDims(shape: unknown, dims: readonly number[]): boolean {
  if (!Array.isArray(shape) || shape.length !== dims.length) return false
  for (let i = 0; i < dims.length; i++) {
    if (shape[i] !== dims[i]) return false
  }
  return true
}
