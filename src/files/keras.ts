/**
 * Keras 3 `.keras` (a zip of config.json and model.weights.h5) and Keras 2 / legacy `.h5` files,
 * through h5wasm (the HDF5 library compiled to WebAssembly, from npm: nothing for users to
 * install). h5wasm exposes no dataset file offsets (`H5Dget_offset`), so unlike the other formats
 * each dataset is read into memory and written back through HDF5 — fine for Keras models; the
 * streaming promise (any size, bounded memory) holds for safetensors, npy/npz and tfjs.
 *
 * Weight names follow tfjs' form, `<layer>/<weight>`: legacy .h5 files list theirs
 * (`weight_names`); a .keras file stores `layers/<path>/vars/<i>`, whose order per layer class is
 * Keras' creation order (VAR_NAMES below). Constraints come from the model config.
 */
import { copyFileSync, closeSync, fsyncSync, openSync, readSync, rmSync, writeSync, readFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as zlib from 'node:zlib'
import * as native from '../binding'
import { WeightFileError, fromFs, fromNative } from './errors'
import { configLayers, declaredConstraint, type ConfigLayer } from './keras-config'

/** The part of h5wasm's API used here (it ships as ES modules; loaded with a real `import()`). */
interface H5Attr {
  value: unknown
}
interface H5Node {
  attrs: Record<string, H5Attr>
}
interface H5Group extends H5Node {
  keys(): string[]
  get(path: string): H5Group | H5Dataset | null
}
interface H5Dataset extends H5Node {
  shape: number[] | null
  dtype: unknown
  value: unknown
  write_slice(ranges: [number, number][], data: unknown): void
}
interface H5File extends H5Group {
  close(): void
  flush(): void
}
interface H5Module {
  ready: Promise<unknown>
  File: new (path: string, mode: 'r' | 'a') => H5File
  Group: new (...args: never[]) => H5Group
  Dataset: new (...args: never[]) => H5Dataset
}

// A real dynamic import: TypeScript's CommonJS output turns `import()` into `require()`, which
// cannot load h5wasm's ES modules. Where no such import exists (a vm context, as under vitest),
// the transpiled `import()` of that context is used.
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<{ default: H5Module }>
const H5WASM = 'h5wasm/node'
let h5: H5Module | undefined
async function h5wasm(): Promise<H5Module> {
  if (h5 === undefined) {
    let loaded: { default: H5Module }
    try {
      loaded = await nativeImport(H5WASM)
    } catch {
      loaded = (await import(H5WASM)) as { default: H5Module }
    }
    const module = loaded.default
    await module.ready
    h5 = module
  }
  return h5
}

/** Keras' variable order per layer class (the order `build()` creates them), for .keras files. */
const VAR_NAMES: Readonly<Record<string, readonly string[]>> = {
  Dense: ['kernel', 'bias'],
  EinsumDense: ['kernel', 'bias'],
  Conv1D: ['kernel', 'bias'],
  Conv2D: ['kernel', 'bias'],
  Conv3D: ['kernel', 'bias'],
  Conv1DTranspose: ['kernel', 'bias'],
  Conv2DTranspose: ['kernel', 'bias'],
  Conv3DTranspose: ['kernel', 'bias'],
  DepthwiseConv1D: ['depthwise_kernel', 'bias'],
  DepthwiseConv2D: ['depthwise_kernel', 'bias'],
  SeparableConv1D: ['depthwise_kernel', 'pointwise_kernel', 'bias'],
  SeparableConv2D: ['depthwise_kernel', 'pointwise_kernel', 'bias'],
  Embedding: ['embeddings'],
  LSTM: ['kernel', 'recurrent_kernel', 'bias'],
  GRU: ['kernel', 'recurrent_kernel', 'bias'],
  SimpleRNN: ['kernel', 'recurrent_kernel', 'bias'],
  PReLU: ['alpha'],
}

export interface KerasWeight {
  name: string
  shape: number[]
  dtype: string
  /** The dataset inside the HDF5 file. */
  dataset: string
  layer?: ConfigLayer
  declared?: unknown
  /** The values (float32/float64 datasets), else null. */
  values: Float32Array | Float64Array | null
}

export interface KerasModel {
  format: 'keras' | 'h5'
  path: string
  weights: KerasWeight[]
  bytes: number
}

const ZIP_WEIGHTS = 'model.weights.h5'

function bad(path: string, message: string): WeightFileError {
  return new WeightFileError('invalid', path, message)
}

/** The zip's entries with their raw (possibly compressed) bytes. */
function zipEntries(path: string): { name: string; method: number; crc32: number; size: number; raw: Buffer }[] {
  const directory = native.readZipDirectory(path)
  if (directory.error) throw fromNative(directory.error, path)
  const fd = openSync(path, 'r')
  try {
    return directory.entries.map((e) => {
      const raw = Buffer.alloc(e.compressedSize)
      readSync(fd, raw, 0, raw.length, e.dataOffset)
      return { name: e.name, method: e.method, crc32: e.crc32, size: e.size, raw }
    })
  } finally {
    closeSync(fd)
  }
}

function inflate(entry: { name: string; method: number; raw: Buffer }, path: string): Buffer {
  if (entry.method === 0) return entry.raw
  if (entry.method === 8) return zlib.inflateRawSync(entry.raw)
  throw new WeightFileError('unsupported', path, `entry ${JSON.stringify(entry.name)}: zip method ${entry.method}`)
}

/** Reads a .keras or .h5 model: config, weights and their values. */
export async function loadKeras(path: string): Promise<KerasModel> {
  const H5 = await h5wasm()
  const isZip = path.toLowerCase().endsWith('.keras')
  let h5Path = path
  let scratch: string | undefined
  let config: unknown
  let bytes: number
  try {
    bytes = readFileSync(path).length
  } catch (error) {
    throw fromFs(error, path, 'cannot read')
  }
  if (isZip) {
    const entries = zipEntries(path)
    const configEntry = entries.find((e) => e.name === 'config.json')
    const weightsEntry = entries.find((e) => e.name === ZIP_WEIGHTS)
    if (configEntry === undefined || weightsEntry === undefined) throw bad(path, `not a Keras 3 .keras file: it needs config.json and ${ZIP_WEIGHTS}`)
    try {
      config = JSON.parse(inflate(configEntry, path).toString('utf8'))
    } catch (error) {
      throw bad(path, `config.json: bad JSON: ${(error as Error).message}`)
    }
    scratch = mkdtempSync(join(tmpdir(), 'normclip-keras-'))
    h5Path = join(scratch, ZIP_WEIGHTS)
    try {
      writeScratch(h5Path, inflate(weightsEntry, path))
    } catch (error) {
      rmSync(scratch, { recursive: true, force: true })
      throw error
    }
  }
  const where = isZip ? ` (${ZIP_WEIGHTS})` : ''
  try {
    if (!hasHdf5Signature(h5Path)) throw bad(path, `not a readable HDF5 file${where}: no HDF5 signature`)
    let file: H5File
    try {
      file = new H5.File(h5Path, 'r')
    } catch (error) {
      throw bad(path, `not a readable HDF5 file${where}: ${(error as Error).message}`)
    }
    try {
      if (!isZip) {
        const text = file.attrs['model_config']?.value
        if (typeof text !== 'string') throw bad(path, 'not a Keras .h5 model: no model_config attribute (a weights-only file?)')
        try {
          config = JSON.parse(text)
        } catch (error) {
          throw bad(path, `model_config: bad JSON: ${(error as Error).message}`)
        }
      }
      const root = config as Record<string, unknown>
      const layers = configLayers(root['config'] !== undefined && root['class_name'] !== undefined ? root : (root['model_config'] ?? root))
      const byName = new Map(layers.map((l) => [l.name, l]))
      let weights: KerasWeight[]
      try {
        weights = isZip ? kerasWeights(file, byName) : legacyWeights(file, byName, path)
      } catch (error) {
        if (error instanceof WeightFileError && error.path !== '') throw error
        throw bad(path, `damaged HDF5 file${where}: ${(error as Error).message}`)
      }
      return { format: isZip ? 'keras' : 'h5', path, weights, bytes }
    } finally {
      file.close()
    }
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
  }
}

/** HDF5's signature, at 0 or after a user block of 512, 1024, 2048, … bytes. */
function hasHdf5Signature(path: string): boolean {
  const signature = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])
  const fd = openSync(path, 'r')
  try {
    const head = Buffer.alloc(8)
    for (let at = 0; at <= 1 << 20; at = at === 0 ? 512 : at * 2) {
      if (readSync(fd, head, 0, 8, at) < 8) return false
      if (head.equals(signature)) return true
    }
    return false
  } finally {
    closeSync(fd)
  }
}

