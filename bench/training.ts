// What users feel in training: the time per batch spent applying every layer's constraints,
// with normclip's training integration (`constraintCallback`, i.e. `applyConstraints(model)` after
// every batch) against applying tfjs' own constraints to the same weights at each step, as a
// share of the training step. Same model, same data; the configurations (no constraint step,
// normclip, normclip without its zero-copy paths on tfjs-node and wasm, tfjs' own) take turns, one
// epoch each, and per-batch medians are reported.
import * as tf from '@tensorflow/tfjs'
import { constraintCallback } from '../src/training'
import { setFastPaths } from '../src/backends'
import { median } from './measure'
import { useBackend, type BackendName } from './backends'

export interface TrainingRow {
  model: string
  backend: BackendName
  parameters: number
  constrainedElements: number
  batchSize: number
  /** Median ms per batch of `fit` with no constraint step. */
  stepNone: number
  /** Median ms per batch with normclip's callback, and of that the constraint step itself. */
  stepNormclip: number
  constraintNormclip: number
  /** Then making the backend take the new values (tfjs-node uploads them on first use): timed right after the callback. */
  uploadNormclip: number
  /** The same with the zero-copy paths off (tfjs-node and wasm only; undefined elsewhere). */
  stepNormclipCopy?: number
  constraintNormclipCopy?: number
  uploadNormclipCopy?: number
  /** The same with a callback applying tfjs' own constraints (`variable.assign(constraint.apply(variable))`). */
  stepTfjs: number
  constraintTfjs: number
  batches: number
  /** Set when this model cannot train on this backend (e.g. a missing gradient kernel). */
  error?: string
}

interface ModelSpec {
  name: string
  inputShape: number[]
  build: () => tf.LayersModel
  batchSize: number
  /** On tfjs' cpu backend (plain JS: a CNN step takes seconds), when smaller. */
  cpuBatchSize?: number
  batchesPerEpoch: number
}

const maxNorm = (axis: number | number[]) => tf.constraints.maxNorm({ maxValue: 3, axis: axis as number })

const models: ModelSpec[] = [
  {
    name: 'MLP 784-512-256-10',
    inputShape: [784],
    batchSize: 64,
    batchesPerEpoch: 30,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu', kernelConstraint: maxNorm(0) }),
          tf.layers.dense({ units: 256, activation: 'relu', kernelConstraint: maxNorm(0) }),
          tf.layers.dense({ units: 10, activation: 'softmax', kernelConstraint: maxNorm(0) }),
        ],
      }),
  },
  {
    name: 'CNN conv8-conv16-dense32 (28×28×1)',
    inputShape: [28, 28, 1],
    batchSize: 32,
    cpuBatchSize: 8,
    batchesPerEpoch: 30,
    build: () =>
      tf.sequential({
        layers: [
          tf.layers.conv2d({
            inputShape: [28, 28, 1],
            filters: 8,
            kernelSize: 3,
            activation: 'relu',
            kernelConstraint: maxNorm([0, 1, 2]),
          }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', kernelConstraint: maxNorm([0, 1, 2]) }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 32, activation: 'relu', kernelConstraint: maxNorm(0) }),
          tf.layers.dense({ units: 10, activation: 'softmax', kernelConstraint: maxNorm(0) }),
        ],
      }),
  },
]

/** Applies tfjs' own constraint of every constrained trainable weight, as tfjs' `LayerVariable.write` would. */
function applyTfjsConstraints(model: tf.LayersModel): void {
  for (const weight of model.trainableWeights) {
    const constraint = weight.constraint
    if (constraint == null) continue
    const variable = weight.read() as tf.Variable
    const constrained = tf.tidy(() => constraint.apply(variable))
    variable.assign(constrained)
    constrained.dispose()
  }
}

type Config = 'none' | 'normclip' | 'normclipCopy' | 'tfjs'

export async function measureTraining(backends: readonly BackendName[], rounds: number, log: (line: string) => void): Promise<TrainingRow[]> {
  const rows: TrainingRow[] = []
  for (const backend of backends) {
    for (const spec of models) {
      try {
        rows.push(await measureOne(backend, spec, rounds, log))
      } catch (error) {
        const message = String(error instanceof Error ? error.message : error).split('\n')[0]!
        log(`  training ${spec.name} on ${backend}: not measured (${message})`)
        rows.push({
          model: spec.name,
          backend,
          parameters: NaN,
          constrainedElements: NaN,
          batchSize: spec.batchSize,
          stepNone: NaN,
          stepNormclip: NaN,
          constraintNormclip: NaN,
          uploadNormclip: NaN,
          stepTfjs: NaN,
          constraintTfjs: NaN,
          batches: 0,
          error: message,
        })
        tf.disposeVariables()
      }
    }
  }
  return rows
}

