// The per-call fast path: a constraint planned once per shape, applied through a raw N-API
// function. This is what repeated calls (a weight after every training step) should go through.
import * as native from './native/index.js'

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
 * Builds a constraint once (throwing a TypeError or RangeError for a bad spec) and returns a
 * function that applies it in place to `array`, a row-major tensor of `shape`. The plan for each
 * shape is made on its first call and reused, so a call costs ~0.3 µs plus the work: the path
 * for applying a constraint after every training step.
 */
export function constrain(spec: native.NativeConstraintSpec): (array: FloatArray, shape: readonly number[]) => void {
  new native.NativeConstraint(spec) // validates the spec now, not on the first call
  return boundApplier(spec)
}

/** `constrain` for a spec already validated (e.g. by a `NativeConstraint` built from it). */
export function boundApplier(spec: native.NativeConstraintSpec): (array: FloatArray, shape: readonly number[]) => void {
  const bound = new Map<string, BoundConstraint>()
  return (array, shape) => {
    const key = shapeKey(shape)
    let handle = key === undefined ? undefined : bound.get(key)
    if (handle === undefined) {
      handle = native.createBoundConstraint(spec, shape as number[])
      if (key !== undefined) {
        if (bound.size >= MAX_BOUND_SHAPES) bound.delete(bound.keys().next().value as string)
        bound.set(key, handle)
      }
    }
    applyBound(handle, array)
  }
}

/** A cache key for a shape of plain numbers; undefined for anything else (the native side rejects it). */
function shapeKey(shape: unknown): string | undefined {
  if (!Array.isArray(shape)) return undefined
  for (const dim of shape) if (typeof dim !== 'number') return undefined
  return shape.join(',')
}

/** Builds a constraint for arrays of one `shape`, checked and planned once; see `applyBound`. */
export { createBoundConstraint } from './native/index.js'
export { applyBound }
