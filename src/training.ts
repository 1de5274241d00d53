/**
 * Weight constraints that really apply while a TensorFlow.js model trains.
 *
 * tfjs-layers applies a layer's `kernelConstraint`, `biasConstraint`, … only in
 * `LayerVariable.write`, i.e. in `setWeights` and when loading weights. `fit`, `fitDataset` and
 * `trainOnBatch` hand the raw variables to `optimizer.minimize`, so during training the
 * constraints are never applied (tensorflow/tfjs#3345, #3979): a kernel under `maxNorm(2)` trains
 * to any norm it likes. Keras applies them after every optimizer update. This module restores
 * that:
 *
 * - {@link applyConstraints} projects every constrained trainable weight of a model (or of a list
 *   of layers) once: the weights whose constraint normclip's native core implements (normclip's
 *   own classes and tfjs' `maxNorm`, `minMaxNorm`, `unitNorm`, `nonNeg`) go through ONE batched
 *   native call; any other constraint is applied through its own `apply`.
 * - {@link constraintCallback} is a tfjs callback that calls it after every batch of `fit` and
 *   `fitDataset`, and measures the time spent.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs'
 * import { MaxNorm, applyConstraints, constraintCallback } from 'normclip'
 *
 * const model = tf.sequential({ layers: [
 *   tf.layers.dense({ inputShape: [20], units: 64, activation: 'relu',
 *                     kernelConstraint: new MaxNorm({ maxValue: 3 }) }),
 *   tf.layers.dense({ units: 2, activation: 'softmax',
 *                     kernelConstraint: tf.constraints.maxNorm({ maxValue: 3 }) }), // tfjs' own: also applied
 * ] })
 * model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' })
 *
 * // fit / fitDataset: put the callback FIRST, so the callbacks after it see constrained weights.
 * const constraints = constraintCallback()
 * await model.fit(x, y, { epochs: 5, callbacks: [constraints] })
 * console.log(`${constraints.elapsedMs.toFixed(1)} ms in ${constraints.steps} constraint steps`)
 *
 * // trainOnBatch or a custom loop: apply them yourself after each optimizer step.
 * await model.trainOnBatch(xBatch, yBatch)
 * applyConstraints(model)
 * ```
 *
 * @packageDocumentation
 */
import type * as Tf from '@tensorflow/tfjs'
import { applyBatch, type NativeBatchItem, type NativeConstraint } from './binding'
import { fastApplyToVariables } from './backends'
import { nativeConstraintOf } from './constraints'
import { assignFloat32, dataSyncIsFresh, requireTfjs, type TfModule } from './tfjs'

/** What {@link applyConstraints} accepts: a model (any `tf.LayersModel` is a layer), a layer, or a list of layers. */
export type ConstraintTarget = Tf.layers.Layer | readonly Tf.layers.Layer[]

/** The part of a tfjs `Constraint` this module needs: tfjs' own classes, normclip's and user-defined ones all have it. */
interface AppliesToTensor {
  apply(weight: Tf.Tensor): Tf.Tensor
}

/** A float32 weight whose constraint runs in the native core. */
interface NativeWeight {
  variable: Tf.Variable
  shape: number[]
  /**
   * This weight's entry in the plan's `applyBatch` argument. Each step fills in `array` (the
   * weight's current values) and, when those are the backend's own storage, `output`: a new
   * array for the constrained values. Nothing is ever written into an array tfjs may have
   * handed out — the cpu backend's `dataSync()` returns its storage, which the app may hold.
   */
  batchItem: NativeBatchItem
}

/** A weight whose constraint only its own `apply` knows (user-defined, or a config the core rejects). */
interface TensorWeight {
  variable: Tf.Variable
  constraint: AppliesToTensor
}

/** What a model's constraints resolve to, built on first use and reused while the model's weights stay the same. */
interface Plan {
  /** The constrained trainable weights and their constraints, in order: the plan holds while these are unchanged. */
  weights: Tf.LayerVariable[]
  constraints: unknown[]
  nativeWeights: NativeWeight[]
  batchItems: NativeBatchItem[]
  /** The native weights' variables and constraints, for `fastApplyToVariables` (the same arrays at every step). */
  fast: { variables: Tf.Variable[]; constraints: NativeConstraint[] }
  tensorWeights: TensorWeight[]
}