async function measureOne(backend: BackendName, spec: ModelSpec, rounds: number, log: (line: string) => void): Promise<TrainingRow> {
  await useBackend(backend)
  const model = spec.build()
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' })
  // tfjs' cpu backend is plain JS (a step of the MLP takes ~1 s): fewer batches there.
  const batches = backend === 'cpu' ? Math.min(4, spec.batchesPerEpoch) : spec.batchesPerEpoch
  if (backend === 'cpu') rounds = Math.min(rounds, 2)
  const batchSize = backend === 'cpu' ? (spec.cpuBatchSize ?? spec.batchSize) : spec.batchSize
  const n = batchSize * batches
  const x = tf.randomNormal([n, ...spec.inputShape])
  const y = tf.oneHot(tf.randomUniform([n], 0, 10, 'int32') as tf.Tensor1D, 10)
  const normclip = constraintCallback({ model })
  const steps: Record<Config, number[]> = { none: [], normclip: [], normclipCopy: [], tfjs: [] }
  const constraintTimes: Record<'normclip' | 'normclipCopy' | 'tfjs', number[]> = { normclip: [], normclipCopy: [], tfjs: [] }
  const touchTimes: Record<Config, number[]> = { none: [], normclip: [], normclipCopy: [], tfjs: [] }
  const configs: Config[] = backend === 'cpu' ? ['none', 'normclip', 'tfjs'] : ['none', 'normclip', 'normclipCopy', 'tfjs']
  const constrainedVariables = model.trainableWeights.filter((w) => w.constraint != null).map((w) => w.read())

  const epoch = async (config: Config, record: boolean) => {
    let last = NaN
    let lastElapsed = normclip.elapsedMs
    const callbacks: tf.CustomCallbackArgs[] = []
    if (config === 'normclip' || config === 'normclipCopy') {
      const zeroCopy = config === 'normclip'
      callbacks.push({
        onBatchEnd: async (batch, logs) => {
          setFastPaths({ tfjsNode: zeroCopy, wasm: zeroCopy })
          await normclip.onBatchEnd(batch, logs)
          setFastPaths({ tfjsNode: true, wasm: true })
          if (record) constraintTimes[config].push(normclip.elapsedMs - lastElapsed)
          lastElapsed = normclip.elapsedMs
        },
      })
    } else if (config === 'tfjs') {
      callbacks.push({
        onBatchEnd: () => {
          const start = performance.now()
          applyTfjsConstraints(model)
          if (record) constraintTimes.tfjs.push(performance.now() - start)
        },
      })
    }
    // tfjs-node keeps values written from JS (normclip's constrained weights) in JS until an op
    // first reads them; make that upload happen here, in every configuration alike (a reshape is
    // an op that moves no data), so that it is timed apart rather than inside the next step.
    callbacks.push({
      onBatchEnd: () => {
        const start = performance.now()
        for (const variable of constrainedVariables) tf.tidy(() => tf.reshape(variable, [-1]))
        if (record) touchTimes[config].push(performance.now() - start)
      },
    })
    callbacks.push({
      onBatchEnd: () => {
        const t = performance.now()
        if (record && !Number.isNaN(last)) steps[config].push(t - last)
        last = t
      },
    })
    await model.fit(x, y, { epochs: 1, batchSize, shuffle: false, verbose: 0, yieldEvery: 'never', callbacks })
  }

  for (const config of configs) await epoch(config, false) // warm-up
  for (let r = 0; r < rounds; r++) for (const config of configs) await epoch(config, true)

  const constrainedElements = model.trainableWeights
    .filter((w) => w.constraint != null)
    .reduce((a, w) => a + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0)
  const row: TrainingRow = {
    model: spec.name,
    backend,
    parameters: model.countParams(),
    constrainedElements,
    batchSize,
    stepNone: median(steps.none),
    stepNormclip: median(steps.normclip),
    constraintNormclip: median(constraintTimes.normclip),
    uploadNormclip: Math.max(0, median(touchTimes.normclip) - median(touchTimes.none)),
    ...(configs.includes('normclipCopy')
      ? {
          stepNormclipCopy: median(steps.normclipCopy),
          constraintNormclipCopy: median(constraintTimes.normclipCopy),
          uploadNormclipCopy: Math.max(0, median(touchTimes.normclipCopy) - median(touchTimes.none)),
        }
      : {}),
    stepTfjs: median(steps.tfjs),
    constraintTfjs: median(constraintTimes.tfjs),
    batches: steps.none.length,
  }
  log(
    `  training ${spec.name} on ${backend}: step ${row.stepNone.toFixed(2)} ms; normclip ${row.constraintNormclip.toFixed(3)} ms + upload ${row.uploadNormclip.toFixed(3)} ms ` +
      `(${((100 * row.constraintNormclip) / row.stepNormclip).toFixed(2)}%)` +
      (row.constraintNormclipCopy === undefined
        ? ''
        : `; copy path ${row.constraintNormclipCopy.toFixed(3)} ms + upload ${row.uploadNormclipCopy!.toFixed(3)} ms`) +
      `; tfjs own ${row.constraintTfjs.toFixed(3)} ms ` +
      `(${((100 * row.constraintTfjs) / row.stepTfjs).toFixed(2)}%)`,
  )
  x.dispose()
  y.dispose()
  model.dispose()
  return row
}
