import * as tf from '@tensorflow/tfjs'
import { loadKerasFixture, type KerasCase } from './keras-fixtures'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Constraint, MaxNorm, MinMaxNorm, NonNeg, RadialConstraint, UnitNorm } from '../src/index'
import { applyBatch, applyBatchAsync, deserialize, get, maxNorm, minMaxNorm, nonNeg, radialConstraint, unitNorm, type Keras2Dict } from '../src/index'
import { nativeConstraintOf } from '../src/constraints'
import { NativeConstraint } from '../src/binding'
import { referenceApply, rng, ulpDistance } from './reference'
import { onCpuBackend } from './support/cpu-backend'

onCpuBackend()

let tensorsAtStart = 0
afterEach(() => {
  // Each test disposes what it creates; this catches leaks in the library.
  expect(tf.memory().numTensors).toBe(tensorsAtStart)
})
beforeAll(() => {
  tensorsAtStart = tf.memory().numTensors
})

/** tfjs' (unexported) Constraint class type. */
type TfjsConstraint = ReturnType<typeof tf.constraints.maxNorm>

/** Keras' test array: columns [0,0,0], [1,0,0], [3,0,0], [3,3,3] of a 3×4 matrix. */
function kerasColumns(): Float32Array {
  // Row-major [3, 4]: row r holds element r of each column.
  return new Float32Array([0, 1, 3, 3, 0, 0, 0, 3, 0, 0, 0, 3])
}

function randomArray(length: number, seed: number, scale = 50): Float32Array {
  const next = rng(seed)
  return Float32Array.from({ length }, () => (next() * 2 - 1) * scale)
}

function columnNorms(data: ArrayLike<number>, rows: number, cols: number): number[] {
  return Array.from({ length: cols }, (_, c) => {
    let sum = 0
    for (let r = 0; r < rows; r++) sum += data[r * cols + c]! ** 2
    return Math.sqrt(sum)
  })
}

function maxUlp(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, ulpDistance(a[i]!, b[i]!))
  return worst
}

/** A variable holding `values` (tf.variable keeps the initial tensor alive as a separate tensor). */
function variableFrom(values: number[] | number[][]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values)))
}

/** A tensor's values as numbers; the tensor is disposed. */
function values(t: tf.Tensor): number[] {
  const out = Array.from(t.dataSync())
  t.dispose()
  return out
}

describe("Keras' and tfjs' own test expectations", () => {
  it('Keras test_max_norm: MaxNorm(2) on columns [0,0,0], [1,0,0], [3,0,0], [3,3,3]', () => {
    const x = tf.tensor(kerasColumns(), [3, 4])
    const out = values(new MaxNorm({ maxValue: 2 }).apply(x))
    x.dispose()
    const s = 2 / Math.sqrt(3)
    const expected = [0, 1, 2, s, 0, 0, 0, s, 0, 0, 0, s]
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6))
    // A zero column stays exactly zero (0 / eps), no NaN.
    expect([out[0], out[4], out[8]]).toEqual([0, 0, 0])
  })

  it('tfjs MaxNorm test: [-1,2,0,4,-5,6] (norm √82) with the defaults', () => {
    const expected = [-0.2208630521, 0.4417261043, 0, 0.8834522086, -1.104315261, 1.325178313]
    const x = tf.tensor1d([-1, 2, 0, 4, -5, 6])
    const out = values(maxNorm().apply(x))
    const unit = values(unitNorm().apply(x))
    x.dispose()
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6))
    unit.forEach((v, i) => expect(v).toBeCloseTo(expected[i]! / 2, 6))
  })

  it('tfjs NonNeg test: relu', () => {
    const x = tf.tensor1d([-1, 2, 0, 4, -5, 6])
    expect(values(nonNeg().apply(x))).toEqual([0, 2, 0, 4, 0, 6])
    x.dispose()
  })

  it('Keras test_min_max_norm: every column norm ends within [0.2, 0.5]', () => {
    const data = randomArray(100 * 100, 3537)
    data[0] = 0
    const c = new MinMaxNorm({ min_value: 0.2, max_value: 0.5 })
    const out = c.applyCopy(data, [100, 100])
    for (const n of columnNorms(out, 100, 100)) {
      expect(n).toBeGreaterThanOrEqual(0.2 - 1e-6)
      expect(n).toBeLessThanOrEqual(0.5 + 1e-6)
    }
  })

  it('Keras test_unit_norm: every column norm is 1 within 1e-5', () => {
    const out = unitNorm().applyCopy(randomArray(100 * 100, 1), [100, 100])
    for (const n of columnNorms(out, 100, 100)) expect(Math.abs(n - 1)).toBeLessThan(1e-5)
  })

  it('Keras test_non_neg: no negative weight left', () => {
    const data = randomArray(100 * 100, 2)
    nonNeg().applyInPlace(data, [100, 100])
    expect(data.every((v) => v >= 0)).toBe(true)
    expect(data.some((v) => v > 0)).toBe(true)
  })
})

