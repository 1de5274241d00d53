/** What the native core runs with in this process. */
import * as native from './binding'

/**
 * The SIMD tier the kernels run with: `'avx512'`, `'avx2'`, `'portable'` (SSE2), or `'neon'` on
 * arm64. Chosen once per process from the CPU; `NORMCLIP_TIER` forces one. Every tier gives
 * bit-identical results.
 */
export function simdTier(): string {
  return native.simdTier()
}

/**
 * Threads used for tensors of 1M elements and more: `NORMCLIP_THREADS`, else the core count,
 * at most 4 per core. Results are bit-identical whatever this number is.
 */
export function threadCount(): number {
  return native.threadCount()
}
