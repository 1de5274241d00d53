// The peer every JS user can write: Keras' MaxNorm as plain Float32Array loops, with the norm
// accumulated in f64 (JS numbers). Leading-axis reductions stream rows and keep every column sum,
// as a careful JS author would.

export function plainJsMaxNorm(w: Float32Array, shape: number[], axis: number | number[] | null, maxValue: number): void {
  const eps = 1e-7
  const factorOf = (norm: number) => Math.min(norm, maxValue) / (eps + norm)
  const axes = axis === null ? shape.map((_, i) => i) : (typeof axis === 'number' ? [axis] : axis).map((a) => (a + shape.length) % shape.length)
  const rank = shape.length
  const reducedLeading = axes.every((a) => a < axes.length) // axes are 0..k-1
  if (axes.length === rank) {
    let sum = 0
    for (let i = 0; i < w.length; i++) sum += w[i]! * w[i]!
    const f = factorOf(Math.sqrt(sum))
    for (let i = 0; i < w.length; i++) w[i]! *= f
  } else if (reducedLeading) {
    const cols = shape.slice(axes.length).reduce((a, b) => a * b, 1)
    const rows = w.length / cols
    const sums = new Float64Array(cols)
    for (let r = 0; r < rows; r++) {
      const base = r * cols
      for (let c = 0; c < cols; c++) sums[c]! += w[base + c]! * w[base + c]!
    }
    for (let c = 0; c < cols; c++) sums[c] = factorOf(Math.sqrt(sums[c]!))
    for (let r = 0; r < rows; r++) {
      const base = r * cols
      for (let c = 0; c < cols; c++) w[base + c]! *= sums[c]!
    }
  } else {
    // Trailing axes: each slice is one contiguous run.
    const runLength = shape.slice(rank - axes.length).reduce((a, b) => a * b, 1)
    for (let start = 0; start < w.length; start += runLength) {
      let sum = 0
      for (let i = start; i < start + runLength; i++) sum += w[i]! * w[i]!
      const f = factorOf(Math.sqrt(sum))
      for (let i = start; i < start + runLength; i++) w[i]! *= f
    }
  }
}
