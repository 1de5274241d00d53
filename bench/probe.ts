// The bandwidth probe (one sum-of-squares pass and one in-place scale pass, the least traffic a
// norm constraint can cost) is benchmark code: the shipped addon does not carry it. Benchmarks get
// it from a build of the same binding crate with the cargo feature `probe`, made here on first use
// (cargo skips the build when nothing changed) and loaded beside the shipped addon. Same crate,
// same release profile, same run-time tier detection: the probe's loops and normclip's kernels are
// compiled alike, so "% of probe" compares like with like.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export interface ProbeAddon {
  /**
   * Both probe passes over `array` (multiplied by `factor`) on the active SIMD tier; returns the sum of squares.
   * `parallel`: each pass split between the threads of large calls (NORMCLIP_THREADS), the sums finished before the scale pass.
   */
  bandwidthProbe(array: Float32Array, factor: number, parallel?: boolean): number
}

const root = join(__dirname, '..')
const targetDir = join(root, 'target', 'probe')

function libraryName(): string {
  if (process.platform === 'win32') return 'normclip_node.dll'
  return process.platform === 'darwin' ? 'libnormclip_node.dylib' : 'libnormclip_node.so'
}

let loaded: ProbeAddon | undefined

/** The probe-enabled addon, built on first use (cargo output on stderr). */
export function probeAddon(): ProbeAddon {
  if (loaded) return loaded
  execFileSync('cargo', ['build', '--release', '--quiet', '-p', 'normclip-node', '--features', 'probe', '--target-dir', targetDir], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const out = join(root, 'target', 'bench-addon')
  mkdirSync(out, { recursive: true })
  const addon = join(out, 'normclip-probe.node')
  copyFileSync(join(targetDir, 'release', libraryName()), addon)
  loaded = require(addon) as ProbeAddon
  return loaded
}
