/**
 * `inspectModel`: every weight of a model file with its constraint, per-unit norm statistics
 * along that constraint's axis (or the layer's per-unit axes), NaN/Inf counts and the axis
 * advice of `checkConstraintAxes`.
 */
import type { NativeOutcome, NativeTensorTask } from '../binding'
import type { Axis } from '../constraints'
import {
  axisAdvice,
  countViolations,
  describeConstraint,
  isNormConstraint,
  nativeAxes,
  reportAxis,
  resolveConstraint,
  tolerance,
  type FileConstraint,
} from './constraints'
import { WeightFileError } from './errors'
import { detectFormat, loadModel, releaseModel, sourceFiles, type StoredModel, type StoredWeight, type WeightFormat } from './model'
import { runJob, type ProgressCallback } from './run'

/** Options of {@link inspectModel} (and the reading side of {@link constrainModel}). */
export interface InspectOptions {
  /**
   * A constraint for the weights `match` selects, in place of what their layers declare: any
   * identifier or dict `deserialize()` accepts (`'unit_norm'`,
   * `{ class_name: 'MaxNorm', config: { max_value: 3, axis: -1 } }`), or its JSON text. The way to
   * constrain formats without layer configs (safetensors, npy, npz).
   */
  constraint?: unknown
  /** Which weights `constraint` is for (a RegExp or its source, matched against the weight name); default all floating-point weights. */
  match?: RegExp | string
  /** Axes of the reported norms for weights without a norm constraint (default: per output unit). */
  axis?: Axis
  /** Progress: bytes done and bytes in all, every 100 ms while the native job runs. */
  onProgress?: ProgressCallback
}

/** Statistics of a weight's per-unit norms. */
export interface NormStats {
  units: number
  min: number
  median: number
  max: number
}

/** One weight in a report. */
export interface WeightReport {
  name: string
  layer: string | null
  layerClass: string | null
  shape: number[]
  dtype: string
  /** The constraint that applies (Keras class name and config) and where it came from. */
  constraint: { className: string; config: Record<string, unknown>; source: 'declared' | 'option' } | null
  /** A constraint the layer declares that normclip cannot run, and why. */
  constraintProblem: string | null
  /** Axes the norms are taken along (null: one norm for the whole tensor); null norms for non-float types. */
  axis: Axis
  norms: NormStats | null
  /** The norm bounds of the constraint, if it has any. */
  bound: { min: number; max: number } | null
  /** Units whose norm lies outside the bound (beyond the rounding of the stored type). */
  exceeding: number
  nan: number
  inf: number
  /** Negative elements (counted for NonNeg). */
  negative: number
  /** `checkConstraintAxes`' finding: the constraint's axis is not one norm per output unit. */
  axisAdvice: string | null
  /** It breaks its constraint or holds NaN/Inf. */
  violation: boolean
  /** Every unit's norm (row-major over the kept axes). Not serialized by the CLI's --json. */
  unitNorms: Float64Array | null
}

export interface ModelReport {
  path: string
  format: WeightFormat
  files: string[]
  bytes: number
  weights: WeightReport[]
  /** Weights with a violation. */
  violations: number
}

/** A weight and the constraint that applies to it. */
export interface Selected {
  stored: StoredWeight
  constraint?: FileConstraint
  source?: 'declared' | 'option'
  problem?: string
}

