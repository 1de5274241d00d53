/**
 * normclip: Keras-exact weight constraints on a SIMD Rust core.
 *
 * Every public name is defined in this package's TypeScript; the napi-generated loader stays
 * private behind `binding.ts`. `constrain` is the fast path for calling one constraint many
 * times: built and validated once, planned once per shape, applied through a raw N-API call.
 *
 * The Keras-compatible API (MaxNorm, MinMaxNorm, UnitNorm, NonNeg, RadialConstraint as tfjs
 * constraints; get / serialize / deserialize for Keras 1-3 and tfjs identifiers; per-unit axes
 * and their check; batched application; training integration) is re-exported below.
 *
 * ```ts
 * import { constrain } from 'normclip'
 * const kernel = new Float32Array(784 * 512)      // a Dense kernel [in, units]
 * const maxNorm = constrain({ kind: 'maxNorm', maxValue: 3, axis: 0 })
 * maxNorm(kernel, [784, 512])                      // in place, one norm per unit
 * ```
 */
import './setup' // tfjs registrations, the only import-time side effect (see setup.ts)

export { simdTier, threadCount } from './runtime'

export { constrain, type ConstraintSpec } from './bound'
export type { FloatArray } from './arrays'

// The Keras-compatible API and the TensorFlow.js interop (tfjs is an optional peer: everything
// below works on typed arrays without it).
export {
  Constraint,
  NativeBackedConstraint,
  FunctionConstraint,
  MaxNorm,
  MinMaxNorm,
  UnitNorm,
  NonNeg,
  RadialConstraint,
  maxNorm,
  minMaxNorm,
  unitNorm,
  nonNeg,
  radialConstraint,
} from './constraints'
export type { Axis, Mode, NormOptions, MaxNormArgs, MinMaxNormArgs, UnitNormArgs, Norms } from './constraints'
export { applyBatch, applyBatchAsync } from './batch'
export type { BatchItem, BatchResult } from './batch'
export { get, serialize, deserialize, useNativeConstraints, restoreTfjsConstraints } from './serialization'
export type {
  ConstraintIdentifier,
  ConstraintDict,
  SerializationFormat,
  Keras3Dict,
  Keras2Dict,
  Keras1Dict,
  TfjsDict,
} from './serialization'
export { perUnitAxes, checkConstraintAxes } from './per-unit-axes'
export type { ConstraintAxisIssue, LayerLike } from './per-unit-axes'
export { applyConstraints, constraintCallback } from './training'
export type { ConstraintCallback, ConstraintCallbackOptions, ConstraintTarget } from './training'
// Gradient and update clipping, and Keras' optimizer step (clip, update, constraints).
export {
  clipByNorm,
  globalNorm,
  clipByGlobalNorm,
  getTotalNorm,
  clipGradsWithNorm,
  clipGradNorm,
  clipPerExample,
  clipUpdate,
  clipByValue,
  type Clippable,
  type ShapedArray,
  type NormType,
  type ClipGradNormOptions,
  type PerExampleStyle,
  type ClipPerExampleOptions,
  type PerExampleResult,
  type UpdateClipResult,
} from './clipping'
export {
  withGradientClipping,
  compileKeras,
  useClippingOptimizers,
  tfClipByNorm,
  tfClipByGlobalNorm,
  type GradientClipping,
  type ClippingOptimizerOptions,
  type ClippingOptimizer,
  type CompileKerasArgs,
} from './optimizer'
export * from './files' // weight files: inspectModel, constrainModel (the CLI's inspect/apply/check)
