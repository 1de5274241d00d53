/**
 * TensorFlow.js as an optional peer: loading it, the base class our constraints extend, and
 * moving tensor data in and out of the native core.
 *
 * `@tensorflow/tfjs` is an optional peer dependency: the typed-array API (`applyInPlace`, …)
 * must work without it. It is loaded once, when normclip is first required, with a guarded
 * `require` (about 170 ms the first time, nothing when the app has loaded tfjs already). normclip
 * must use the very copy of tfjs the app uses — its classes register in that copy's
 * serialization registry, and layers accept a constraint only if it is an `instanceof` that
 * copy's `Constraint` — so it looks in this order:
 *
 * 1. `@tensorflow/tfjs-node`, then `@tensorflow/tfjs-node-gpu`, if installed: the
 *    `@tensorflow/tfjs` *they* re-export, resolved from their own directory (without loading them
 *    and their native TensorFlow library). With npm's deduplication that is the app's top-level
 *    copy anyway; when it is not, it is the copy the app's `require('@tensorflow/tfjs-node')` uses.
 * 2. `@tensorflow/tfjs`.
 * 3. `@tensorflow/tfjs-core` + `@tensorflow/tfjs-layers`, for apps that install only the split
 *    packages.
 *
 * The types come from `import type` only, which TypeScript erases: nothing here loads tfjs at
 * runtime except {@link loadTfjs}.
 */
import { createRequire } from 'node:module'
import type * as Tf from '@tensorflow/tfjs'

/** The parts of the tfjs namespace normclip uses. */
export type TfModule = typeof Tf
export type Tensor = Tf.Tensor
export type Variable = Tf.Variable
export type ConfigDict = Tf.serialization.ConfigDict

let loaded: TfModule | null | undefined

/** The app's tfjs, or `null` when neither `@tensorflow/tfjs` nor tfjs-core + tfjs-layers is installed. */
export function loadTfjs(): TfModule | null {
  if (loaded !== undefined) return loaded
  loaded = null
  for (const nodeBinding of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) {
    const entry = resolveOrUndefined(nodeBinding)
    if (entry === undefined) continue
    loaded = createRequire(entry)('@tensorflow/tfjs') as TfModule
    return loaded
  }
  try {
    loaded = require('@tensorflow/tfjs') as TfModule
  } catch (error) {
    if (!isModuleNotFound(error)) throw error
    try {
      const core = require('@tensorflow/tfjs-core') as object
      const layers = require('@tensorflow/tfjs-layers') as object
      loaded = { ...core, ...layers } as TfModule
    } catch (inner) {
      if (!isModuleNotFound(inner)) throw inner
    }
  }
  return loaded
}

function resolveOrUndefined(request: string): string | undefined {
  try {
    return require.resolve(request)
  } catch (error) {
    if (isModuleNotFound(error)) return undefined
    throw error
  }
}

/** tfjs, or a clear error saying which feature needs it. */
export function requireTfjs(feature: string): TfModule {
  const tf = loadTfjs()
  if (tf === null) {
    throw new Error(
      `normclip: ${feature} needs TensorFlow.js; install @tensorflow/tfjs (or @tensorflow/tfjs-node). ` +
        'The typed-array API (applyInPlace, applyCopy, …) works without it.',
    )
  }
  return tf
}

function isModuleNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'MODULE_NOT_FOUND'
}

/** What every tfjs `Constraint` has (tfjs' abstract base class declares exactly this). */
export interface TfjsConstraintLike {
  apply(w: Tensor): Tensor
  getConfig(): ConfigDict
  getClassName(): string
}

/**
 * The constructor of tfjs-layers' abstract `Constraint` class. tfjs does not export it, but every
 * built-in constraint extends it, and layers accept a constraint only if it is an
 * `instanceof` it (otherwise they try to deserialize it as a config), so normclip's classes must
 * extend this very class. Without tfjs, a stand-in with the same `Serializable` contract.
 */
