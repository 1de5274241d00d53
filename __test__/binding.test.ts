import { describe, expect, it } from 'vitest'
import { applyBatch, applyBatchAsync, constrain, simdTier, threadCount } from '../src/index'
import { NativeConstraint, applyBound } from '../src/binding'
import { referenceApply, referenceNorms, rng, ulpDistance, type Axis } from './reference'

function randomArray(len: number, seed: number, scale = 3): Float32Array {
  const next = rng(seed)
  return Float32Array.from({ length: len }, () => (next() * 2 - 1) * scale)
}

function maxUlp(a: Float32Array, b: Float32Array): number {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, ulpDistance(a[i]!, b[i]!))
  return worst
}

describe('golden values from the peers', () => {
  it('Keras: MaxNorm(2) on a 3×4 kernel, axis 0', () => {
    // Columns [0,0,0], [1,0,0], [3,0,0], [3,3,3].
    const w = new Float32Array([0, 1, 3, 3, 0, 0, 0, 3, 0, 0, 0, 3])
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 2 }).applyInPlace(w, [3, 4])
    expect(w[0]).toBe(0)
    expect(w[1]).toBeCloseTo(1, 6) // within bounds: only the eps shrink
    expect(w[2]).toBeCloseTo(2, 6)
    for (const i of [3, 7, 11]) expect(w[i]).toBeCloseTo(2 / Math.sqrt(3), 6)
  })

  it('tfjs: [-1,2,0,4,-5,6] under MaxNorm and UnitNorm', () => {
    const expected = [-0.2208630521, 0.4417261043, 0, 0.8834522086, -1.104315261, 1.325178313]
    const w = new Float32Array([-1, 2, 0, 4, -5, 6])
    NativeConstraint.create({ kind: 'maxNorm' }).applyInPlace(w, [6])
    expected.forEach((v, i) => expect(w[i]).toBeCloseTo(v, 6))
    const u = new Float32Array([-1, 2, 0, 4, -5, 6])
    NativeConstraint.create({ kind: 'unitNorm' }).applyInPlace(u, [6])
    expected.forEach((v, i) => expect(u[i]).toBeCloseTo(v / 2, 6))
  })
})

// Two properties, tested apart: the norms are accurate (within 1 ulp of the correctly rounded
// norm), and given those norms every output is Keras' float32 formula to the bit.
describe('random shapes and axes against the f64 reference', () => {
  const cases: Array<{ shape: number[]; axis: Axis }> = [
    { shape: [784, 32], axis: 0 },
    { shape: [3, 3, 8, 16], axis: [0, 1, 2] },
    { shape: [3, 3, 16, 8], axis: [0, 1, 3] },
    { shape: [4, 5, 6, 7], axis: [0, 2] },
    { shape: [4, 5, 6, 7], axis: [3, 1] },
    { shape: [100, 10], axis: 0 },
    { shape: [33, 7], axis: -1 },
    { shape: [2, 3, 4], axis: null },
    { shape: [5, 6], axis: [] },
    { shape: [1, 9, 1], axis: 1 },
    { shape: [7], axis: 0 },
    { shape: [2048, 600], axis: 0 }, // above the threading threshold
  ]
  for (const [c, { shape, axis }] of cases.entries()) {
    for (const kind of ['maxNorm', 'minMaxNorm', 'unitNorm'] as const) {
      it(`${kind} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}`, () => {
        const len = shape.reduce((a, b) => a * b, 1)
        const input = randomArray(len, 1000 + c, kind === 'minMaxNorm' ? 0.5 : 3)
        const spec =
          kind === 'maxNorm' ? { kind, axis, maxValue: 2 } : kind === 'unitNorm' ? { kind, axis } : { kind, axis, maxValue: 1.5, minValue: 0.5, rate: 0.7 }
        const constraint = NativeConstraint.create(spec)
        const { norms } = constraint.norms(input, shape)
        const exact = referenceNorms(input, shape, axis)
        exact.forEach((n, i) => expect(ulpDistance(norms[i]!, Math.fround(n))).toBeLessThanOrEqual(1))
        const ours = constraint.applyCopy(input, shape)
        expect(ours).toBeInstanceOf(Float32Array)
        expect(maxUlp(ours as Float32Array, referenceApply(input, shape, spec, norms))).toBe(0)
        // Against the exact norm the output moves by at most the norm's one ulp (≤ 3 output ulp).
        expect(maxUlp(ours as Float32Array, referenceApply(input, shape, spec))).toBeLessThanOrEqual(3)
      })
    }
  }

  it('norms() returns keepdims norms within 1e-6 of the f64 reference', () => {
    const input = randomArray(3 * 3 * 8 * 16, 7)
    const { norms, shape } = NativeConstraint.create({ kind: 'maxNorm', axis: [0, 1, 2] }).norms(input, [3, 3, 8, 16])
    expect(shape).toEqual([1, 1, 1, 16])
    const reference = referenceNorms(input, [3, 3, 8, 16], [0, 1, 2])
    reference.forEach((n, i) => expect(Math.abs(norms[i]! - n) / n).toBeLessThan(1e-6))
  })
})

