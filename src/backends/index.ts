/**
 * Tensors constrained on their backend's own memory, without copying them out to JavaScript and
 * back: tfjs-node through normclip's TensorFlow ops (`./tfjs-node.ts`), tfjs wasm through views
 * of the wasm heap (`./wasm.ts`). Other backends (cpu, webgl, …) have no such path.
 *
 * Two hooks, for the code that otherwise reads a tensor's data with `dataSync`:
 * - {@link fastApply}: the constrained tensor, or undefined when there is no such path;
 * - {@link fastApplyToVariables}: constrains variables where they live, or false.
 * Both do nothing at all when they answer "no", so the caller's ordinary path (which also reports
 * bad arguments with normclip's usual errors) runs as if they did not exist.
 *
 * `NORMCLIP_TF_OPS=0` turns the TensorFlow op path off in the native layer (as if libtensorflow
 * lacked the symbols); {@link setFastPaths} turns either path off at run time (tests, benchmarks).
 */
import type { NativeConstraint, TfOpsStatus } from '../binding'
import { loadTfjs, type Tensor, type TfModule, type Variable } from '../tfjs'
import { isNodeBackend, tfjsNodeApply, tfjsNodeConstrainVariables, tfOpsStatus } from './tfjs-node'
import { isWasmBackend, wasmApply, wasmConstrainVariables } from './wasm'

/** Which zero-copy paths may be taken. */
export interface FastPaths {
  /** tfjs-node tensors through normclip's TensorFlow ops. */
  tfjsNode: boolean
  /** tfjs wasm tensors through views of the wasm heap. */
  wasm: boolean
}

const enabled: FastPaths = { tfjsNode: true, wasm: true }

/** Turns paths on or off (both on by default); returns the previous setting. */
export function setFastPaths(paths: Partial<FastPaths>): FastPaths {
  const previous = { ...enabled }
  Object.assign(enabled, paths)
  return previous
}

/** The backend that holds `tensor`'s data, when it is also tfjs' active backend (else undefined). */
function activeBackendOf(tf: TfModule, tensor: Tensor): unknown {
  const backend = tf.backend() as unknown
  const engine = tf.engine() as unknown as { state?: { tensorInfo?: { get(dataId: object): { backend?: unknown } | undefined } } }
  return engine.state?.tensorInfo?.get(tensor.dataId)?.backend === backend ? backend : undefined
}

function usable(tensor: Tensor): boolean {
  return !tensor.isDisposed && tensor.dtype === 'float32'
}

/**
 * `constraint` applied to `tensor` as a new tensor computed on the backend's own memory — a
 * TensorFlow op on tfjs-node, a fused pass between heap views on wasm — or undefined when the
 * tensor's backend has no such path (or the tensor is not a live float32 tensor there).
 */
export function fastApply(tensor: Tensor, constraint: NativeConstraint): Tensor | undefined {
  const tf = loadTfjs()
  if (tf === null || !usable(tensor)) return undefined
  const backend = activeBackendOf(tf, tensor)
  if (enabled.tfjsNode && isNodeBackend(backend)) return tfjsNodeApply(backend, tensor, constraint)
  if (enabled.wasm && isWasmBackend(backend)) return wasmApply(tf, backend, tensor, constraint)
  return undefined
}

/**
 * Applies `constraints[i]` to `variables[i]` for every i, on the backend's own memory, and
 * returns true; or returns false, having changed nothing, when their backend has no such path.
 * On tfjs-node the variables are assigned the outputs of one op call; on wasm each variable is
 * constrained in place (or, if its data is shared, assigned a new buffer). Pass the same
 * `constraints` array at every step: what is derived from it is cached per array.
 */
export function fastApplyToVariables(variables: readonly Variable[], constraints: readonly NativeConstraint[]): boolean {
  const tf = loadTfjs()
  if (tf === null || variables.length === 0 || variables.length !== constraints.length) return false
  const first = variables[0]!
  const backend = activeBackendOf(tf, first)
  if (backend === undefined) return false
  for (const variable of variables) {
    if (!usable(variable) || activeBackendOf(tf, variable) !== backend) return false
  }
  if (enabled.tfjsNode && isNodeBackend(backend)) return tfjsNodeConstrainVariables(backend, variables, constraints)
  if (enabled.wasm && isWasmBackend(backend)) return wasmConstrainVariables(tf, backend, variables, constraints)
  return false
}

/** Which paths exist in this process right now: tfjs-node's ops (registered on first call) and wasm. */
export function fastPathStatus(): { tfjsNode: TfOpsStatus | undefined; wasm: boolean; enabled: FastPaths } {
  const tf = loadTfjs()
  const backend = tf === null ? undefined : (tf.backend() as unknown)
  return {
    tfjsNode: isNodeBackend(backend) ? tfOpsStatus() : undefined,
    wasm: isWasmBackend(backend),
    enabled: { ...enabled },
  }
}
