/**
 * `constrainModel`: applies the constraints a model declares (or `options.constraint`) and writes
 * the result atomically. Every other tensor and every other byte is copied as it is.
 *
 * Atomic: each output is written under a temporary name in its destination's folder, synced, then
 * renamed over the destination, and the folder synced. A tfjs model is one unit: with `out`, the
 * whole model is built in a temporary folder renamed into place; in place, new shards are written
 * under new names and the rename of model.json — which names them — is the one moment the model
 * changes; the old shards are removed after it. Killing the process at any moment leaves the old
 * model or the new one, never a mix (at worst, temporary files beside it).
 */
import { chmodSync, closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { NativeCrcPatch, NativeOutcome, NativeOutputFile, NativePiece, NativeTensorTask } from '../binding'
import { axisAdvice, nativeAxes, reportAxis, toNative } from './constraints'
import { WeightFileError, fromFs } from './errors'
import {
  selectConstraints,
  storageShape,
  weightReport,
  type InspectOptions,
  type ModelReport,
  type NormStats,
  type Selected,
  type WeightReport,
} from './inspect'
import { detectFormat, loadModel, releaseModel, sourceFiles, type StoredModel } from './model'
import { DEFLATED, STORED, ZipWriter, sameBytes } from './npz'
import { runJob } from './run'

export interface ConstrainOptions extends InspectOptions {
  /** Where to write: a file (a folder for tfjs models; for a file format, a folder means `folder/<name>`). */
  out?: string
  /** Replace the input itself (atomically). Exactly one of `out` and `inPlace`. */
  inPlace?: boolean
  /** Write constrained tfjs-quantized weights as float32 (otherwise they are refused). */
  dequantize?: boolean
}

/** What changed in one weight. */
export interface WeightChange {
  name: string
  constraint: string
  units: number
  /** Units whose norm was outside the bound before (and so were moved onto it). */
  unitsRescaled: number
  before: NormStats | null
  after: NormStats | null
}

export interface ConstrainResult {
  /** Where the result is (the model.json for tfjs). */
  output: string
  /** Every weight, as inspect reports it, after the constraints. */
  report: ModelReport
  changes: WeightChange[]
}

const tempSuffix = (): string => `.normclip-${process.pid}-${randomBytes(4).toString('hex')}.tmp`

function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some file systems cannot sync a folder; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Pieces of an output that mirrors bytes [from, end) of input file `file`, with `tasks`' bytes replaced. */
function mirrorPieces(file: number, end: number, tasks: readonly NativeTensorTask[], from = 0): NativePiece[] {
  const ranges: { offset: number; length: number; tensor: number; start: number }[] = []
  tasks.forEach((task, index) => {
    let start = 0
    for (const s of task.tensor.segments) {
      if (s.file === file && s.length > 0 && s.offset >= from && s.offset < end) ranges.push({ offset: s.offset, length: s.length, tensor: index, start })
      start += s.length
    }
  })
  ranges.sort((a, b) => a.offset - b.offset)
  const pieces: NativePiece[] = []
  let at = from
  for (const r of ranges) {
    if (r.offset > at) pieces.push({ kind: 'copy', file, offset: at, length: r.offset - at })
    pieces.push({ kind: 'tensor', tensor: r.tensor, start: r.start, length: r.length })
    at = r.offset + r.length
  }
  if (end > at) pieces.push({ kind: 'copy', file, offset: at, length: end - at })
  return pieces
}

function applyTask(s: Selected, dequantize: boolean): NativeTensorTask {
  const { stored } = s
  const constraint = s.constraint!
  return {
    tensor: { name: stored.name, dtype: stored.native, shape: storageShape(stored), segments: stored.segments },
    axes: nativeAxes(reportAxis(stored, constraint), stored.shape.length, stored.fortranOrder),
    countNegatives: constraint.kindName() === 'NonNeg',
    constraint: toNative(constraint, stored.shape.length, stored.fortranOrder),
    outDtype: stored.quantized && dequantize ? { name: 'float32' } : stored.native,
  }
}

function checkWritable(model: StoredModel, selected: Selected[], options: ConstrainOptions): void {
  for (const s of selected) {
    if (s.constraint === undefined) continue
    if (!s.stored.float) {
      throw new WeightFileError(
        'unsupported',
        model.path,
        `weight ${JSON.stringify(s.stored.name)}: a constraint needs a floating-point tensor, got ${s.stored.dtype}`,
      )
    }
    if (s.stored.quantized && !options.dequantize) {
      throw new WeightFileError(
        'unsupported',
        model.path,
        `weight ${JSON.stringify(s.stored.name)} is quantized (${s.stored.dtype}); constraining it means writing it dequantized: pass --dequantize (dequantize: true)`,
      )
    }
  }
}

/** The destination path of a single-file format, refusing to overwrite the input without inPlace. */
function fileDestination(model: { path: string }, options: ConstrainOptions): string {
  if (options.inPlace) return model.path
  let out = resolve(options.out!)
  if (existsSync(out) && statSync(out).isDirectory()) out = join(out, basename(model.path))
  if (resolve(model.path) === out) {
    throw new WeightFileError('request', model.path, '--out names the input itself; pass --in-place to replace it')
  }
  return out
}

/**
 * Applies the constraints of a model file (those its layers declare, or `options.constraint` for
 * the weights `options.match` selects) and writes the result to `options.out` or, with
 * `options.inPlace`, over the input, atomically. Reports, per weight, how many units were
 * rescaled and the norms before and after.
 *
 * ```ts
 * await constrainModel('model.safetensors', {
 *   constraint: { class_name: 'MaxNorm', config: { max_value: 3, axis: -1 } }, match: /proj\.weight$/,
 *   out: 'constrained.safetensors',
 * })
 * await constrainModel('tfjs-model/model.json', { inPlace: true })  // the constraints its layers declare
 * ```
 *
 * @throws WeightFileError naming the file and the problem; no output is left then.
 */
export async function constrainModel(path: string, options: ConstrainOptions = {}): Promise<ConstrainResult> {
  if ((options.out === undefined) === (options.inPlace !== true)) {
    throw new WeightFileError('request', path, 'give exactly one of out (--out DEST) and inPlace (--in-place)')
  }
  const format = detectFormat(path)
  if (format === 'keras' || format === 'h5') {
    const { constrainKeras } = await import('./keras-run')
    const r = await constrainKeras(path, options, (m) => fileDestination(m, options), commitFile)
    const changes = r.selected.filter((s) => r.outcomes.has(s)).map((s) => changeOf(s, r.outcomes.get(s)))
    return { output: r.output, report: r.report, changes }
  }
  const model = await loadModel(path)
  try {
    return await constrainLoaded(model, options)
  } finally {
    releaseModel(model)
  }
}

/** What changed in a constrained weight; `after`: its report after the write, when made already. */
function changeOf(s: Selected, outcome: NativeOutcome | undefined, after?: WeightReport): WeightChange {
  const axis = reportAxis(s.stored, s.constraint)
  const before = weightReport(s, outcome, axis, null, false)
  const nonNeg = s.constraint!.kindName() === 'NonNeg'
  return {
    name: s.stored.name,
    constraint: before.constraint!.className,
    units: nonNeg ? s.stored.shape.reduce((n, d) => n * d, 1) : (before.norms?.units ?? 0),
    unitsRescaled: nonNeg ? before.negative : before.exceeding,
    before: before.norms,
    after: (after ?? weightReport(s, outcome, axis, null, true)).norms,
  }
}

async function constrainLoaded(model: StoredModel, options: ConstrainOptions): Promise<ConstrainResult> {
  const path = model.path
  const selected = selectConstraints(model, options)
  checkWritable(model, selected, options)
  const constrained = selected.filter((s) => s.constraint !== undefined)
  const tasks = constrained.map((s) => applyTask(s, options.dequantize === true))
  const total = model.fileSizes.reduce((a, b) => a + b, 0) + tasks.reduce((n, t) => n + t.tensor.segments.reduce((m, g) => m + g.length, 0), 0)
  let output: string
  let outcomes: NativeOutcome[]
  if (model.format === 'tfjs') {
    ;({ output, outcomes } = await writeTfjs(model, constrained, tasks, options, total))
  } else {
    const dest = fileDestination(model, options)
    const temp = join(dirname(dest), `.${basename(dest)}${tempSuffix()}`)
    if (constrained.some((s) => s.stored.zipEntry?.deflated)) {
      outcomes = await writeDeflatedNpz(model, constrained, tasks, temp, dest, total, options)
    } else {
      const crcPatches: NativeCrcPatch[] = []
      if (model.format === 'npz') {
        // Entries whose bytes changed get their CRC-32 recomputed.
        const entries = new Map<number, { start: number; length: number; crcPositions: number[] }>()
        for (const s of constrained) if (s.stored.zipEntry) entries.set(s.stored.zipEntry.index, s.stored.zipEntry)
        for (const e of entries.values()) crcPatches.push({ output: 0, start: e.start, length: e.length, positions: e.crcPositions })
      }
      const outputs: NativeOutputFile[] = [{ path: temp, display: dest, pieces: mirrorPieces(0, model.fileSizes[0]!, tasks) }]
      outcomes = await runJob({ inputs: model.files, outputs, tensors: tasks, crcPatches }, true, total, options.onProgress, path)
    }
    commitFile(temp, dest, model.path)
    output = dest
  }
  const advice = axisAdvice(selected)
  const byTask = new Map(constrained.map((s, i) => [s, outcomes[i]!]))
  const weights: WeightReport[] = selected.map((s) => {
    const outcome = byTask.get(s)
    return weightReport(s, outcome, reportAxis(s.stored, s.constraint), advice.get(s.stored.name) ?? null, outcome !== undefined)
  })
  const changes = constrained.map((s, i) => changeOf(s, outcomes[i], weights[selected.indexOf(s)]))
  return {
    output,
    report: { path: output, format: model.format, ...sourceFiles(model), weights, violations: weights.filter((w) => w.violation).length },
    changes,
  }
}

/**
 * An npz with constrained weights in deflated entries: the core writes each changed entry's new
 * .npy into scratch space, then a new archive is built at `temp` (synced) from the entries in
 * their order: changed ones stored or deflated as they were, the rest (those a constraint left
 * as they were too) copied byte for byte.
 */
async function writeDeflatedNpz(
  model: StoredModel,
  constrained: Selected[],
  tasks: NativeTensorTask[],
  temp: string,
  dest: string,
  total: number,
  options: ConstrainOptions,
): Promise<NativeOutcome[]> {
  const scratch = model.scratch!
  const changed = new Map<number, string>()
  const outputs: NativeOutputFile[] = []
  for (const s of constrained) {
    const e = s.stored.zipEntry!
    if (changed.has(e.index)) continue
    const out = join(scratch, `${e.index}.out.npy`)
    changed.set(e.index, out)
    outputs.push({ path: out, display: dest, pieces: mirrorPieces(e.file, e.start + e.length, tasks, e.start) })
  }
  const outcomes = await runJob({ inputs: model.files, outputs, tensors: tasks, crcPatches: [] }, true, total, options.onProgress, model.path)
  // An entry its constraints left as it was (every unit within its bound) keeps its compressed
  // bytes: deflating it again would give other bytes for the same array.
  for (const s of constrained) {
    const e = s.stored.zipEntry!
    const out = changed.get(e.index)
    if (out !== undefined && sameBytes(out, model.files[e.file]!, e.start, e.length)) changed.delete(e.index)
  }
  let zip: ZipWriter
  try {
    zip = await ZipWriter.create(temp)
  } catch (error) {
    throw fromFs(error, dest, 'cannot create the output')
  }
  try {
    for (const [index, entry] of model.zip!.entries()) {
      const out = changed.get(index)
      if (out === undefined) await zip.addRaw(entry, ZipWriter.raw(model.path, entry))
      else await zip.addStreamed(entry.name, entry.method === STORED ? STORED : DEFLATED, statSync(out).size, createReadStream(out))
    }
    await zip.finish()
  } catch (error) {
    await zip.abandon()
    rmSync(temp, { force: true })
    throw fromFs(error, dest, 'cannot write')
  }
  return outcomes
}

function commitFile(temp: string, dest: string, source: string): void {
  try {
    chmodSync(temp, statSync(source).mode & 0o7777)
    renameSync(temp, dest)
  } catch (error) {
    rmSync(temp, { force: true })
    throw fromFs(error, dest, 'cannot write')
  }
  fsyncDir(dirname(dest))
}

/** A tfjs model: model.json and its shards, written as one unit. */
async function writeTfjs(
  model: StoredModel,
  constrained: Selected[],
  tasks: NativeTensorTask[],
  options: ConstrainOptions,
  total: number,
): Promise<{ output: string; outcomes: NativeOutcome[] }> {
  const json = structuredClone(model.modelJson!) as { weightsManifest: { paths: string[]; weights: Record<string, unknown>[] }[] }
  const jsonPath = model.files[0]!
  const sourceDir = dirname(resolve(jsonPath))
  const dequantized = constrained.filter((s) => s.stored.quantized)
  const relayout = dequantized.length > 0
  const inPlace = options.inPlace === true
  const runId = randomBytes(4).toString('hex')
  // Where the files go: a temporary folder renamed into place (out), or the model's own folder (in place).
  let finalDir: string
  let workDir: string
  if (inPlace) {
    finalDir = sourceDir
    workDir = sourceDir
  } else {
    finalDir = resolve(options.out!)
    if (finalDir === sourceDir) throw new WeightFileError('request', jsonPath, "--out names the model's own folder; pass --in-place to replace it")
    if (existsSync(finalDir) && (!statSync(finalDir).isDirectory() || readdirSync(finalDir).length > 0)) {
      throw new WeightFileError('request', finalDir, 'the output of a tfjs model is a folder, and this one exists and is not empty')
    }
    workDir = `${finalDir}${tempSuffix()}`
    try {
      mkdirSync(workDir)
    } catch (error) {
      throw fromFs(error, finalDir, 'cannot create the output folder')
    }
  }
  const outputs: NativeOutputFile[] = []
  const newShardNames: string[] = []
  // In place, shards get new names (model.json's rename is then the single moment of change).
  const shardName = (p: string): string => {
    if (!inPlace) return p
    const stem = p.replace(/\.nc-[0-9a-f]{8}(?=\.bin$)/, '')
    return stem.endsWith('.bin') ? `${stem.slice(0, -4)}.nc-${runId}.bin` : `${stem}.nc-${runId}`
  }
  const taskOf = new Map(constrained.map((s, i) => [s.stored, i]))
  let fileIndex = 1
  json.weightsManifest.forEach((group, g) => {
    const shardFiles = group.paths.map(() => fileIndex++)
    if (!relayout) {
      group.paths = group.paths.map((p, k) => {
        const name = shardName(p)
        newShardNames.push(name)
        outputs.push({
          path: join(workDir, name),
          display: join(finalDir, name),
          pieces: mirrorPieces(shardFiles[k]!, model.fileSizes[shardFiles[k]!]!, tasks),
        })
        return name
      })
      return
    }
    // Dequantizing changes sizes: the group becomes one shard holding its weights in order.
    const pieces: NativePiece[] = []
    model.weights
      .filter((w) => w.manifest?.group === g)
      .forEach((w) => {
        const t = taskOf.get(w)
        if (t === undefined) {
          for (const s of w.segments) pieces.push({ kind: 'copy', file: s.file, offset: s.offset, length: s.length })
          return
        }
        const elements = w.shape.reduce((n, d) => n * d, 1)
        const bytes = w.quantized ? elements * 4 : w.segments.reduce((n, s) => n + s.length, 0)
        pieces.push({ kind: 'tensor', tensor: t, start: 0, length: bytes })
        if (w.quantized) {
          const entry = group.weights[w.manifest!.entry]!
          delete entry['quantization']
          entry['dtype'] = 'float32'
        }
      })
    const name = shardName(group.paths[0]!)
    newShardNames.push(name)
    group.paths = [name]
    outputs.push({ path: join(workDir, name), display: join(finalDir, name), pieces })
  })
  const jsonName = basename(jsonPath)
  const jsonChanged = inPlace || relayout
  const jsonOut = inPlace ? join(workDir, `.${jsonName}${tempSuffix()}`) : join(workDir, jsonName)
  outputs.unshift({
    path: jsonOut,
    display: join(finalDir, jsonName),
    pieces: jsonChanged ? [{ kind: 'text', text: JSON.stringify(json) }] : [{ kind: 'copy', file: 0, offset: 0, length: model.fileSizes[0]! }],
  })
  // Shards in subfolders (paths like "weights/group1-shard1of1.bin").
  for (const o of outputs) mkdirSync(dirname(o.path), { recursive: true })
  let outcomes: NativeOutcome[]
  try {
    outcomes = await runJob({ inputs: model.files, outputs, tensors: tasks, crcPatches: [] }, true, total, options.onProgress, model.path)
  } catch (error) {
    if (!inPlace) rmSync(workDir, { recursive: true, force: true })
    throw error
  }
  const mode = statSync(jsonPath).mode & 0o7777
  if (inPlace) {
    try {
      chmodSync(jsonOut, mode)
      fsyncDir(workDir)
      renameSync(jsonOut, jsonPath) // the commit
    } catch (error) {
      for (const o of outputs) rmSync(o.path, { force: true })
      throw fromFs(error, jsonPath, 'cannot write')
    }
    fsyncDir(workDir)
    const keep = new Set(newShardNames.map((n) => resolve(workDir, n)))
    for (const old of model.files.slice(1)) if (!keep.has(resolve(old))) rmSync(old, { force: true })
    return { output: jsonPath, outcomes }
  }
  try {
    fsyncDir(workDir)
    // rename(2) replaces an empty folder: finalDir was checked to be absent or empty.
    renameSync(workDir, finalDir)
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true })
    throw fromFs(error, finalDir, 'cannot write')
  }
  fsyncDir(dirname(finalDir))
  return { output: join(finalDir, jsonName), outcomes }
}