describe('semantics', () => {
  it('zero slices stay zero, an Inf element gives NaN, NaN propagates', () => {
    const w = new Float32Array([0, Infinity, NaN, 0, 1, 1]) // [3, 2]: columns [0,NaN,1] [inf,0,1]
    NativeConstraint.create({ kind: 'maxNorm' }).applyInPlace(w, [3, 2])
    expect(Array.from(w).map(String)).toEqual(['NaN', 'NaN', 'NaN', '0', 'NaN', '0'])
    const zeros = new Float32Array(6)
    NativeConstraint.create({ kind: 'unitNorm' }).applyInPlace(zeros, [3, 2])
    expect(Array.from(zeros)).toEqual([0, 0, 0, 0, 0, 0])
  })

  it('NonNeg: negatives and -0 become +0, NaN stays (Keras 3)', () => {
    const w = new Float32Array([-1, 2, -0, NaN, -Infinity])
    NativeConstraint.create({ kind: 'nonNeg' }).applyInPlace(w, [5])
    expect(Object.is(w[0], 0)).toBe(true)
    expect(w[1]).toBe(2)
    expect(Object.is(w[2], 0)).toBe(true)
    expect(w[3]).toBeNaN()
    expect(w[4]).toBe(0)
  })

  it('projection mode leaves compliant slices bit-identical and projects the rest onto the bound', () => {
    const w = new Float32Array([0.6, 3, 0.8, 4]) // [2, 2] columns: norm 1 and norm 5
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 2, mode: 'projection' }).applyInPlace(w, [2, 2])
    expect(w[0]).toBe(Math.fround(0.6))
    expect(w[2]).toBe(Math.fround(0.8))
    expect(w[1]).toBeCloseTo(1.2, 6)
    expect(w[3]).toBeCloseTo(1.6, 6)
  })

  it('Keras mode shrinks a compliant slice by eps, and leaves norms ≥ 2 bit-identical', () => {
    const w = new Float32Array([1, 2.5]) // [1, 2]: norms 1 and 2.5 under MaxNorm(3)
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 3 }).applyInPlace(w, [1, 2])
    expect(w[0]).toBe(Math.fround(1 / Math.fround(1 + Math.fround(1e-7))))
    expect(w[1]).toBe(2.5)
  })

  it('RadialConstraint follows tf-keras code on a 3×3 kernel', () => {
    const w = Float32Array.from({ length: 9 }, (_, i) => i)
    NativeConstraint.create({ kind: 'radialConstraint' }).applyInPlace(w, [3, 3, 1, 1])
    expect(Array.from(w)).toEqual([4, 4, 4, 4, 0, 4, 4, 4, 4])
  })

  it('Float64Array goes through the same code', () => {
    const w = new Float64Array([3, 4])
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 }).applyInPlace(w, [2])
    // Keras' eps in f64: 3 * (1 / (1e-7 + 5)).
    expect(w[0]).toBe(3 * (1 / (1e-7 + 5)))
    expect(w[1]).toBe(4 * (1 / (1e-7 + 5)))
  })

  it('subarray views and SharedArrayBuffer work in place', () => {
    const backing = new Float32Array([9, 3, 4, 9])
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 }).applyInPlace(backing.subarray(1, 3), [2])
    expect(Array.from(backing).map((v) => Number(v.toFixed(5)))).toEqual([9, 0.6, 0.8, 9])
    const shared = new Float32Array(new SharedArrayBuffer(8))
    shared.set([3, 4])
    NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 }).applyInPlace(shared, [2])
    expect(shared[0]).toBeCloseTo(0.6, 6)
  })

  it('rank 0 and size 0', () => {
    const scalar = new Float32Array([5])
    NativeConstraint.create({ kind: 'maxNorm', axis: null }).applyInPlace(scalar, [])
    expect(scalar[0]).toBeCloseTo(2, 6)
    NativeConstraint.create({ kind: 'maxNorm' }).applyInPlace(new Float32Array(0), [0, 3])
  })
})

