/**
 * Keras' optimizer step for TensorFlow.js: clip the gradients, update, apply the constraints.
 *
 * tfjs' optimizers take no `clipnorm` / `clipvalue` / `global_clipnorm`, and `fit` never applies
 * constraints. Keras 3's `BaseOptimizer.apply` does, in this order: clip the gradients (one of
 * `clipnorm` per variable, `global_clipnorm` over all, `clipvalue` per element), run the update,
 * then assign every constrained variable its constrained value. {@link withGradientClipping}
 * returns a real `tf.Optimizer` that does exactly that around any tfjs optimizer, so it works in
 * `model.compile` → `fit`, `fitDataset`, `trainOnBatch`, and in custom loops through
 * `optimizer.minimize` / `applyGradients`; {@link compileKeras} is the one line for a model.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs'
 * import { compileKeras, withGradientClipping } from 'normclip'
 *
 * compileKeras(model, { optimizer: tf.train.adam(1e-3), globalClipnorm: 1, loss: 'meanSquaredError' })
 * await model.fit(xs, ys)        // every step: clip, Adam update, constraints — as Keras
 *
 * const opt = withGradientClipping(tf.train.sgd(0.1), { clipnorm: 1, constraints: model })
 * opt.minimize(() => loss(model.predict(x), y))   // custom loop: the same step
 * ```
 *
 * Gradients on the cpu, wasm and tensorflow (tfjs-node) backends go through the native core in one
 * call per step (a norm pass and a scale pass over every gradient); on other backends (webgl,
 * webgpu) the same formulas run as tfjs ops on the device.
 */
import type * as Tf from '@tensorflow/tfjs'
import * as native from './binding'
import { describe } from './options'
import { applyConstraints, type ConstraintTarget } from './training'
import { ownedFloat32Data, requireTfjs, type TfModule } from './tfjs'

/** Keras' three clip options (at most one), in tfjs' camelCase or Keras' snake_case. */
export interface GradientClipping {
  /** Each gradient clipped to this L2 norm (TF `clip_by_norm`, all axes). */
  clipnorm?: number | null
  /** All gradients scaled together so their global L2 norm is at most this (TF `clip_by_global_norm`). */
  globalClipnorm?: number | null
  /** Keras' snake_case spelling of `globalClipnorm`. */
  global_clipnorm?: number | null
  /** Every gradient element clipped to `[-clipvalue, clipvalue]`. */
  clipvalue?: number | null
}

/** Options of {@link withGradientClipping}. */
export interface ClippingOptimizerOptions extends GradientClipping {
  /**
   * A model (or layers) whose constraints are applied after every update, as Keras' optimizer
   * does: then no `constraintCallback()` is needed, in any training loop.
   */
  constraints?: ConstraintTarget
  /**
   * Where the clipping runs: `'auto'` (default: the native core on the cpu, wasm and tensorflow
   * backends, tfjs ops elsewhere), `'native'`, or `'tfjs'` (tfjs ops on every backend).
   */
  engine?: 'auto' | 'native' | 'tfjs'
}

/** Which clip, resolved from the options. */
type Clip = { kind: 'clipnorm' | 'globalClipnorm' | 'clipvalue'; value: number } | null

/** A tfjs optimizer that clips as Keras does; also a plain `tf.Optimizer`. */
export interface ClippingOptimizer extends Tf.Optimizer {
  /** The optimizer whose update runs after clipping. */
  readonly inner: Tf.Optimizer
  /** The clip option in Keras' spelling, or null when only constraints are applied. */
  readonly clipping: { clipnorm: number | null; global_clipnorm: number | null; clipvalue: number | null }
  /** The global norm of the last step's gradients before clipping (globalClipnorm only; NaN before the first step). */
  readonly lastGlobalNorm: number
}

/** tfjs' `NamedTensor` (not exported by the tfjs package's types). */
type NamedTensor = { name: string; tensor: Tf.Tensor }

const OPTION_KEYS = ['clipnorm', 'globalClipnorm', 'global_clipnorm', 'clipvalue', 'constraints', 'engine'] as const

