// The per-call fast path: a constraint planned once per shape, applied through a raw N-API
// function. This is what repeated calls (a weight after every training step) should go through.
import * as native from './native/index.js'
import { describe } from './options'

/** A typed array the core accepts. */
export type FloatArray = Float32Array | Float64Array

/** An opaque native constraint bound to one shape (see `constrain`). */
export type BoundConstraint = native.ExternalObject<'NativeBoundConstraint'>

/**
 * `applyBound` is a raw N-API function (the per-call glue of `#[napi]` cost more than a small
 * tensor's arithmetic), so the generated `.d.ts` does not declare it: it is typed here.
 */
const applyBound = (native as unknown as { applyBound(bound: BoundConstraint, array: FloatArray): void }).applyBound

/** Shapes bound per constraint before the oldest binding is dropped (a model has a few dozen). */
const MAX_BOUND_SHAPES = 256

/**
 * Builds a constraint once (throwing a TypeError or RangeError for a bad spec or an unknown key)
 * and returns a function that applies it in place to `array`, a row-major tensor of `shape`.
 * The spec is read once, here: changing the object later changes nothing. The plan for each
 * shape is made on its first call and reused, so a call costs well under a microsecond plus the
 * work: the path for applying a constraint after every training step.
 */
export function constrain(spec: native.NativeConstraintSpec): (array: FloatArray, shape: readonly number[]) => void {
  return boundApplier(native.NativeConstraint.create(spec))
}

/** `constrain` for a constraint already built. */
export function boundApplier(constraint: native.NativeConstraint): (array: FloatArray, shape: readonly number[]) => void {
  const bound = new Map<string, BoundConstraint>()
  return (array, shape) => {
    // One read of the shape: the key and the plan both come from this copy, so a getter that
    // answers differently on each read cannot pair a plan with another shape.
    const dims = copyShape(shape, 'shape')
    const key = dims.join(',')
    let handle = bound.get(key)
    if (handle === undefined) {
      handle = constraint.bind(dims)
      if (bound.size >= MAX_BOUND_SHAPES) bound.delete(bound.keys().next().value as string)
      bound.set(key, handle)
    }
    applyBound(handle, array)
  }
}

/**
 * A shape, copied: an Array (no other iterable) whose elements are read once each and must be
 * numbers (the native side checks they are non-negative integers). Every wrapper passes the
 * copy on, never the caller's array.
 */
export function copyShape(shape: unknown, argument: string): number[] {
  if (!Array.isArray(shape)) {
    throw new TypeError(`${argument}: expected an array of non-negative integers, got ${describe(shape)}`)
  }
  const rank = shape.length
  const dims = new Array<number>(rank)
  for (let i = 0; i < rank; i++) {
    const dim: unknown = shape[i]
    if (typeof dim !== 'number') {
      throw new TypeError(`${argument}: expected non-negative integers, got ${describe(dim)} at index ${i}`)
    }
    dims[i] = dim
  }
  return dims
}

export { applyBound }
