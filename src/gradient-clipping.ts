/**
 * The gradient-clipping API in one place for `index.ts`: the primitives (`clipping.ts`) and the
 * optimizer step (`optimizer.ts`). Loading it registers the clip-aware optimizer configs with
 * tfjs when tfjs is present (see `useClippingOptimizers`).
 */
import { registerOnLoad } from './optimizer'
import { loadTfjs } from './tfjs'

export * from './clipping'
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

registerOnLoad(loadTfjs())
