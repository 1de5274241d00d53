/**
 * What a Keras / tfjs layer config says about its weights' constraints: the config key for each
 * weight (`kernel` → `kernel_constraint`, `recurrent_kernel` → `recurrent_constraint`, …), and the
 * layers of a model config with their class names, nested models and wrappers opened up.
 *
 * The constraint dicts themselves are turned into constraints by `deserialize` (../serialization),
 * which owns every Keras 1/2/3 and tfjs identifier.
 */

/** A layer as the model config describes it. */
export interface ConfigLayer {
  name: string
  className: string
  config: Record<string, unknown>
}

/** The constraint key of each weight name a layer creates (Keras and tfjs use the same). */
const CONSTRAINT_KEYS: Readonly<Record<string, string>> = {
  kernel: 'kernel_constraint',
  recurrent_kernel: 'recurrent_constraint',
  bias: 'bias_constraint',
  embeddings: 'embeddings_constraint',
  depthwise_kernel: 'depthwise_constraint',
  pointwise_kernel: 'pointwise_constraint',
  gamma: 'gamma_constraint',
  beta: 'beta_constraint',
  alpha: 'alpha_constraint',
}

/** `dense_Dense1/recurrentKernel:0` → `recurrent_kernel`. */
export function weightKey(name: string): string {
  const last = name.split('/').pop() ?? name
  return last.replace(/:\d+$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

/** The constraint dict a layer config declares for one of its weights, if any. */
export function declaredConstraint(layer: ConfigLayer, weight: string): unknown {
  const key = CONSTRAINT_KEYS[weightKey(weight)]
  if (key === undefined) return undefined
  const value = layer.config[key] ?? layer.config[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())]
  return value === null ? undefined : value
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

/** Every layer of a model config (Sequential, Functional/Model), nested models and wrappers opened. */
export function configLayers(modelConfig: unknown): ConfigLayer[] {
  const out: ConfigLayer[] = []
  const visit = (node: unknown): void => {
    const object = asObject(node)
    if (object === undefined) return
    const className = (object['class_name'] ?? object['className']) as string | undefined
    const config = asObject(object['config'])
    if (typeof className !== 'string' || config === undefined) return
    const layers = config['layers']
    if (Array.isArray(layers)) {
      layers.forEach(visit)
      return
    }
    const name = typeof config['name'] === 'string' ? (config['name'] as string) : ''
    out.push({ name, className, config })
    // TimeDistributed / Bidirectional: the inner layer owns the weights.
    if (config['layer'] !== undefined) visit(config['layer'])
    if (config['backward_layer'] !== undefined) visit(config['backward_layer'])
  }
  visit(modelConfig)
  return out
}

/**
 * The layer a weight belongs to: the deepest layer whose name appears as a path segment of the
 * weight name (`sequential/dense_1/kernel` → `dense_1`; `bidirectional/forward_lstm/...` →
 * `forward_lstm` when the config names it so).
 */
export function layerOfWeight(layers: readonly ConfigLayer[], weightName: string, byName?: Map<string, ConfigLayer>): ConfigLayer | undefined {
  const map = byName ?? new Map(layers.map((l) => [l.name, l]))
  const segments = weightName.split('/').slice(0, -1)
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i]!
    // Bidirectional names its copies of the inner layer forward_<name> and backward_<name>.
    const layer = map.get(segment) ?? map.get(segment.replace(/^(forward|backward)_/, ''))
    if (layer !== undefined) return layer
  }
  return undefined
}