const plans = new WeakMap<object, Plan>()

/**
 * Applies every constraint of every trainable weight of `target`, once, as Keras does after each
 * optimizer update: kernels, biases, recurrent kernels, depthwise/pointwise kernels, embeddings,
 * gamma/beta, … of every layer, nested models and wrapped layers (RNN cells, `bidirectional`,
 * `timeDistributed`) included.
 *
 * - normclip's constraints and tfjs' built-ins (`tf.constraints.maxNorm`, `minMaxNorm`,
 *   `unitNorm`, `nonNeg`) run in the native core, all weights in one batched call.
 * - Any other constraint (a subclass of normclip's `Constraint` or of tfjs' base class, a
 *   `FunctionConstraint`) is applied through its own `apply`, inside `tf.tidy`. None is ever
 *   skipped.
 * - Only trainable weights are touched, as in Keras (the optimizer only updates those): the
 *   weights of a frozen layer (`layer.trainable = false`) keep their values. As in tfjs and Keras,
 *   recompile after changing `trainable`: tfjs' optimizer keeps updating the weights it collected
 *   at `compile` (it warns about the discrepancy), this function follows `trainableWeights`.
 *
 * The new values are written with the underlying `tf.Variable.assign`, not `LayerVariable.write`
 * (which would apply tfjs' constraint a second time). No tensor outlives the call
 * (`tf.memory().numTensors` is unchanged). What to apply to which weight is worked out on the
 * first call and cached per `target` object (pass the same array of layers at every step to
 * benefit from it); it is rebuilt when the set of constrained weights or their constraints change
 * (a layer added, a layer frozen, a constraint replaced). Constraint objects are read once per
 * plan: like tfjs' own, treat them as immutable.
 *
 * Call it after each step you take yourself; {@link constraintCallback} does it for `fit` and
 * `fitDataset`.
 *
 * ```ts
 * for (const [xs, ys] of batches) {
 *   await model.trainOnBatch(xs, ys)
 *   applyConstraints(model)          // every unit's kernel norm is now ≤ its maxValue
 * }
 * ```
 *
 * @param target A `tf.LayersModel` (Sequential or functional), a single layer, or a list of
 *   layers (weights shared between them are constrained once).
 * @throws If a native constraint does not fit its weight (e.g. an `axis` beyond the weight's
 *   rank; no weight has been written then), or whatever a user-defined constraint throws.
 */
export function applyConstraints(target: ConstraintTarget): void {
  const tf = requireTfjs('applyConstraints')
  const weights = constrainedTrainableWeights(target)
  let plan = plans.get(target)
  if (plan === undefined || !planMatches(plan, weights)) {
    plan = buildPlan(weights)
    plans.set(target, plan)
  }
  // tfjs-node and wasm constrain the variables on their own memory; elsewhere the data comes out.
  if (plan.batchItems.length > 0 && !fastApplyToVariables(plan.fast.variables, plan.fast.constraints)) {
    const results = plan.nativeWeights.map(readForBatch)
    // Checks every item before writing any: on a bad item nothing has been changed.
    applyBatch(plan.batchItems)
    plan.nativeWeights.forEach((weight, i) => assignFloat32(weight.variable, results[i]!, weight.shape))
  }
  for (const { variable, constraint } of plan.tensorWeights) {
    const constrained = tf.tidy(() => constraint.apply(variable))
    // A constraint may hand back its input untouched; assigning a variable to itself would free
    // its data (Variable.assign releases the old value before taking the new one).
    if (constrained === variable) continue
    variable.assign(constrained)
    constrained.dispose()
  }
}

