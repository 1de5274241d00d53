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
import * as native from './binding'
import { copyShape, type FloatArray } from './arrays'
import { nativeConstraintOf } from './constraints'
import { describe } from './options'
import { assignFloat32, float32Tensor, isTensor, isVariable, ownedFloat32Data, ownedFloat32DataAsync, type Tensor, type Variable } from './tfjs'

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

/** An item read once: every property the batch uses, taken before anything else happens. */
type Snapshot =
  | { kind: 'array'; array: FloatArray; shape: number[]; constraint: native.NativeConstraint }
  | { kind: 'tensor' | 'variable'; value: Tensor; argument: string; constraint: native.NativeConstraint }

const ITEM_KEYS = {
  array: ['array', 'shape', 'constraint'],
  tensor: ['tensor', 'constraint'],
  variable: ['variable', 'constraint'],
} as const

/**
 * Applies each item's constraint, all in one native call. Every item is checked (and arrays
 * checked not to overlap) before anything is written; on an error no array, variable or tensor
 * changes and no tensor is left behind.
 */
export function applyBatch(items: readonly BatchItem[]): BatchResult[] {
  const snapshots = snapshot(items)
  const prepared = prepare(snapshots, (tensor, argument) => ownedFloat32Data(tensor, argument))
  native.applyBatch(prepared.map((p) => p.nativeItem))
  return prepared.map((p) => p.finish())
}

/**
 * `applyBatch` on the libuv thread pool; tensors are read with `dataAsync`. Arrays over a
 * SharedArrayBuffer are constrained where they are; other arrays are copied now and written back
 * when the Promise settles (all of them, or none if one was detached or resized meanwhile: the
 * Promise then rejects with a RangeError).
 */
export async function applyBatchAsync(items: readonly BatchItem[]): Promise<BatchResult[]> {
  const snapshots = snapshot(items)
  const reads = new Map<Snapshot, Float32Array>()
  // Read every tensor first (async), then prepare synchronously from those copies.
  for (const item of snapshots) {
    if (item.kind !== 'array') reads.set(item, await ownedFloat32DataAsync(item.value, item.argument))
  }
  const prepared = prepare(snapshots, (_tensor, _argument, item) => reads.get(item) as Float32Array)
  await native.applyBatchAsync(prepared.map((p) => p.nativeItem))
  return prepared.map((p) => p.finish())
}

function prepare(snapshots: readonly Snapshot[], read: (tensor: Tensor, argument: string, item: Snapshot) => Float32Array): PreparedItem[] {
  return snapshots.map((item) => {
    const { constraint } = item
    if (item.kind === 'array') {
      // The native call checks the array and shape and names them items[i].array / .shape.
      return { nativeItem: { array: item.array, shape: item.shape, constraint }, finish: () => item.array }
    }
    const data = read(item.value, item.argument, item)
    const shape = item.value.shape.slice()
    const nativeItem = { array: data, shape, constraint }
    if (item.kind === 'variable') {
      return { nativeItem, finish: () => assignFloat32(item.value as Variable, data, shape) }
    }
    return { nativeItem, finish: () => float32Tensor(data, shape) }
  })
}

/** Reads every item's properties once each, checking them and rejecting unknown keys. */
function snapshot(items: unknown): Snapshot[] {
  if (!Array.isArray(items)) throw new TypeError(`items: expected an array of batch items, got ${describe(items)}`)
  const count = items.length
  const snapshots: Snapshot[] = []
  for (let index = 0; index < count; index++) {
    const item: unknown = items[index]
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw new TypeError(`items[${index}]: expected an object, got ${describe(item)}`)
    }
    const keys = Object.keys(item)
    const kind = keys.includes('array') ? 'array' : keys.includes('variable') ? 'variable' : keys.includes('tensor') ? 'tensor' : undefined
    if (kind === undefined) {
      throw new TypeError(`items[${index}]: expected {array, shape, constraint}, {tensor, constraint} or {variable, constraint}`)
    }
    const allowed: readonly string[] = ITEM_KEYS[kind]
    for (const key of keys) {
      if (!allowed.includes(key)) {
        throw new TypeError(`items[${index}]: unknown key '${key}' for an item with '${kind}'; expected ${allowed.join(', ')}`)
      }
    }
    const record = item as Record<string, unknown>
    const constraint = nativeConstraintFor(record['constraint'], index)
    if (kind === 'array') {
      const array = record['array']
      const shape = copyShape(record['shape'], `items[${index}].shape`)
      snapshots.push({ kind, array: array as FloatArray, shape, constraint })
      continue
    }
    const value = record[kind]
    const argument = `items[${index}].${kind}`
    if (kind === 'variable' ? !isVariable(value) : !isTensor(value)) {
      throw new TypeError(`${argument}: expected a tf.${kind === 'variable' ? 'Variable' : 'Tensor'}, got ${describe(value)}`)
    }
    snapshots.push({ kind, value: value as Tensor, argument, constraint })
  }
  return snapshots
}

function nativeConstraintFor(constraint: unknown, index: number): native.NativeConstraint {
  const found = nativeConstraintOf(constraint)
  if (found === undefined) {
    throw new TypeError(
      `items[${index}].constraint: expected a NativeConstraint, a normclip constraint or one of tfjs' ` +
        `MaxNorm, MinMaxNorm, UnitNorm, NonNeg, got ${describe(constraint)}`,
    )
  }
  return found
}
