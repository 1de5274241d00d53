/**
 * The native addon as the rest of the TypeScript sees it: the only module that imports the
 * napi-generated loader (`./native/index.js`), and the owner of its typing — including
 * `applyBound`, a raw N-API function (napi-rs' per-call glue cost more than a small tensor's
 * arithmetic) that the generated `.d.ts` does not declare. Nothing here is public API:
 * `index.ts` exports only names the TypeScript owns.
 */
import type { FloatArray } from './arrays'
import * as loader from './native/index.js'

export * from './native/index.js'

/** A constraint bound to one shape by `NativeConstraint.bind`. */
export type BoundHandle = loader.ExternalObject<'NativeBoundConstraint'>

/** Applies a bound constraint to `array` (of the bound shape's length) in place. */
export const applyBound: (bound: BoundHandle, array: FloatArray) => void = (loader as unknown as { applyBound(bound: BoundHandle, array: FloatArray): void })
  .applyBound