/** Keras' rule: at most one clip option; `None` (null/undefined) or a value ≤ 0 means off. */
function resolveClip(options: GradientClipping, argument: string): Clip {
  if (options.globalClipnorm != null && options.global_clipnorm != null) {
    throw new RangeError(`${argument}: give globalClipnorm or global_clipnorm, not both`)
  }
  const entries: [NonNullable<Clip>['kind'], unknown][] = [
    ['clipnorm', options.clipnorm],
    ['globalClipnorm', options.globalClipnorm ?? options.global_clipnorm],
    ['clipvalue', options.clipvalue],
  ]
  const set = entries.filter(([, v]) => v != null)
  if (set.length > 1) {
    // Keras' ValueError, in its words.
    throw new RangeError(
      `${argument}: only one of clipnorm, clipvalue and globalClipnorm can be set. Received: ${entries.map(([k, v]) => `${k}=${v ?? null}`).join(', ')}`,
    )
  }
  if (set.length === 0) return null
  const [kind, value] = set[0]!
  if (typeof value !== 'number' || Number.isNaN(value) || !Number.isFinite(value)) {
    throw new RangeError(`${argument}.${kind}: expected a finite number, got ${describe(value)}`)
  }
  // Keras: `if self.clipnorm and self.clipnorm > 0` — zero or negative turns clipping off.
  return value > 0 ? { kind, value } : null
}

type ClippingOptimizerClass = new (inner: Tf.Optimizer, clip: Clip, options: ClippingOptimizerOptions) => ClippingOptimizer
let optimizerClass: ClippingOptimizerClass | undefined

/** Backends whose tensor data the core can take in one copy (or none). */
const NATIVE_BACKENDS = new Set(['cpu', 'wasm', 'tensorflow'])

function defineClass(tf: TfModule): ClippingOptimizerClass {
  if (optimizerClass !== undefined) return optimizerClass
  class NormclipClippingOptimizer extends tf.Optimizer implements ClippingOptimizer {
    static className = 'normclip>ClippingOptimizer'
    readonly inner: Tf.Optimizer
    readonly clipping: ClippingOptimizer['clipping']
    lastGlobalNorm = Number.NaN
    private readonly clip: Clip
    private readonly target: ConstraintTarget | undefined
    private readonly engine: 'auto' | 'native' | 'tfjs'

    constructor(inner: Tf.Optimizer, clip: Clip, options: ClippingOptimizerOptions) {
      super()
      this.inner = inner
      this.clip = clip
      this.target = options.constraints
      this.engine = options.engine ?? 'auto'
      this.clipping = {
        clipnorm: clip?.kind === 'clipnorm' ? clip.value : null,
        global_clipnorm: clip?.kind === 'globalClipnorm' ? clip.value : null,
        clipvalue: clip?.kind === 'clipvalue' ? clip.value : null,
      }
    }

    override applyGradients(variableGradients: Tf.NamedTensorMap | NamedTensor[]): void {
      const named: NamedTensor[] = Array.isArray(variableGradients)
        ? variableGradients.filter((g) => g.tensor != null)
        : Object.keys(variableGradients)
            .filter((name) => variableGradients[name] != null)
            .map((name) => ({ name, tensor: variableGradients[name]! }))
      const clipped = this.clip === null || named.length === 0 ? null : this.clipGradients(named.map((g) => g.tensor))
      try {
        this.inner.applyGradients(clipped === null ? named : named.map((g, i) => ({ name: g.name, tensor: clipped[i]! })))
      } finally {
        if (clipped !== null) tf.dispose(clipped)
      }
      if (this.target !== undefined) applyConstraints(this.target)
    }

    /** The clipped gradients as new tensors (the caller disposes them). */
    private clipGradients(grads: Tf.Tensor[]): Tf.Tensor[] {
      const clip = this.clip!
      if (clip.kind === 'clipvalue') {
        // One elementwise op: cheaper on the device than a round trip through the core.
        return grads.map((g) => tf.clipByValue(g, -clip.value, clip.value))
      }
      const useNative = this.engine === 'native' || (this.engine === 'auto' && NATIVE_BACKENDS.has(tf.getBackend()))
      if (useNative && grads.every((g) => g.dtype === 'float32')) {
        const arrays = grads.map((g, i) => ownedFloat32Data(g, `gradients[${i}]`))
        if (clip.kind === 'clipnorm') {
          native.clipEachByNorm(arrays, clip.value)
        } else {
          this.lastGlobalNorm = native.clipByGlobalNorm(arrays, clip.value, null)
        }
        return arrays.map((a, i) => tf.tensor(a, grads[i]!.shape, 'float32'))
      }
      return tf.tidy(() => {
        if (clip.kind === 'clipnorm') return grads.map((g) => tfClipByNorm(tf, g, clip.value))
        const [out, norm] = tfClipByGlobalNorm(tf, grads, clip.value)
        this.lastGlobalNorm = norm.dataSync()[0]!
        return out
      })
    }

    override get iterations(): number {
      return this.inner.iterations
    }
    override async getWeights(): Promise<NamedTensor[]> {
      return this.inner.getWeights()
    }
    override async setWeights(weightValues: NamedTensor[]): Promise<void> {
      return this.inner.setWeights(weightValues)
    }
    override dispose(): void {
      this.inner.dispose()
    }
    /** The wrapped optimizer's class name, so a saved model names 'Adam', 'SGD', … as Keras does. */
    override getClassName(): string {
      return this.inner.getClassName()
    }
    /** The wrapped optimizer's config plus the clip key (tfjs' camelCase, as tfjs saves configs). */
    override getConfig(): Tf.serialization.ConfigDict {
      const config = { ...this.inner.getConfig() }
      if (this.clip !== null) config[this.clip.kind] = this.clip.value
      return config
    }
  }
  optimizerClass = NormclipClippingOptimizer
  return optimizerClass
}