function datasetOf(file: H5File, path: string, name: string, layer: ConfigLayer | undefined, key: string): KerasWeight {
  const d = file.get(path) as H5Dataset | null
  if (d === null || d.shape === undefined) throw new WeightFileError('invalid', '', `missing dataset ${path}`)
  const value = d.value
  const values = value instanceof Float32Array || value instanceof Float64Array ? value : null
  return {
    name,
    shape: d.shape ?? [],
    dtype: value instanceof Float32Array ? 'float32' : value instanceof Float64Array ? 'float64' : String(d.dtype),
    dataset: path,
    layer,
    declared: layer === undefined ? undefined : declaredConstraint(layer, key),
    values,
  }
}

/** Keras 2 / legacy .h5: model_weights/<layer> lists its weight_names. */
function legacyWeights(file: H5File, byName: Map<string, ConfigLayer>, path: string): KerasWeight[] {
  const group = file.get('model_weights') as H5Group | null
  if (group === null) throw bad(path, 'not a Keras .h5 model: no model_weights group')
  const layerNames = (group.attrs['layer_names']?.value ?? []) as string[]
  const out: KerasWeight[] = []
  for (const layerName of layerNames) {
    const layerGroup = group.get(layerName) as H5Group | null
    if (layerGroup === null) throw bad(path, `model_weights lists layer ${JSON.stringify(layerName)}, which is missing`)
    const names = (layerGroup.attrs['weight_names']?.value ?? []) as string[]
    for (const weightName of Array.isArray(names) ? names : []) {
      const key = weightName.split('/').pop()!.replace(/:\d+$/, '')
      out.push(datasetOf(file, `model_weights/${layerName}/${weightName}`, `${layerName}/${key}`, byName.get(layerName), key))
    }
  }
  return out
}

