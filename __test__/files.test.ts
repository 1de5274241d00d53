// Weight files end to end: fixtures written by the real writers (scripts/file-fixtures/), the CLI
// and the API on them, the result read back by the writers' own libraries (Python safetensors /
// NumPy through scripts/file-fixtures/verify.py; TensorFlow.js' own weight decoding), and every
// bad-file case with the original bytes checked unchanged and no output left behind.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import { main } from '../src/cli/index'
import { constrainModel, inspectModel, WeightFileError } from '../src'

const root = join(__dirname, '..')
const fixtures = join(__dirname, 'fixtures', 'files')
const scratch = mkdtempSync(join(tmpdir(), 'normclip-files-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs `normclip …` in this process; returns its exit code and output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk)
    return true
  })
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk)
    return true
  })
  try {
    const code = await main(args)
    return { code, stdout, stderr }
  } finally {
    out.mockRestore()
    err.mockRestore()
  }
}

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')
let n = 0
const fresh = (name: string): string => {
  const dir = join(scratch, `case${n++}`)
  mkdirSync(dir)
  return join(dir, name)
}

// The Python readers, in the venv scripts/file-fixtures/venv.sh makes (pinned requirements).
let python = false
beforeAll(() => {
  const r = spawnSync('bash', [join(root, 'scripts/file-fixtures/venv.sh')], { encoding: 'utf8' })
  python = r.status === 0
  if (!python) {
    if (process.env['CI']) throw new Error(`scripts/file-fixtures/venv.sh failed: ${r.stderr}`)
    console.warn(`skipping the Python read-back checks: scripts/file-fixtures/venv.sh failed (${r.stderr.trim().split('\n').pop()})`)
  }
}, 300_000)

// Keras 3 itself (with JAX on the CPU), in its own venv (scripts/file-fixtures/venv.sh --keras),
// made once on first use and kept in ~/.cache/normclip.
let keras: boolean | undefined
function kerasPython(): boolean {
  if (keras === undefined) {
    const r = spawnSync('bash', [join(root, 'scripts/file-fixtures/venv.sh'), '--keras'], { encoding: 'utf8' })
    keras = r.status === 0
    if (!keras && process.env['CI']) throw new Error(`scripts/file-fixtures/venv.sh --keras failed: ${r.stderr}`)
  }
  return keras
}

function verify(original: string, result: string, constrained: Record<string, unknown>): { ok: boolean; problems: string[]; checked: Record<string, string> } {
  const r = spawnSync(
    'bash',
    [join(root, 'scripts/file-fixtures/venv.sh'), 'python', join(root, 'scripts/file-fixtures/verify.py'), original, result, JSON.stringify({ constrained })],
    {
      encoding: 'utf8',
    },
  )
  if (r.stdout.trim() === '') throw new Error(`verify.py: ${r.stderr}`)
  return JSON.parse(r.stdout) as { ok: boolean; problems: string[]; checked: Record<string, string> }
}

const maxNorm3 = { class_name: 'MaxNorm', config: { max_value: 3, axis: 0 } }

/** A zip's entries from its central directory: name, method and the entry's raw (compressed) bytes. */
function zipEntriesOf(zip: Buffer): { name: string; method: number; raw: Buffer }[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  const out: { name: string; method: number; raw: Buffer }[] = []
  let at = zip.readUInt32LE(end + 16)
  for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
    const nameLength = zip.readUInt16LE(at + 28)
    const local = zip.readUInt32LE(at + 42)
    const data = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
    out.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      method: zip.readUInt16LE(at + 10),
      raw: zip.subarray(data, data + zip.readUInt32LE(at + 20)),
    })
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32)
  }
  return out
}

/** Python: a 8 MiB float32 kernel deflated by np.savez_compressed, then a stored entry appended by zipfile. */
const MIXED_NPZ = `
import io, sys, zipfile
import numpy as np
rng = np.random.default_rng(3)
np.savez_compressed(sys.argv[1], big=(rng.standard_normal((1024, 2048)) * 0.1).astype(np.float32), ints=np.arange(100))
buf = io.BytesIO()
np.save(buf, rng.standard_normal((30, 4)).astype(np.float32))
with zipfile.ZipFile(sys.argv[1], "a") as z:
    z.writestr("stored.npy", buf.getvalue(), compress_type=zipfile.ZIP_STORED)
`

