// The Keras parity fixtures (fixtures/keras-constraints.json, made by scripts/keras-fixtures/
// generate.py with real Keras 3 and tf-keras), typed once for every test that reads them.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface KerasCase {
  name: string
  source: 'keras3' | 'tf_keras'
  constraint: 'MaxNorm' | 'MinMaxNorm' | 'UnitNorm' | 'NonNeg' | 'RadialConstraint'
  config: Record<string, unknown>
  shape: number[]
  dtype: 'float32' | 'float64'
  input_bits?: number[]
  output_bits?: number[]
  input?: string[]
  output?: string[]
  error?: string
  /** Arguments Keras accepts without a word and normclip rejects (negative bounds, rate outside [0, 1]). */
  normclip_rejects?: string
  /** Keras' error comes from its implementation, not from the input: normclip may throw or return an empty result. */
  error_is_artifact?: string
}

export interface KerasFixture {
  generator: Record<string, string>
  cases: KerasCase[]
}

export const fixtureDir = join(__dirname, 'fixtures')

export function loadKerasFixture(): KerasFixture {
  return JSON.parse(readFileSync(join(fixtureDir, 'keras-constraints.json'), 'utf8')) as KerasFixture
}
