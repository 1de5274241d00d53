/**
 * tfjs wasm tensors constrained on the wasm heap itself: Float32Array views of the backend's
 * memory at each tensor's offset, instead of `dataSync` (a copy out) and `tf.tensor` (a copy in).
 *
 * The heap is a `WebAssembly.Memory` that grows — detaching every view of it — whenever the
 * backend allocates. So every allocation (the output tensors) happens first, the views are taken
 * after it from the memory's current buffer, and nothing runs between taking them and the native
 * call (which checks them again: attached, of the expected length).
 */
import * as native from '../binding'
import type { NativeConstraint } from '../binding'
import type { Tensor, TfModule, Variable } from '../tfjs'

interface HeapEntry {
  memoryOffset: number | null
  dtype: string
  refCount: number
}

/** What normclip uses of `@tensorflow/tfjs-backend-wasm`'s `BackendWasm` (4.x, `dist/backend_wasm.js`). */
export interface WasmBackend {
  wasm: { HEAPU8: Uint8Array }
  dataIdMap: { get(dataId: object): HeapEntry | undefined }
  makeOutput(shape: number[], dtype: 'float32'): { dataId: object; shape: number[]; dtype: 'float32' }
  disposeData(dataId: object, force?: boolean): boolean
}

/** Whether `backend` looks like tfjs' wasm backend (the parts used here, checked defensively). */
export function isWasmBackend(backend: unknown): backend is WasmBackend {
  const b = backend as Partial<WasmBackend> | null
  return b != null && b.wasm?.HEAPU8 instanceof Uint8Array && typeof b.dataIdMap?.get === 'function' && typeof b.makeOutput === 'function'
}

/** The float32 heap offset of a tensor's data, or undefined when it has none we can use. */
function offsetOf(backend: WasmBackend, dataId: object): number | undefined {
  const entry = backend.dataIdMap.get(dataId)
  if (entry === undefined || entry.dtype !== 'float32' || typeof entry.memoryOffset !== 'number') return undefined
  return entry.memoryOffset
}

/** A view of `size` float32s at `offset` of the heap as it is now. */
function heapView(backend: WasmBackend, offset: number, size: number): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer, offset, size)
}

/** A new float32 tensor on `backend` with uninitialised heap memory, tracked by the engine. */
function allocate(tf: TfModule, backend: WasmBackend, shape: readonly number[]): Tensor {
  const info = backend.makeOutput([...shape], 'float32')
  return tf.engine().makeTensorFromTensorInfo(info, backend as never)
}

/** `constraint` applied to `tensor` (float32, live, on `backend`) as a new tensor written straight into the heap, or undefined. */
export function wasmApply(tf: TfModule, backend: WasmBackend, tensor: Tensor, constraint: NativeConstraint): Tensor | undefined {
  if (tensor.size === 0 || offsetOf(backend, tensor.dataId) === undefined) return undefined
  const output = allocate(tf, backend, tensor.shape) // may grow the heap: views only after this
  try {
    const from = offsetOf(backend, tensor.dataId)
    const into = offsetOf(backend, output.dataId)
    if (from === undefined || into === undefined) throw new Error('tensor data left the heap')
    native.applyCopyInto(constraint, heapView(backend, from, tensor.size), heapView(backend, into, tensor.size), tensor.shape)
    return output
  } catch {
    // The ordinary path reports bad arguments with normclip's usual errors.
    output.dispose()
    return undefined
  }
}

/**
 * Constrains every variable on the heap; false, with nothing changed, when the path does not
 * apply. A variable whose data only it holds (refCount 1: tfjs hands out heap data only as
 * copies) is constrained where it is; one sharing its data (a clone, a reshape, its initial value)
 * gets a new buffer written from the old one, then is assigned it.
 */
export function wasmConstrainVariables(tf: TfModule, backend: WasmBackend, variables: readonly Variable[], constraints: readonly NativeConstraint[]): boolean {
  if (variables.length === 0 || variables.length !== constraints.length) return false
  for (const variable of variables) if (offsetOf(backend, variable.dataId) === undefined) return false
  const outputs: (Tensor | undefined)[] = variables.map((variable) =>
    variable.size > 0 && backend.dataIdMap.get(variable.dataId)!.refCount > 1 ? allocate(tf, backend, variable.shape) : undefined,
  )
  try {
    // Every allocation is done: from here on the heap cannot move.
    const inPlace: native.NativeBatchItem[] = []
    variables.forEach((variable, i) => {
      const from = offsetOf(backend, variable.dataId)
      if (from === undefined) throw new Error('variable data left the heap')
      const output = outputs[i]
      if (output === undefined) {
        inPlace.push({ array: heapView(backend, from, variable.size), shape: variable.shape, constraint: constraints[i]! })
        return
      }
      // Into a buffer no one sees yet: harmless if a later item fails.
      const into = offsetOf(backend, output.dataId)!
      native.applyCopyInto(constraints[i]!, heapView(backend, from, variable.size), heapView(backend, into, variable.size), variable.shape)
    })
    // Checks every item before writing any.
    if (inPlace.length > 0) native.applyBatch(inPlace)
  } catch {
    for (const output of outputs) output?.dispose()
    return false
  }
  outputs.forEach((output, i) => {
    if (output === undefined) return
    variables[i]!.assign(output)
    output.dispose()
  })
  return true
}