describe("normclip apply: read back by the writers' libraries", () => {
  it('safetensors (float32, float16, float64): constrained norms within the bound, the rest bit-identical, header and metadata kept', async () => {
    const out = fresh('out.safetensors')
    const input = join(fixtures, 'model.safetensors')
    const before = sha(input)
    const r = await cli('apply', input, '--out', out, '--constraint', JSON.stringify(maxNorm3), '--match', 'kernel$|^half$|^double$')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/dense\/kernel: MaxNorm, 6 of 8 units rescaled/)
    expect(sha(input)).toBe(before)
    // The header (8-byte length + JSON) is byte for byte the original's.
    const headerLength = Number(readFileSync(input).readBigUInt64LE(0)) + 8
    expect(readFileSync(out).subarray(0, headerLength).equals(readFileSync(input).subarray(0, headerLength))).toBe(true)
    if (!python) return
    const tol = { float32: 1e-6, float16: 1e-3, float64: 1e-12 }
    const v = verify(input, out, {
      'dense/kernel': { ...maxNorm3, tolerance: tol.float32 },
      'conv/kernel': { ...maxNorm3, tolerance: tol.float32 },
      half: { ...maxNorm3, tolerance: tol.float16 },
      double: { ...maxNorm3, tolerance: tol.float64 },
    })
    expect(v.problems).toEqual([])
    expect(v.checked).toMatchObject({ 'dense/bias': 'bit-identical', token_ids: 'bit-identical' })
  })

  it('bfloat16 is computed in float32 and written back in bfloat16', async () => {
    const out = fresh('bf16.safetensors')
    const input = join(fixtures, 'bf16.safetensors')
    const c = { class_name: 'MaxNorm', config: { max_value: 3, axis: -1 } }
    expect(await cli('apply', input, '--out', out, '--constraint', JSON.stringify(c), '--match', '^embed')).toMatchObject({ code: 0 })
    const report = await inspectModel(out, { constraint: c, match: /^embed/ })
    expect(report.weights.find((w) => w.name === 'embed.weight')).toMatchObject({ dtype: 'bfloat16', exceeding: 0 })
    if (!python) return
    const v = verify(input, out, { 'embed.weight': { ...c, tolerance: 4e-3 } })
    expect(v.problems).toEqual([])
    expect(v.checked['proj.weight']).toBe('bit-identical')
  })

  it('npz (float32, Fortran-order float64, big-endian float32): entries and their CRCs rewritten, ints untouched', async () => {
    const out = fresh('arrays.npz')
    const input = join(fixtures, 'arrays.npz')
    const c = { class_name: 'UnitNorm', config: { axis: 0 } }
    const r = await cli('apply', input, '--out', out, '--constraint', JSON.stringify(c))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/fortran: UnitNorm, 5 of 5 units rescaled/)
    if (!python) return
    // np.load checks each entry's CRC-32 as it reads it.
    const v = verify(input, out, { kernel: { ...c, tolerance: 1e-6 }, fortran: { ...c, tolerance: 1e-12 }, bigendian: { ...c, tolerance: 1e-6 } })
    expect(v.problems).toEqual([])
    expect(v.checked['ints']).toBe('bit-identical')
  })

  it('compressed npz (np.savez_compressed): constrained entries deflated again, untouched entries copied byte for byte', async () => {
    const out = fresh('compressed.npz')
    const input = join(fixtures, 'compressed.npz')
    const before = sha(input)
    const c = { class_name: 'MaxNorm', config: { max_value: 3, axis: 0 } }
    const r = await cli('apply', input, '--out', out, '--constraint', JSON.stringify(c), '--match', '^(kernel|fortran)$')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/kernel: MaxNorm, 7 of 7 units rescaled/)
    expect(r.stdout).toMatch(/fortran: MaxNorm, 4 of 5 units rescaled/)
    expect(sha(input)).toBe(before)
    const entriesIn = zipEntriesOf(readFileSync(input))
    const entriesOut = zipEntriesOf(readFileSync(out))
    expect(entriesOut.map((e) => [e.name, e.method])).toEqual(entriesIn.map((e) => [e.name, 8]))
    for (const name of ['bias.npy', 'ints.npy']) {
      expect(entriesOut.find((e) => e.name === name)!.raw.equals(entriesIn.find((e) => e.name === name)!.raw), name).toBe(true)
    }
    expect((await cli('check', input, '--constraint', JSON.stringify(c), '--match', '^(kernel|fortran)$')).code).toBe(1)
    expect((await cli('check', out, '--constraint', JSON.stringify(c), '--match', '^(kernel|fortran)$')).code).toBe(0)
    if (!python) return
    // np.load inflates each entry and checks its CRC-32.
    const v = verify(input, out, { kernel: { ...c, tolerance: 1e-6 }, fortran: { ...c, tolerance: 1e-12 } })
    expect(v.problems).toEqual([])
    expect(v.checked).toMatchObject({ bias: 'bit-identical', ints: 'bit-identical' })
  })

  it('compressed npz: a constrained entry its constraint leaves as it was keeps its compressed bytes', async () => {
    const out = fresh('compliant.npz')
    const input = join(fixtures, 'compressed.npz')
    // The float32 kernel's norms are all >= 4: Keras' factor n / (1e-7 + n) rounds to exactly 1 in
    // float32, so no element changes (in float64, as `fortran` is, it would: 1 - 2.5e-8).
    const c = { class_name: 'MaxNorm', config: { max_value: 1e6, axis: 0 } }
    const r = await cli('apply', input, '--out', out, '--constraint', JSON.stringify(c), '--match', '^kernel$')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/kernel: MaxNorm, 0 of 7 units rescaled/)
    const entriesIn = zipEntriesOf(readFileSync(input))
    const entriesOut = zipEntriesOf(readFileSync(out))
    expect(entriesOut.map((e) => e.name)).toEqual(entriesIn.map((e) => e.name))
    for (const [i, e] of entriesOut.entries()) expect(e.raw.equals(entriesIn[i]!.raw), e.name).toBe(true)
  })

  it('a large deflated entry beside a stored one (np.savez_compressed, then zipfile appends a stored entry), in place', async (ctx) => {
    if (!python) return ctx.skip('needs the Python venv to write the file with NumPy')
    const path = fresh('mixed.npz')
    const made = spawnSync('bash', [join(root, 'scripts/file-fixtures/venv.sh'), 'python', '-c', MIXED_NPZ, path], { encoding: 'utf8' })
    expect(made.status, made.stderr).toBe(0)
    const original = join(path, '..', 'original.npz')
    cpSync(path, original)
    const c = { class_name: 'MaxNorm', config: { max_value: 3, axis: 0 } }
    const r = await cli('apply', path, '--in-place', '--constraint', JSON.stringify(c), '--match', '^(big|stored)$')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/big: MaxNorm, \d+ of 2048 units rescaled/)
    expect(r.stdout).toMatch(/stored: MaxNorm, 4 of 4 units rescaled/)
    expect(readdirSync(join(path, '..')).sort()).toEqual(['mixed.npz', 'original.npz'])
    expect(zipEntriesOf(readFileSync(path)).map((e) => [e.name, e.method])).toEqual([
      ['big.npy', 8],
      ['ints.npy', 8],
      ['stored.npy', 0],
    ])
    const v = verify(original, path, { big: { ...c, tolerance: 1e-6 }, stored: { ...c, tolerance: 1e-6 } })
    expect(v.problems).toEqual([])
    expect(v.checked['ints']).toBe('bit-identical')
  })

  it('npy in place: replaced atomically, nothing else left in the folder', async () => {
    const path = fresh('kernel.npy')
    cpSync(join(fixtures, 'kernel.npy'), path)
    const c = { class_name: 'MinMaxNorm', config: { min_value: 4, max_value: 4.5, rate: 1, axis: 0 } }
    const r = await cli('apply', path, '--in-place', '--constraint', JSON.stringify(c))
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(join(path, '..'))).toEqual(['kernel.npy'])
    if (!python) return
    expect(verify(join(fixtures, 'kernel.npy'), path, { array: { ...c, tolerance: 1e-6 } }).problems).toEqual([])
  })
})

