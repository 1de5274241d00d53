// Instructions per bound in-place call of one addon build, counted by callgrind (stable on a
// noisy machine, unlike times): only `apply_bound` (the raw N-API function) and what it calls.
//
//   NORMCLIP_THREADS=1 valgrind --tool=callgrind --toggle-collect='*bound*apply_bound*' \
//     node bench/callgrind-bound.cjs ADDON.node CALLS SHAPE AXIS MAX_VALUE
//
// e.g. `... ./src/native/normclip.linux-x64-gnu.node 21 '[64,64]' 0 1`; divide callgrind's
// "Collected" by CALLS. Data: sin-valued, mean square 2 (every norm >= 4): MAX_VALUE 1 rescales
// every slice on every call, 1e6 writes nothing. Plain CommonJS so no loader runs under valgrind.
const [addonPath, calls, shapeArg, axisArg, maxArg] = process.argv.slice(2)
const addon = require(require('node:path').resolve(addonPath))
const shape = JSON.parse(shapeArg)
const length = shape.reduce((a, b) => a * b, 1)
const data = Float32Array.from({ length }, (_, i) => Math.sin(i * 12.9898) * 2)
const constraint = addon.NativeConstraint.create({ kind: 'maxNorm', maxValue: Number(maxArg), axis: JSON.parse(axisArg) })
const bound = constraint.bind(shape)
for (let i = 0; i < Number(calls); i++) addon.applyBound(bound, data)
