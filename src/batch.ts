/**
 * Many weights, one native call: `applyBatch` constrains typed arrays, tensors and tf.Variables
 * together, in parallel across items, crossing into the native core once.
 *
 * ```ts
 * applyBatch([
 *   { array: kernel, shape: [784, 512], constraint: new MaxNorm({ maxValue: 3 }) }, // in place
 *   { variable: convKernel, constraint: new MaxNorm({ axis: [0, 1, 2] }) },          // assigned in place
 *   { tensor: w, constraint: nonNeg() },                                            // a new tensor
 * ])
 * ```
 */
import * as native from './native/index.js'
import { nativeConstraintOf, type FloatArray } from './constraints'
import { describe } from './options'
import {
  float32Tensor,
  isTensor,
  isVariable,
  ownedFloat32Data,
  ownedFloat32DataAsync,
  type Tensor,
  type Variable,
} from './tfjs'

/**
 * What a batch item's constraint may be: a normclip constraint, a `NativeConstraint`, or one of
 * tfjs' own `MaxNorm`, `MinMaxNorm`, `UnitNorm`, `NonNeg` (run natively with the same formula).
 */
export type BatchConstraint = object

/** One weight of a batch: a typed array with its shape, a tensor, or a variable. */
export type BatchItem =
  | { array: FloatArray; shape: readonly number[]; constraint: BatchConstraint }
  | { tensor: Tensor; constraint: BatchConstraint }
  | { variable: Variable; constraint: BatchConstraint }

/**
 * Per item: the array itself (constrained in place), the variable itself (assigned the
 * constrained value), or for a tensor item a new tensor the caller owns (tensors are immutable).
 */
export type BatchResult = FloatArray | Tensor

/** A checked item: the buffer the core writes and how to hand the result back. */
interface PreparedItem {
  nativeItem: native.NativeBatchItem
  finish: () => BatchResult
}

/**
 * Applies each item's constraint, all in one native call. Every item is checked (and arrays
 * checked not to overlap) before anything is written; on an error no array, variable or tensor
 * changes and no tensor is left behind.
 */
export function applyBatch(items: readonly BatchItem[]): BatchResult[] {
  const prepared = prepare(items, (tensor, argument) => ownedFloat32Data(tensor, argument))
  native.applyBatch(prepared.map((p) => p.nativeItem))
  return prepared.map((p) => p.finish())
}

/**
 * `applyBatch` on the libuv thread pool; tensors are read with `dataAsync`. Do not touch the
 * arrays or variables until the Promise settles.
 */
export async function applyBatchAsync(items: readonly BatchItem[]): Promise<BatchResult[]> {
  const reads = new Map<Tensor, Float32Array>()
  checkItemList(items)
  // Read every tensor first (async), then prepare synchronously from those copies.
  for (const [index, item] of items.entries()) {
    const tensor = tensorOf(item, index)
    if (tensor !== undefined) reads.set(tensor.value, await ownedFloat32DataAsync(tensor.value, tensor.argument))
  }
  const prepared = prepare(items, (tensor) => reads.get(tensor) as Float32Array)
  await native.applyBatchAsync(prepared.map((p) => p.nativeItem))
  return prepared.map((p) => p.finish())
}

function prepare(
  items: readonly BatchItem[],
  read: (tensor: Tensor, argument: string) => Float32Array,
): PreparedItem[] {
  checkItemList(items)
  return items.map((item, index) => {
    const constraint = nativeConstraintFor(item, index)
    if ('array' in item) {
      // The native call checks the array and shape and names them items[i].array / .shape.
      const nativeItem = { array: item.array, shape: item.shape as number[], constraint }
      return { nativeItem, finish: () => item.array }
    }
    const tensor = tensorOf(item, index)
    if (tensor === undefined) {
      throw new TypeError(`items[${index}]: expected {array, shape, constraint}, {tensor, constraint} or {variable, constraint}`)
    }
    const data = read(tensor.value, tensor.argument)
    const shape = [...tensor.value.shape]
    const nativeItem = { array: data, shape, constraint }
    if ('variable' in item) {
      return {
        nativeItem,
        finish: () => {
          const value = float32Tensor(data, shape)
          item.variable.assign(value)
          // assign took its own reference to the data; drop ours so nothing leaks.
          value.dispose()
          return item.variable
        },
      }
    }
    return { nativeItem, finish: () => float32Tensor(data, shape) }
  })
}

function checkItemList(items: unknown): void {
  if (!Array.isArray(items)) throw new TypeError(`items: expected an array of batch items, got ${describe(items)}`)
  items.forEach((item, index) => {
    if (item === null || typeof item !== 'object') {
      throw new TypeError(`items[${index}]: expected an object, got ${describe(item)}`)
    }
  })
}

function tensorOf(item: BatchItem, index: number): { value: Tensor; argument: string } | undefined {
  if ('variable' in item) {
    if (!isVariable(item.variable)) {
      throw new TypeError(`items[${index}].variable: expected a tf.Variable, got ${describe(item.variable)}`)
    }
    return { value: item.variable, argument: `items[${index}].variable` }
  }
  if ('tensor' in item) {
    if (!isTensor(item.tensor)) {
      throw new TypeError(`items[${index}].tensor: expected a tf.Tensor, got ${describe(item.tensor)}`)
    }
    return { value: item.tensor, argument: `items[${index}].tensor` }
  }
  return undefined
}

function nativeConstraintFor(item: BatchItem, index: number): native.NativeConstraint {
  const found = nativeConstraintOf(item.constraint)
  if (found === undefined) {
    throw new TypeError(
      `items[${index}].constraint: expected a NativeConstraint, a normclip constraint or one of tfjs' ` +
        `MaxNorm, MinMaxNorm, UnitNorm, NonNeg, got ${describe(item.constraint)}`,
    )
  }
  return found
}