/** A tfjs model read by TensorFlow.js itself (its own weight decoding), from any folder. */
async function loadTfjs(dir: string): Promise<Map<string, tf.Tensor>> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] }
  const weights = new Map<string, tf.Tensor>()
  for (const group of json.weightsManifest) {
    const buffers = group.paths.map((p) => readFileSync(join(dir, p)))
    const bytes = Buffer.concat(buffers)
    const decoded = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), group.weights)
    for (const [name, t] of Object.entries(decoded)) weights.set(name, t)
  }
  return weights
}

describe('tfjs models (written by tfjs-node model.save)', () => {
  const model = join(fixtures, 'tfjs-model')

  it('inspect reports the declared constraints, per-unit norms, violations and the Conv2D axis mistake', async () => {
    const report = await inspectModel(model)
    const conv = report.weights.find((w) => w.name === 'conv/kernel')!
    expect(conv).toMatchObject({ layer: 'conv', layerClass: 'Conv2D', constraint: { className: 'MaxNorm', source: 'declared' }, axis: 0 })
    expect(conv.axisAdvice).toMatch(/use axis \[0, 1, 2\]/)
    expect(report.weights.find((w) => w.name === 'out/kernel')).toMatchObject({ constraint: { className: 'UnitNorm' }, exceeding: 4 })
    expect(report.weights.find((w) => w.name === 'hidden/bias')).toMatchObject({ constraint: null, violation: false })
    expect(report.violations).toBe(4)
    // `check` fails on it, with the same report.
    expect((await cli('check', model)).code).toBe(1)
  })

  it('apply --out: TensorFlow.js decodes the result, constrained weights within bounds, others bit-identical; check passes', async () => {
    const out = join(fresh('x'), '..', 'model-out')
    const r = await cli('apply', model, '--out', out)
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(out).sort()).toEqual(['model.json', 'weights.bin'])
    expect(readFileSync(join(out, 'model.json'))).toEqual(readFileSync(join(model, 'model.json')))
    const before = await loadTfjs(model)
    const after = await loadTfjs(out)
    const norms = (t: tf.Tensor, axis: number[]): number[] => Array.from(tf.tidy(() => tf.sqrt(tf.sum(tf.square(t), axis))).dataSync())
    expect(Math.max(...norms(after.get('conv/kernel')!, [0]))).toBeLessThanOrEqual(2 * (1 + 1e-6))
    expect(Math.max(...norms(after.get('hidden/kernel')!, [0]))).toBeLessThanOrEqual(1.5 * (1 + 1e-6))
    for (const n of norms(after.get('out/kernel')!, [0])) expect(n).toBeCloseTo(1, 5)
    expect(Math.min(...after.get('conv/bias')!.dataSync())).toBeGreaterThanOrEqual(0)
    for (const name of ['hidden/bias', 'out/bias']) expect(after.get(name)!.dataSync()).toEqual(before.get(name)!.dataSync())
    expect((await cli('check', out)).code).toBe(0)
  })

  it('apply --in-place: new shard names, model.json renamed last, old shards removed', async () => {
    const dir = join(fresh('x'), '..', 'model')
    cpSync(model, dir, { recursive: true })
    const r = await cli('apply', dir, '--in-place')
    expect(r.code, r.stderr).toBe(0)
    const files = readdirSync(dir).sort()
    expect(files).toHaveLength(2)
    expect(files[0]).toBe('model.json')
    expect(files[1]).toMatch(/^weights\.nc-[0-9a-f]{8}\.bin$/)
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] }
    expect(json.weightsManifest[0]!.paths).toEqual([files[1]])
    expect((await cli('check', dir)).code).toBe(0)
  })
})

/**
 * The fixture with hidden/kernel quantized to uint8 the way the tensorflowjs converter does it
 * (`q = round((v - min) / scale)`, `scale = (max - min) / 255`; manifest dtype stays float32 with a
 * `quantization` entry). Made here from the tfjs-node fixture: the converter is a Python package
 * with TensorFlow, not installed for these tests.
 */
