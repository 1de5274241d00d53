/**
 * A weight file (or a tfjs model's model.json and shards) read into one description: every
 * weight with its shape, stored type, byte ranges, layer and declared constraint. The byte work
 * is native (normclip-files); this module only reads headers and JSON and lays out byte ranges.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import * as native from '../binding'
import type { NativeDtype, NativeSegment, NativeZipEntry } from '../binding'
import { WeightFileError, fromFs, fromNative } from './errors'
import { DEFLATED, STORED, inflateEntry } from './npz'
import { configLayers, declaredConstraint, layerOfWeight, type ConfigLayer } from './keras-config'

export type WeightFormat = 'safetensors' | 'npy' | 'npz' | 'tfjs' | 'keras' | 'h5'

/** One weight of a model file. */
export interface StoredWeight {
  name: string
  /** The shape as the file states it. */
  shape: number[]
  /** `float32`, `bfloat16`, `uint8 (quantized)`, `int64`, … */
  dtype: string
  native: NativeDtype
  /** Byte ranges in the model's `files`, in element order. */
  segments: NativeSegment[]
  /** NumPy's column-major order: the bytes are the C-order tensor of the reversed shape. */
  fortranOrder: boolean
  /** A floating-point (or dequantizable) type: norms can be taken. */
  float: boolean
  /** Can be written back in its type (float16/bfloat16/float32/float64). */
  writable: boolean
  /** The layer config it belongs to (tfjs models). */
  layer?: ConfigLayer
  /** The constraint dict its layer declares (`kernel_constraint`, …). */
  declared?: unknown
  /**
   * npz: the zip entry holding it (index into `StoredModel.zip`) and where its .npy bytes are:
   * in the archive itself (file 0) for a stored entry, whose CRC is then patched after a write; in
   * a scratch file it was inflated into for a deflated one.
   */
  zipEntry?: { index: number; file: number; start: number; length: number; crcPositions: number[]; deflated: boolean }
  /** tfjs: stored with `quantization` (read dequantized; written only when dequantizing). */
  quantized: boolean
  /** tfjs: index of its manifest group and entry, for rewriting the manifest. */
  manifest?: { group: number; entry: number }
}

export interface StoredModel {
  format: WeightFormat
  /** The path the user gave. */
  path: string
  /** Input files; segments index into this. For tfjs, files[0] is model.json. */
  files: string[]
  weights: StoredWeight[]
  /** safetensors `__metadata__`. */
  metadata?: Record<string, string>
  /** tfjs: the parsed model.json. */
  modelJson?: Record<string, unknown>
  /** Bytes of each input file. */
  fileSizes: number[]
  /** npz: every entry of the archive, in its order. */
  zip?: NativeZipEntry[]
  /** A folder of scratch files (inflated npz entries) that {@link releaseModel} removes. */
  scratch?: string
}

/** Removes what loading the model left in scratch space. */
export function releaseModel(model: StoredModel): void {
  if (model.scratch !== undefined) rmSync(model.scratch, { recursive: true, force: true })
}

/** The user's files of a model and their bytes (not the scratch copies of inflated entries). */
export function sourceFiles(model: StoredModel): { files: string[]; bytes: number } {
  const count = model.scratch === undefined ? model.files.length : 1
  return { files: model.files.slice(0, count), bytes: model.fileSizes.slice(0, count).reduce((a, b) => a + b, 0) }
}

const FLOAT_NAMES = new Set(['float16', 'bfloat16', 'float32', 'float64'])

function describeDtype(d: NativeDtype): string {
  if (d.name === 'quantized') return d.bytes === 2 ? 'uint16 (quantized)' : 'uint8 (quantized)'
  return d.name
}

function size(path: string, display = path): number {
  try {
    return statSync(path).size
  } catch (error) {
    throw fromFs(error, display, 'cannot read')
  }
}

/** Which format a path is, from its name (and, for directories, their model.json). */
export function detectFormat(path: string): WeightFormat {
  let stat: ReturnType<typeof statSync>
  try {
    stat = statSync(path)
  } catch (error) {
    throw fromFs(error, path, 'cannot read')
  }
  if (stat.isDirectory()) return 'tfjs'
  const lower = path.toLowerCase()
  if (lower.endsWith('.safetensors')) return 'safetensors'
  if (lower.endsWith('.npy')) return 'npy'
  if (lower.endsWith('.npz')) return 'npz'
  if (lower.endsWith('.json')) return 'tfjs'
  if (lower.endsWith('.keras')) return 'keras'
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'h5'
  throw new WeightFileError('unsupported', path, 'unknown format: expected a .safetensors, .npy, .npz, .keras or .h5 file or a tfjs model.json (or its folder)')
}

/** Reads a model's description; {@link releaseModel} it when done. */
export async function loadModel(path: string): Promise<StoredModel> {
  switch (detectFormat(path)) {
    case 'safetensors':
      return loadSafetensors(path)
    case 'npy':
      return loadNpy(path)
    case 'npz':
      return loadNpz(path)
    case 'tfjs':
      return loadTfjs(path)
    case 'keras':
    case 'h5':
      throw new WeightFileError('request', path, 'Keras files are read through ./keras-run')
  }
}