describe('the same numbers as tfjs-layers and the scalar reference', () => {
  const cases: Array<{
    name: string
    ours: () => MaxNorm | MinMaxNorm | UnitNorm
    theirs: () => TfjsConstraint
    spec: Parameters<typeof referenceApply>[2]
  }> = [
    {
      name: 'MaxNorm(3, axis 0)',
      ours: () => new MaxNorm({ maxValue: 3 }),
      theirs: () => tf.constraints.maxNorm({ maxValue: 3 }),
      spec: { kind: 'maxNorm', maxValue: 3, axis: 0 },
    },
    {
      name: 'MaxNorm(3, axis 1)',
      ours: () => new MaxNorm({ maxValue: 3, axis: 1 }),
      theirs: () => tf.constraints.maxNorm({ maxValue: 3, axis: 1 }),
      spec: { kind: 'maxNorm', maxValue: 3, axis: 1 },
    },
    {
      name: 'MinMaxNorm(1, 4, rate 0.5, axis 0)',
      ours: () => new MinMaxNorm({ minValue: 1, maxValue: 4, rate: 0.5 }),
      theirs: () => tf.constraints.minMaxNorm({ minValue: 1, maxValue: 4, rate: 0.5 }),
      spec: { kind: 'minMaxNorm', minValue: 1, maxValue: 4, rate: 0.5, axis: 0 },
    },
    {
      name: 'UnitNorm(axis 1)',
      ours: () => new UnitNorm({ axis: 1 }),
      theirs: () => tf.constraints.unitNorm({ axis: 1 }),
      spec: { kind: 'unitNorm', axis: 1 },
    },
  ]
  for (const { name, ours, theirs, spec } of cases) {
    it(name, () => {
      const data = randomArray(37 * 23, name.length, 2)
      const x = tf.tensor(data, [37, 23])
      const mine = values(ours().apply(x))
      const tfjs = values(theirs().apply(x))
      x.dispose()
      expect(maxUlp(mine, referenceApply(data, [37, 23], spec))).toBeLessThanOrEqual(2)
      // tfjs sums in float32, so its norms can differ from exact ones by a few ulp.
      expect(maxUlp(mine, tfjs)).toBeLessThanOrEqual(8)
    })
  }

  it('axis lists, negative axes and null on a Conv2D-shaped kernel', () => {
    const shape = [3, 3, 4, 5]
    const data = randomArray(3 * 3 * 4 * 5, 9, 1)
    const perFilter = new MaxNorm({ maxValue: 0.5, axis: [0, 1, 2] }).applyCopy(data, shape)
    expect(new MaxNorm({ maxValue: 0.5, axis: [-4, -3, -2] }).applyCopy(data, shape)).toEqual(perFilter)
    expect(maxUlp(perFilter, referenceApply(data, shape, { kind: 'maxNorm', maxValue: 0.5, axis: [0, 1, 2] }))).toBeLessThanOrEqual(2)
    const whole = new MaxNorm({ maxValue: 0.5, axis: null }).applyCopy(data, shape)
    let sum = 0
    for (const v of whole) sum += v * v
    expect(Math.sqrt(sum)).toBeCloseTo(0.5, 5)
  })
})