function quantizedModel(dir: string): void {
  cpSync(join(fixtures, 'tfjs-model'), dir, { recursive: true })
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: Record<string, unknown>[] }[] }
  const group = json.weightsManifest[0]!
  const bin = readFileSync(join(dir, 'weights.bin'))
  const parts: Buffer[] = []
  let at = 0
  for (const w of group.weights) {
    const count = (w['shape'] as number[]).reduce((a, b) => a * b, 1)
    const bytes = bin.subarray(at, at + count * 4)
    at += count * 4
    if (w['name'] !== 'hidden/kernel') {
      parts.push(bytes)
      continue
    }
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
    const min = Math.min(...values)
    const scale = (Math.max(...values) - min) / 255
    parts.push(Buffer.from(Uint8Array.from(values, (v) => Math.round((v - min) / scale))))
    w['quantization'] = { dtype: 'uint8', scale, min }
  }
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat(parts))
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json))
}

describe('tfjs-quantized weights', () => {
  it('are read dequantized, refused for writing, and written as float32 with --dequantize', async () => {
    const dir = join(fresh('x'), '..', 'quantized')
    quantizedModel(dir)
    const decoded = await loadTfjs(dir) // tfjs' own dequantization
    const report = await inspectModel(dir)
    const hidden = report.weights.find((w) => w.name === 'hidden/kernel')!
    expect(hidden.dtype).toBe('uint8 (quantized)')
    const expected = Array.from(tf.tidy(() => tf.sqrt(tf.sum(tf.square(decoded.get('hidden/kernel')!), 0))).dataSync())
    expect(hidden.norms!.max).toBeCloseTo(Math.max(...expected), 4)
    expect(hidden.norms!.min).toBeCloseTo(Math.min(...expected), 4)
    const before = snapshot(dir)
    const refused = await cli('apply', dir, '--out', join(dir, '..', 'q-out'))
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/hidden\/kernel" is quantized \(uint8 \(quantized\)\).*--dequantize/)
    expect(existsSync(join(dir, '..', 'q-out'))).toBe(false)
    expect(snapshot(dir)).toEqual(before)
    const out = join(dir, '..', 'dq-out')
    const r = await cli('apply', dir, '--out', out, '--dequantize')
    expect(r.code, r.stderr).toBe(0)
    const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: Record<string, unknown>[] }[] }
    const entry = json.weightsManifest[0]!.weights.find((w) => w['name'] === 'hidden/kernel')!
    expect(entry).toMatchObject({ dtype: 'float32' })
    expect(entry['quantization']).toBeUndefined()
    const after = await loadTfjs(out)
    const norms = Array.from(tf.tidy(() => tf.sqrt(tf.sum(tf.square(after.get('hidden/kernel')!), 0))).dataSync())
    expect(Math.max(...norms)).toBeLessThanOrEqual(1.5 * (1 + 1e-6))
    for (const name of ['hidden/bias', 'out/bias']) expect(after.get(name)!.dataSync()).toEqual(decoded.get(name)!.dataSync())
    expect((await cli('check', out)).code).toBe(0)
  })
})

describe('Keras 3 .keras and legacy .h5 (written by Keras 3 model.save)', () => {
  // The datasets of each constrained weight, as Keras lays them out in each format.
  const layouts = {
    'keras-model.keras': { conv: 'layers/conv2d/vars', hidden: 'layers/dense/vars', out: 'layers/dense_1/vars', lstm: 'layers/lstm/cell/vars' },
    'keras-model.h5': {
      conv: 'model_weights/conv/sequential/conv',
      hidden: 'model_weights/hidden/sequential/hidden',
      out: 'model_weights/out/sequential/out',
      lstm: 'model_weights/lstm/sequential/lstm/lstm_cell',
    },
  }
  for (const [file, at] of Object.entries(layouts)) {
    it(`${file}: declared constraints read from the config, applied, read back by h5py with the rest bit-identical`, async () => {
      const input = join(fixtures, file)
      const report = await inspectModel(input)
      expect(report.weights.find((w) => w.name === 'lstm/recurrent_kernel')).toMatchObject({
        layerClass: 'LSTM',
        constraint: { className: 'UnitNorm' },
        exceeding: 20,
      })
      expect(report.weights.find((w) => w.name === 'conv/kernel')!.axisAdvice).toMatch(/use axis \[0, 1, 2\]/)
      expect((await cli('check', input)).code).toBe(1)
      const out = fresh(file)
      const before = sha(input)
      const r = await cli('apply', input, '--out', out)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/hidden\/kernel: MaxNorm, 3 of 8 units rescaled/)
      expect(sha(input)).toBe(before)
      expect((await cli('check', out)).code).toBe(0)
      if (!python) return
      const keras = file.endsWith('.keras')
      const ds = (layer: keyof typeof at, index: number, name: string): string => (keras ? `${at[layer]}/${index}` : `${at[layer]}/${name}`)
      const tol = 1e-6
      const v = verify(input, out, {
        [ds('conv', 0, 'kernel')]: { class_name: 'MaxNorm', config: { max_value: 2, axis: 0 }, tolerance: tol },
        [ds('conv', 1, 'bias')]: { class_name: 'NonNeg', tolerance: tol },
        [ds('hidden', 0, 'kernel')]: { class_name: 'MaxNorm', config: { max_value: 1.5, axis: 0 }, tolerance: tol },
        [ds('out', 0, 'kernel')]: { class_name: 'UnitNorm', config: { axis: 0 }, tolerance: tol },
        [ds('lstm', 1, 'recurrent_kernel')]: { class_name: 'UnitNorm', config: { axis: 0 }, tolerance: tol },
      })
      expect(v.problems).toEqual([])
      expect(v.checked[ds('lstm', 0, 'kernel')]).toBe('bit-identical')
    })

    it(`${file}: the result loaded by Keras 3 itself (keras.saving.load_model): constrained weights within bounds, the rest bit-identical`, async (ctx) => {
      if (!kerasPython()) return ctx.skip('the Keras venv (scripts/file-fixtures/venv.sh --keras) could not be made here')
      const input = join(fixtures, file)
      const out = fresh(file)
      expect((await cli('apply', input, '--out', out)).code).toBe(0)
      const r = spawnSync(
        'bash',
        [join(root, 'scripts/file-fixtures/venv.sh'), '--keras', 'python', join(root, 'scripts/file-fixtures/keras_load.py'), input, out],
        {
          encoding: 'utf8',
        },
      )
      if (r.stdout.trim() === '') throw new Error(`keras_load.py: ${r.stderr}`)
      const v = JSON.parse(r.stdout.trim().split('\n').pop()!) as { problems: string[]; checked: Record<string, string> }
      expect(v.problems).toEqual([])
      // Keras 3 names a legacy .h5's variables under the Sequential's own name.
      const p = file.endsWith('.h5') ? 'sequential/' : ''
      expect(v.checked).toEqual({
        [`${p}conv/kernel`]: 'MaxNorm holds',
        [`${p}conv/bias`]: 'NonNeg holds',
        [`${p}lstm/lstm_cell/kernel`]: 'bit-identical',
        [`${p}lstm/lstm_cell/recurrent_kernel`]: 'UnitNorm holds',
        [`${p}lstm/lstm_cell/bias`]: 'bit-identical',
        [`${p}hidden/kernel`]: 'MaxNorm holds',
        [`${p}hidden/bias`]: 'bit-identical',
        [`${p}out/kernel`]: 'UnitNorm holds',
        [`${p}out/bias`]: 'bit-identical',
      })
    }, 600_000)
  }
})

