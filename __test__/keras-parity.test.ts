// Parity with real Keras: every case in fixtures/keras-constraints.json was computed by Keras 3
// (numpy backend) or tf-keras 2 (TensorFlow) — see scripts/keras-fixtures/ — and normclip's
// output must equal Keras' bit for bit or be within MAX_ULP ulp of it (NaN matches any NaN).
// The sign of zero is checked exactly (Keras 3's NonNeg turns -0.0 into +0.0 on every backend),
// except where Keras 2 and Keras 3 disagree (NonNeg, below). Where Keras raised, normclip must throw.
//
// Keras 2 vs Keras 3 NonNeg: Keras 2 computes `w * (w >= 0)`, so a negative weight becomes -0.0
// and -Inf becomes NaN (-Inf * 0); Keras 3 computes `maximum(w, 0)`: +0.0 and 0. normclip follows
// Keras 3, so Keras-2 NonNeg cases are compared with -0 == +0 allowed, and with 0 expected where
// Keras 2 produced NaN from -Inf (the test checks that this is indeed what the fixture holds).
//
// Beyond MAX_ULP, an element is accepted only for one of the documented reasons in
// explainDivergence (float32 overflow / underflow of Keras' sum of squares, Keras' own float32
// rounding, TF's flush-to-zero of denormals), each checked against an exactly rounded reference;
// the counts are printed at the end.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import { Constraint, deserialize, restoreTfjsConstraints, serialize, useNativeConstraints } from '../src/index'

const MAX_ULP = 2

interface Case {
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

interface Fixture {
  generator: Record<string, string>
  cases: Case[]
}

const fixtureDir = join(__dirname, 'fixtures')
const fixture = JSON.parse(readFileSync(join(fixtureDir, 'keras-constraints.json'), 'utf8')) as Fixture

function f32FromBits(bits: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer)
}

function f64FromStrings(values: string[]): Float64Array {
  return Float64Array.from(values, (s) => Number(s))
}

/** Distance in units in the last place, over the ordered integers of the bit patterns (±0 are 0 apart). */
function ulp32(a: number, b: number): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat32(0, a)
  view.setFloat32(4, b)
  const ordered = (bits: number) => (bits < 0 ? -2147483648 - bits : bits)
  return Math.abs(ordered(view.getInt32(0)) - ordered(view.getInt32(4)))
}

function ulp64(a: number, b: number): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity
  const view = new DataView(new ArrayBuffer(16))
  view.setFloat64(0, a)
  view.setFloat64(8, b)
  const ordered = (bits: bigint) => (bits < 0n ? -9223372036854775808n - bits : bits)
  const d = ordered(view.getBigInt64(0)) - ordered(view.getBigInt64(8))
  const abs = d < 0n ? -d : d
  return abs > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(abs)
}

/** The constraint from the case's Keras config, in the dict format of the Keras that produced it. */
/** deserialize() of a Keras id or dict: one of normclip's constraint classes. */
function load(identifier: unknown): Constraint {
  const c = deserialize(identifier as Parameters<typeof deserialize>[0])
  if (!(c instanceof Constraint)) throw new Error(`deserialize(${JSON.stringify(identifier)}) gave ${String(c)}`)
  return c
}

function build(c: Case): Constraint {
  const identifier =
    c.source === 'keras3'
      ? { module: 'keras.constraints', class_name: c.constraint, config: c.config, registered_name: null }
      : { class_name: c.constraint, config: c.config }
  return load(identifier)
}

function run(c: Case, input: Float32Array | Float64Array) {
  return build(c).applyCopy(input, c.shape)
}

/** Elements accepted by a documented divergence rather than by MAX_ULP, by reason (printed at the end). */
const divergences: Record<string, number> = {}
let worstKerasVsExact = 0
let worstUlp = 0
let worstCase = ''
let exactCases = 0
let comparedCases = 0

afterAll(() => {
  console.log(
    `keras-parity: ${comparedCases} cases compared, ${exactCases} bit-exact; max ulp ${worstUlp}` +
      (worstCase ? ` (${worstCase})` : '') +
      `; accepted divergences ${JSON.stringify(divergences)} (Keras at most ${worstKerasVsExact} ulp from exact rounding)` +
      `; fixtures from keras ${fixture.generator.keras} (${fixture.generator.backend}), tf_keras ${fixture.generator.tf_keras}`,
  )
})