/** Options of {@link constraintCallback}. */
export interface ConstraintCallbackOptions {
  /**
   * The model whose constraints to apply. Not needed with `model.fit(…, {callbacks})` and
   * `fitDataset`, which hand the callback their model; needed only when tfjs cannot do that:
   * when the callback follows a plain-object callback in the `callbacks` array (tfjs then wraps
   * every entry in a `CustomCallback` and never calls `setModel`), or when two copies of
   * `@tensorflow/tfjs` are loaded. Without it, the callback throws in those cases rather than
   * silently training unconstrained.
   */
  model?: Tf.LayersModel
}

/**
 * The callback {@link constraintCallback} returns: a `tf.Callback` that applies the model's
 * constraints after every batch and counts the time it spends doing so.
 */
export interface ConstraintCallback extends Tf.Callback {
  /** Milliseconds spent in {@link applyConstraints} by this callback, over all its steps. */
  readonly elapsedMs: number
  /** How many times the constraints have been applied (one per batch). */
  readonly steps: number
}

type ConstraintCallbackClass = new (options: ConstraintCallbackOptions) => ConstraintCallback
let constraintCallbackClass: ConstraintCallbackClass | undefined

/**
 * The class behind {@link constraintCallback}. It extends `tf.Callback`, which only exists once
 * tfjs is loaded, so it is defined on first use: normclip itself loads without tfjs (the
 * typed-array API does not need it).
 */
function callbackClass(tfjs: TfModule): ConstraintCallbackClass {
  if (constraintCallbackClass !== undefined) return constraintCallbackClass
  class NormclipConstraintCallback extends tfjs.Callback implements ConstraintCallback {
    elapsedMs = 0
    steps = 0
    private readonly explicitModel: Tf.LayersModel | undefined

    constructor(options: ConstraintCallbackOptions) {
      super()
      this.explicitModel = options.model
      // Bound, so that the callback still works when tfjs calls it as a plain function of a
      // CustomCallback wrapper (see ConstraintCallbackOptions.model): `this` stays this object.
      this.onBatchEnd = this.onBatchEnd.bind(this)
    }

    override async onBatchEnd(_batch: number, _logs?: Tf.Logs): Promise<void> {
      const model = this.explicitModel ?? (this.model as Tf.LayersModel | undefined)
      if (model == null) {
        throw new Error(
          'normclip constraintCallback: tfjs did not give the callback its model. This happens when ' +
            'it follows a plain-object callback in the `callbacks` array, or when two copies of ' +
            '@tensorflow/tfjs are loaded. Put it first, or pass the model: constraintCallback({ model }).',
        )
      }
      const start = performance.now()
      applyConstraints(model)
      this.elapsedMs += performance.now() - start
      this.steps += 1
    }
  }
  constraintCallbackClass = NormclipConstraintCallback
  return constraintCallbackClass
}

/**
 * A callback for `model.fit` and `model.fitDataset` that applies the model's constraints after
 * every batch, i.e. after every optimizer step, as Keras does (see {@link applyConstraints}).
 * Put it first in `callbacks`, so that the callbacks after it (and the epoch's validation) see
 * the constrained weights. Its `elapsedMs` and `steps` tell how much training time the
 * constraints cost.
 *
 * ```ts
 * const constraints = constraintCallback()
 * await model.fit(xs, ys, { epochs: 10, batchSize: 32, callbacks: [constraints, tf.callbacks.earlyStopping()] })
 * await model.fitDataset(dataset, { epochs: 10, callbacks: [constraints] })
 * console.log(`constraints: ${constraints.elapsedMs.toFixed(1)} ms over ${constraints.steps} batches`)
 * ```
 *
 * The callback runs after each batch, so the initial weights are not constrained by it. Keras
 * does not constrain them either: its initializers ignore constraints, and its `set_weights`
 * and weight loading assign values as they are. tfjs differs: `layer.setWeights`,
 * `model.setWeights` and loading weights (`tf.loadLayersModel`) go through
 * `LayerVariable.write`, which applies the weight's constraint (tfjs' own class, or normclip's,
 * in its `apply`). Initial weights from an initializer are never constrained. Call
 * {@link applyConstraints} once before training if the constraints must hold from the start;
 * after `setWeights` it applies them a second time — a no-op in `mode: 'projection'`, and in
 * Keras mode one more `eps` shrink of each slice, exactly what another Keras step would do.
 */
