// A tour of the core on built-in data: a Dense and a Conv2D kernel whose units outgrew their
// max-norm, constrained in place along the right axes, with the norms before and after.
import { simdTier, threadCount } from '../src/index'
import { NativeConstraint } from '../src/binding'

function gaussianKernel(shape: number[], scale: number, seed: number): Float32Array {
  let state = seed >>> 0
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return (state + 0.5) / 4294967296
  }
  const size = shape.reduce((a, b) => a * b, 1)
  return Float32Array.from({ length: size }, () => scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()))
}

function summary(norms: Float32Array | Float64Array): string {
  const values = Array.from(norms)
  const max = Math.max(...values)
  const min = Math.min(...values)
  return `${values.length} units, norms ${min.toFixed(3)} … ${max.toFixed(3)}`
}

const maxValue = 3
console.log(`normclip demo — SIMD tier ${simdTier()}, ${threadCount()} thread(s); MaxNorm(${maxValue})\n`)

const kernels: Array<{ name: string; shape: number[]; axis: number | number[] }> = [
  { name: 'Dense [784, 128]', shape: [784, 128], axis: 0 },
  { name: 'Conv2D [3, 3, 64, 32]', shape: [3, 3, 64, 32], axis: [0, 1, 2] },
]
let failures = 0
for (const { name, shape, axis } of kernels) {
  const kernel = gaussianKernel(shape, 0.25, shape.length)
  const maxNorm = NativeConstraint.create({ kind: 'maxNorm', maxValue, axis })
  const before = maxNorm.norms(kernel, shape).norms
  const start = process.hrtime.bigint()
  maxNorm.applyInPlace(kernel, shape)
  const micros = Number(process.hrtime.bigint() - start) / 1e3
  const after = maxNorm.norms(kernel, shape).norms
  console.log(`${name}, axis ${JSON.stringify(axis)}: one norm per output unit`)
  console.log(`  before: ${summary(before)}`)
  console.log(`  after:  ${summary(after)}   (${micros.toFixed(1)} µs in place)`)
  if (Math.max(...Array.from(after)) > maxValue * (1 + 1e-6)) failures++
}

// The mistake users make: the Keras default axis 0 on a conv kernel gives one norm per
// (kw, in, out) position instead of one per filter.
const conv = gaussianKernel([3, 3, 64, 32], 0.25, 7)
const wrong = NativeConstraint.create({ kind: 'maxNorm', maxValue, axis: 0 }).norms(conv, [3, 3, 64, 32])
console.log(`\nConv2D with the default axis 0: ${wrong.norms.length} norms of shape ${JSON.stringify(wrong.shape)} — not one per filter; use axis [0, 1, 2].`)

if (failures > 0) {
  console.error(`FAILED: ${failures} kernel(s) still above the bound`)
  process.exit(1)
}
