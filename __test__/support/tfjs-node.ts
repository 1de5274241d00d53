/**
 * Loads `@tensorflow/tfjs-node` if it is installed and working, for the tests and benchmarks that
 * run on TensorFlow's native backend. tfjs-node is not a dependency of normclip: it is installed
 * by the optional `bash scripts/setup-tfjs-node.sh` (its own install script needs hosts our
 * machines cannot reach), so callers must cope with its absence — see {@link tfjsNodeRequired}.
 *
 * ```ts
 * import { loadTfjsNode, tfjsNodeRequired } from './support/tfjs-node'
 * const node = loadTfjsNode()
 * describe.skipIf(!node.available)('on tfjs-node', () => { … node.tf … })
 * ```
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type * as Tf from '@tensorflow/tfjs'

/** tfjs-node re-exports all of `@tensorflow/tfjs` (plus its `node` namespace, unused here). */
export type TfjsNode = typeof Tf

export type TfjsNodeStatus =
  | {
      available: true
      /** The loaded `@tensorflow/tfjs-node` module; its backend is already 'tensorflow'. */
      tf: TfjsNode
      /** Version of the native TensorFlow library the binding runs on (e.g. '2.12.1'). */
      tensorflowVersion: string
      /** Version of tfjs-node (e.g. '4.22.0'). */
      tfjsNodeVersion: string
      /** Where it was loaded from. */
      path: string
    }
  | { available: false; reason: string }

/** The environment variable that turns "tfjs-node is missing" from a skip into a failure (CI sets it). */
export const REQUIRE_TFJS_NODE_ENV = 'NORMCLIP_REQUIRE_TFJS_NODE'

/** Set to 1 to act as if tfjs-node were not installed (to run or check the skip path on a machine that has it). */
export const DISABLE_TFJS_NODE_ENV = 'NORMCLIP_NO_TFJS_NODE'

/** How to install it, for skip and failure messages. */
export const SETUP_HINT = 'run `bash scripts/setup-tfjs-node.sh` (after `npm install`) to install it'

// __dirname, not import.meta: the project type-checks as CommonJS; vitest defines both.
const repoRoot = join(__dirname, '..', '..')
let cached: TfjsNodeStatus | undefined

/** Whether tfjs-node must be present: `NORMCLIP_REQUIRE_TFJS_NODE=1`. */
export function tfjsNodeRequired(): boolean {
  return process.env[REQUIRE_TFJS_NODE_ENV] === '1'
}

/**
 * Tries once per process to load tfjs-node from the repository's node_modules, as an app would
 * with `require('@tensorflow/tfjs-node')`, and reports whether it works. Available means: it
 * loads, its native binding loads libtensorflow, and tfjs' active backend is 'tensorflow'. Never
 * throws: a failure is `{available: false, reason}`.
 */
export function loadTfjsNode(): TfjsNodeStatus {
  if (cached !== undefined) return cached
  cached = tryLoad()
  return cached
}

function tryLoad(): TfjsNodeStatus {
  if (process.env[DISABLE_TFJS_NODE_ENV] === '1') {
    return { available: false, reason: `disabled by ${DISABLE_TFJS_NODE_ENV}=1` }
  }
  const req = createRequire(join(repoRoot, 'package.json'))
  let path: string
  try {
    path = req.resolve('@tensorflow/tfjs-node')
  } catch {
    return { available: false, reason: `@tensorflow/tfjs-node is not installed in ${repoRoot}/node_modules; ${SETUP_HINT}` }
  }
  // TensorFlow's C++ INFO lines (oneDNN, CPU features) on stderr are noise in test output;
  // warnings and errors still show.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1'
  let tf: TfjsNode
  try {
    tf = req('@tensorflow/tfjs-node') as TfjsNode
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
    return { available: false, reason: `@tensorflow/tfjs-node is installed but does not load (${message}); ${SETUP_HINT}` }
  }
  const backend = tf.getBackend()
  if (backend !== 'tensorflow') {
    return { available: false, reason: `@tensorflow/tfjs-node loaded but the active backend is '${backend}', not 'tensorflow'` }
  }
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: unknown } }).binding
  const tensorflowVersion = typeof binding?.TF_Version === 'string' ? binding.TF_Version : 'unknown'
  const tfjsNodeVersion = String((tf.version as Record<string, string>)['tfjs-node'])
  return { available: true, tf, tensorflowVersion, tfjsNodeVersion, path }
}

/** One line for logs: what was loaded, or why not. */
export function describeTfjsNode(status: TfjsNodeStatus = loadTfjsNode()): string {
  return status.available ? `tfjs-node ${status.tfjsNodeVersion} on TensorFlow ${status.tensorflowVersion}` : `tfjs-node unavailable: ${status.reason}`
}