describe('the CLI', () => {
  it('--json and --html: a machine report and a self-contained page with one SVG per constrained weight', async () => {
    const html = fresh('report.html')
    const r = await cli('inspect', join(fixtures, 'tfjs-model'), '--json', '--html', html)
    expect(r.code, r.stderr).toBe(0)
    const json = JSON.parse(r.stdout) as { format: string; weights: { name: string; unitNorms?: unknown }[] }
    expect(json.format).toBe('tfjs')
    expect(json.weights.every((w) => w.unitNorms === undefined)).toBe(true)
    const page = readFileSync(html, 'utf8')
    expect(page.match(/<svg /g)).toHaveLength(4) // conv/kernel, conv/bias (NonNeg), hidden/kernel, out/kernel
    expect(page).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/)
  })

  it('many files in one call, concurrently, into a folder', async () => {
    const dir = join(fresh('x'), '..', 'many')
    mkdirSync(dir)
    const inputs = ['model.safetensors', 'kernel.npy', 'arrays.npz'].map((f) => join(fixtures, f))
    const r = await cli('apply', ...inputs, '--out', dir, '--constraint', 'unit_norm', '--match', 'kernel|array')
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(dir).sort()).toEqual(['arrays.npz', 'kernel.npy', 'model.safetensors'])
  })

  it('--help per command, documented exit codes; unknown options exit 2', async () => {
    for (const command of ['inspect', 'apply', 'check']) {
      const r = await cli(command, '--help')
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/Exit status:/)
    }
    expect((await cli('inspect', '--frobnicate', 'x')).code).toBe(2)
    expect((await cli('apply', join(fixtures, 'kernel.npy'))).code).toBe(2) // neither --out nor --in-place
  })

  it('the API: typed errors naming the file', async () => {
    await expect(inspectModel(join(fixtures, 'no-such.npz'))).rejects.toBeInstanceOf(WeightFileError)
    await expect(inspectModel(join(fixtures, 'no-such.npz'))).rejects.toThrow(/no-such\.npz: cannot read: no such file/)
    await expect(constrainModel(join(fixtures, 'kernel.npy'), { out: join(fixtures, 'kernel.npy') })).rejects.toThrow(/--in-place/)
  })
})

// ---------------------------------------------------------------------------------------------
// Bad files: one clear message naming the file, exit 2, no output, the original unchanged.

function safetensorsWith(header: Record<string, unknown>, data: Buffer, pad = true): Buffer {
  let json = JSON.stringify(header)
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8)
  const length = Buffer.alloc(8)
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  return Buffer.concat([length, Buffer.from(json), data])
}

/** compressed.npz with its first entry (kernel.npy) altered: `central` is its directory record, `data` its deflate stream. */
function alteredCompressed(alter: (b: Buffer, at: { central: number; data: number }) => void): (path: string) => void {
  return (path) => {
    const b = Buffer.from(readFileSync(join(fixtures, 'compressed.npz')))
    const central = b.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]))
    alter(b, { central, data: 30 + b.readUInt16LE(26) + b.readUInt16LE(28) })
    writeFileSync(path, b)
  }
}

const goodHeader = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [16, 32] } }

interface BadCase {
  name: string
  file: string
  /** Writes the bad file at `path` (a file, or a folder for tfjs). */
  make: (path: string) => void
  problem: RegExp
  args?: string[]
}

