// The tfjs backends the bench compares with, each loaded if it can be: cpu (always), wasm
// (@tensorflow/tfjs-backend-wasm, its .wasm files read from node_modules) and tfjs-node
// ('tensorflow', only where its native libtensorflow binding is installed).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import * as tf from '@tensorflow/tfjs'

export type BackendName = 'tensorflow' | 'wasm' | 'cpu'

export interface Backends {
  available: BackendName[]
  /** Why a backend is missing, for the report. */
  missing: Partial<Record<BackendName, string>>
  versions: Record<string, string>
}

function versionOf(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version
  } catch {
    return 'not installed'
  }
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error)
    .split('\n')[0]!
    .slice(0, 160)
}

/** Native TensorFlow version under tfjs-node, when the project's loader reports it. */
let tensorflowVersion: string | undefined

/**
 * Loads tfjs-node through the project's loader (`__test__/support/tfjs-node.ts`, which knows how
 * `scripts/setup-tfjs-node.sh` installs it) when there is one, else by its package name.
 */
function loadTfjsNode(): void {
  const support = join(__dirname, '..', '__test__', 'support', 'tfjs-node.ts')
  if (existsSync(support)) {
    const loader = require(support) as { loadTfjsNode?: () => { available: boolean; reason?: string; tensorflowVersion?: string } }
    const status = loader.loadTfjsNode?.()
    if (status && !status.available) throw new Error(status.reason ?? 'unavailable')
    tensorflowVersion = status?.tensorflowVersion
  }
  if (!tf.engine().registryFactory['tensorflow']) require('@tensorflow/tfjs-node')
}

/** The wasm backend's features as detected (SIMD, threads). */
export let wasmFeatures = 'not loaded'

export async function loadBackends(): Promise<Backends> {
  const missing: Backends['missing'] = {}
  const available: BackendName[] = []
  try {
    loadTfjsNode()
    if (await tf.setBackend('tensorflow')) available.push('tensorflow')
    else missing.tensorflow = 'tfjs-node loaded but its backend did not initialise'
  } catch (error) {
    missing.tensorflow = `@tensorflow/tfjs-node did not load: ${firstLine(error)}`
  }
  try {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm')
    wasm.setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`)
    if (await tf.setBackend('wasm')) {
      available.push('wasm')
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')
      wasmFeatures = `SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'}`
    } else missing.wasm = 'the wasm backend did not initialise'
  } catch (error) {
    missing.wasm = `@tensorflow/tfjs-backend-wasm did not load: ${firstLine(error)}`
  }
  await tf.setBackend('cpu')
  available.push('cpu')
  const versions: Record<string, string> = {}
  for (const pkg of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node']) versions[pkg] = versionOf(pkg)
  if (tensorflowVersion) versions['@tensorflow/tfjs-node'] += ` (libtensorflow ${tensorflowVersion})`
  return { available, missing, versions }
}

export const backendLabel: Record<BackendName, string> = { tensorflow: 'tfjs-node', wasm: 'tfjs wasm', cpu: 'tfjs cpu' }

/** Makes `name` the active backend (a no-op when it already is). */
export async function useBackend(name: BackendName): Promise<void> {
  if (tf.getBackend() !== name) await tf.setBackend(name)
}
