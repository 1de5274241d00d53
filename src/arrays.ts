/**
 * What an array argument is and how a shape argument is read: the one owner of both, used by
 * every wrapper before anything reaches the binding.
 */
import { describe } from './options'

/** A typed array the native core works on (row-major, of a given shape). */
export type FloatArray = Float32Array | Float64Array

/**
 * A shape, copied: an Array (no other iterable) whose elements are read once each and must be
 * numbers (the native side checks they are non-negative integers). Every wrapper passes the
 * copy on, never the caller's array, so a getter that answers differently on each read cannot
 * make two parts of a call see two shapes.
 */
export function copyShape(shape: unknown, argument: string): number[] {
  const array = shapeArray(shape, argument)
  const rank = array.length
  const dims = new Array<number>(rank)
  for (let i = 0; i < rank; i++) dims[i] = shapeDim(array, i, argument)
  return dims
}

/**
 * `copyShape` as a string key (`"784,512"`, `""` for rank 0), for the per-shape plan caches:
 * the same checks and the same single read of each element, without an Array per call.
 * `key.split(',').map(Number)` gives the dims back exactly (a number's string round-trips).
 */
export function shapeKey(shape: unknown, argument: string): string {
  const array = shapeArray(shape, argument)
  const rank = array.length
  let key = ''
  for (let i = 0; i < rank; i++) {
    const dim = shapeDim(array, i, argument)
    key = i === 0 ? `${dim}` : `${key},${dim}`
  }
  return key
}

function shapeArray(shape: unknown, argument: string): readonly unknown[] {
  if (!Array.isArray(shape)) {
    throw new TypeError(`${argument}: expected an array of non-negative integers, got ${describe(shape)}`)
  }
  return shape
}

/** Element `i` of a shape, read once (the native side checks it is a non-negative integer). */
function shapeDim(shape: readonly unknown[], i: number, argument: string): number {
  const dim = shape[i]
  if (typeof dim !== 'number') {
    throw new TypeError(`${argument}: expected non-negative integers, got ${describe(dim)} at index ${i}`)
  }
  return dim
}