const badCases: BadCase[] = [
  {
    name: 'truncated safetensors',
    file: 'm.safetensors',
    make: (p) => writeFileSync(p, readFileSync(join(fixtures, 'model.safetensors')).subarray(0, 1000)),
    problem: /do not cover the data section|past the end/,
  },
  {
    name: 'shorter than its header length',
    file: 'm.safetensors',
    make: (p) => writeFileSync(p, Buffer.from([1, 2, 3])),
    problem: /shorter than the 8-byte header length/,
  },
  {
    name: 'a header length past the end',
    file: 'm.safetensors',
    make: (p) => {
      const b = Buffer.from(readFileSync(join(fixtures, 'model.safetensors')))
      b.writeBigUInt64LE(1n << 40n)
      writeFileSync(p, b)
    },
    problem: /header length says \d+ bytes, past the end/,
  },
  {
    name: 'overlapping offsets',
    file: 'm.safetensors',
    make: (p) =>
      writeFileSync(
        p,
        safetensorsWith({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, Buffer.alloc(24)),
      ),
    problem: /overlap another tensor/,
  },
  {
    name: 'offsets out of range',
    file: 'm.safetensors',
    make: (p) =>
      writeFileSync(
        p,
        safetensorsWith(
          { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [16, 32] } },
          Buffer.alloc(20),
        ),
      ),
    problem: /do not cover the data section/,
  },
  {
    name: 'shape × dtype ≠ bytes',
    file: 'm.safetensors',
    make: (p) => writeFileSync(p, safetensorsWith({ ...goodHeader, b: { dtype: 'F32', shape: [5], data_offsets: [16, 32] } }, Buffer.alloc(32))),
    problem: /shape × dtype size differs/,
  },
  {
    name: 'bad JSON in a safetensors header',
    file: 'm.safetensors',
    make: (p) => writeFileSync(p, Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": [1,')])),
    problem: /invalid JSON/,
  },
  {
    name: 'a constraint on an integer tensor (unsupported dtype)',
    file: 'm.safetensors',
    make: (p) => cpSync(join(fixtures, 'model.safetensors'), p),
    problem: /needs a floating-point tensor, got I64/,
    args: ['--constraint', 'max_norm', '--match', 'token_ids'],
  },
  {
    name: 'truncated npy',
    file: 'k.npy',
    make: (p) => writeFileSync(p, readFileSync(join(fixtures, 'kernel.npy')).subarray(0, 600)),
    problem: /truncated: shape \[32, 10\] of <f4 needs 1280 data bytes/,
  },
  {
    name: 'an npy header that lies about the shape',
    file: 'k.npy',
    make: (p) =>
      writeFileSync(p, Buffer.from(readFileSync(join(fixtures, 'kernel.npy')).toString('latin1').replace("'shape': (32, 10)", "'shape': (16, 10)"), 'latin1')),
    problem: /bytes follow the data of shape \[16, 10\]/,
  },
  {
    name: 'a corrupt deflate stream in a compressed npz',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt8(0x07, at.data)), // BFINAL with the reserved block type 3
    problem: /entry "kernel\.npy": corrupt deflate data \(invalid block type\)/,
  },
  {
    name: 'a CRC-32 that does not match the inflated bytes',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt32LE(b.readUInt32LE(at.central + 16) ^ 0x10, at.central + 16)),
    problem: /entry "kernel\.npy": CRC-32 mismatch: the zip directory states 0x[0-9a-f]{8}, the inflated bytes have 0x[0-9a-f]{8}/,
  },
  {
    name: 'an uncompressed size larger than the data',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt32LE(b.readUInt32LE(at.central + 24) + 4, at.central + 24)),
    problem: /entry "kernel\.npy": inflates to 800 bytes, the zip directory states 804/,
  },
  {
    name: 'an uncompressed size smaller than the data',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt32LE(b.readUInt32LE(at.central + 24) - 4, at.central + 24)),
    problem: /entry "kernel\.npy": inflates to more than the 796 bytes the zip directory states/,
  },
  {
    name: 'a compressed size that cuts the deflate stream short',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt32LE(b.readUInt32LE(at.central + 20) - 10, at.central + 20)),
    problem: /entry "kernel\.npy": corrupt deflate data \(unexpected end of file\)/,
  },
  {
    name: 'a compressed size past the end of the deflate stream',
    file: 'c.npz',
    make: alteredCompressed((b, at) => b.writeUInt32LE(b.readUInt32LE(at.central + 20) + 5, at.central + 20)),
    problem: /entry "kernel\.npy": the deflate stream ends after \d+ of the entry's \d+ compressed bytes/,
  },
  {
    name: 'a truncated npz',
    file: 'a.npz',
    make: (p) => writeFileSync(p, readFileSync(join(fixtures, 'arrays.npz')).subarray(0, 900)),
    problem: /not a valid zip archive/,
  },
  {
    name: 'a truncated .keras',
    file: 'm.keras',
    make: (p) => writeFileSync(p, readFileSync(join(fixtures, 'keras-model.keras')).subarray(0, 20000)),
    problem: /not a valid zip archive/,
  },
  { name: 'an .h5 that is not HDF5', file: 'm.h5', make: (p) => writeFileSync(p, Buffer.from('not an HDF5 file at all')), problem: /not a readable HDF5 file/ },
  {
    name: 'bad JSON in model.json',
    file: 'model',
    make: (p) => {
      cpSync(join(fixtures, 'tfjs-model'), p, { recursive: true })
      writeFileSync(join(p, 'model.json'), '{"modelTopology": {')
    },
    problem: /model\.json: bad JSON/,
  },
  {
    name: 'a manifest naming a missing shard',
    file: 'model',
    make: (p) => {
      cpSync(join(fixtures, 'tfjs-model'), p, { recursive: true })
      rmSync(join(p, 'weights.bin'))
    },
    problem: /names a missing shard "weights\.bin"/,
  },
  {
    name: 'a truncated shard',
    file: 'model',
    make: (p) => {
      cpSync(join(fixtures, 'tfjs-model'), p, { recursive: true })
      writeFileSync(join(p, 'weights.bin'), readFileSync(join(p, 'weights.bin')).subarray(0, 5000))
    },
    problem: /its shards hold 5000 \(truncated shard\?\)/,
  },
  {
    name: 'an unsupported tfjs dtype',
    file: 'model',
    make: (p) => {
      cpSync(join(fixtures, 'tfjs-model'), p, { recursive: true })
      const json = JSON.parse(readFileSync(join(p, 'model.json'), 'utf8')) as { weightsManifest: { weights: { dtype: string }[] }[] }
      json.weightsManifest[0]!.weights[1]!.dtype = 'complex64'
      writeFileSync(join(p, 'model.json'), JSON.stringify(json))
    },
    problem: /unsupported dtype "complex64"/,
  },
]

