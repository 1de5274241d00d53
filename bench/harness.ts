// What every benchmark suite of `npm run bench` shares: its arguments, the machine it runs on,
// where results go, and how a median and its spread are printed. A suite is a script run by
// bench/run.ts in a process of its own; it measures with bench/measure.ts and writes with
// writeResult() below.
//
//   npm run bench                    every suite; results in target/bench/<time>-<cpu kind>/ (nothing in the tree changes)
//   npm run bench -- --update        …and into bench/results/<cpu kind>/, the committed results, plus the bench/RESULTS.md index
//   npm run bench -- --quick         short budgets: a smoke run, figures not for quoting
//   npm run bench -- --only=<regex>  only the cases whose label matches (suites that have cases)
//   npm run bench -- --suite=<name>  only that suite (constraints, clipping, …)
//
// The same switches as environment variables: BENCH_UPDATE=1, BENCH_QUICK=1, BENCH_ONLY, BENCH_SUITE.
import { execSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { Sampled } from './measure'

export interface BenchArgs {
  /** Also write the committed results (bench/results/<cpu kind>/ and the index). */
  update: boolean
  quick: boolean
  only: RegExp | undefined
  suite: string | undefined
}

/** The switches, from the command line (`--update`, `--quick`, `--only=…`, `--suite=…`) or the environment. */
export function benchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const flag = (name: string) => argv.includes(`--${name}`) || process.env[`BENCH_${name.toUpperCase()}`] === '1'
  const value = (name: string) => {
    const prefix = `--${name}=`
    const given = argv.find((a) => a.startsWith(prefix))
    return given !== undefined ? given.slice(prefix.length) : process.env[`BENCH_${name.toUpperCase()}`] || undefined
  }
  for (const arg of argv) {
    if (!/^--(update|quick|only=.*|suite=.*)$/.test(arg))
      throw new Error(`bench: unknown argument ${JSON.stringify(arg)} (expected --update, --quick, --only=<regex>, --suite=<name>)`)
  }
  const only = value('only')
  return { update: flag('update'), quick: flag('quick'), only: only === undefined ? undefined : new RegExp(only), suite: value('suite') }
}

export interface Machine {
  /** lscpu's model name (or Node's). */
  model: string
  /** A short name of the CPU's kind, used as a directory name: `amd-zen5`, `intel-f6m143`, … */
  kind: string
  /** The same for people: `AMD Zen 5 (family 26, model 2)`. */
  kindLabel: string
  logicalCpus: number
  /** L1d / L2 / L3 sizes and the hypervisor, from lscpu. */
  caches: string
  /** One line for a report's header. */
  line: string
}

/** The kind of a CPU from lscpu's vendor, family and model: `[directory name, label]`. */
export function cpuKindOf(vendor: string, family: number, model: number, modelName: string): [string, string] {
  if (vendor === 'AuthenticAMD' && Number.isFinite(family)) return amdKind(family, model)
  // A VM may show a Xeon as any model number (KVM here reports Sapphire Rapids as model 167): the
  // results of every Xeon go together, each report naming the family and model it ran on (machine()).
  if (vendor === 'GenuineIntel' && /xeon/i.test(modelName)) return ['intel-xeon', 'Intel Xeon']
  if (vendor === 'GenuineIntel' && Number.isFinite(family)) return [`intel-f${family}m${model}`, `Intel ${modelName}`]
  return [
    modelName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'unknown-cpu',
    modelName,
  ]
}

/** The micro-architecture of an AMD CPU from its family and model (AMD's published numbering). */
function amdKind(family: number, model: number): [string, string] {
  if (family === 26) return ['amd-zen5', 'AMD Zen 5']
  if (family === 25) {
    const zen4 = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf)
    return zen4 ? ['amd-zen4', 'AMD Zen 4'] : ['amd-zen3', 'AMD Zen 3']
  }
  if (family === 23) return ['amd-zen2', 'AMD Zen 1/2']
  return [`amd-f${family}m${model}`, `AMD family ${family}`]
}