describe('constructors', () => {
  it("take Keras' defaults, camelCase and snake_case, and the factories take no argument", () => {
    expect(new MaxNorm().getConfig()).toEqual({ maxValue: 2, axis: 0 })
    expect(maxNorm().getConfig()).toEqual({ maxValue: 2, axis: 0 })
    expect(new MinMaxNorm().getConfig()).toEqual({ minValue: 0, maxValue: 1, rate: 1, axis: 0 })
    expect(minMaxNorm().getConfig()).toEqual({ minValue: 0, maxValue: 1, rate: 1, axis: 0 })
    expect(new UnitNorm().getConfig()).toEqual({ axis: 0 })
    expect(unitNorm().getConfig()).toEqual({ axis: 0 })
    expect(new NonNeg().getConfig()).toEqual({})
    expect(radialConstraint().getConfig()).toEqual({})
    expect(new MaxNorm({ max_value: 3, axis: [0, 1] }).getConfig()).toEqual({ maxValue: 3, axis: [0, 1] })
    expect(new MinMaxNorm({ min_value: 0.5, max_value: 2, rate: 0.25 }).getConfig()).toEqual({
      minValue: 0.5,
      maxValue: 2,
      rate: 0.25,
      axis: 0,
    })
    // null means "not given" for numbers (tfjs does the same) but "all axes" for axis (Keras' None).
    expect(new MaxNorm({ maxValue: null as unknown as number, axis: null }).getConfig()).toEqual({ maxValue: 2, axis: null })
  })

  it('show mode and epsilon in the config only when they are not the defaults', () => {
    expect(new MaxNorm({ mode: 'keras', epsilon: 1e-7 }).getConfig()).toEqual({ maxValue: 2, axis: 0 })
    expect(new MaxNorm({ mode: 'projection' }).getConfig()).toEqual({ maxValue: 2, axis: 0, mode: 'projection' })
    expect(new UnitNorm({ epsilon: 1e-4 }).getConfig()).toEqual({ axis: 0, epsilon: 1e-4 })
  })

  it('reject bad arguments with a message naming them', () => {
    expect(() => new MaxNorm({ maxValue: -1 })).toThrow(RangeError)
    expect(() => new MaxNorm({ maxValue: -1 })).toThrow(/MaxNorm: maxValue: expected a finite number >= 0, got -1/)
    expect(() => new MaxNorm({ maxValue: Number.POSITIVE_INFINITY })).toThrow(/maxValue/)
    expect(() => new MaxNorm({ maxValue: '3' as unknown as number })).toThrow(TypeError)
    expect(() => new MinMaxNorm({ rate: 3 })).toThrow(/MinMaxNorm: rate: expected a number in \[0, 1\], got 3/)
    expect(() => new MinMaxNorm({ minValue: 2, maxValue: 1 })).toThrow(/minValue: expected at most maxValue/)
    expect(() => new UnitNorm({ axis: [0, 0] })).toThrow(/axis: expected distinct axes/)
    expect(() => new UnitNorm({ axis: 0.5 })).toThrow(/axis: expected an integer/)
    expect(() => new MaxNorm({ mode: 'clip' as 'keras' })).toThrow(/mode: expected 'keras' or 'projection'/)
    expect(() => new MaxNorm({ epsilon: -1 })).toThrow(/epsilon/)
  })

  it('reject unknown option names (typos) and disagreeing spellings', () => {
    expect(() => new MaxNorm({ maxvalue: 3 } as never)).toThrow(/MaxNorm: unknown option 'maxvalue'; expected maxValue \(or max_value\), axis, mode, epsilon/)
    expect(() => new UnitNorm({ maxValue: 3 } as never)).toThrow(/UnitNorm: unknown option 'maxValue'/)
    expect(() => new NonNeg({ axis: 0 } as never)).toThrow(/NonNeg: unknown option 'axis'; expected no options/)
    expect(() => new MaxNorm({ maxValue: 3, max_value: 4 })).toThrow(/'maxValue' and 'max_value' are the same option and disagree/)
    expect(new MaxNorm({ maxValue: 3, max_value: 3 }).maxValue).toBe(3)
    expect(() => new MaxNorm(3 as never)).toThrow(/MaxNorm: expected an options object, got number 3/)
  })

  it('are tfjs constraints: getClassName, static className, fromConfig(cls, config)', () => {
    const c = new MaxNorm({ maxValue: 3 })
    expect(c).toBeInstanceOf(Constraint)
    expect(c.getClassName()).toBe('normclip>MaxNorm')
    expect(MaxNorm.className).toBe('normclip>MaxNorm')
    // tfjs passes fromConfig a config with a customObjects entry; it is not an option.
    const back = MaxNorm.fromConfig(MaxNorm, { maxValue: 3, axis: [0, 1], customObjects: {} })
    expect(back).toBeInstanceOf(MaxNorm)
    expect(back.getConfig()).toEqual({ maxValue: 3, axis: [0, 1] })
  })
})