describe('keras-constraints.json', () => {
  it('was generated by real Keras 3 and tf-keras and covers every constraint from its source', () => {
    expect(fixture.generator.keras).toMatch(/^3\./)
    expect(fixture.generator.tf_keras).toMatch(/^2\./)
    const seen = new Set(fixture.cases.map((c) => `${c.source}:${c.constraint}`))
    for (const name of ['MaxNorm', 'MinMaxNorm', 'UnitNorm', 'NonNeg']) {
      expect(seen.has(`keras3:${name}`), name).toBe(true)
      expect(seen.has(`tf_keras:${name}`), name).toBe(true)
    }
    expect(seen.has('tf_keras:RadialConstraint')).toBe(true)
    expect(fixture.cases.length).toBeGreaterThan(200)
    expect(new Set(fixture.cases.map((c) => `${c.name}`)).size).toBe(fixture.cases.length)
  })
})

describe.each(['keras3', 'tf_keras'] as const)('parity with %s', (source) => {
  const cases = fixture.cases.filter((c) => c.source === source)

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const input = c.dtype === 'float32' ? f32FromBits(c.input_bits!) : f64FromStrings(c.input!)
    const inputCopy = input.slice()
    expect(input.length).toBe(c.shape.reduce((a, b) => a * b, 1))

    if (c.normclip_rejects !== undefined) {
      expect(c.error, 'Keras accepted these arguments').toBeUndefined()
      expect(() => run(c, input)).toThrow()
      return
    }
    if (c.error !== undefined) {
      if (c.error_is_artifact !== undefined) {
        let out: Float32Array | Float64Array | undefined
        try {
          out = run(c, input)
        } catch {
          return // throwing, as Keras does, is fine
        }
        expect(out!.length).toBe(0)
        return
      }
      expect(() => run(c, input), `Keras raised: ${c.error}`).toThrow()
      return
    }

    const out = run(c, input)
    // applyCopy leaves its input untouched and returns the same type.
    expect(out).toBeInstanceOf(c.dtype === 'float32' ? Float32Array : Float64Array)
    expect(Object.is(out, input)).toBe(false)
    expect(input).toEqual(inputCopy)
    expect(out.length).toBe(input.length)

    let expected = c.dtype === 'float32' ? f32FromBits(c.output_bits!) : f64FromStrings(c.output!)
    const keras2NonNeg = c.source === 'tf_keras' && c.constraint === 'NonNeg'
    if (keras2NonNeg) {
      expected = expected.slice()
      for (let i = 0; i < input.length; i++) {
        if (input[i] === -Infinity) {
          // Keras 2: -Inf * (-Inf >= 0) = -Inf * 0 = NaN; Keras 3 (and normclip): maximum(-Inf, 0) = 0.
          expect(expected[i]).toBeNaN()
          expected[i] = 0
        }
      }
    }

    const isNorm = c.constraint === 'MaxNorm' || c.constraint === 'MinMaxNorm' || c.constraint === 'UnitNorm'
    const exact = isNorm && c.dtype === 'float32' ? exactReference(c, input as Float32Array) : undefined
    const ulp = c.dtype === 'float32' ? ulp32 : ulp64
    let caseWorst = 0
    const mismatches: string[] = []
    for (let i = 0; i < expected.length; i++) {
      const e = expected[i]!
      const o = out[i]!
      const d = ulp(e, o)
      // ulp() puts -0 and +0 0 apart; the sign of a zero is checked on its own.
      const zeroSignDiffers = e === 0 && o === 0 && Object.is(e, -0) !== Object.is(o, -0) && !keras2NonNeg
      if (d <= MAX_ULP && !zeroSignDiffers) {
        if (d > caseWorst) caseWorst = d
        continue
      }
      const why = explainDivergence(c, input[i]!, e, o, exact?.[i], exact?.kind[i], exact?.f32Squares?.[i])
      if (why !== undefined) {
        divergences[why] = (divergences[why] ?? 0) + 1
        continue
      }
      if (mismatches.length < 8) {
        mismatches.push(
          `[${i}] input ${show(input[i]!)} keras ${show(e)} normclip ${show(o)} (${d} ulp)` +
            (exact ? ` exact ${show(exact[i]!)}` : ''),
        )
      }
      caseWorst = Math.max(caseWorst, d)
    }
    comparedCases++
    if (caseWorst === 0) exactCases++
    if (caseWorst > worstUlp && caseWorst <= MAX_ULP) {
      worstUlp = caseWorst
      worstCase = c.name
    }
    expect(
      mismatches.length,
      `${c.name}: ${JSON.stringify(c.config)} shape ${JSON.stringify(c.shape)}: ${mismatches.join('; ')}`,
    ).toBe(0)
  })
})

