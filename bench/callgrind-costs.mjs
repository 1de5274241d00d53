// The cost model of an in-place call, per element, from callgrind's cache simulation: what a CPU
// must execute and move, which does not depend on the machine's speed or its noise. For each
// baseline case: normclip's MaxNorm in place (over the bound: every element rewritten) against the
// bandwidth probe (a sum-of-squares pass and a scale pass, the two-pass bound), both as the core
// runs them (`examples/calls`), on the AVX2 tier (valgrind has no AVX-512), under two cache
// geometries: Intel Sapphire Rapids (L1d 48 KiB 12-way, L2 2 MiB 16-way) and AMD Zen 4 (L1d
// 32 KiB 8-way, L2 1 MiB 8-way), the simulated last level standing for L2.
//
//   node bench/callgrind-costs.mjs [--only=SUBSTRING]
//
// Columns: instructions, loads and stores (instructions that read or write memory, whatever
// their width) per element, then L1d and L2 misses per element (64-byte lines; L2 misses × 64 are
// the bytes that come from L3 or memory). Prints a Markdown table.
import { execFileSync, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)

const CASES = [
  ['64,64', '0'],
  ['784,512', '0'],
  ['3,3,256,256', '0,1,2'],
  ['100000,10', '0'],
  ['4096,4096', '0'],
  ['4096,4096', '-1'],
  ['16777216', 'null'],
]
const CACHES = [
  ['Intel SPR', ['--D1=49152,12,64', '--LL=2097152,16,64']],
  ['AMD Zen 4', ['--D1=32768,8,64', '--LL=1048576,8,64']],
]

execFileSync('cargo', ['build', '--release', '--quiet', '-p', 'normclip-core', '--features', 'probe', '--example', 'calls'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
})
const calls = join(root, 'target', 'release', 'examples', 'calls')

/** Callgrind's totals (Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw) for one call of `mode`. */
function totals(shape, axes, mode, cache) {
  const args = ['--tool=callgrind', '--cache-sim=yes', ...cache, '--callgrind-out-file=/dev/null', '--toggle-collect=*measured*']
  const r = spawnSync('valgrind', [...args, calls, shape, axes, 'f32', 'avx2', '1', mode], {
    cwd: root,
    env: { ...process.env, NORMCLIP_THREADS: '1' },
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  })
  const line = r.stderr.split('\n').find((l) => l.includes('Collected :'))
  if (r.status !== 0 || !line) throw new Error(`valgrind exited ${r.status}:\n${r.stderr}`)
  // Trailing zero counts are left out of the line.
  const counts = line.split(':')[1].trim().split(/\s+/).map(Number)
  return [...counts, ...Array(9 - counts.length).fill(0)]
}

const fmt = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(3))
console.log('| case | caches | method | instr/elt | loads/elt | stores/elt | L1d misses/elt | L2 misses/elt (× 64 B) |')
console.log('|---|---|---|---:|---:|---:|---:|---:|')
for (const [shape, axes] of CASES) {
  const label = `[${shape}], ${axes === 'null' ? 'null' : `[${axes}]`}`
  if (only && !label.includes(only)) continue
  const elements = shape.split(',').reduce((a, b) => a * Number(b), 1)
  for (const [cacheName, cache] of CACHES) {
    for (const [method, mode] of [
      ['normclip in place', 'over'],
      ['probe', 'probe'],
    ]) {
      const [ir, dr, dw, , d1mr, d1mw, , dlmr, dlmw] = totals(shape, axes, mode, cache)
      const per = (x) => fmt(x / elements)
      console.log(`| ${label} | ${cacheName} | ${method} | ${per(ir)} | ${per(dr)} | ${per(dw)} | ${per(d1mr + d1mw)} | ${per(dlmr + dlmw)} |`)
    }
  }
}
