// A safetensors file over 4 GiB, generated in a temporary folder: `normclip apply` and `inspect`
// run on it in a fresh process each, whose peak RSS must stay under 256 MB (the file is never
// loaded whole: tensors are read, constrained and written in chunks). Skipped, with a message,
// when the disk lacks room for the file and its output.
import { spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statfsSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openSafetensors } from '../bench/safetensors'

const root = join(__dirname, '..')
const GiB = 2 ** 30
const dirBase = process.env['NORMCLIP_BIG_FILE_DIR'] ?? tmpdir()

function freeBytes(dir: string): number {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

/** Writes the file; returns the offset of the last (small, unconstrained) tensor. */
function makeBigFile(path: string): { tailOffset: number; tailBytes: number } {
  // bfloat16 [262144, 4096] (2 GiB) and float32 [32768, 16384] (2 GiB), both with their leading
  // axis reduced by MaxNorm(axis 0), the case that needs the two-pass chunking; then a small
  // float32 tensor past 4 GiB that must come out bit-identical.
  const tensors = {
    'embed.weight': { dtype: 'BF16', shape: [262144, 4096], data_offsets: [0, 2 * GiB] },
    'proj.weight': { dtype: 'F32', shape: [32768, 16384], data_offsets: [2 * GiB, 4 * GiB] },
    'head.bias': { dtype: 'F32', shape: [1024], data_offsets: [4 * GiB, 4 * GiB + 4096] },
  }
  const { fd, dataStart } = openSafetensors(path, tensors)
  const block = new Float32Array(2 ** 24) // 64 MiB of values in [-0.05, 0.05)
  let seed = 12345
  for (let i = 0; i < block.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0
    block[i] = (seed / 2 ** 32 - 0.5) * 0.1
  }
  const bytes = Buffer.from(block.buffer)
  // bfloat16: the top halves of the same floats (the low halves, read as bfloat16, would hold NaNs).
  const halves = new Uint16Array(block.length)
  const words = new Uint32Array(block.buffer)
  for (let i = 0; i < block.length; i++) halves[i] = words[i]! >>> 16
  const half = Buffer.from(halves.buffer)
  for (let left = 2 * GiB; left > 0; left -= half.length) writeSync(fd, half, 0, Math.min(left, half.length))
  for (let left = 2 * GiB + 4096; left > 0; left -= bytes.length) writeSync(fd, bytes, 0, Math.min(left, bytes.length))
  closeSync(fd)
  return { tailOffset: dataStart + 4 * GiB, tailBytes: 4096 }
}

function run(...args: string[]): {
  maxRssBytes: number
  ms: number
  weights?: { name: string; exceeding: number; max: number | null; nan: number }[]
  changes?: unknown
} {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'support', 'files-rss.ts'), ...args], {
    encoding: 'utf8',
    cwd: root,
    maxBuffer: 1 << 24,
  })
  if (r.status !== 0) throw new Error(`files-rss.ts ${args[0]} failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as ReturnType<typeof run>
}

function bytesAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r')
  const buf = Buffer.alloc(length)
  readSync(fd, buf, 0, length, offset)
  closeSync(fd)
  return buf
}

describe('a safetensors file over 4 GiB', () => {
  it('apply and inspect stay under 256 MB of RSS; the result is constrained, the rest bit-identical', async (ctx) => {
    const needed = 2 * (4 * GiB + 8192) + GiB
    const free = freeBytes(dirBase)
    if (free < needed) {
      console.warn(
        `skipping the 4 GiB file test: ${(free / GiB).toFixed(1)} GiB free in ${dirBase}, it needs ${(needed / GiB).toFixed(1)} (set NORMCLIP_BIG_FILE_DIR)`,
      )
      return ctx.skip()
    }
    const dir = mkdtempSync(join(dirBase, 'normclip-big-'))
    try {
      const input = join(dir, 'big.safetensors')
      const out = join(dir, 'out.safetensors')
      const { tailOffset, tailBytes } = makeBigFile(input)
      const constraint = JSON.stringify({ class_name: 'MaxNorm', config: { max_value: 0.5, axis: 0 } })
      const applied = run('apply', input, constraint, out)
      console.info(`4 GiB apply: ${applied.ms} ms, peak RSS ${(applied.maxRssBytes / 2 ** 20).toFixed(0)} MiB`)
      expect(applied.maxRssBytes).toBeLessThan(256e6)
      const inspected = run('inspect', out, constraint)
      console.info(`4 GiB inspect: ${inspected.ms} ms, peak RSS ${(inspected.maxRssBytes / 2 ** 20).toFixed(0)} MiB`)
      expect(inspected.maxRssBytes).toBeLessThan(256e6)
      const byName = new Map(inspected.weights!.map((w) => [w.name, w]))
      for (const name of ['embed.weight', 'proj.weight']) {
        expect(byName.get(name)).toMatchObject({ exceeding: 0, nan: 0 })
        expect(byName.get(name)!.max!).toBeGreaterThan(0.49)
      }
      expect(bytesAt(out, tailOffset, tailBytes).equals(bytesAt(input, tailOffset, tailBytes))).toBe(true)
      expect(bytesAt(out, 0, 200).equals(bytesAt(input, 0, 200))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 900_000)
})