describe('apply(tensor)', () => {
  it('returns exactly one new tensor and leaves the input unchanged', () => {
    const x = tf.tensor([3, 4, 0, 0], [2, 2])
    const before = tf.memory().numTensors
    const y = new MaxNorm({ maxValue: 1, axis: 1 }).apply(x)
    expect(tf.memory().numTensors).toBe(before + 1)
    expect(Array.from(y.dataSync())).toEqual(Array.from(Float32Array.from([0.6, 0.8, 0, 0])))
    expect(Array.from(x.dataSync())).toEqual([3, 4, 0, 0])
    expect(y.shape).toEqual([2, 2])
    expect(y.dtype).toBe('float32')
    x.dispose()
    y.dispose()
  })

  it('rejects int tensors, non-tensors and disposed tensors, creating nothing', () => {
    const ints = tf.tensor([1, 2], [2], 'int32')
    const disposed = tf.tensor([1, 2])
    disposed.dispose()
    const before = tf.memory().numTensors
    expect(() => maxNorm().apply(ints)).toThrow(/MaxNorm\.apply: w: expected a float32 tensor, got dtype int32/)
    expect(() => maxNorm().apply(new Float32Array(2) as never)).toThrow(/MaxNorm\.apply: w: expected a tf\.Tensor, got a Float32Array/)
    expect(() => maxNorm().apply(disposed)).toThrow(/expected a live tensor/)
    const square = tf.zeros([2, 2])
    expect(() => new MaxNorm({ axis: 2 }).apply(square)).toThrow(/MaxNorm: .*axis|axis: expected integers in \[-2, 1\]/)
    expect(tf.memory().numTensors).toBe(before + 1) // only `square`
    square.dispose()
    ints.dispose()
  })

  it('applyAsync reads with dataAsync and gives the same tensor', async () => {
    const data = randomArray(64, 4, 3)
    const x = tf.tensor(data, [8, 8])
    const c = new MaxNorm({ maxValue: 1 })
    const y = await c.applyAsync(x)
    expect(Array.from(y.dataSync())).toEqual(Array.from(c.applyCopy(data, [8, 8])))
    x.dispose()
    y.dispose()
  })
})

describe('typed arrays', () => {
  it('applyInPlace, applyCopy, applyInPlaceAsync and norms agree', async () => {
    const data = randomArray(30 * 20, 5, 4)
    const c = new MaxNorm({ maxValue: 2, axis: 0 })
    const copy = c.applyCopy(data, [30, 20])
    expect(copy).not.toBe(data)
    const inPlace = Float32Array.from(data)
    c.applyInPlace(inPlace, [30, 20])
    expect(inPlace).toEqual(copy)
    const async = Float32Array.from(data)
    await c.applyInPlaceAsync(async, [30, 20])
    expect(async).toEqual(copy)
    const { norms, shape } = c.norms(data, [30, 20])
    expect(shape).toEqual([1, 20])
    const expected = columnNorms(data, 30, 20)
    Array.from(norms).forEach((n, i) => expect(n).toBeCloseTo(expected[i]!, 3))
  })

  it('Float64Array in, Float64Array out', () => {
    const out = new UnitNorm({ axis: null }).applyCopy(new Float64Array([3, 4]), [2])
    expect(out).toBeInstanceOf(Float64Array)
    expect(out[0]).toBeCloseTo(3 / (5 + 1e-7), 14) // Keras adds eps to the norm, in float64 too
  })

  it('projection mode leaves in-bound slices bit for bit and puts others exactly on the bound', () => {
    const data = new Float32Array([0.3, 0.4, 3, 4]) // axis 1 of [2, 2]: rows [0.3, 0.4] and [3, 4]
    const out = new MaxNorm({ maxValue: 1, axis: 1, mode: 'projection' }).applyCopy(data, [2, 2])
    expect(out[0]).toBe(data[0])
    expect(out[1]).toBe(data[1])
    expect(Math.hypot(out[2]!, out[3]!)).toBeCloseTo(1, 6)
    // Keras mode shrinks the in-bound row by eps.
    const keras = new MaxNorm({ maxValue: 1, axis: 1 }).applyCopy(data, [2, 2])
    expect(keras[0]).toBeLessThan(data[0]!)
  })

  it('bad arrays and shapes throw before anything is written', async () => {
    const c = new MaxNorm({ maxValue: 1 })
    const data = new Float32Array([3, 4, 5, 6])
    expect(() => c.applyInPlace(data, [3])).toThrow(/array: expected length 3/)
    expect(() => c.applyInPlace(data, [2, 2.5])).toThrow(/shape: expected non-negative integers/)
    expect(() => c.applyInPlace(new Int32Array(4) as never, [4])).toThrow(/array: expected a Float32Array or Float64Array/)
    expect(() => new MaxNorm({ axis: 3 }).applyInPlace(data, [2, 2])).toThrow(/axis: expected integers in \[-2, 1\]/)
    expect(() => c.applyInPlaceAsync(data, [5])).toThrow(/array: expected length 5/)
    expect(Array.from(data)).toEqual([3, 4, 5, 6])
  })

  it('RadialConstraint needs a square rank-4 kernel', () => {
    const c = new RadialConstraint()
    const kernel = randomArray(3 * 3 * 2 * 2, 11, 1)
    const out = c.applyCopy(kernel, [3, 3, 2, 2])
    expect(out.length).toBe(kernel.length)
    expect(out.every(Number.isFinite)).toBe(true)
    const flat = Float32Array.from(kernel)
    expect(() => c.applyInPlace(flat, [9, 4])).toThrow(/RadialConstraint expects a rank-4 kernel/)
    expect(flat).toEqual(kernel)
  })
})

