// An independent scalar reference of Keras' formulas: norms in f64 over explicit multi-indices,
// then the factor evaluated in float32 (Math.fround) exactly as Keras writes it.

export type Axis = number | number[] | null

export function reducedAxes(shape: number[], axis: Axis | undefined): boolean[] {
  if (axis === null) return shape.map(() => true)
  const list = axis === undefined ? [0] : typeof axis === 'number' ? [axis] : axis
  const flags = shape.map(() => false)
  for (const a of list) flags[((a % shape.length) + shape.length) % shape.length] = true
  return flags
}

/** For every element, the index of its slice (its multi-index with reduced axes set to 0). */
export function sliceIndex(shape: number[], reduced: boolean[]): { index: Int32Array; slices: number } {
  const len = shape.reduce((a, b) => a * b, 1)
  const index = new Int32Array(len)
  const keptShape = shape.map((d, i) => (reduced[i] ? 1 : d))
  const slices = keptShape.reduce((a, b) => a * b, 1)
  const position = shape.map(() => 0)
  for (let flat = 0; flat < len; flat++) {
    let slice = 0
    for (let i = 0; i < shape.length; i++) slice = slice * keptShape[i]! + (reduced[i] ? 0 : position[i]!)
    index[flat] = slice
    for (let i = shape.length - 1; i >= 0; i--) {
      position[i]!++
      if (position[i]! < shape[i]!) break
      position[i] = 0
    }
  }
  return { index, slices }
}

export function referenceNorms(data: ArrayLike<number>, shape: number[], axis: Axis | undefined): Float64Array {
  const { index, slices } = sliceIndex(shape, reducedAxes(shape, axis))
  const sums = new Float64Array(slices)
  for (let i = 0; i < data.length; i++) sums[index[i]!]! += data[i]! * data[i]!
  return sums.map(Math.sqrt)
}

const f = Math.fround
const clip = (x: number, lo: number, hi: number) => (x < lo ? lo : Math.min(x, hi))

/** Keras' MaxNorm / MinMaxNorm / UnitNorm in float32, eps = 1e-7, from f64 norms rounded to f32. */
export function referenceApply(
  data: Float32Array,
  shape: number[],
  spec: { kind: 'maxNorm' | 'minMaxNorm' | 'unitNorm'; maxValue?: number; minValue?: number; rate?: number; axis?: Axis },
  /** The norms to use (e.g. the implementation's own, to test the formula alone); default exact. */
  givenNorms?: ArrayLike<number>,
): Float32Array {
  const norms = givenNorms ?? referenceNorms(data, shape, spec.axis)
  const { index } = sliceIndex(shape, reducedAxes(shape, spec.axis))
  const eps = f(1e-7)
  const out = new Float32Array(data.length)
  for (let i = 0; i < data.length; i++) {
    const n = f(norms[index[i]!]!)
    if (spec.kind === 'unitNorm') {
      out[i] = f(data[i]! / f(eps + n))
      continue
    }
    const max = f(spec.maxValue ?? (spec.kind === 'maxNorm' ? 2 : 1))
    const min = f(spec.kind === 'minMaxNorm' ? (spec.minValue ?? 0) : 0)
    const rate = spec.kind === 'minMaxNorm' ? (spec.rate ?? 1) : 1
    const desired = f(f(f(rate) * clip(n, min, max)) + f(f(1 - rate) * n))
    out[i] = f(data[i]! * f(desired / f(eps + n)))
  }
  return out
}

/** Distance in units in the last place between two float32 values (0 for NaN vs NaN). */
export function ulpDistance(a: number, b: number): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat32(0, a)
  view.setFloat32(4, b)
  const toOrdered = (bits: number) => (bits < 0 ? -2147483648 - bits : bits)
  return Math.abs(toOrdered(view.getInt32(0)) - toOrdered(view.getInt32(4)))
}

/** A seeded PRNG (the demo's mulberry32) so failures reproduce. */
export { seededRandom as rng } from '../demo/data'
