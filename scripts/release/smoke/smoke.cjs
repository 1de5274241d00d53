// `require('normclip')` in a fresh project: the addon comes from the platform package npm chose,
// constraints compute, and the outputs' digest is printed for the cross-platform comparison.
'use strict'
const path = require('node:path')
const nc = require('normclip')
const { digest } = require('./digest.cjs')

const expected = process.argv[2] // the platform package npm should have installed
const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
if (loaded.length !== 1 || !loaded[0].includes(`${path.sep}node_modules${path.sep}${expected}${path.sep}`)) {
  console.error(`expected the addon from node_modules/${expected}, loaded: ${loaded.join(', ') || 'none'}`)
  process.exit(1)
}
const w = new Float32Array([3, 0, 4, 0]) // [2,2], column norms 5 and 0
new nc.MaxNorm({ maxValue: 1 }).applyInPlace(w, [2, 2])
if (Math.abs(Math.hypot(w[0], w[2]) - 1) > 1e-6 || w[1] !== 0 || w[3] !== 0) {
  console.error(`MaxNorm gave ${Array.from(w)}`)
  process.exit(1)
}
console.log(JSON.stringify({ format: 'cjs', arch: process.arch, tier: nc.simdTier(), addon: path.relative(process.cwd(), loaded[0]), ...digest(nc) }))
