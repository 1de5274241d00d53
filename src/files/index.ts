/**
 * Weight files: inspect them and apply constraints to them at disk speed (the byte work is native,
 * `crates/normclip-files`). See {@link inspectModel} and {@link constrainModel}.
 */
export { inspectModel } from './inspect'
export type { InspectOptions, ModelReport, WeightReport, NormStats } from './inspect'
export { constrainModel } from './constrain'
export type { ConstrainOptions, ConstrainResult, WeightChange } from './constrain'
export { WeightFileError } from './errors'
export type { FileErrorKind } from './errors'
export type { WeightFormat } from './model'