/** The CPU and its caches, from lscpu when it is there. */
export function machine(): Machine {
  const logicalCpus = cpus().length
  let model = cpus()[0]?.model?.trim() || 'unknown CPU'
  let info = ''
  try {
    info = execSync('lscpu', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    // No lscpu (macOS, Windows): Node's model name only.
  }
  const field = (name: string) => info.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim()
  model = field('Model name') ?? model
  const vendor = field('Vendor ID') ?? ''
  const family = Number(field('CPU family') ?? NaN)
  const modelNumber = Number(field('Model') ?? NaN)
  const [kind, label] = cpuKindOf(vendor, family, modelNumber, model)
  const kindLabel = Number.isFinite(family) ? `${label} (family ${family}, model ${modelNumber})` : label
  let caches = info === '' ? 'caches unknown (no lscpu)' : ['L1d', 'L2', 'L3'].map((c) => `${c} ${field(`${c} cache`) ?? '?'}`).join(', ')
  const hypervisor = field('Hypervisor vendor')
  if (hypervisor) caches += `; ${hypervisor} VM`
  return { model, kind, kindLabel, logicalCpus, caches, line: `${model} — ${kindLabel}, ${logicalCpus} logical CPUs; ${caches}` }
}

/** The commit the run measured, `+dirty` when the tree has changes. */
export function revision(): string {
  try {
    const commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execSync('git status --porcelain --untracked-files=no', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
    return dirty ? `${commit}+dirty` : commit
  } catch {
    return 'unknown revision'
  }
}

const benchDir = __dirname
/** The committed results, one directory per CPU kind. */
export const committedDir = join(benchDir, 'results')

/** This run's directory: a new one under target/bench (ignored by git); made on first use. */
let runDir: string | undefined
export function outputDir(): string {
  if (runDir === undefined) {
    // One directory for all suites of one `npm run bench`: bench/run.ts passes it down.
    runDir = process.env.BENCH_RUN_DIR ?? join(benchDir, '..', 'target', 'bench', `${new Date().toISOString().replace(/[:.]/g, '-')}-${machine().kind}`)
    mkdirSync(runDir, { recursive: true })
  }
  return runDir
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text)
  renameSync(`${path}.tmp`, path)
}

/**
 * Writes one result file of a suite (`constraints.md`, `clipping.md`, …) into this run's directory
 * and, with `--update`, into bench/results/<cpu kind>/. Returns the paths written.
 */
export function writeResult(args: BenchArgs, name: string, text: string): string[] {
  const paths = [join(outputDir(), name)]
  if (args.update) {
    const dir = join(committedDir, machine().kind)
    mkdirSync(dir, { recursive: true })
    paths.push(join(dir, name))
  }
  for (const path of paths) writeAtomically(path, text)
  return paths
}

/** Milliseconds with 3–4 significant digits. */
export const fmtMs = (ms: number) =>
  !Number.isFinite(ms) ? 'n/a' : ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms >= 0.01 ? ms.toFixed(4) : ms.toFixed(5)

/** Half the interquartile range as a share of the median: `±3%`. */
export function spread(s: Sampled | undefined): string {
  if (s === undefined || !Number.isFinite(s.median) || s.median === 0) return ''
  const half = (100 * (s.q3 - s.q1)) / 2 / s.median
  return `±${half < 10 ? half.toFixed(1) : half.toFixed(0)}%`
}

/** `0.1453 ±2.1%`: a median and its spread. */
export const fmtSample = (s: Sampled | undefined) => (s === undefined ? 'n/a' : `${fmtMs(s.median)} ${spread(s)}`)

/** What the spread means, for every report's header. */
export const SPREAD_NOTE = '± after a median is half its interquartile range (q3 − q1) / 2, as a share of the median.'

/** The load average line of a report: the machine is shared, and this says how much. */
export function loadNote(start: number[], end: number[]): string {
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ')
  return `Load average ${fmt(start)} at start, ${fmt(end)} at end (1/5/15 min; ${cpus().length} logical CPUs).`
}

export { loadavg }

/**
 * bench/RESULTS.md: for every CPU kind in bench/results/, its header and the constraints suite's
 * headline table (over-bound weights), then links to every file of that kind.
 */
export function writeIndex(): string {
  const kinds = existsSync(committedDir)
    ? readdirSync(committedDir)
        .filter((d) => existsSync(join(committedDir, d, 'constraints.md')))
        .sort()
    : []
  const out = [
    '# `npm run bench` results, one set per CPU kind',
    '',
    'Written by `npm run bench -- --update` (a plain `npm run bench` writes to `target/bench/` only). Each directory of',
    '`bench/results/` holds the full reports of one CPU kind; below, the header and the headline table of each.',
    'Ratios are comparable within one run only; absolute times move ±10–20% between runs on these shared VMs.',
    '',
  ]
  for (const kind of kinds) {
    const text = readFileSync(join(committedDir, kind, 'constraints.md'), 'utf8')
    const header = text.split('\n## ')[0]!.split('\n').slice(1).join('\n').trim()
    const over = text.match(/\n## Over the bound[^\n]*\n([\s\S]*?)(?=\n## )/)
    const files = readdirSync(join(committedDir, kind)).sort()
    out.push(`## ${kind}`, '', header, '')
    if (over) out.push('Over the bound (every slice rescaled on every call):', '', over[1]!.trim(), '')
    out.push(`Files: ${files.map((f) => `[${f}](results/${kind}/${f})`).join(', ')}.`, '')
  }
  const path = join(benchDir, 'RESULTS.md')
  writeAtomically(path, out.join('\n'))
  return path
}

/** Standard normal float32 values from a fixed seed (an LCG and Box–Muller): the same on every run. */
export function gaussian(len: number, seed: number): Float32Array {
  let state = seed >>> 0
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return (state + 0.5) / 4294967296
  }
  const out = new Float32Array(len)
  for (let i = 0; i < len; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
  return out
}
