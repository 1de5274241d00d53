// Nothing lost: `normclip apply` killed (SIGKILL) at moments spread over its run leaves, at the
// destination, either the old file or the complete new one — never a mix — and for a tfjs model
// in place, a model.json whose shards are all there and either all old or all new.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openSafetensors } from '../bench/safetensors'

const root = join(__dirname, '..')
const child = join(__dirname, 'support', 'files-rss.ts')
const scratch = mkdtempSync(join(tmpdir(), 'normclip-kill-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')

/** float32 values in ±1 from a fixed generator. */
function floats(count: number, seed: number): Buffer {
  const values = new Float32Array(count)
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0
    values[i] = seed / 2 ** 31 - 1
  }
  return Buffer.from(values.buffer)
}

function writeSafetensors(path: string, tensors: number, rows: number, cols: number): void {
  const bytes = rows * cols * 4
  const header: Record<string, unknown> = {}
  for (let i = 0; i < tensors; i++) header[`layer${i}.weight`] = { dtype: 'F32', shape: [rows, cols], data_offsets: [i * bytes, (i + 1) * bytes] }
  const { fd } = openSafetensors(path, header)
  const data = floats(rows * cols, 7)
  for (let i = 0; i < tensors; i++) writeSync(fd, data)
  closeSync(fd)
}

function runToEnd(args: string[]): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, ...args], { encoding: 'utf8', cwd: root })
  if (r.status !== 0) throw new Error(r.stderr)
}

/** Starts the child and SIGKILLs it after `ms` (if it is still running); resolves when it is gone. */
function killAfter(args: string[], ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { cwd: root, stdio: 'ignore' })
    const timer = setTimeout(() => p.kill('SIGKILL'), ms)
    p.on('exit', (_code, signal) => {
      clearTimeout(timer)
      resolve(signal === 'SIGKILL')
    })
  })
}

const DELAYS = [300, 700, 1000, 1300, 1600, 2000, 2500, 3200]

describe('killed at any moment: the old or the new, never a mix', () => {
  it('safetensors --in-place', async () => {
    const original = join(scratch, 'original.safetensors')
    writeSafetensors(original, 6, 2048, 2048) // 96 MiB
    const constraint = JSON.stringify({ class_name: 'MaxNorm', config: { max_value: 1, axis: 0 } })
    const done = join(scratch, 'done.safetensors')
    runToEnd(['apply', original, constraint, done])
    const [before, after] = [sha(original), sha(done)]
    expect(after).not.toBe(before)
    let killed = 0
    for (const ms of DELAYS) {
      const dir = mkdtempSync(join(scratch, 'run-'))
      const path = join(dir, 'model.safetensors')
      cpSync(original, path)
      killed += Number(await killAfter(['apply', path, constraint, '--in-place'], ms))
      expect([before, after]).toContain(sha(path))
      // At most a temporary file beside it, never another name.
      for (const f of readdirSync(dir)) expect(f === 'model.safetensors' || /^\.model\.safetensors\.normclip-\d+-[0-9a-f]+\.tmp$/.test(f)).toBe(true)
    }
    expect(killed).toBeGreaterThan(0) // some runs were really interrupted
  }, 300_000)

  it('a tfjs model --in-place: model.json names shards that exist, all old or all new', async () => {
    const original = join(scratch, 'tfjs')
    cpSync(join(__dirname, 'fixtures', 'files', 'tfjs-model'), original, { recursive: true })
    // A larger kernel than the fixture's, so the write takes long enough to be interrupted.
    const json = JSON.parse(readFileSync(join(original, 'model.json'), 'utf8')) as {
      modelTopology: { config: { layers: { config: Record<string, unknown> }[] } }
      weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[]
    }
    json.weightsManifest = [{ paths: ['weights.bin'], weights: [{ name: 'big/kernel', shape: [4096, 4096], dtype: 'float32' }] }]
    json.modelTopology.config.layers = [
      { class_name: 'Dense', config: { name: 'big', units: 4096, kernel_constraint: { class_name: 'MaxNorm', config: { max_value: 1, axis: 0 } } } },
    ] as never
    writeFileSync(join(original, 'model.json'), JSON.stringify(json))
    writeFileSync(join(original, 'weights.bin'), floats(4096 * 4096, 3))
    const oldShard = sha(join(original, 'weights.bin'))
    const done = join(scratch, 'tfjs-done')
    runToEnd(['apply', original, 'null', done])
    const newShard = sha(join(done, 'weights.bin'))
    let killed = 0
    for (const ms of DELAYS) {
      const dir = mkdtempSync(join(scratch, 'run-'))
      cpSync(original, dir, { recursive: true })
      killed += Number(await killAfter(['apply', dir, 'null', '--in-place'], ms))
      const model = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] }
      const shard = join(dir, model.weightsManifest[0]!.paths[0]!)
      expect(existsSync(shard)).toBe(true)
      expect([oldShard, newShard]).toContain(sha(shard))
    }
    expect(killed).toBeGreaterThan(0)
  }, 300_000)
})