/** Keras 3 .keras: layers/<path>/vars/<i>, named by the vars group's `name` attribute. */
function kerasWeights(file: H5File, byName: Map<string, ConfigLayer>): KerasWeight[] {
  const out: KerasWeight[] = []
  const visit = (path: string, owner: string | undefined): void => {
    const group = file.get(path) as H5Group | null
    if (group === null || typeof group.keys !== 'function') return
    for (const key of group.keys()) {
      const child = `${path}/${key}`
      if (key !== 'vars') continue
      const vars = file.get(child) as H5Group
      const name = vars.attrs['name']?.value as string | undefined
      // An RNN's cell (`lstm_cell`) is not a layer of the config: its weights are the RNN's.
      const layerName = name !== undefined && byName.has(name) ? name : owner
      const layer = layerName === undefined ? undefined : byName.get(layerName)
      const order = layer === undefined ? undefined : VAR_NAMES[layer.className]
      const indices = vars
        .keys()
        .filter((k) => /^\d+$/.test(k))
        .sort((a, b) => Number(a) - Number(b))
      for (const i of indices) {
        const weightKey = order?.[Number(i)] ?? `vars/${i}`
        out.push(datasetOf(file, `${child}/${i}`, `${layerName ?? path}/${weightKey}`, order === undefined ? undefined : layer, weightKey))
      }
    }
    const vars = file.get(`${path}/vars`) as H5Group | null
    const here = (vars?.attrs['name']?.value as string | undefined) ?? owner
    for (const key of group.keys()) if (key !== 'vars') visit(`${path}/${key}`, byName.has(here ?? '') ? here : owner)
  }
  visit('layers', undefined)
  return out
}

/**
 * Writes `updates` (dataset path → new values) into a copy of the model at `temp`, synced:
 * the .h5 copied and its datasets rewritten through HDF5; a .keras rebuilt with every entry as it
 * was but model.weights.h5 (stored, its CRC-32 recomputed).
 */
