// A short tfjs `fit` (cpu backend, pure JS: runs wherever Node runs, qemu too) with MaxNorm(0.5)
// kernels: with constraintCallback() every unit norm stays <= 0.5; without it tfjs never applies
// the constraint and the norms run past it. Prints one JSON line; exits 1 if either fails.
'use strict'
const tf = require('@tensorflow/tfjs')
const nc = require('normclip')

function maxUnitNorm(model) {
  let max = 0
  for (const layer of model.layers) {
    const kernel = layer.getWeights()[0]
    const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(kernel), 0)).dataSync())
    for (const n of norms) max = Math.max(max, n)
  }
  return max
}

async function train(withCallback) {
  tf.setBackend('cpu')
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [16], units: 32, activation: 'relu', kernelConstraint: new nc.MaxNorm({ maxValue: 0.5 }), kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelConstraint: new nc.MaxNorm({ maxValue: 0.5 }), kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  })
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'categoricalCrossentropy' })
  const xs = tf.randomNormal([256, 16], 0, 1, 'float32', 3)
  const ys = tf.oneHot(tf.argMax(tf.matMul(xs, tf.randomNormal([16, 4], 0, 1, 'float32', 4)), 1), 4)
  await model.fit(xs, ys, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0, callbacks: withCallback ? [nc.constraintCallback()] : [] })
  return maxUnitNorm(model)
}

;(async () => {
  const held = await train(true)
  const free = await train(false)
  const ok = held <= 0.5 * (1 + 1e-6) && free > 0.5
  console.log(JSON.stringify({ arch: process.arch, tier: nc.simdTier(), withCallback: held, without: free, ok }))
  process.exit(ok ? 0 : 1)
})().catch((e) => { console.error(e); process.exit(1) })