type ConstraintBaseClass = abstract new () => { getConfig(): ConfigDict; getClassName(): string }

function resolveConstraintBase(): ConstraintBaseClass {
  const tf = loadTfjs()
  if (tf !== null) {
    const builtIn = tf.constraints.nonNeg().constructor
    return Object.getPrototypeOf(builtIn) as ConstraintBaseClass
  }
  abstract class Serializable {
    getConfig(): ConfigDict {
      return {}
    }
    getClassName(): string {
      return (this.constructor as unknown as { className: string }).className
    }
  }
  return Serializable
}

export const TfjsConstraintBase: ConstraintBaseClass = resolveConstraintBase()

/** True when `value` is a tfjs tensor (a `tf.Variable` is one too). */
export function isTensor(value: unknown): value is Tensor {
  const tf = loadTfjs()
  return tf !== null && value instanceof tf.Tensor
}

/** True when `value` is a `tf.Variable`. */
export function isVariable(value: unknown): value is Variable {
  const tf = loadTfjs()
  return tf !== null && value instanceof tf.Variable
}

/**
 * A float32 copy of a tensor's data that we own. `dataSync` is not a copy on every backend (the
 * cpu backend hands out its own storage), so writing into it could change the input tensor.
 */
export function ownedFloat32Data(tensor: Tensor, argument: string): Float32Array {
  checkFloat32(tensor, argument)
  const data = tensor.dataSync() as Float32Array
  return dataSyncIsFresh(tensor) ? data : data.slice()
}

/**
 * Whether `tensor.dataSync()` hands out a fresh array (so the core may write into it) rather than
 * storage the backend keeps: wasm always copies out of its heap; tfjs-node copies out of
 * TensorFlow unless the tensor still holds the JS values it was made from. The cpu backend, and
 * anything unrecognised, share their storage: the caller then copies. Reads backend internals
 * defensively: any surprise answers "not fresh".
 */
export function dataSyncIsFresh(tensor: Tensor): boolean {
  const tf = requireTfjs('reading a tensor')
  const backend = tf.backend() as unknown as { tensorMap?: { get(dataId: object): { values?: unknown } | undefined } }
  const engine = tf.engine() as unknown as { state?: { tensorInfo?: { get(dataId: object): { backend?: unknown } | undefined } } }
  if (engine.state?.tensorInfo?.get(tensor.dataId)?.backend !== backend) return false
  switch (tf.getBackend()) {
    case 'wasm':
      return true
    case 'tensorflow': {
      const info = backend.tensorMap?.get(tensor.dataId)
      return info !== undefined && info.values == null
    }
    default:
      return false
  }
}

/** `ownedFloat32Data` without blocking: `dataAsync` waits for GPU backends without stalling the thread. */
export async function ownedFloat32DataAsync(tensor: Tensor, argument: string): Promise<Float32Array> {
  checkFloat32(tensor, argument)
  return ((await tensor.data()) as Float32Array).slice()
}

export function checkFloat32(tensor: Tensor, argument: string): void {
  if (tensor.isDisposed) throw new Error(`${argument}: expected a live tensor, got a disposed one`)
  if (tensor.dtype !== 'float32') {
    throw new TypeError(`${argument}: expected a float32 tensor, got dtype ${tensor.dtype} (weights are float32; cast with tf.cast(x, 'float32'))`)
  }
}

/** A new float32 tensor over `values` (tfjs takes ownership of the array). */
export function float32Tensor(values: Float32Array, shape: readonly number[]): Tensor {
  return requireTfjs('building a tensor').tensor(values, [...shape], 'float32')
}

/** Writes `values` (of `shape`) into `variable` and returns it. */
export function assignFloat32(variable: Variable, values: Float32Array, shape: readonly number[]): Variable {
  const value = float32Tensor(values, shape)
  variable.assign(value)
  // assign took its own reference to the data; drop ours so nothing leaks.
  value.dispose()
  return variable
}