export async function writeKeras(model: KerasModel, updates: Map<string, Float32Array | Float64Array>, temp: string): Promise<void> {
  const H5 = await h5wasm()
  const isZip = model.format === 'keras'
  const scratch = mkdtempSync(join(tmpdir(), 'normclip-keras-'))
  try {
    let entries: ReturnType<typeof zipEntries> = []
    const h5Path = isZip ? join(scratch, ZIP_WEIGHTS) : temp
    if (isZip) {
      entries = zipEntries(model.path)
      const weights = entries.find((e) => e.name === ZIP_WEIGHTS)!
      writeScratch(h5Path, inflate(weights, model.path))
    } else {
      copyFileSync(model.path, temp)
    }
    const file = new H5.File(h5Path, 'a')
    try {
      for (const [dataset, values] of updates) {
        const d = file.get(dataset) as H5Dataset
        d.write_slice(
          (d.shape ?? []).map((n) => [0, n] as [number, number]),
          values,
        )
      }
      file.flush()
    } finally {
      file.close()
    }
    if (isZip) {
      const h5Bytes = readFileSync(h5Path)
      writeZip(
        temp,
        entries.map((e) => (e.name === ZIP_WEIGHTS ? { name: e.name, method: 0, crc32: zlib.crc32(h5Bytes), size: h5Bytes.length, raw: h5Bytes } : e)),
      )
    }
    const fd = openSync(temp, 'r+')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

/**
 * Writes all of `bytes` at the file's position. `writeSync` may write less than asked (a full
 * disk, a file-size limit): the rest is written again, and that write reports the error.
 */
function writeFully(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    const written = writeSync(fd, bytes, done, bytes.length - done)
    // No progress and no error: say so rather than loop for ever.
    if (written <= 0) throw Object.assign(new Error('no bytes written'), { code: 'EIO' })
    done += written
  }
}

/** `bytes` as the file at `path` (new or emptied), with fs errors naming it. */
function writeScratch(path: string, bytes: Uint8Array): void {
  try {
    const fd = openSync(path, 'w')
    try {
      writeFully(fd, bytes)
    } finally {
      closeSync(fd)
    }
  } catch (error) {
    throw fromFs(error, path, 'cannot write a scratch copy of the weights')
  }
}

/** A zip of `entries` (raw bytes as given: stored or already deflated), without zip64. */
function writeZip(path: string, entries: { name: string; method: number; crc32: number; size: number; raw: Buffer }[]): void {
  const parts: Buffer[] = []
  const central: Buffer[] = []
  let offset = 0
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8')
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(0x0800, 6) // UTF-8 names
    local.writeUInt16LE(e.method, 8)
    local.writeUInt16LE(0, 10)
    local.writeUInt16LE(0x21, 12) // 1980-01-01
    local.writeUInt32LE(e.crc32 >>> 0, 14)
    local.writeUInt32LE(e.raw.length, 18)
    local.writeUInt32LE(e.size, 22)
    local.writeUInt16LE(name.length, 26)
    local.writeUInt16LE(0, 28)
    const header = Buffer.alloc(46)
    header.writeUInt32LE(0x02014b50, 0)
    header.writeUInt16LE(20, 4)
    header.writeUInt16LE(20, 6)
    header.writeUInt16LE(0x0800, 8)
    header.writeUInt16LE(e.method, 10)
    header.writeUInt16LE(0, 12)
    header.writeUInt16LE(0x21, 14)
    header.writeUInt32LE(e.crc32 >>> 0, 16)
    header.writeUInt32LE(e.raw.length, 20)
    header.writeUInt32LE(e.size, 24)
    header.writeUInt16LE(name.length, 28)
    header.writeUInt32LE(offset, 42)
    central.push(header, name)
    parts.push(local, name, e.raw)
    offset += 30 + name.length + e.raw.length
  }
  const cd = Buffer.concat(central)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(cd.length, 12)
  end.writeUInt32LE(offset, 16)
  const fd = openSync(path, 'wx')
  try {
    for (const b of [...parts, cd, end]) writeFully(fd, b)
  } finally {
    closeSync(fd)
  }
}
