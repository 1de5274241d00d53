// The `threads` suite of `npm run bench` (alone: `npm run bench -- --suite=threads`): normclip in
// place on several threads against the bandwidth probe on as many, for tensors of at least 4M
// elements (smaller calls stay on one thread: parallel.rs' size gate). One process with
// NORMCLIP_THREADS=2 (BENCH_THREADS to change it), set before either addon loads; the probe runs
// both ways in it: split between the threads (each pass cut into one part per thread, the sums
// finished before the scale pass, as a norm must be) and on the calling thread alone.
//
// Writes threads.md: medians with their spread, and the goal: in place >= 85% of the
// same-run multi-thread probe. Results do not depend on the thread count (the core cuts work into
// the same parts whatever it is): __test__ checks the bits.
process.env.NORMCLIP_THREADS = process.env.BENCH_THREADS ?? '2'

import { constrain, simdTier, threadCount } from '../src/index'
import { SPREAD_NOTE, benchArgs, fmtSample, gaussian, loadavg, loadNote, machine, revision, writeResult } from './harness'
import { measureInterleaved, type Method } from './measure'
import { probeAddon } from './probe'

const args = benchArgs()
const OVER = 1 // every norm of standard normal data is above 1: each call rescales every slice
const GOAL = 0.85

const CASES: { shape: number[]; axis: number | number[] | null }[] = [
  { shape: [2048, 2048], axis: 0 },
  { shape: [4096, 4096], axis: 0 },
  { shape: [4096, 4096], axis: -1 },
  { shape: [3, 3, 512, 1024], axis: [0, 1, 2] },
  { shape: [16777216], axis: null },
]

async function main(): Promise<void> {
  const loadStart = loadavg()
  const probe = probeAddon()
  const threads = threadCount()
  const rows: string[] = []
  const goals: string[] = []
  for (const [index, { shape, axis }] of CASES.entries()) {
    const label = `[${shape.join(',')}], ${JSON.stringify(axis)}`
    if (args.only && !args.only.test(label)) continue
    const n = shape.reduce((a, b) => a * b, 1)
    const buffer = gaussian(n, 17 + index)
    const apply = constrain({ kind: 'maxNorm', maxValue: OVER, axis })
    const methods: Method[] = [
      { key: 'probe1', run: () => void probe.bandwidthProbe(buffer, 1.0000001) },
      { key: 'probeN', run: () => void probe.bandwidthProbe(buffer, 1.0000001, true) },
      { key: 'inPlace', run: () => apply(buffer, shape) },
    ]
    const r = await measureInterleaved(methods, { budgetMs: args.quick ? 1500 : 8000, minSampleMs: 20, maxSamples: args.quick ? 7 : 41 })
    const [p1, pN, ip] = [r.get('probe1')!, r.get('probeN')!, r.get('inPlace')!]
    const share = pN.median / ip.median
    const gbs = (s: { median: number }) => ((12 * n) / s.median / 1e6).toFixed(1)
    rows.push(
      `| ${label} | ${n.toLocaleString('en-US')} | ${fmtSample(p1)} (${gbs(p1)} GB/s) | ${fmtSample(pN)} (${gbs(pN)} GB/s) | ` +
        `**${fmtSample(ip)}** (${gbs(ip)} GB/s) | ${(100 * share).toFixed(0)}% |`,
    )
    goals.push(`${label} ${(100 * share).toFixed(0)}%${share >= GOAL ? '' : ' (**missed**)'}`)
    console.log(rows.at(-1))
  }
  const text = [
    `# \`npm run bench\`: ${threads} threads — ${machine().kindLabel}`,
    '',
    machine().line,
    `normclip ${revision()}, SIMD tier ${simdTier()}, ${threads} thread(s) (NORMCLIP_THREADS=${process.env.NORMCLIP_THREADS}); Node ${process.version}`,
    loadNote(loadStart, loadavg()),
    '',
    `Median ms per call, ${SPREAD_NOTE} GB/s = 12 B/element / time (the two-pass traffic). MaxNorm(${OVER}) over standard normal data: every slice rescaled on every call. The three methods take turns in one process.`,
    '',
    `| case | elements | probe, 1 thread | probe, ${threads} threads | normclip in place, ${threads} threads | in place / ${threads}-thread probe |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '## Goal',
    '',
    `- In place ≥ ${100 * GOAL}% of the same-run ${threads}-thread probe, tensors ≥ 4M elements: ${goals.join('; ')}.`,
    '',
  ].join('\n')
  for (const path of writeResult(args, 'threads.md', text)) console.log(`wrote ${path}`)
}

void main()
