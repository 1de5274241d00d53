/** inspect / apply for Keras .keras and .h5 files: the values come from HDF5 (./keras), the norms and constraints from the core through normclip's classes. */
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import type { NativeOutcome } from '../binding'
import { MaxNorm, NativeBackedConstraint, type Axis } from '../constraints'
import { axisAdvice, reportAxis, type FileConstraint } from './constraints'
import { WeightFileError, fromFs } from './errors'
import { selectConstraints, weightReport, type InspectOptions, type ModelReport, type Selected } from './inspect'
import { loadKeras, writeKeras, type KerasModel } from './keras'
import type { StoredModel, StoredWeight } from './model'

type Values = Float32Array | Float64Array

function stored(model: KerasModel): { storedModel: StoredModel; values: Map<StoredWeight, Values | null>; datasets: Map<StoredWeight, string> } {
  const values = new Map<StoredWeight, Values | null>()
  const datasets = new Map<StoredWeight, string>()
  const weights = model.weights.map((w) => {
    const s: StoredWeight = {
      name: w.name,
      shape: w.shape,
      dtype: w.dtype,
      native: { name: w.dtype },
      segments: [],
      fortranOrder: false,
      float: w.values !== null,
      writable: w.values !== null,
      quantized: false,
      layer: w.layer,
      declared: w.declared,
    }
    values.set(s, w.values)
    datasets.set(s, w.dataset)
    return s
  })
  return { storedModel: { format: 'npy', path: model.path, files: [model.path], fileSizes: [model.bytes], weights }, values, datasets }
}

function norms(values: Values, shape: number[], axis: Axis): { norms: Float64Array; shape: number[] } {
  const n = new MaxNorm({ maxValue: 1, axis }).norms(values, shape)
  return { norms: Float64Array.from(n.norms as ArrayLike<number>), shape: n.shape }
}

function counts(values: Values): { nan: number; inf: number; negative: number } {
  let nan = 0
  let inf = 0
  let negative = 0
  for (const v of values) {
    if (Number.isNaN(v)) nan++
    else if (!Number.isFinite(v)) inf++
    if (v < 0) negative++
  }
  return { nan, inf, negative }
}

function outcome(before: Values, after: Values | null, shape: number[], axis: Axis): NativeOutcome {
  const b = norms(before, shape, axis)
  const a = after === null ? null : norms(after, shape, axis)
  const cb = counts(before)
  const ca = after === null ? { nan: 0, inf: 0, negative: 0 } : counts(after)
  return {
    norms: b.norms,
    normsShape: b.shape,
    normsAfter: a?.norms ?? new Float64Array(0),
    nan: cb.nan,
    inf: cb.inf,
    negative: cb.negative,
    nanAfter: ca.nan,
    infAfter: ca.inf,
    negativeAfter: ca.negative,
  }
}

function report(
  path: string,
  model: KerasModel,
  selected: Selected[],
  outcomes: Map<Selected, NativeOutcome>,
  options: InspectOptions,
  after: boolean,
): ModelReport {
  const advice = axisAdvice(selected)
  const weights = selected.map((s) =>
    weightReport(s, outcomes.get(s), reportAxis(s.stored, s.constraint, options.axis), advice.get(s.stored.name) ?? null, after && s.constraint !== undefined),
  )
  return { path, format: model.format, files: [model.path], bytes: model.bytes, weights, violations: weights.filter((w) => w.violation).length }
}

export async function inspectKeras(path: string, options: InspectOptions): Promise<ModelReport> {
  const model = await loadKeras(path)
  const { storedModel, values } = stored(model)
  const selected = selectConstraints(storedModel, options)
  const outcomes = new Map<Selected, NativeOutcome>()
  for (const s of selected) {
    const v = values.get(s.stored)
    if (v) outcomes.set(s, outcome(v, null, s.stored.shape, reportAxis(s.stored, s.constraint, options.axis)))
  }
  return report(path, model, selected, outcomes, options, false)
}

export async function constrainKeras(
  path: string,
  options: InspectOptions,
  destination: (model: { path: string }) => string,
  commit: (temp: string, dest: string, source: string) => void,
): Promise<{ output: string; report: ModelReport; selected: Selected[]; outcomes: Map<Selected, NativeOutcome> }> {
  const model = await loadKeras(path)
  const { storedModel, values, datasets } = stored(model)
  const selected = selectConstraints(storedModel, options)
  const outcomes = new Map<Selected, NativeOutcome>()
  const updates = new Map<string, Values>()
  for (const s of selected) {
    if (s.constraint === undefined) continue
    const v = values.get(s.stored)
    if (!v)
      throw new WeightFileError(
        'unsupported',
        path,
        `weight ${JSON.stringify(s.stored.name)}: a constraint needs a float32 or float64 tensor, got ${s.stored.dtype}`,
      )
    const c = s.constraint as FileConstraint
    if (!(c instanceof NativeBackedConstraint)) continue
    const after = c.applyCopy(v, s.stored.shape) as Values
    updates.set(datasets.get(s.stored)!, after)
    outcomes.set(s, outcome(v, after, s.stored.shape, reportAxis(s.stored, c)))
  }
  const dest = destination(model)
  const temp = join(dirname(dest), `.${basename(dest)}.normclip-${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
  try {
    await writeKeras(model, updates, temp)
  } catch (error) {
    // Where the folder cannot hold the temporary file (a file, /sys), there is nothing to remove.
    try {
      rmSync(temp, { force: true })
    } catch {}
    throw fromFs(error, dest, 'cannot write')
  }
  commit(temp, dest, model.path)
  return { output: dest, report: report(dest, model, selected, outcomes, options, true), selected, outcomes }
}