// ---------------------------------------------------------------------------------------------
// Where normclip deliberately differs from Keras' float32 arithmetic (see explainDivergence).

/**
 * How far Keras' own float32 result may be from the exactly-rounded one for normclip's closer
 * answer to be accepted instead: Keras sums squares in float32 (numpy's pairwise sum, Eigen's tree),
 * a few ulp off on long slices; normclip accumulates them in f64 (crates/normclip-core/src/kernels).
 */
const KERAS_F32_SLACK = 12
const FLT_MAX = 3.4028234663852886e38
const FLT_MIN = 1.1754943508222875e-38 // smallest normal float32
type SliceKind = 'normal' | 'overflow' | 'underflow'

/**
 * The Keras formula in float32 with the norm from an exact (f64) sum of squares, rounded once:
 * what Keras would give without float32 rounding in its sums. Also says, per element, whether its
 * slice's float32 sum of squares overflows (exact norm finite but norm² > FLT_MAX) or underflows
 * (0 < norm² < FLT_MIN: squares are denormal, or flushed to zero by TF / XLA).
 */
function exactReference(
  c: Case,
  data: Float32Array,
  squares: 'f64' | 'f32' = 'f64',
): Float32Array & { kind: SliceKind[]; f32Squares?: Float32Array } {
  const shape = c.shape
  const rank = shape.length
  const axis = c.config['axis'] as number | number[] | null | undefined
  const list = axis === null ? shape.map((_, i) => i) : axis === undefined ? [0] : typeof axis === 'number' ? [axis] : axis
  const reduced = shape.map(() => false)
  for (const a of list) reduced[a < 0 ? a + rank : a] = true
  const kept = shape.map((d, i) => (reduced[i] ? 1 : d))
  const sliceOf = new Int32Array(data.length)
  const pos = shape.map(() => 0)
  for (let flat = 0; flat < data.length; flat++) {
    let s = 0
    for (let i = 0; i < rank; i++) s = s * kept[i]! + (reduced[i] ? 0 : pos[i]!)
    sliceOf[flat] = s
    for (let i = rank - 1; i >= 0; i--) {
      if (++pos[i]! < shape[i]!) break
      pos[i] = 0
    }
  }
  const slices = kept.reduce((a, b) => a * b, 1)
  const sums = new Float64Array(slices)
  const f = Math.fround
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!
    sums[sliceOf[i]!]! += squares === 'f64' ? x * x : f(x * x)
  }
  const eps = f(1e-7)
  const maxV = f(Number(c.config['max_value'] ?? (c.constraint === 'MaxNorm' ? 2 : 1)))
  const minV = f(Number(c.config['min_value'] ?? 0))
  const rate = Number(c.config['rate'] ?? 1) // a Python float: Keras computes 1 - rate in f64
  const clip = (x: number, lo: number, hi: number) => (Number.isNaN(x) ? x : Math.min(Math.max(x, lo), hi))
  const out = new Float32Array(data.length) as Float32Array & { kind: SliceKind[]; f32Squares?: Float32Array }
  out.kind = []
  for (let i = 0; i < data.length; i++) {
    const sum = sums[sliceOf[i]!]!
    const n = f(Math.sqrt(sum))
    let factor: number
    if (c.constraint === 'UnitNorm') factor = f(1 / f(eps + n))
    else if (c.constraint === 'MaxNorm') factor = f(clip(n, 0, maxV) / f(eps + n))
    else factor = f(f(f(f(rate) * clip(n, minV, maxV)) + f(f(1 - rate) * n)) / f(eps + n))
    out[i] = c.constraint === 'UnitNorm' ? f(data[i]! / f(eps + n)) : f(data[i]! * factor)
    out.kind.push(Number.isFinite(sum) && sum > FLT_MAX ? 'overflow' : sum > 0 && sum < FLT_MIN ? 'underflow' : 'normal')
  }
  if (squares === 'f64' && out.kind.includes('underflow')) out.f32Squares = exactReference(c, data, 'f32')
  return out
}

