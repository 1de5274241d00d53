/**
 * `npm start`: the same small network trained three ways, side by side, with MaxNorm(3) on every
 * Dense kernel:
 *
 *   (a) no constraint;
 *   (b) tfjs' own `tf.constraints.maxNorm({maxValue: 3})`, as tfjs applies it: never during `fit`
 *       (tensorflow/tfjs#3345, #3979), so (b) trains exactly like (a);
 *   (c) normclip's `MaxNorm(3)` plus `constraintCallback()`, which applies it after every batch,
 *       as Keras does.
 *
 * Per epoch it prints the largest per-unit kernel norm, the test accuracy and the time spent in
 * constraints. It is also a check: it exits non-zero if (c)'s norms ever exceed 3 (+1e-5) after
 * any batch, or if (b)'s never pass 3 (the demo would then show nothing).
 */
import * as tf from '@tensorflow/tfjs'
import { MaxNorm, constraintCallback, simdTier } from '../src/index'
import { gaussianBlobs, type Blobs, type BlobSpec } from './data'

const MAX_NORM = 3
/** f32 rounding of a norm of 3 is ~2e-7; anything past this is a real violation. */
const TOLERANCE = 1e-5
const EPOCHS = 10
const BATCH_SIZE = 32
/** High enough that the unconstrained norms pass 3 within a few epochs on this problem. */
const LEARNING_RATE = 0.03
/** 10 overlapping Gaussian classes in 32 dimensions: learnable (≈75–80% test accuracy), never perfectly. */
const PROBLEM: BlobSpec = { classes: 10, features: 32, separation: 1, spread: 2, seed: 7 }
const TRAIN_PER_CLASS = 200
const TEST_PER_CLASS = 50

type VariantName = 'none' | 'tfjs' | 'normclip'

interface Variant {
  name: VariantName
  title: string
  model: tf.LayersModel
  callbacks: tf.Callback[]
  /** Set for (c): the callback that applies normclip's constraints and times them. */
  constraints?: ReturnType<typeof constraintCallback>
  /** The largest per-unit kernel norm seen after any batch. */
  worstAfterBatch: number
  batches: number
  trainMs: number
}

/** tfjs-node when it is installed and loads (much faster), else tfjs' pure-JS cpu backend. */
async function selectBackend(): Promise<string> {
  try {
    require('@tensorflow/tfjs-node')
    if (await tf.setBackend('tensorflow')) return 'tensorflow (tfjs-node)'
  } catch {
    // Not installed, or no prebuilt binary for this platform: the cpu backend does the same maths.
  }
  await tf.setBackend('cpu')
  return 'cpu'
}

function buildModel(name: VariantName): tf.LayersModel {
  const kernelConstraint = () =>
    name === 'tfjs' ? tf.constraints.maxNorm({ maxValue: MAX_NORM }) : name === 'normclip' ? new MaxNorm({ maxValue: MAX_NORM }) : undefined
  // Seeded initializers: the three models start from identical weights.
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [PROBLEM.features],
        units: 128,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        kernelConstraint: kernelConstraint(),
      }),
      tf.layers.dense({
        units: PROBLEM.classes,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        kernelConstraint: kernelConstraint(),
      }),
    ],
  })
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'categoricalCrossentropy', metrics: ['accuracy'] })
  return model
}

/** The largest L2 norm of a kernel column (one unit's incoming weights: MaxNorm's axis 0) over all Dense kernels. */
function largestUnitNorm(model: tf.LayersModel): number {
  let largest = 0
  for (const layer of model.layers) {
    for (const weight of layer.trainableWeights) {
      if (!weight.originalName.endsWith('/kernel')) continue
      const [rows, columns] = weight.shape as [number, number]
      const values = weight.read().dataSync()
      for (let column = 0; column < columns; column++) {
        let sum = 0
        for (let row = 0; row < rows; row++) sum += values[row * columns + column]! ** 2
        largest = Math.max(largest, Math.sqrt(sum))
      }
    }
  }
  return largest
}

/** Whether two models of the same architecture hold bit-identical weights. */
function sameWeights(a: tf.LayersModel, b: tf.LayersModel): boolean {
  const left = a.getWeights()
  const right = b.getWeights()
  return (
    left.length === right.length &&
    left.every((weight, index) => {
      const x = weight.dataSync()
      const y = right[index]!.dataSync()
      return x.length === y.length && x.every((value, i) => Object.is(value, y[i]))
    })
  )
}

function toTensors(blobs: Blobs): { x: tf.Tensor2D; y: tf.Tensor2D } {
  return tf.tidy(() => ({
    x: tf.tensor2d(blobs.features, [blobs.count, PROBLEM.features]),
    y: tf.oneHot(tf.tensor1d(blobs.labels, 'int32'), PROBLEM.classes).cast('float32') as tf.Tensor2D,
  }))
}

function testAccuracy(model: tf.LayersModel, x: tf.Tensor2D, y: tf.Tensor2D): number {
  return tf.tidy(() => {
    const predicted = (model.predict(x) as tf.Tensor).argMax(1)
    return predicted.equal(y.argMax(1)).cast('float32').mean().dataSync()[0]!
  })
}

function makeVariant(name: VariantName, title: string): Variant {
  const variant: Variant = { name, title, model: buildModel(name), callbacks: [], worstAfterBatch: 0, batches: 0, trainMs: 0 }
  if (name === 'normclip') {
    variant.constraints = constraintCallback()
    variant.callbacks.push(variant.constraints) // first, so the check below sees constrained weights
  }
  // Measures every variant after every batch (costs the same for all three; not counted as constraint time).
  variant.callbacks.push(
    new (class extends tf.Callback {
      override async onBatchEnd(): Promise<void> {
        variant.batches += 1
        variant.worstAfterBatch = Math.max(variant.worstAfterBatch, largestUnitNorm(variant.model))
      }
    })(),
  )
  return variant
}