/**
 * Wraps a tfjs optimizer so that every step clips the gradients as Keras 3's `BaseOptimizer.apply`
 * does (before the update), runs the wrapped optimizer's update, then — with `constraints` — applies
 * the constraints of that model or those layers (after the update, as Keras). Returns a real
 * `tf.Optimizer`: use it in `model.compile`, `fit`, `fitDataset`, `trainOnBatch`, or call
 * `minimize` / `applyGradients` in a custom loop. `getConfig()` includes the clip key.
 *
 * At most one of `clipnorm`, `globalClipnorm` (`global_clipnorm`), `clipvalue` (Keras' error
 * otherwise); like Keras, a value ≤ 0 turns clipping off. Unknown option keys are errors.
 */
export function withGradientClipping(optimizer: Tf.Optimizer, options: ClippingOptimizerOptions = {}): ClippingOptimizer {
  const tf = requireTfjs('withGradientClipping')
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new TypeError(`optimizer: expected a tf.Optimizer, got ${describe(optimizer)}`)
  }
  checkKeys(options, OPTION_KEYS, 'options')
  if (options.engine !== undefined && !['auto', 'native', 'tfjs'].includes(options.engine)) {
    throw new RangeError(`options.engine: expected 'auto', 'native' or 'tfjs', got ${describe(options.engine)}`)
  }
  const Class = defineClass(tf)
  return new Class(optimizer, resolveClip(options, 'options'), options)
}

/** Arguments of {@link compileKeras}: `model.compile`'s, plus the clip options. */
export type CompileKerasArgs = Tf.ModelCompileArgs & GradientClipping & { engine?: ClippingOptimizerOptions['engine'] }

/**
 * `model.compile(args)` with Keras' whole optimizer step: the optimizer (a name such as `'adam'`
 * or a `tf.Optimizer`) is wrapped by {@link withGradientClipping} with the clip option and the
 * model's own constraints. After this one line, `fit`, `fitDataset`, `trainOnBatch` and
 * `model.optimizer.minimize` all clip, update and constrain as Keras does — do not add
 * `constraintCallback()` as well (constraints would run twice).
 */
export function compileKeras(model: Tf.LayersModel, args: CompileKerasArgs): ClippingOptimizer {
  const { clipnorm, globalClipnorm, global_clipnorm, clipvalue, engine, ...compileArgs } = args
  const clip = { clipnorm, globalClipnorm, global_clipnorm, clipvalue }
  resolveClip(clip, 'args') // Keras' checks before anything changes
  model.compile(compileArgs)
  const wrapped = withGradientClipping(model.optimizer, { ...dropUndefined(clip), constraints: model, ...(engine ? { engine } : {}) })
  model.optimizer = wrapped
  return wrapped
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}