/**
 * Why normclip's value `o` may differ from Keras' `e` (beyond MAX_ULP), or undefined if it may not.
 * Each reason is a deliberate, documented choice of normclip:
 * - 'overflow': the slice's float32 squares overflow. Keras' norm is then Inf and MaxNorm / UnitNorm
 *   return zeros, MinMaxNorm NaN (`rate*max + (1-rate)*Inf` is NaN even for rate 1, as 0*Inf is NaN);
 *   normclip recomputes the norm in f64 and returns the exact result (crates/normclip-core/src/apply.rs).
 * - 'underflow': the slice's squares are below the smallest normal float32. Keras' numpy backend loses
 *   precision in the denormal squares, TF and JAX flush them to zero (so whole slices become 0);
 *   normclip must give the exact result or the one from float32 (denormal) squares summed exactly,
 *   as it squares in float32 before accumulating in f64.
 * - 'keras-f32-rounding': Keras' float32 sum of squares is a few ulp off; normclip is within MAX_ULP of
 *   the exactly rounded result and Keras within KERAS_F32_SLACK of it (so the slice, axis and formula
 *   are the same, only the rounding differs).
 * - 'denormal-ftz': TF flushes a denormal input to zero (Keras 2 NonNeg), Keras 3's numpy backend
 *   keeps it, as normclip does.
 */
function explainDivergence(
  c: Case,
  input: number,
  e: number,
  o: number,
  exact: number | undefined,
  kind: SliceKind | undefined,
  withF32Squares: number | undefined,
): string | undefined {
  if (c.constraint === 'NonNeg') {
    const denormal = input !== 0 && Math.abs(input) < FLT_MIN
    if (denormal && e === 0 && (o === 0 || o === input)) return 'denormal-ftz'
    return undefined
  }
  if (exact === undefined || kind === undefined) return undefined
  if (kind === 'underflow' && withF32Squares !== undefined && ulp32(o, withF32Squares) <= MAX_ULP) return 'underflow'
  const closeToExact = ulp32(o, exact) <= MAX_ULP && !(o === 0 && exact === 0 && Object.is(o, -0) !== Object.is(exact, -0))
  if (!closeToExact) return undefined
  if (kind === 'overflow') {
    // Keras: zeros for MaxNorm / UnitNorm, NaN for MinMaxNorm.
    const kerasValue = c.constraint === 'MinMaxNorm' ? Number.isNaN(e) : e === 0
    return kerasValue ? 'overflow' : undefined
  }
  if (kind === 'underflow') return 'underflow'
  const kerasOff = ulp32(e, exact)
  if (kerasOff <= KERAS_F32_SLACK) {
    worstKerasVsExact = Math.max(worstKerasVsExact, kerasOff)
    return 'keras-f32-rounding'
  }
  return undefined
}

function show(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x)
}

// ---------------------------------------------------------------------------------------------
// Serialization: what real Keras writes, normclip reads; what normclip writes, Keras wrote.

interface Resolution {
  class_name?: string
  config?: Record<string, unknown>
  error?: string
}
interface SerializationFixture {
  classes: {
    class_name: string
    keras3: { get_config: Record<string, unknown>; serialize: Record<string, unknown> }[] | null
    tf_keras: { get_config: Record<string, unknown>; serialize: Record<string, unknown>; serialize_legacy: Record<string, unknown> }[]
  }[]
  string_ids: Record<string, { keras3: Resolution; tf_keras: Resolution }>
  dict_ids: { identifier: Record<string, unknown>; keras3: Resolution; tf_keras: Resolution }[]
}

const serialization = JSON.parse(readFileSync(join(fixtureDir, 'keras-serialization.json'), 'utf8')) as SerializationFixture

function kerasName(c: { getClassName(): string }): string {
  return c.getClassName().replace(/^normclip>/, '')
}

