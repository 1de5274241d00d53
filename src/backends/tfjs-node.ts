/**
 * tfjs-node tensors constrained inside TensorFlow: normclip's ops (`crates/normclip-tf`),
 * registered with the libtensorflow tfjs-node has loaded and executed by name through tfjs-node's
 * own binding, so the data never leaves TensorFlow.
 *
 * `NormclipConstrain` takes N float32 tensors and returns N constrained ones (attributes `N` and
 * `spec`, the constraints' exact parameters as `tfOpSpec` writes them). TensorFlow decides whether
 * an output may reuse its input's buffer; tfjs-node always holds its input handles, so in practice
 * each output is a fresh TensorFlow buffer written in one fused pass from the input.
 *
 * Everything here answers "not handled" (undefined / false) rather than throwing when the path
 * does not apply, and the caller then takes its ordinary path, which also reports bad arguments
 * with normclip's usual errors.
 */
import * as native from '../binding'
import type { NativeConstraint, TfOpsStatus } from '../binding'
import type { Tensor, Variable } from '../tfjs'

/** The op every constraint goes through. */
export const CONSTRAIN_OP = 'NormclipConstrain'

/** What normclip uses of tfjs-node's `NodeJSKernelBackend` (tfjs-node 4.x, `dist/nodejs_kernel_backend.js`). */
export interface NodeBackend {
  binding: { TF_ATTR_INT: number; TF_ATTR_STRING: number }
  tensorMap: { has(dataId: object): boolean }
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: Tensor[], numOutputs: number): Tensor[]
}

interface OpAttr {
  name: string
  type: number
  value: number | string
}

/** Whether `backend` looks like tfjs-node's backend (the parts used here, checked defensively). */
export function isNodeBackend(backend: unknown): backend is NodeBackend {
  const b = backend as Partial<NodeBackend> | null
  return (
    b != null &&
    typeof b.executeMultipleOutputs === 'function' &&
    typeof b.binding?.TF_ATTR_STRING === 'number' &&
    typeof b.binding.TF_ATTR_INT === 'number' &&
    typeof b.tensorMap?.has === 'function'
  )
}

let registered: TfOpsStatus | undefined

/**
 * Registers the ops (once) and says whether they can run. Asked only once a tfjs-node backend
 * exists, i.e. libtensorflow is loaded, so an unavailable answer is final too.
 */
export function tfOpsStatus(): TfOpsStatus {
  registered ??= native.tfOpsRegister()
  return registered
}

/** Marks the op path broken after an unexpected TensorFlow error, so later calls skip it. */
function disable(reason: string): void {
  registered = { available: false, reason, ops: [] }
}

const specOfConstraint = new WeakMap<NativeConstraint, string>()
const specOfList = new WeakMap<readonly NativeConstraint[], string>()

function attrs(backend: NodeBackend, count: number, spec: string): OpAttr[] {
  return [
    { name: 'N', type: backend.binding.TF_ATTR_INT, value: count },
    { name: 'spec', type: backend.binding.TF_ATTR_STRING, value: spec },
  ]
}

/**
 * Runs the op; undefined when it fails. A failure of our own kernel's checks (a shape the
 * constraint does not fit) leaves the reporting to the caller's ordinary path; anything else
 * means the path does not work here, and it is turned off.
 */
function execute(backend: NodeBackend, inputs: Tensor[], spec: string): Tensor[] | undefined {
  try {
    return backend.executeMultipleOutputs(CONSTRAIN_OP, attrs(backend, inputs.length, spec), inputs, inputs.length)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (!message.includes(`normclip ${CONSTRAIN_OP}:`)) disable(`${CONSTRAIN_OP} failed: ${message.split('\n')[0]}`)
    return undefined
  }
}

/** `constraint` applied to `tensor` (float32, live, on `backend`) as a new tensor computed in TensorFlow, or undefined. */
export function tfjsNodeApply(backend: NodeBackend, tensor: Tensor, constraint: NativeConstraint): Tensor | undefined {
  if (!backend.tensorMap.has(tensor.dataId) || !tfOpsStatus().available) return undefined
  let spec = specOfConstraint.get(constraint)
  if (spec === undefined) {
    spec = native.tfOpSpec([constraint])
    specOfConstraint.set(constraint, spec)
  }
  return execute(backend, [tensor], spec)?.[0]
}

/**
 * Constrains every variable in one op call and assigns each its result (the old buffers are
 * freed as tfjs frees them); false, with nothing changed, when the path does not apply. The
 * `spec` is cached per `constraints` array: pass the same array at every step.
 */
export function tfjsNodeConstrainVariables(backend: NodeBackend, variables: readonly Variable[], constraints: readonly NativeConstraint[]): boolean {
  if (variables.length === 0 || !tfOpsStatus().available) return false
  for (const variable of variables) if (!backend.tensorMap.has(variable.dataId)) return false
  let spec = specOfList.get(constraints)
  if (spec === undefined) {
    spec = native.tfOpSpec([...constraints])
    specOfList.set(constraints, spec)
  }
  const outputs = execute(backend, [...variables], spec)
  if (outputs === undefined) return false
  outputs.forEach((output, i) => {
    variables[i]!.assign(output)
    output.dispose() // the variable holds its own reference to the data now
  })
  return true
}