/** Parses `--constraint`'s JSON text when it is JSON; ids pass as they are. */
function constraintIdentifier(value: unknown): unknown {
  if (typeof value === 'string' && /^\s*[[{"]/.test(value)) {
    try {
      return JSON.parse(value)
    } catch (error) {
      throw new WeightFileError('request', '', `--constraint: bad JSON: ${(error as Error).message}`)
    }
  }
  return value
}

export function selectConstraints(model: StoredModel, options: InspectOptions): Selected[] {
  let override: FileConstraint | undefined
  if (options.constraint !== undefined) {
    const resolved = resolveConstraint(constraintIdentifier(options.constraint))
    if (typeof resolved === 'string') throw new WeightFileError('request', '', `constraint: ${resolved}`)
    override = resolved
  }
  const match = options.match === undefined ? undefined : options.match instanceof RegExp ? options.match : new RegExp(options.match)
  return model.weights.map((stored) => {
    // Without --match, every floating-point weight; a --match that names an integer weight is an error when applied.
    if (override !== undefined && (match === undefined ? stored.float : match.test(stored.name))) {
      return { stored, constraint: override, source: 'option' as const }
    }
    if (stored.declared === undefined) return { stored }
    const resolved = resolveConstraint(stored.declared)
    return typeof resolved === 'string' ? { stored, problem: resolved } : { stored, constraint: resolved, source: 'declared' as const }
  })
}

export function storageShape(w: StoredWeight): number[] {
  return w.fortranOrder ? [...w.shape].reverse() : w.shape
}

export function statsOf(norms: Float64Array): NormStats | null {
  if (norms.length === 0) return null
  const sorted = Float64Array.from(norms).sort()
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  // NaN sorts last in a Float64Array.
  return { units: sorted.length, min: sorted[0]!, median, max: sorted[sorted.length - 1]! }
}

export function boundOf(c: FileConstraint | undefined): { min: number; max: number } | null {
  if (!isNormConstraint(c)) return null
  const d = describeConstraint(c).config
  if (c.kindName() === 'MaxNorm') return { min: 0, max: d['max_value'] as number }
  if (c.kindName() === 'MinMaxNorm') return { min: d['min_value'] as number, max: d['max_value'] as number }
  return { min: 1, max: 1 }
}

export function inspectTask(s: Selected, axisOverride: Axis | undefined): NativeTensorTask {
  const { stored } = s
  const axis = reportAxis(stored, s.constraint, axisOverride)
  return {
    tensor: { name: stored.name, dtype: stored.native, shape: storageShape(stored), segments: stored.segments },
    axes: nativeAxes(axis, stored.shape.length, stored.fortranOrder),
    countNegatives: s.constraint?.kindName() === 'NonNeg',
  }
}

export function weightReport(s: Selected, outcome: NativeOutcome | undefined, axis: Axis, advice: string | null, after = false): WeightReport {
  const { stored, constraint } = s
  const norms = outcome === undefined ? null : after ? outcome.normsAfter : outcome.norms
  const counts =
    outcome === undefined
      ? { nan: 0, inf: 0, negative: 0 }
      : after
        ? { nan: outcome.nanAfter, inf: outcome.infAfter, negative: outcome.negativeAfter }
        : { nan: outcome.nan, inf: outcome.inf, negative: outcome.negative }
  const exceeding = norms === null ? 0 : countViolations(constraint, norms, tolerance(stored.dtype))
  const nonNegViolation = constraint?.kindName() === 'NonNeg' && counts.negative > 0
  return {
    name: stored.name,
    layer: stored.layer?.name ?? null,
    layerClass: stored.layer?.className ?? null,
    shape: stored.shape,
    dtype: stored.dtype,
    constraint: constraint === undefined ? null : { ...describeConstraint(constraint), source: s.source ?? 'declared' },
    constraintProblem: s.problem ?? null,
    axis,
    norms: norms === null ? null : statsOf(norms),
    bound: boundOf(constraint),
    exceeding,
    ...counts,
    axisAdvice: advice,
    violation: exceeding > 0 || counts.nan > 0 || counts.inf > 0 || nonNegViolation,
    unitNorms: norms,
  }
}

/**
 * Reads a model file and reports every weight: its constraint (declared by its layer, or
 * `options.constraint`), the statistics of its per-unit norms along the constraint's axis (or one
 * norm per output unit of its layer), how many units exceed the bound, NaN/Inf counts, and
 * `checkConstraintAxes`' advice. The file is read once, in chunks, natively; nothing is written.
 *
 * Formats: safetensors, NumPy `.npy` / `.npz` (stored entries), TensorFlow.js `model.json` (or its
 * folder) with its shards, Keras 3 `.keras` and Keras 2 / legacy `.h5` (read through HDF5, in memory).
 *
 * @throws WeightFileError naming the file and the problem (truncated, a header that lies, …).
 */
export async function inspectModel(path: string, options: InspectOptions = {}): Promise<ModelReport> {
  const format = detectFormat(path)
  if (format === 'keras' || format === 'h5') return (await import('./keras-run')).inspectKeras(path, options)
  const model = await loadModel(path)
  try {
    const selected = selectConstraints(model, options)
    const float = selected.filter((s) => s.stored.float)
    const tasks = float.map((s) => inspectTask(s, options.axis))
    const total = float.reduce((n, s) => n + s.stored.segments.reduce((m, g) => m + g.length, 0), 0)
    const outcomes = await runJob({ inputs: model.files, outputs: [], tensors: tasks, crcPatches: [] }, false, total, options.onProgress, path)
    const byWeight = new Map(float.map((s, i) => [s, outcomes[i]]))
    const advice = axisAdvice(selected)
    const weights = selected.map((s) => weightReport(s, byWeight.get(s), reportAxis(s.stored, s.constraint, options.axis), advice.get(s.stored.name) ?? null))
    return {
      path,
      format: model.format,
      ...sourceFiles(model),
      weights,
      violations: weights.filter((w) => w.violation).length,
    }
  } finally {
    releaseModel(model)
  }
}