describe('keras-serialization.json', () => {
  it('every string id Keras 3 or tf-keras resolves, normclip resolves to the same class', () => {
    let checked = 0
    for (const [id, r] of Object.entries(serialization.string_ids)) {
      for (const resolution of [r.keras3, r.tf_keras]) {
        if (resolution.class_name === undefined) continue
        expect(kerasName(load(id)), id).toBe(resolution.class_name)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(15)
  })

  it("Keras 3's and tf-keras' serialize() output deserializes to the same class and config", () => {
    for (const entry of serialization.classes) {
      if (entry.class_name === 'Constraint') continue
      const outputs = [
        ...(entry.keras3 ?? []).map((o) => ({ dict: o.serialize, config: o.get_config, format: 'keras3' as const })),
        ...entry.tf_keras.map((o) => ({ dict: o.serialize, config: o.get_config, format: 'keras3' as const })),
        ...entry.tf_keras.map((o) => ({ dict: o.serialize_legacy, config: o.get_config, format: 'keras2' as const })),
      ]
      for (const { dict, config, format } of outputs) {
        const c = load(dict)
        expect(kerasName(c), JSON.stringify(dict)).toBe(entry.class_name)
        // And back: normclip's serialize gives what Keras gave (same config, numbers compared by value).
        const again = serialize(c, { format }) as unknown as Record<string, unknown>
        expect(again['class_name']).toBe(entry.class_name)
        expect(again['config']).toEqual(config)
        if (format === 'keras3') expect(again).toEqual(dict)
      }
    }
  })

  it('dict identifiers Keras 3 accepts are accepted with the same resulting config', () => {
    for (const { identifier, keras3 } of serialization.dict_ids) {
      if (keras3.class_name === undefined) continue
      const c = load(identifier)
      expect(kerasName(c), JSON.stringify(identifier)).toBe(keras3.class_name)
      expect((serialize(c, { format: 'keras2' }) as unknown as Record<string, unknown>)['config']).toEqual(keras3.config)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Models: tf-keras model.to_json() loaded through tfjs.

function kerasModel(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(fixtureDir, `keras-model-${name}.json`), 'utf8')) as Record<string, unknown>
}

/** layer name → [kernel constraint config, bias constraint config] as tf-keras wrote them. */
function kerasLayerConstraints(model: Record<string, unknown>): Map<string, [unknown, unknown]> {
  const layers = (model['config'] as { layers: { config: Record<string, unknown> }[] }).layers
  const result = new Map<string, [unknown, unknown]>()
  for (const { config } of layers) {
    if ('kernel_constraint' in config) result.set(config['name'] as string, [config['kernel_constraint'], config['bias_constraint']])
  }
  return result
}

describe('keras-model-*.json (tf-keras model.to_json) through tf.models.modelFromJSON', () => {
  it('plain tfjs loads the Dense and Conv2D models, and has no RadialConstraint', async () => {
    for (const name of ['dense', 'conv']) {
      const model = await tf.models.modelFromJSON(kerasModel(name) as never)
      expect(model.layers.some((l) => (l as unknown as { kernelConstraint?: unknown }).kernelConstraint)).toBe(true)
      model.dispose()
    }
    await expect(tf.models.modelFromJSON(kerasModel('radial') as never)).rejects.toThrow(/RadialConstraint/)
  })

  it('with useNativeConstraints every constraint is normclip\'s, with the config tf-keras wrote', async () => {
    useNativeConstraints()
    try {
      for (const name of ['dense', 'conv', 'radial']) {
        const json = kerasModel(name)
        const expected = kerasLayerConstraints(json)
        expect(expected.size).toBeGreaterThan(0)
        const model = await tf.models.modelFromJSON(json as never)
        for (const layer of model.layers) {
          const want = expected.get(layer.name)
          if (want === undefined) continue
          const l = layer as unknown as { kernelConstraint?: Constraint; biasConstraint?: Constraint }
          for (const [got, keras] of [[l.kernelConstraint, want[0]], [l.biasConstraint, want[1]]] as const) {
            if (keras === null) {
              expect(got ?? null, `${name}/${layer.name}`).toBeNull()
              continue
            }
            const k = keras as { class_name: string; config: Record<string, unknown> }
            expect(got, `${name}/${layer.name}`).toBeInstanceOf(Constraint)
            const back = serialize(got!, { format: 'keras2' }) as unknown as Record<string, unknown>
            expect(back['class_name'], `${name}/${layer.name}`).toBe(k.class_name)
            expect(back['config'], `${name}/${layer.name}`).toEqual(k.config)
          }
        }
        model.dispose()
      }
    } finally {
      restoreTfjsConstraints()
    }
  })
})