export function constraintCallback(options: ConstraintCallbackOptions = {}): ConstraintCallback {
  const Callback = callbackClass(requireTfjs('constraintCallback'))
  return new Callback(options)
}

/** The trainable weights of `target` that carry a constraint, each once, in the order tfjs lists them. */
function constrainedTrainableWeights(target: ConstraintTarget): Tf.LayerVariable[] {
  const layers: readonly Tf.layers.Layer[] = isLayerList(target) ? target : [target]
  const seen = new Set<Tf.LayerVariable>()
  const weights: Tf.LayerVariable[] = []
  for (const layer of layers) {
    // A model's `trainableWeights` gathers those of its layers, recursively (nested models, RNN
    // cells, wrappers), and is empty for a frozen model or layer.
    for (const weight of layer.trainableWeights) {
      if (weight.constraint != null && !seen.has(weight)) {
        seen.add(weight)
        weights.push(weight)
      }
    }
  }
  return weights
}

function isLayerList(target: ConstraintTarget): target is readonly Tf.layers.Layer[] {
  return Array.isArray(target)
}

function planMatches(plan: Plan, weights: readonly Tf.LayerVariable[]): boolean {
  if (plan.weights.length !== weights.length) return false
  for (let i = 0; i < weights.length; i++) {
    const weight = weights[i]!
    if (plan.weights[i] !== weight || plan.constraints[i] !== weight.constraint) return false
  }
  return true
}

function buildPlan(weights: Tf.LayerVariable[]): Plan {
  const plan: Plan = {
    weights,
    constraints: [],
    nativeWeights: [],
    batchItems: [],
    fast: { variables: [], constraints: [] },
    tensorWeights: [],
  }
  for (const weight of weights) {
    const constraint: unknown = weight.constraint
    plan.constraints.push(constraint)
    const variable = variableOf(weight)
    const native = variable.dtype === 'float32' ? nativeFor(constraint) : undefined
    if (native !== undefined) {
      if (variable.size === 0) continue // nothing to constrain, and nothing the core needs to see
      const shape = variable.shape.slice()
      const batchItem: NativeBatchItem = { array: new Float32Array(0), shape, constraint: native }
      plan.nativeWeights.push({ variable, shape, batchItem })
      plan.batchItems.push(batchItem)
      plan.fast.variables.push(variable)
      plan.fast.constraints.push(native)
    } else {
      plan.tensorWeights.push({ variable, constraint: constraint as AppliesToTensor })
    }
  }
  return plan
}

/**
 * The native form of a constraint, or undefined when only its own `apply` can run it: a
 * user-defined class, or a tfjs built-in whose configuration normclip's core rejects (e.g. a
 * negative `maxValue`, which tfjs accepts and applies as is) — tfjs' own code keeps tfjs' semantics.
 */
function nativeFor(constraint: unknown): NativeConstraint | undefined {
  try {
    return nativeConstraintOf(constraint)
  } catch {
    return undefined
  }
}

/** The `tf.Variable` behind a `LayerVariable` (its `read()` returns the variable itself, not a copy). */
function variableOf(weight: Tf.LayerVariable): Tf.Variable {
  const variable = weight.read() as Tf.Variable
  if (typeof variable.assign !== 'function') {
    throw new TypeError(`normclip: the value of weight ${weight.name} is not a tf.Variable`)
  }
  return variable
}

/**
 * Points the weight's batch item at its current values and returns the array that will hold the
 * constrained ones: the values themselves when `dataSync` copied them out for us (tfjs-node,
 * wasm), else a new array — the cpu backend hands out its own storage, which is only read.
 */
function readForBatch(weight: NativeWeight): Float32Array {
  const data = weight.variable.dataSync() as Float32Array
  weight.batchItem.array = data
  if (dataSyncIsFresh(weight.variable)) {
    delete weight.batchItem.output
    return data
  }
  // A zeroed allocation: fresh pages for large weights, written once by the fused copy.
  const output = new Float32Array(data.length)
  weight.batchItem.output = output
  return output
}