/** Every file below `dir` with its hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const full = join(dir, entry)
    if (statSync(full).isFile()) out[entry] = sha(full)
  }
  return out
}

describe('bad files: exit 2, one message naming the file and the problem, no output, input unchanged', () => {
  for (const c of badCases) {
    it(c.name, async () => {
      const path = fresh(c.file)
      const dir = join(path, '..')
      c.make(path)
      const before = snapshot(dir)
      const outDir = join(dir, 'out')
      mkdirSync(outDir)
      // Scratch space (inflated npz entries) of its own, to see that nothing is left there either.
      const tmp = join(dir, 'tmp')
      mkdirSync(tmp)
      const savedTmp = process.env['TMPDIR']
      process.env['TMPDIR'] = tmp
      try {
        await runBadCase(c, path, outDir)
      } finally {
        if (savedTmp === undefined) delete process.env['TMPDIR']
        else process.env['TMPDIR'] = savedTmp
      }
      expect(readdirSync(tmp)).toEqual([])
      rmSync(tmp, { recursive: true })
      expect(snapshot(dir)).toEqual(before) // the input, and no output (out/ is empty)
      expect(readdirSync(outDir)).toEqual([])
    })
  }
})

async function runBadCase(c: BadCase, path: string, outDir: string): Promise<void> {
  for (const command of ['inspect', 'check', 'apply']) {
    const args = command === 'apply' ? ['--out', join(outDir, c.file)] : []
    const r = await cli(
      command,
      path,
      ...args,
      ...(c.args ?? (command === 'apply' ? ['--constraint', 'unit_norm', '--match', '^(a|b|array|kernel)$|kernel$'] : [])),
    )
    if (c.args !== undefined && command !== 'apply') continue // the case is about applying
    expect(r.code, `${command}: ${r.stderr}`).toBe(2)
    expect(r.stderr).toMatch(c.problem)
    expect(r.stderr).toContain(c.file)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  }
}

/**
 * Runs the CLI in a child process under a file-size limit of `kib` KiB (RLIMIT_FSIZE, `ulimit -f`)
 * with SIGXFSZ ignored, so a write past it fails with EFBIG as on a full disk: no mount needed, and
 * root is held to it too. Scratch space goes to `tmp`, so what is left there can be seen.
 */
function cliLimited(kib: number, tmp: string, ...args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(
    'bash',
    [
      '-c',
      'trap "" XFSZ; ulimit -f "$1"; shift; exec "$@"',
      'limited',
      String(kib),
      process.execPath,
      '--import',
      'tsx',
      join(root, 'src/cli/index.ts'),
      ...args,
    ],
    { encoding: 'utf8', cwd: root, env: { ...process.env, TMPDIR: tmp } },
  )
  return { code: r.status, stderr: r.stderr }
}

/** Python: a small deflated kernel beside 200 KB of incompressible bytes that no constraint touches. */
const PADDED_NPZ = `
import sys, zipfile
import numpy as np
rng = np.random.default_rng(4)
np.savez_compressed(sys.argv[1], kernel=rng.standard_normal((8, 4)).astype(np.float32))
with zipfile.ZipFile(sys.argv[1], "a") as z:
    z.writestr("notes.bin", rng.bytes(200_000), compress_type=zipfile.ZIP_STORED)
`