function checkKeys(options: unknown, allowed: readonly string[], argument: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${argument}: expected an object, got ${describe(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new RangeError(`${argument}.${key}: unknown option (expected one of ${allowed.join(', ')})`)
  }
}

// ---------------------------------------------------------------------------------------------
// The same formulas as tfjs ops (other backends; also what users would write by hand today)

/** TF `clip_by_norm` (all axes) as tfjs ops: `(g · c) / max(where(s > 0, √s, s), c)`. */
export function tfClipByNorm(tf: TfModule, g: Tf.Tensor, clipNorm: number): Tf.Tensor {
  return tf.tidy(() => {
    const l2sum = tf.sum(tf.square(g))
    const l2norm = tf.where(tf.greater(l2sum, 0), tf.sqrt(l2sum), l2sum)
    return tf.div(tf.mul(g, clipNorm), tf.maximum(l2norm, clipNorm))
  })
}

/** TF `clip_by_global_norm` as tfjs ops: `N = √(Σ Σg²)`, scale `c · min(1/N, 1/c) + (N − N)`. */
export function tfClipByGlobalNorm(tf: TfModule, grads: Tf.Tensor[], clipNorm: number): [Tf.Tensor[], Tf.Scalar] {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as Tf.Scalar
    const scale = tf.add(tf.mul(clipNorm, tf.minimum(tf.div(1, norm), 1 / clipNorm)), tf.sub(norm, norm))
    return [grads.map((g) => tf.mul(g, scale)), norm] as [Tf.Tensor[], Tf.Scalar]
  })
}

// ---------------------------------------------------------------------------------------------
// Loading Keras training configs with clip options

/** The tfjs optimizer class names Keras configs use. */
const OPTIMIZER_NAMES = ['Adam', 'SGD', 'RMSProp', 'Adagrad', 'Adadelta', 'Adamax', 'Momentum'] as const
let restoreRegistry: (() => void) | undefined

/**
 * Makes tfjs load optimizer configs that carry `clipnorm`, `clipvalue` or `global_clipnorm`
 * (Keras 2 and 3 training configs in a converted `model.json`, and models saved with a
 * {@link withGradientClipping} optimizer) into a clipping optimizer: tfjs' own `fromConfig` drops
 * those keys silently. Configs without them load exactly as before. Called when normclip loads
 * (with tfjs present); returns a function that puts tfjs' own entries back.
 */
export function useClippingOptimizers(): () => void {
  if (restoreRegistry !== undefined) return restoreRegistry
  const tf = requireTfjs('useClippingOptimizers')
  const map = tf.serialization.SerializationMap.getMap().classNameMap as Record<
    string,
    [Tf.serialization.SerializableConstructor<Tf.serialization.Serializable>, (cls: unknown, config: Tf.serialization.ConfigDict) => unknown]
  >
  const saved = new Map<string, (typeof map)[string]>()
  for (const name of OPTIMIZER_NAMES) {
    const entry = map[name]
    if (entry === undefined) continue
    saved.set(name, entry)
    const [cls, fromConfig] = entry
    map[name] = [
      cls,
      (c: unknown, config: Tf.serialization.ConfigDict) => {
        const { clipnorm, clipvalue, globalClipnorm, global_clipnorm, ...rest } = config as Record<string, unknown>
        const inner = fromConfig(c, keras3Config(name, rest)) as Tf.Optimizer
        const clip = resolveClip(
          { clipnorm, clipvalue, globalClipnorm: (globalClipnorm ?? global_clipnorm) as number | null } as GradientClipping,
          `${name} config`,
        )
        return clip === null ? inner : withGradientClipping(inner, { [clip.kind]: clip.value })
      },
    ]
  }
  restoreRegistry = () => {
    for (const [name, entry] of saved) map[name] = entry
    restoreRegistry = undefined
  }
  return restoreRegistry
}

/**
 * Keras 3 configs name the learning rate `learning_rate` (→ `learningRate`, which tfjs reads) but
 * Adam's betas `beta_1` / `beta_2` (→ `beta1` / `beta2`, also read): nothing to rename after
 * tfjs' snake → camel conversion, except values Keras writes as a schedule dict, which tfjs cannot
 * use — those are passed on as they are and tfjs reports them.
 */
function keras3Config(_name: string, config: Record<string, unknown>): Tf.serialization.ConfigDict {
  return config as Tf.serialization.ConfigDict
}
