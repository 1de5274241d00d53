/**
 * Everything importing normclip does to TensorFlow.js, in one place (nothing else runs at import
 * time). With tfjs present:
 * - normclip's constraint classes are registered with tfjs' serialization as `normclip>MaxNorm`,
 *   …, so `model.save` / `tf.loadLayersModel` round-trip them without replacing tfjs' own classes
 *   (`useNativeConstraints()` opts into that, see `serialization.ts`);
 * - optimizer configs carrying `clipnorm`, `clipvalue` or `global_clipnorm` (Keras training
 *   configs, models saved with a clipping optimizer) load into a clipping optimizer instead of
 *   losing those keys; configs without them load exactly as before. `useClippingOptimizers()`
 *   returns the undo.
 */
import { registerWithTfjs } from './constraints'
import { useClippingOptimizers } from './optimizer'
import { loadTfjs } from './tfjs'

const tf = loadTfjs()
if (tf !== null) {
  registerWithTfjs(tf)
  useClippingOptimizers()
}
