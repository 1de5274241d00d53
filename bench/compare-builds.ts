// Two builds of the addon in one process, case by case: is a change slower anywhere?
//
//   npx tsx bench/compare-builds.ts BEFORE.node AFTER.node [--rounds=N] [--only=SHAPE]
//
// Each `.node` is loaded on its own (two dlopen handles, two copies of every static), and the
// methods both builds have — the bound in-place call, applyCopy (a new output), applyCopyInto (a
// warm output, as the tensor paths write), applyInPlaceAsync — are timed on
// the `npm run bench` baseline shapes, over the bound and compliant, the two builds taking turns
// in every round (bench/measure.ts). Prints each median with its spread and AFTER / BEFORE; a case
// is flagged when AFTER is more than 3% slower and the two spreads do not overlap.
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { fmtSample, machine } from './harness'
import { type Method, measureInterleaved, type Sampled } from './measure'

interface Addon {
  NativeConstraint: { create(spec: object): Constraint }
  applyBound(bound: unknown, array: Float32Array): void
  applyCopyInto(constraint: Constraint, source: Float32Array, target: Float32Array, shape: number[]): void
}
interface Constraint {
  bind(shape: number[]): unknown
  applyCopy(array: Float32Array, shape: number[]): Float32Array
  applyInPlaceAsync(array: Float32Array, shape: number[]): Promise<void>
}

const [beforePath, afterPath] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
if (!beforePath || !afterPath) {
  console.error('usage: tsx bench/compare-builds.ts BEFORE.node AFTER.node [--rounds=N]')
  process.exit(2)
}
const roundsArg = process.argv.find((a) => a.startsWith('--rounds='))
const budgetMs = 1500 * Number(roundsArg?.slice('--rounds='.length) ?? 1)
// `--only=784,512` keeps the cases whose shape is written so (several: `--only=64,64;784,512`).
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(';')
const load = (path: string) => createRequire(__filename)(resolve(path)) as Addon
const builds: [string, Addon][] = [
  ['before', load(beforePath)],
  ['after', load(afterPath)],
]

const CASES: { shape: number[]; axis: number | number[] | null }[] = [
  { shape: [16], axis: 0 },
  { shape: [64, 64], axis: 0 },
  { shape: [784, 512], axis: 0 },
  { shape: [3, 3, 256, 256], axis: [0, 1, 2] },
  { shape: [100000, 10], axis: 0 },
  { shape: [4096, 4096], axis: -1 },
  { shape: [4096, 4096], axis: 0 },
  { shape: [16777216], axis: null },
]

function methodsFor(addon: Addon, tag: string, shape: number[], axis: number | number[] | null, maxValue: number): Method[] {
  const n = shape.reduce((a, b) => a * b, 1)
  // Mean square 2: every slice's norm is at least 4 (over a bound of 1, under 1e6).
  const pristine = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 2)
  const buffer = pristine.slice()
  const target = new Float32Array(n)
  const c = addon.NativeConstraint.create({ kind: 'maxNorm', maxValue, axis })
  const bound = c.bind(shape)
  // As in `npm run bench`: over the bound, every call rescales every slice again (the factor
  // stays below 1); compliant, nothing is written. So calls repeat without a refill.
  return [
    { key: `${tag} inPlace`, run: () => addon.applyBound(bound, buffer), repeatable: true },
    { key: `${tag} copy`, run: () => void c.applyCopy(pristine, shape), repeatable: true },
    { key: `${tag} copyInto`, run: () => addon.applyCopyInto(c, pristine, target, shape), repeatable: true },
    { key: `${tag} async`, run: () => c.applyInPlaceAsync(buffer, shape), repeatable: true },
  ]
}

async function main(): Promise<void> {
  const m = machine()
  console.log(`${m.line}\nbefore ${beforePath}, after ${afterPath}`)
  console.log('| case | state | method | before | after | after / before |\n|---|---|---|---:|---:|---:|')
  let flagged = 0
  const cases = CASES.filter(({ shape }) => only === undefined || only.includes(shape.join(',')))
  for (const { shape, axis } of cases) {
    for (const [state, maxValue] of [
      ['over', 1],
      ['compliant', 1e6],
    ] as const) {
      const methods = builds.flatMap(([tag, addon]) => methodsFor(addon, tag, shape, axis, maxValue))
      const results = await measureInterleaved(methods, { budgetMs, minSampleMs: 5, maxSamples: 41 })
      for (const method of ['inPlace', 'copy', 'copyInto', 'async']) {
        const before = results.get(`before ${method}`) as Sampled
        const after = results.get(`after ${method}`) as Sampled
        const ratio = after.median / before.median
        const slower = ratio > 1.03 && after.q1 > before.q3
        if (slower) flagged++
        const label = `[${shape.join(',')}], ${JSON.stringify(axis)}`
        console.log(`| ${label} | ${state} | ${method} | ${fmtSample(before)} | ${fmtSample(after)} | ${ratio.toFixed(3)}${slower ? ' **slower**' : ''} |`)
      }
    }
  }
  console.log(`\n${flagged} of ${cases.length * 8} measurements slower by more than 3% beyond their spreads`)
}

void main()