describe('the base Constraint and plain functions', () => {
  it('the base class is the identity, as in Keras', () => {
    const x = tf.tensor([-1, 2])
    expect(values(new Constraint().apply(x))).toEqual([-1, 2])
    x.dispose()
    expect(Array.from(new Constraint().applyCopy(new Float32Array([-1, 2]), [2]))).toEqual([-1, 2])
  })

  it('a function becomes a constraint; its typed-array methods go through tfjs without leaking', () => {
    const clip = get((w: tf.Tensor) => tf.clipByValue(w, -1, 1))
    const x = tf.tensor([-3, 0.5, 3])
    expect(values(clip!.apply(x))).toEqual([-1, 0.5, 1])
    x.dispose()
    const data = new Float64Array([-3, 0.5, 3])
    ;(clip as Constraint).applyInPlace(data, [3])
    expect(Array.from(data)).toEqual([-1, 0.5, 1])
  })
})

describe('nativeConstraintOf', () => {
  it("maps normclip's classes, NativeConstraints and tfjs' built-ins; undefined for others", () => {
    const ours = new MaxNorm({ maxValue: 3 })
    expect(nativeConstraintOf(ours)).toBe(ours.native)
    const n = NativeConstraint.create({ kind: 'nonNeg' })
    expect(nativeConstraintOf(n)).toBe(n)
    const theirs = tf.constraints.maxNorm({ maxValue: 0.5, axis: 1 })
    const mapped = nativeConstraintOf(theirs)
    expect(mapped).toBeInstanceOf(NativeConstraint)
    expect(mapped!.kind).toBe('maxNorm')
    expect(nativeConstraintOf(theirs)).toBe(mapped) // cached per instance
    const data = randomArray(12, 3, 2)
    const x = tf.tensor(data, [3, 4])
    const tfjsOut = values(theirs.apply(x))
    x.dispose()
    expect(maxUlp(mapped!.applyCopy(data, [3, 4]), tfjsOut)).toBeLessThanOrEqual(4)
    expect(nativeConstraintOf(tf.constraints.nonNeg())!.kind).toBe('nonNeg')
    expect(nativeConstraintOf(tf.constraints.unitNorm({ axis: 0 }))!.kind).toBe('unitNorm')
    expect(nativeConstraintOf(tf.constraints.minMaxNorm({ maxValue: 2 }))!.kind).toBe('minMaxNorm')
    expect(nativeConstraintOf(get((w: tf.Tensor) => w))).toBeUndefined()
    expect(nativeConstraintOf({})).toBeUndefined()
    expect(nativeConstraintOf(null)).toBeUndefined()
  })

  it('throws, naming the tfjs constraint, when the core rejects its config', () => {
    expect(() => nativeConstraintOf(tf.constraints.maxNorm({ maxValue: -2 }))).toThrow(/tfjs MaxNorm .*maxValue/)
  })
})