function weight(
  fields: Omit<StoredWeight, 'dtype' | 'float' | 'writable' | 'fortranOrder' | 'quantized'> & { fortranOrder?: boolean; quantized?: boolean },
): StoredWeight {
  return {
    ...fields,
    fortranOrder: fields.fortranOrder ?? false,
    quantized: fields.quantized ?? false,
    dtype: describeDtype(fields.native),
    float: FLOAT_NAMES.has(fields.native.name) || fields.native.name === 'quantized',
    writable: FLOAT_NAMES.has(fields.native.name),
  }
}

function loadSafetensors(path: string): StoredModel {
  const header = native.readSafetensorsHeader(path)
  if (header.error) throw fromNative(header.error, path)
  return {
    format: 'safetensors',
    path,
    files: [path],
    fileSizes: [header.fileLength],
    metadata: header.metadata,
    weights: header.tensors.map((t) =>
      weight({
        name: t.name,
        shape: t.shape,
        native: t.dtype,
        segments: [{ file: 0, offset: t.offset, length: t.length }],
      }),
    ),
  }
}

/** The .npy at `offset` of `path`; errors name `display` (the archive, for an inflated npz entry). */
function npyWeight(path: string, name: string, offset: number, available: number, file: number, display = path): StoredWeight {
  const header = native.readNpyHeader(path, offset, available)
  if (header.error) {
    throw new WeightFileError(
      header.error.kind as 'invalid',
      display,
      name === '' ? header.error.message : `entry ${JSON.stringify(name)}: ${header.error.message}`,
    )
  }
  return weight({
    name,
    shape: header.shape,
    native: header.dtype!,
    fortranOrder: header.fortranOrder,
    segments: [{ file, offset: header.dataOffset, length: header.dataLength }],
  })
}

function loadNpy(path: string): StoredModel {
  const bytes = size(path)
  const w = npyWeight(path, '', 0, bytes, 0)
  w.name = 'array'
  return { format: 'npy', path, files: [path], fileSizes: [bytes], weights: [w] }
}

/**
 * Stored entries (np.savez) are read in place as byte ranges of the archive; deflated ones
 * (np.savez_compressed) are inflated into scratch files first (./npz).
 */
async function loadNpz(path: string): Promise<StoredModel> {
  const directory = native.readZipDirectory(path)
  if (directory.error) throw fromNative(directory.error, path)
  const model: StoredModel = { format: 'npz', path, files: [path], fileSizes: [size(path)], weights: [], zip: directory.entries }
  try {
    for (const [index, entry] of directory.entries.entries()) {
      if (!entry.name.endsWith('.npy')) continue
      const name = entry.name.slice(0, -4)
      let w: StoredWeight
      if (entry.method === STORED) {
        w = npyWeight(path, name, entry.dataOffset, entry.size, 0)
        w.zipEntry = { index, file: 0, start: entry.dataOffset, length: entry.size, crcPositions: entry.crcPositions, deflated: false }
      } else if (entry.method === DEFLATED) {
        model.scratch ??= mkdtempSync(join(tmpdir(), 'normclip-npz-'))
        const unpacked = join(model.scratch, `${index}.npy`)
        await inflateEntry(path, entry, unpacked)
        model.files.push(unpacked)
        model.fileSizes.push(entry.size)
        const file = model.files.length - 1
        w = npyWeight(unpacked, name, 0, entry.size, file, path)
        w.zipEntry = { index, file, start: 0, length: entry.size, crcPositions: [], deflated: true }
      } else {
        throw new WeightFileError(
          'unsupported',
          path,
          `entry ${JSON.stringify(entry.name)}: zip compression method ${entry.method}; normclip reads stored (np.savez) and deflated (np.savez_compressed) entries`,
        )
      }
      model.weights.push(w)
    }
  } catch (error) {
    releaseModel(model)
    throw error
  }
  return model
}

interface ManifestEntry {
  name: string
  shape: number[]
  dtype: string
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string }
}
interface ManifestGroup {
  paths: string[]
  weights: ManifestEntry[]
}

const TFJS_DTYPE_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2 }