describe('destinations that refuse, without a mount (any user, any file system): exit 2, one message naming the file, nothing left', () => {
  // `kib`: below the output's size (the tfjs fixture's shard is 14.5 KB).
  const cases: { name: string; make: (dir: string) => string; args: string[]; output: string; kib: number }[] = [
    {
      name: 'safetensors (the native writer)',
      make: (dir) => {
        const input = join(dir, 'big.safetensors')
        const data = Buffer.alloc(256 * 1024, 1)
        writeFileSync(input, safetensorsWith({ w: { dtype: 'F32', shape: [256, 256], data_offsets: [0, data.length] } }, data))
        return input
      },
      args: ['--constraint', 'max_norm'],
      output: 'out.safetensors',
      kib: 16,
    },
    {
      name: 'a tfjs model (a folder of model.json and shards)',
      make: (dir) => {
        cpSync(join(fixtures, 'tfjs-model'), join(dir, 'model'), { recursive: true })
        return join(dir, 'model')
      },
      args: [],
      output: 'model-out',
      kib: 8,
    },
    {
      name: 'a compressed npz (the archive written entry by entry)',
      make: (dir) => {
        const input = join(dir, 'padded.npz')
        const made = spawnSync('bash', [join(root, 'scripts/file-fixtures/venv.sh'), 'python', '-c', PADDED_NPZ, input], { encoding: 'utf8' })
        if (made.status !== 0) throw new Error(made.stderr)
        return input
      },
      args: ['--constraint', 'unit_norm', '--match', '^kernel$'],
      output: 'out.npz',
      kib: 16,
    },
    // Keras: model.weights.h5 (23.6 KB) still fits, the model written around it does not.
    ...(['keras', 'h5'] as const).map((ext) => ({
      name: `a Keras .${ext} (written through HDF5${ext === 'keras' ? ', then zipped' : ''})`,
      make: (dir: string) => {
        const input = join(dir, `model.${ext}`)
        cpSync(join(fixtures, `keras-model.${ext}`), input)
        return input
      },
      args: [],
      output: `out.${ext}`,
      kib: 24,
    })),
  ]
  for (const c of cases) {
    it(`a full disk (EFBIG under ulimit -f ${c.kib}): ${c.name}`, async (ctx) => {
      if (c.output === 'out.npz' && !python) return ctx.skip('needs the Python venv to write the file with NumPy')
      const dir = join(fresh('x'), '..')
      const input = c.make(dir)
      const dest = join(dir, 'dest')
      const tmp = join(dir, 'tmp')
      mkdirSync(dest)
      mkdirSync(tmp)
      const before = statSync(input).isDirectory() ? snapshot(input) : sha(input)
      const r = cliLimited(c.kib, tmp, 'apply', input, '--out', join(dest, c.output), ...c.args)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(new RegExp(`${c.output.replace('.', '\\.')}.*: cannot (write|create).*([Ff]ile too large)`))
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(readdirSync(dest)).toEqual([])
      expect(readdirSync(tmp).filter((f) => !f.startsWith('tsx-'))).toEqual([]) // tsx keeps its cache there
      expect(statSync(input).isDirectory() ? snapshot(input) : sha(input)).toEqual(before)
    }, 120_000)
  }

  it('a .keras whose weights cannot be unpacked into scratch space: the scratch file named, nothing left', () => {
    const dir = join(fresh('x'), '..')
    const [dest, tmp] = [join(dir, 'dest'), join(dir, 'tmp')]
    mkdirSync(dest)
    mkdirSync(tmp)
    const input = join(fixtures, 'keras-model.keras')
    const before = sha(input)
    const r = cliLimited(16, tmp, 'apply', input, '--out', join(dest, 'out.keras'))
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/normclip-keras-\w+\/model\.weights\.h5: cannot write a scratch copy of the weights: file too large/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(readdirSync(dest)).toEqual([])
    expect(readdirSync(tmp).filter((f) => !f.startsWith('tsx-'))).toEqual([])
    expect(sha(input)).toEqual(before)
  }, 120_000)

  it('a destination the OS refuses even to root (under /sys), and one under a file: each format', async () => {
    for (const [input, name, args] of [
      [join(fixtures, 'kernel.npy'), 'k.npy', ['--constraint', 'max_norm']],
      [join(fixtures, 'compressed.npz'), 'c.npz', ['--constraint', 'max_norm']],
      [join(fixtures, 'keras-model.keras'), 'm.keras', []],
      [join(fixtures, 'tfjs-model'), 'model', []],
    ] as const) {
      for (const parent of ['/sys', join(fixtures, 'kernel.npy')]) {
        const r = await cli('apply', input, '--out', join(parent, name), ...args)
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toContain(join(parent, name))
        expect(r.stderr).toMatch(/cannot (create|write)/)
        expect(r.stderr.trim().split('\n')).toHaveLength(1)
      }
    }
    expect(readdirSync('/sys').some((f) => f.startsWith('.') || /^(k\.npy|c\.npz|m\.keras|model)/.test(f))).toBe(false)
  })
})

/** A tmpfs of `size` mounted at a new folder (root only); undefined when that is impossible here. */
function tmpfs(size: string, readOnly = false): string | undefined {
  const dir = mkdtempSync(join(scratch, 'mnt-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { encoding: 'utf8' })
  return r.status === 0 ? dir : undefined
}
const unmount = (dir: string): void => void spawnSync('umount', [dir])

describe('destinations that refuse: exit 2, nothing left', () => {
  it('a full disk (a 64 KiB tmpfs)', async (ctx) => {
    const mnt = tmpfs('64k')
    if (mnt === undefined) return ctx.skip('cannot mount a tmpfs here (needs root): full-disk case not run')
    try {
      const input = fresh('big.safetensors')
      const data = Buffer.alloc(256 * 1024)
      writeFileSync(input, safetensorsWith({ w: { dtype: 'F32', shape: [256, 256], data_offsets: [0, data.length] } }, data))
      const r = await cli('apply', input, '--out', join(mnt, 'out.safetensors'), '--constraint', 'max_norm')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/out\.safetensors: cannot write.*No space left on device/)
      expect(readdirSync(mnt)).toEqual([])
    } finally {
      unmount(mnt)
    }
  })

  it('a read-only destination', async (ctx) => {
    const mnt = tmpfs('1m', true)
    if (mnt === undefined) return ctx.skip('cannot mount a read-only tmpfs here (needs root): read-only case not run')
    try {
      const r = await cli('apply', join(fixtures, 'kernel.npy'), '--out', join(mnt, 'k.npy'), '--constraint', 'max_norm')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/k\.npy: cannot create the output: Read-only file system/)
      const t = await cli('apply', join(fixtures, 'tfjs-model'), '--out', join(mnt, 'model'))
      expect(t.code).toBe(2)
      expect(t.stderr).toMatch(/model: cannot create the output folder: read-only file system/)
    } finally {
      unmount(mnt)
    }
  })

  it('the input is never the output without --in-place', async () => {
    const r = await cli('apply', join(fixtures, 'kernel.npy'), '--out', join(fixtures, 'kernel.npy'), '--constraint', 'max_norm')
    expect(r.code).toBe(2)
    expect(existsSync(join(fixtures, 'kernel.npy'))).toBe(true)
  })
})