describe('applyBatch', () => {
  it('constrains arrays in place, variables by assign and tensors into new tensors, in one call', () => {
    const array = new Float32Array([3, 4])
    const variable = variableFrom([
      [6, 0],
      [8, 0],
    ])
    const tensor = tf.tensor([-1, 2])
    const before = tf.memory().numTensors
    const [a, v, t] = applyBatch([
      { array, shape: [2], constraint: new MaxNorm({ maxValue: 1 }) },
      { variable, constraint: tf.constraints.maxNorm({ maxValue: 5 }) },
      { tensor, constraint: nonNeg() },
    ])
    expect(tf.memory().numTensors).toBe(before + 1) // the new tensor for the tensor item only
    expect(a).toBe(array)
    expect(array[0]).toBeCloseTo(0.6, 6)
    expect(v).toBe(variable)
    const kernel = variable.dataSync()
    expect(kernel[0]).toBeCloseTo(3, 5)
    expect(kernel[2]).toBeCloseTo(4, 5)
    expect(values(t as tf.Tensor)).toEqual([0, 2])
    expect(Array.from(tensor.dataSync())).toEqual([-1, 2])
    tensor.dispose()
    variable.dispose()
  })

  it('a bad item throws before any array or variable changes, leaving no tensor behind', () => {
    const array = new Float32Array([3, 4])
    const variable = variableFrom([6, 8])
    const before = tf.memory().numTensors
    expect(() =>
      applyBatch([
        { array, shape: [2], constraint: maxNorm({ maxValue: 1 }) },
        { variable, constraint: maxNorm({ maxValue: 1 }) },
        { array: new Float32Array(3), shape: [2], constraint: maxNorm() },
      ]),
    ).toThrow(/items\[2\]\.array: expected length 2/)
    expect(() => applyBatch([{ array, shape: [2], constraint: get((w: tf.Tensor) => w)! }])).toThrow(
      /items\[0\]\.constraint: expected a NativeConstraint, a normclip constraint or one of tfjs' MaxNorm/,
    )
    const ints = tf.tensor([1], [1], 'int32')
    expect(() => applyBatch([{ tensor: ints, constraint: maxNorm() }])).toThrow(/items\[0\]\.tensor: expected a float32 tensor/)
    expect(() => applyBatch([{ variable: ints as tf.Variable, constraint: maxNorm() }])).toThrow(/items\[0\]\.variable: expected a tf\.Variable/)
    ints.dispose()
    expect(Array.from(array)).toEqual([3, 4])
    expect(Array.from(variable.dataSync())).toEqual([6, 8])
    expect(tf.memory().numTensors).toBe(before)
    variable.dispose()
  })

  it('applyBatchAsync does the same off the main thread', async () => {
    const variable = variableFrom([
      [3, 0],
      [4, 0],
    ])
    const array = new Float64Array([-1, 1])
    const before = tf.memory().numTensors
    await applyBatchAsync([
      { variable, constraint: unitNorm() },
      { array, shape: [2], constraint: nonNeg() },
    ])
    expect(tf.memory().numTensors).toBe(before)
    const kernel = variable.dataSync()
    expect(kernel[0]).toBeCloseTo(0.6, 6)
    expect(kernel[2]).toBeCloseTo(0.8, 6)
    expect(Array.from(array)).toEqual([0, 1])
    variable.dispose()
  })
})

// ---------------------------------------------------------------------------------------------
// Golden values generated with Keras 3 and tf_keras (scripts/keras-fixtures/generate.py), run
// through the public API: the Keras config deserialized, then applied to tensors.

type GoldenCase = KerasCase

const golden: GoldenCase[] = loadKerasFixture().cases

/**
 * Overflow, infinities and NaN ('edges', 'f64-edges', 'nonneg' specials) are where the core
 * deliberately differs from Keras (its norms are accumulated in float64); binding.test.ts owns
 * those. Everything else must match Keras to a few ulp.
 */
const isEdgeCase = (c: GoldenCase) => /^(edges|f64-edges|nonneg-specials|nonneg-edges|radial-specials)/.test(c.name)

/** The case's constraint, from its Keras config. */
const fromKeras = (c: GoldenCase) => deserialize({ class_name: c.constraint, config: c.config } as Keras2Dict) as Constraint

const bitsToFloat32 = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer)

// keras-parity.test.ts compares every case with Keras; here the same cases go through tensors.
describe('Keras golden values through tensors (fixtures/keras-constraints.json)', () => {
  const applicable = golden.filter((c) => !c.error && !c.normclip_rejects && !isEdgeCase(c))

  it('float32 through tensors: apply(tensor) gives the same bits as applyCopy', () => {
    for (const c of applicable.filter((g) => g.dtype === 'float32' && g.shape.every((d) => d > 0)).slice(0, 40)) {
      const constraint = fromKeras(c)
      const input = bitsToFloat32(c.input_bits!)
      const x = tf.tensor(input, c.shape)
      const viaTensor = values(constraint.apply(x))
      x.dispose()
      expect(viaTensor, c.name).toEqual(Array.from(constraint.applyCopy(input, c.shape)))
    }
  })
})