describe('copy, async, batch, handle', () => {
  it('applyCopy leaves the input untouched', () => {
    const input = new Float32Array([3, 4])
    const out = NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 }).applyCopy(input, [2])
    expect(Array.from(input)).toEqual([3, 4])
    expect(out[0]).toBeCloseTo(0.6, 6)
  })

  it('applyInPlaceAsync writes when the promise settles', async () => {
    const w = randomArray(512 * 512, 11)
    const expected = NativeConstraint.create({ kind: 'maxNorm' }).applyCopy(w, [512, 512])
    await NativeConstraint.create({ kind: 'maxNorm' }).applyInPlaceAsync(w, [512, 512])
    expect(w).toEqual(expected)
  })

  it('applyBatch applies every item, sync and async', async () => {
    const a = new Float32Array([3, 4])
    const b = new Float64Array([-1, 2])
    applyBatch([
      { array: a, shape: [2], constraint: NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 }) },
      { array: b, shape: [2], constraint: NativeConstraint.create({ kind: 'nonNeg' }) },
    ])
    expect(a[1]).toBeCloseTo(0.8, 6)
    expect(Array.from(b)).toEqual([0, 2])
    const big = Array.from({ length: 4 }, (_, i) => randomArray(300 * 300, 20 + i))
    const expected = big.map((x) => NativeConstraint.create({ kind: 'unitNorm' }).applyCopy(x, [300, 300]))
    await applyBatchAsync(big.map((array) => ({ array, shape: [300, 300], constraint: NativeConstraint.create({ kind: 'unitNorm' }) })))
    big.forEach((x, i) => expect(x).toEqual(expected[i]))
  })

  it('constrain() builds a handle once and applies in place', () => {
    const apply = constrain({ kind: 'maxNorm', maxValue: 1 })
    const w = new Float32Array([3, 4])
    apply(w, [2])
    expect(w[0]).toBeCloseTo(0.6, 6)
    expect(() => apply(new Int8Array(2) as unknown as Float32Array, [2])).toThrow(TypeError)
  })

  it('a bound constraint checks once and applies through the raw fast path', () => {
    const bound = NativeConstraint.create({ kind: 'maxNorm', maxValue: 1, axis: 0 }).bind([2, 2])
    const w = new Float32Array([3, 0, 4, 2])
    applyBound(bound, w)
    expect(Array.from(w).map((v) => Number(v.toFixed(6)))).toEqual([0.6, 0, 0.8, 1])
    const f64 = new Float64Array([3, 0, 4, 2])
    applyBound(bound, f64)
    expect(f64[0]).toBe(3 * (1 / (1e-7 + 5)))
    const before = Array.from(w)
    expect(() => applyBound(bound, new Float32Array(3))).toThrow(/array: expected length 4 \(the product of shape \[2, 2\]\), got 3/)
    expect(() => applyBound(bound, [1, 2, 3, 4] as unknown as Float32Array)).toThrow(TypeError)
    expect(() => applyBound({} as typeof bound, w)).toThrow(/bound: expected a handle from NativeConstraint.bind/)
    expect(Array.from(w)).toEqual(before)
    expect(() => NativeConstraint.create({ kind: 'maxNorm', axis: 3 }).bind([2, 2])).toThrow(RangeError)
  })

  it('constrain() plans each shape once and gives the same results as the class', () => {
    const clip = constrain({ kind: 'unitNorm', axis: -1 })
    for (const shape of [
      [4, 8],
      [8, 4],
      [4, 8],
    ]) {
      const w = randomArray(32, shape[0]!)
      const expected = NativeConstraint.create({ kind: 'unitNorm', axis: -1 }).applyCopy(w, shape)
      clip(w, shape)
      expect(w).toEqual(expected)
    }
    expect(() => constrain({ kind: 'unitNorm', axis: [0, 0] })).toThrow(/got 0 twice/)
  })

  it('constrain() follows a shape array changed in place between calls', () => {
    // The last call's plan is reused only for the same dims, read again on every call.
    const spec = { kind: 'maxNorm', maxValue: 1, axis: 0 } as const
    const clip = constrain(spec)
    const shape = [4, 8]
    const w = randomArray(32, 5)
    const asFourByEight = NativeConstraint.create(spec).applyCopy(w, [4, 8])
    const asEightByFour = NativeConstraint.create(spec).applyCopy(w, [8, 4])
    expect(asEightByFour).not.toEqual(asFourByEight)
    const first = w.slice()
    clip(first, shape)
    expect(first).toEqual(asFourByEight)
    shape[0] = 8
    shape[1] = 4
    clip(w, shape)
    expect(w).toEqual(asEightByFour)
    shape.push(1)
    expect(() => clip(w.slice(), [...shape, 2])).toThrow(/array: expected length 64/)
  })

  it('reports its tier and threads', () => {
    expect(['avx512', 'avx2', 'portable', 'neon']).toContain(simdTier())
    expect(threadCount()).toBeGreaterThanOrEqual(1)
  })
})

