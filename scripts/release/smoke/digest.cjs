// Outputs of every constraint on fixed pseudo-random inputs, hashed: the same hex on every
// platform and SIMD tier means bit-identical results. Shapes are odd on purpose (SIMD tails,
// strided axes) and one tensor is over 1M elements (the threaded path).
'use strict'
const { createHash } = require('node:crypto')

function data(Type, n, seed) {
  const a = new Type(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0
    a[i] = (s / 0x100000000 - 0.5) * 6
  }
  return a
}

function digest(nc) {
  const cases = [
    ['MaxNorm [257,33] axis 0', new nc.MaxNorm({ maxValue: 2 }), Float32Array, [257, 33]],
    ['MaxNorm f64 [64,9] axis 1', new nc.MaxNorm({ maxValue: 1.5, axis: 1 }), Float64Array, [64, 9]],
    ['MaxNorm [1025,1031] axis 0 (threads)', new nc.MaxNorm({ maxValue: 3 }), Float32Array, [1025, 1031]],
    ['MinMaxNorm [3,3,8,17] axes 0-2', new nc.MinMaxNorm({ minValue: 0.5, maxValue: 1.5, rate: 0.7, axis: [0, 1, 2] }), Float32Array, [3, 3, 8, 17]],
    ['UnitNorm [100,37] axis 1', new nc.UnitNorm({ axis: 1 }), Float32Array, [100, 37]],
    ['UnitNorm projection [31,7]', new nc.UnitNorm({ mode: 'projection' }), Float32Array, [31, 7]],
    ['NonNeg [1001]', new nc.NonNeg(), Float32Array, [1001]],
    ['RadialConstraint [5,5,3,4]', new nc.RadialConstraint(), Float32Array, [5, 5, 3, 4]],
  ]
  const hash = createHash('sha256')
  let seed = 1
  for (const [, constraint, Type, shape] of cases) {
    const input = data(Type, shape.reduce((a, b) => a * b, 1), seed++)
    const out = constraint.applyCopy(input, shape)
    hash.update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))
  }
  return { sha256: hash.digest('hex'), cases: cases.length }
}

module.exports = { digest, data }
