// Shared by `normclip inspect`, `apply` and `check`: options, concurrency, progress, output.
import { availableParallelism } from 'node:os'
import { writeFileSync } from 'node:fs'
import { UsageError } from './command'
import type { Axis } from '../constraints'
import { WeightFileError } from '../files/errors'
import type { ModelReport } from '../files/inspect'
import { formatHtml } from '../files/report'

export interface FileOptions {
  paths: string[]
  json: boolean
  norms: boolean
  html?: string
  constraint?: string
  match?: string
  axis?: Axis
  out?: string
  inPlace: boolean
  dequantize: boolean
  quiet: boolean
}

export const EXIT_CODES = `Exit status:
  0  done (check: every weight within its constraint)
  1  check only: a weight breaks its constraint or holds NaN/Inf
  2  a file could not be read or written (truncated, a header that lies, bad JSON, a missing
     shard, an unsupported dtype, a read-only destination, a full disk, …) or a usage error;
     nothing was written
`

export const COMMON_OPTIONS = `  --constraint C  a constraint for the weights --match selects, instead of what their layers
                  declare: an id ('max_norm') or a Keras/tfjs dict as JSON,
                  '{"class_name":"MaxNorm","config":{"max_value":3,"axis":-1}}'
  --match REGEX   which weights --constraint is for (default: every floating-point weight)
  --json          the report as JSON on stdout
  --html FILE     a one-page report with each constrained weight's norm histogram
  --quiet         no progress bar
`

function parseAxis(text: string): Axis {
  const t = text.trim()
  if (t === 'all' || t === 'null' || t === 'none') return null
  const list = t
    .replace(/^\[|\]$/g, '')
    .split(',')
    .filter((s) => s.trim() !== '')
  const numbers = list.map((s) => Number(s))
  if (numbers.length === 0 || numbers.some((n) => !Number.isInteger(n)))
    throw new UsageError(`--axis: expected an integer, a list like 0,1,2 or 'all', got '${text}'`)
  return numbers.length === 1 && !t.startsWith('[') ? numbers[0]! : numbers
}

export function parseFileOptions(args: string[], allowed: readonly string[]): FileOptions {
  const o: FileOptions = { paths: [], json: false, norms: false, inPlace: false, dequantize: false, quiet: false }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const value = (): string => {
      const v = args[++i]
      if (v === undefined) throw new UsageError(`${arg} needs a value`)
      return v
    }
    if (!arg.startsWith('--')) {
      o.paths.push(arg)
      continue
    }
    if (!allowed.includes(arg)) throw new UsageError(`unknown option '${arg}'`)
    switch (arg) {
      case '--json':
        o.json = true
        break
      case '--norms':
        o.norms = true
        break
      case '--quiet':
        o.quiet = true
        break
      case '--in-place':
        o.inPlace = true
        break
      case '--dequantize':
        o.dequantize = true
        break
      case '--html':
        o.html = value()
        break
      case '--constraint':
        o.constraint = value()
        break
      case '--match':
        o.match = value()
        try {
          new RegExp(o.match)
        } catch (error) {
          throw new UsageError(`--match: ${(error as Error).message}`)
        }
        break
      case '--axis':
        o.axis = parseAxis(value())
        break
      case '--out':
        o.out = value()
        break
    }
  }
  if (o.paths.length === 0) throw new UsageError('no file given')
  return o
}

/** A progress bar over all files' bytes, on a terminal only. */
export async function withProgress<T>(quiet: boolean, run: (onProgress?: (file: number, done: number, total: number) => void) => Promise<T>): Promise<T> {
  if (quiet || !process.stderr.isTTY) return run(undefined)
  const { SingleBar, Presets } = await import('cli-progress')
  const bar = new SingleBar(
    { stream: process.stderr, format: ' {bar} {percentage}% | {value}/{total} MB | ETA {eta}s', hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  )
  const done = new Map<number, number>()
  const totals = new Map<number, number>()
  bar.start(1, 0)
  try {
    return await run((file, d, t) => {
      done.set(file, d)
      totals.set(file, t)
      const mb = (n: number): number => Math.round(n / 1e5) / 10
      bar.setTotal(Math.max(0.1, mb([...totals.values()].reduce((a, b) => a + b, 0))))
      bar.update(mb([...done.values()].reduce((a, b) => a + b, 0)))
    })
  } finally {
    bar.stop()
  }
}

/** Runs `task` on every path, a few at a time; a bad file fails the whole call with its message. */
export async function eachFile<T>(paths: string[], task: (path: string, index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(paths.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const index = next++
      results[index] = await task(paths[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(paths.length, Math.max(1, availableParallelism())) }, worker))
  return results
}

/** Prints a WeightFileError and returns 2; rethrows anything else. */
export function fileFailure(error: unknown, command: string): number {
  if (error instanceof WeightFileError) {
    process.stderr.write(`normclip ${command}: ${error.message}\n`)
    return 2
  }
  throw error
}

export function writeHtml(file: string | undefined, reports: ModelReport[]): void {
  if (file === undefined) return
  try {
    writeFileSync(file, formatHtml(reports))
  } catch (error) {
    throw new WeightFileError('io', file, `cannot write the report: ${(error as Error).message}`)
  }
}
