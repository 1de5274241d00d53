/**
 * Deterministic synthetic data for the demo: Gaussian clusters, one per class, drawn from a
 * seeded PRNG so every run (and every machine) trains on exactly the same numbers.
 */

/** mulberry32: a small, fast, seedable PRNG with uniform output in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Standard normal samples (Box–Muller) from a uniform source. */
export function seededNormal(uniform: () => number): () => number {
  return () => {
    const u = 1 - uniform() // in (0, 1]: log stays finite
    const v = uniform()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
}

export interface Blobs {
  /** Row-major features, `count × features`. */
  features: Float32Array
  /** Class of each row, in [0, classes). */
  labels: Int32Array
  count: number
}

export interface BlobSpec {
  classes: number
  features: number
  /** Distance scale of the class centres from the origin (per coordinate, standard normal times this). */
  separation: number
  /** Standard deviation of the points around their centre. */
  spread: number
  seed: number
}

/** The class centres of a spec: the same for every split drawn from it. */
function centres(spec: BlobSpec): Float32Array {
  const normal = seededNormal(seededRandom(spec.seed))
  return Float32Array.from({ length: spec.classes * spec.features }, () => normal() * spec.separation)
}

/**
 * `perClass` points of each class around its centre, rows interleaved by class (so any batch has
 * every class). Different `splitSeed`s give independent samples of the same problem (train/test).
 */
export function gaussianBlobs(spec: BlobSpec, perClass: number, splitSeed: number): Blobs {
  const centre = centres(spec)
  const normal = seededNormal(seededRandom(splitSeed))
  const count = spec.classes * perClass
  const features = new Float32Array(count * spec.features)
  const labels = new Int32Array(count)
  for (let row = 0; row < count; row++) {
    const label = row % spec.classes
    labels[row] = label
    for (let f = 0; f < spec.features; f++) {
      features[row * spec.features + f] = centre[label * spec.features + f]! + normal() * spec.spread
    }
  }
  return { features, labels, count }
}