const pad = (text: string, width: number) => text.padStart(width)
const percent = (value: number) => `${(100 * value).toFixed(1)}%`
/** Table layout: per variant a norm column (with a ">3" flag), an accuracy column and, for (b) and (c), a constraint-time column. */
const NORM_WIDTH = 11
const ACCURACY_WIDTH = 10
const TIME_WIDTH = 13
const SEPARATOR = '  │'
const normCell = (value: number) => pad(`${value.toFixed(3)}${value > MAX_NORM + TOLERANCE ? ' >3' : '   '}`, NORM_WIDTH)
const variantWidth = (variant: Variant) => NORM_WIDTH + ACCURACY_WIDTH + (variant.name === 'none' ? 0 : TIME_WIDTH)

async function main(): Promise<void> {
  tf.enableProdMode() // no tfjs console banners in the table
  const backend = await selectBackend()
  const train = toTensors(gaussianBlobs(PROBLEM, TRAIN_PER_CLASS, 1))
  const test = toTensors(gaussianBlobs(PROBLEM, TEST_PER_CLASS, 2))

  const variants = [makeVariant('none', '(a) no constraint'), makeVariant('tfjs', '(b) tfjs maxNorm(3)'), makeVariant('normclip', '(c) normclip MaxNorm(3)')]

  console.log(`normclip demo: MaxNorm(${MAX_NORM}) on both Dense kernels of a ${PROBLEM.features}-128-${PROBLEM.classes} network`)
  console.log(
    `data: ${PROBLEM.classes}-class synthetic Gaussian clusters, ${train.x.shape[0]} train / ${test.x.shape[0]} test rows (seeded)` +
      ` · Adam(${LEARNING_RATE}), batch ${BATCH_SIZE}, ${EPOCHS} epochs · tfjs backend: ${backend} · normclip SIMD: ${simdTier()}`,
  )
  console.log(`(b) = tf.constraints.maxNorm({maxValue: ${MAX_NORM}}) left to tfjs; (c) = normclip's MaxNorm(${MAX_NORM}) + constraintCallback()`)
  console.log('max‖w‖ = largest per-unit kernel norm at the end of the epoch; constraints = ms spent applying them that epoch\n')
  console.log(['epoch', ...variants.map((v) => SEPARATOR + pad(v.title, variantWidth(v)))].join(''))
  console.log(
    [
      pad('', 5),
      ...variants.map(
        (v) => SEPARATOR + pad('max‖w‖   ', NORM_WIDTH) + pad('test acc', ACCURACY_WIDTH) + (v.name === 'none' ? '' : pad('constraints', TIME_WIDTH)),
      ),
    ].join(''),
  )

  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    const cells: string[] = [pad(String(epoch), 5)]
    for (const variant of variants) {
      const constraintMsBefore = variant.constraints?.elapsedMs ?? 0
      const start = performance.now()
      await variant.model.fit(train.x, train.y, {
        epochs: 1,
        batchSize: BATCH_SIZE,
        shuffle: false, // the same batches for all three: differences come from the constraints alone
        verbose: 0,
        callbacks: variant.callbacks,
      })
      variant.trainMs += performance.now() - start
      const accuracy = testAccuracy(variant.model, test.x, test.y)
      const largest = largestUnitNorm(variant.model)
      let cell = SEPARATOR + normCell(largest) + pad(percent(accuracy), ACCURACY_WIDTH)
      if (variant.name === 'tfjs') cell += pad('never run', TIME_WIDTH)
      if (variant.constraints !== undefined) cell += pad(`${(variant.constraints.elapsedMs - constraintMsBefore).toFixed(1)} ms`, TIME_WIDTH)
      cells.push(cell)
    }
    console.log(cells.join(''))
  }

  const [unconstrained, tfjsOwn, normclip] = variants as [Variant, Variant, Variant]
  const tfjsTrainedLikeNone = sameWeights(unconstrained.model, tfjsOwn.model)
  const steps = normclip.constraints!.steps
  const constraintMs = normclip.constraints!.elapsedMs
  console.log('')
  console.log(
    `(b) tfjs' own maxNorm(3): largest unit norm after any batch ${tfjsOwn.worstAfterBatch.toFixed(3)}; ` +
      (tfjsTrainedLikeNone ? `its final weights are bit-identical to (a)'s: fit never applied the constraint.` : `its final weights differ from (a)'s.`),
  )
  console.log(
    `(c) normclip MaxNorm(3):  largest unit norm after any batch ${normclip.worstAfterBatch.toFixed(6)}` +
      ` (checked after each of ${normclip.batches} batches).`,
  )
  console.log(
    `    time in constraints: ${constraintMs.toFixed(1)} ms over ${steps} steps` +
      ` (${((1000 * constraintMs) / Math.max(1, steps)).toFixed(0)} µs/step),` +
      ` ${percent(constraintMs / normclip.trainMs)} of (c)'s training time.`,
  )

  tf.dispose([train.x, train.y, test.x, test.y])
  for (const variant of variants) variant.model.dispose()

  let failed = false
  if (normclip.worstAfterBatch > MAX_NORM + TOLERANCE) {
    console.error(`FAIL: normclip let a unit norm reach ${normclip.worstAfterBatch} > ${MAX_NORM} + ${TOLERANCE}.`)
    failed = true
  }
  if (tfjsOwn.worstAfterBatch <= MAX_NORM + TOLERANCE) {
    console.error(`FAIL: the unconstrained norms never passed ${MAX_NORM}: the demo shows nothing (tune LEARNING_RATE/EPOCHS).`)
    failed = true
  }
  if (failed) process.exitCode = 1
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
