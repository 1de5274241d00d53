import * as tf from '@tensorflow/tfjs'
import { beforeAll } from 'vitest'

/** Runs the calling file's tests on tfjs' cpu backend, whichever other backends it imports. */
export function onCpuBackend(): void {
  beforeAll(async () => {
    await tf.setBackend('cpu')
  })
}