describe('bad input: a clear error and nothing written', () => {
  const c = NativeConstraint.create({ kind: 'maxNorm', maxValue: 1 })
  const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
    [
      'wrong array type',
      () => c.applyInPlace(new Int32Array(4) as unknown as Float32Array, [4]),
      TypeError,
      /array: expected a Float32Array or Float64Array, got Int32Array/,
    ],
    ['plain array', () => c.applyInPlace([1, 2] as unknown as Float32Array, [2]), TypeError, /array: expected a Float32Array or Float64Array, got an Array/],
    ['length mismatch', () => c.applyInPlace(new Float32Array(4), [2, 3]), RangeError, /array: expected length 6 \(the product of shape \[2, 3\]\), got 4/],
    ['negative dim', () => c.applyInPlace(new Float32Array(4), [-4]), RangeError, /shape: expected non-negative integers, got -4 at index 0/],
    ['fractional dim', () => c.applyInPlace(new Float32Array(4), [2.5, 2]), RangeError, /got 2.5 at index 0/],
    ['shape not an array', () => c.applyInPlace(new Float32Array(4), 4 as unknown as number[]), TypeError, /shape: expected an array/],
    [
      'axis out of range',
      () => NativeConstraint.create({ kind: 'maxNorm', axis: 2 }).applyInPlace(new Float32Array(4), [2, 2]),
      RangeError,
      /axis: expected integers in \[-2, 1\] for a rank-2 tensor, got 2/,
    ],
    [
      'axis repeated after resolving',
      () => NativeConstraint.create({ kind: 'maxNorm', axis: [1, -1] }).applyInPlace(new Float32Array(4), [2, 2]),
      RangeError,
      /axis 1 twice/,
    ],
    ['axis repeated literally', () => NativeConstraint.create({ kind: 'maxNorm', axis: [0, 0] }), RangeError, /got 0 twice/],
    ['negative maxValue', () => NativeConstraint.create({ kind: 'maxNorm', maxValue: -1 }), RangeError, /maxValue: expected a finite number >= 0, got -1/],
    [
      'infinite maxValue',
      () => NativeConstraint.create({ kind: 'maxNorm', maxValue: Infinity }),
      RangeError,
      /maxValue: expected a finite number >= 0, got inf/,
    ],
    [
      'min > max',
      () => NativeConstraint.create({ kind: 'minMaxNorm', minValue: 2, maxValue: 1 }),
      RangeError,
      /minValue: expected at most maxValue \(1\), got 2/,
    ],
    ['rate outside [0,1]', () => NativeConstraint.create({ kind: 'minMaxNorm', rate: 3 }), RangeError, /rate: expected a number in \[0, 1\], got 3/],
    ['unknown kind', () => NativeConstraint.create({ kind: 'maxnorm' as 'maxNorm' }), RangeError, /spec.kind: expected one of/],
    [
      'maxValue of the wrong type',
      () => NativeConstraint.create({ kind: 'maxNorm', maxValue: '2' as unknown as number }),
      TypeError,
      /maxValue: expected a number, got a string/,
    ],
    ['radial on rank 2', () => NativeConstraint.create({ kind: 'radialConstraint' }).applyInPlace(new Float32Array(4), [2, 2]), RangeError, /rank-4 kernel/],
  ]
  for (const [name, call, type, message] of cases) {
    it(name, () => {
      expect(call).toThrow(type)
      expect(call).toThrow(message)
    })
  }

  it('a detached buffer is an error, not a silent no-op', () => {
    const w = new Float32Array(4)
    structuredClone(w.buffer, { transfer: [w.buffer] })
    expect(() => c.applyInPlace(w, [4])).toThrow(/array: expected an attached buffer, got a detached Float32Array/)
    expect(() => c.applyInPlace(w, [0])).toThrow(RangeError)
  })

  it('a batch with one bad item writes nothing', () => {
    const good = new Float32Array([3, 4])
    expect(() =>
      applyBatch([
        { array: good, shape: [2], constraint: c },
        { array: new Float32Array(3), shape: [2], constraint: c },
      ]),
    ).toThrow(/items\[1\]\.array: expected length 2/)
    expect(Array.from(good)).toEqual([3, 4])
  })

  it('overlapping arrays in one batch are rejected, nothing written', () => {
    const backing = new Float32Array([3, 4, 3, 4])
    expect(() =>
      applyBatch([
        { array: backing.subarray(0, 3), shape: [3], constraint: c },
        { array: backing.subarray(2), shape: [2], constraint: c },
      ]),
    ).toThrow(/items\[1\]\.array: expected memory of its own, but it overlaps items\[0\]\.array/)
    expect(Array.from(backing)).toEqual([3, 4, 3, 4])
    // Disjoint views of one buffer are fine.
    applyBatch([
      { array: backing.subarray(0, 2), shape: [2], constraint: c },
      { array: backing.subarray(2), shape: [2], constraint: c },
    ])
    expect(backing[0]).toBeCloseTo(0.6, 6)
  })

  it('a constraint that is not a NativeConstraint is a TypeError', () => {
    expect(() => applyBatch([{ array: new Float32Array(2), shape: [2], constraint: {} as NativeConstraint }])).toThrow(
      /items\[0\]\.constraint: expected a NativeConstraint/,
    )
  })
})