function loadTfjs(given: string): StoredModel {
  const jsonPath = statSync(given).isDirectory() ? join(given, 'model.json') : given
  let text: string
  try {
    text = readFileSync(jsonPath, 'utf8')
  } catch (error) {
    throw fromFs(error, jsonPath, 'cannot read')
  }
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch (error) {
    throw new WeightFileError('invalid', jsonPath, `bad JSON: ${(error as Error).message}`)
  }
  const bad = (message: string): WeightFileError => new WeightFileError('invalid', jsonPath, message)
  if (json === null || typeof json !== 'object' || !Array.isArray(json['weightsManifest'])) {
    throw bad('not a TensorFlow.js model.json: no weightsManifest')
  }
  const topology = json['modelTopology'] as Record<string, unknown> | undefined
  const modelConfig = topology?.['model_config'] ?? topology
  const layers = configLayers(modelConfig)
  const byName = new Map(layers.map((l) => [l.name, l]))
  const dir = dirname(resolve(jsonPath))
  const files = [jsonPath]
  const fileSizes = [Buffer.byteLength(text)]
  const weights: StoredWeight[] = []
  const groups = json['weightsManifest'] as ManifestGroup[]
  groups.forEach((group, g) => {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw bad(`weightsManifest[${g}]: expected { paths: [...], weights: [...] }`)
    }
    // The group's bytes are its shards concatenated; weights follow each other in that stream.
    const shards = group.paths.map((p) => {
      if (typeof p !== 'string' || p.includes('\0')) throw bad(`weightsManifest[${g}].paths: bad path ${JSON.stringify(p)}`)
      const full = resolve(dir, p)
      let bytes: number
      try {
        bytes = statSync(full).size
      } catch (error) {
        const e = error as NodeJS.ErrnoException
        if (e.code === 'ENOENT') throw bad(`weightsManifest[${g}] names a missing shard ${JSON.stringify(p)} (${full})`)
        throw fromFs(error, full, 'cannot read')
      }
      files.push(full)
      fileSizes.push(bytes)
      return { file: files.length - 1, bytes }
    })
    const groupBytes = shards.reduce((n, s) => n + s.bytes, 0)
    let at = 0
    group.weights.forEach((entry, e) => {
      const where = `weightsManifest[${g}].weights[${e}] (${JSON.stringify(entry?.name)})`
      if (typeof entry?.name !== 'string' || !Array.isArray(entry.shape) || entry.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
        throw bad(`${where}: expected { name, shape: [non-negative integers], dtype }`)
      }
      const q = entry.quantization
      let nativeDtype: NativeDtype
      let elementBytes: number
      if (q !== undefined) {
        if (q.dtype === 'float16') {
          nativeDtype = { name: 'float16' }
          elementBytes = 2
        } else if (q.dtype === 'uint8' || q.dtype === 'uint16') {
          if (typeof q.scale !== 'number' || typeof q.min !== 'number') throw bad(`${where}: quantization needs scale and min`)
          elementBytes = q.dtype === 'uint8' ? 1 : 2
          nativeDtype = { name: 'quantized', bytes: elementBytes, scale: q.scale, min: q.min }
        } else {
          throw new WeightFileError('unsupported', jsonPath, `${where}: unsupported quantization dtype ${JSON.stringify(q.dtype)}`)
        }
      } else {
        const bytes = TFJS_DTYPE_BYTES[entry.dtype]
        if (bytes === undefined) {
          throw new WeightFileError('unsupported', jsonPath, `${where}: unsupported dtype ${JSON.stringify(entry.dtype)}`)
        }
        elementBytes = bytes
        nativeDtype = entry.dtype === 'float32' ? { name: 'float32' } : { name: entry.dtype, size: bytes }
      }
      const elements = entry.shape.reduce((n, d) => n * d, 1)
      const length = elements * elementBytes
      if (!Number.isSafeInteger(length)) throw bad(`${where}: shape ${JSON.stringify(entry.shape)} is too large`)
      if (at + length > groupBytes) {
        throw bad(
          `${where}: shape ${JSON.stringify(entry.shape)} of ${entry.dtype} needs bytes ${at}..${at + length} of the group, ` +
            `its shards hold ${groupBytes} (truncated shard?)`,
        )
      }
      weights.push(
        weight({
          name: entry.name,
          shape: entry.shape,
          native: nativeDtype,
          segments: groupSegments(shards, at, length),
          layer: layerOfWeight(layers, entry.name, byName),
          declared: (() => {
            const layer = layerOfWeight(layers, entry.name, byName)
            return layer === undefined ? undefined : declaredConstraint(layer, entry.name)
          })(),
          manifest: { group: g, entry: e },
          quantized: q !== undefined,
        }),
      )
      at += length
    })
    if (at !== groupBytes) {
      throw bad(`weightsManifest[${g}]: its weights take ${at} bytes, its shards hold ${groupBytes}`)
    }
  })
  return { format: 'tfjs', path: given, files, fileSizes, weights, modelJson: json }
}

/** Bytes [at, at + length) of a group's stream, as ranges of its shard files. */
function groupSegments(shards: { file: number; bytes: number }[], at: number, length: number): NativeSegment[] {
  const out: NativeSegment[] = []
  let base = 0
  for (const shard of shards) {
    const start = Math.max(at, base)
    const end = Math.min(at + length, base + shard.bytes)
    if (end > start) out.push({ file: shard.file, offset: start - base, length: end - start })
    base += shard.bytes
  }
  if (length === 0) out.push({ file: shards[0]?.file ?? 0, offset: 0, length: 0 })
  return out
}
