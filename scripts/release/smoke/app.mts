// A strict `tsc --module nodenext` user program (ESM): normclip's classes typed as tfjs
// constraints without casts, the callback in `fit`, and the result checked at run time.
import * as tf from '@tensorflow/tfjs'
import { MaxNorm, UnitNorm, constraintCallback, applyConstraints, type MaxNormArgs } from 'normclip'

const args: MaxNormArgs = { maxValue: 0.5, axis: 0 }
const model = tf.sequential({
  layers: [
    tf.layers.dense({ inputShape: [8], units: 16, activation: 'relu', kernelConstraint: new MaxNorm(args) }),
    tf.layers.dense({ units: 3, kernelConstraint: new UnitNorm({ axis: 0 }) }),
  ],
})
model.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError' })
const xs = tf.randomNormal([64, 8], 0, 1, 'float32', 5)
const ys = tf.randomNormal([64, 3], 0, 1, 'float32', 6)
await model.fit(xs, ys, { epochs: 2, batchSize: 16, verbose: 0, callbacks: [constraintCallback()] })
applyConstraints(model)
const first = model.layers[0]!.getWeights()[0]!
const norms = tf.sqrt(tf.sum(tf.square(first), 0)).dataSync()
const max = Math.max(...norms)
if (!(max <= 0.5 * (1 + 1e-6))) throw new Error(`unit norm ${max} > 0.5`)
console.log(JSON.stringify({ format: 'tsc nodenext esm', maxUnitNorm: max }))
