// The same for a CommonJS user program under `--module nodenext` (`import x = require(...)`).
import tf = require('@tensorflow/tfjs')
import normclip = require('normclip')

const layer = tf.layers.dense({ inputShape: [4], units: 2, kernelConstraint: new normclip.MaxNorm({ maxValue: 1 }) })
const minMax = new normclip.MinMaxNorm({ minValue: 0.1, maxValue: 2 })
const constraint: Parameters<typeof tf.layers.dense>[0]['biasConstraint'] = minMax
const w = new Float32Array([3, 4])
normclip.maxNorm({ maxValue: 1 }).applyInPlace(w, [2])
if (Math.abs(Math.hypot(w[0]!, w[1]!) - 1) > 1e-6) throw new Error(`MaxNorm gave ${Array.from(w)}`)
console.log(JSON.stringify({ format: 'tsc nodenext cjs', layer: layer.getClassName(), constraint: constraint === minMax && minMax.getClassName() }))
