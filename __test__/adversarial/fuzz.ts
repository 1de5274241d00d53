/**
 * A randomized fuzz of every entry point (the binding's and the TypeScript wrappers over it), run in a child process by `../fuzz.test.ts`:
 * `node --expose-gc --import tsx fuzz.ts <seed> <calls>`. Each call gets random arguments —
 * valid ones, wrong types, lying shapes, hostile getters that detach or resize buffers, shared
 * and resizable memory — and the invariants are checked after it:
 * - the process never crashes (the parent sees a signal otherwise);
 * - a refused call throws a TypeError or RangeError (or the exception a hostile getter threw)
 *   and leaves every buffer that is still attached exactly as it was;
 * - an accepted call gives what a plain scalar reference gives: norms within 1e-5 relative, and
 *   every slice within its bound; the copy equals the in-place result bit for bit; async equals
 *   sync.
 * Every other call is also a gradient-clipping call (`clipOne`: every list entry point of the
 * binding and the TypeScript wrappers, against an f64 reference), and one call in a hundred a
 * zero-copy backend call (`backendOne`: tensors on the wasm heap and, when tfjs-node loads, in
 * TensorFlow through normclip's op; bit-identical to the copy path, inputs unchanged).
 * On a failure it prints the seed and the call number, so `fuzz.ts <seed> <calls>` replays it.
 */
import { applyBatch as batchTs, applyBatchAsync as batchAsyncTs, constrain } from '../../src/index'
import * as clipTs from '../../src/clipping'
import * as native from '../../src/native/index.js'

type FloatArray = Float32Array | Float64Array
type Spec = native.NativeConstraintSpec

const seed = Number(process.argv[2] ?? Date.now() % 2 ** 31)
const calls = Number(process.argv[3] ?? 100_000)

function mulberry32(a: number): () => number {
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = mulberry32(seed)
const int = (n: number) => Math.floor(random() * n)
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
const chance = (p: number) => random() < p

class HostileError extends Error {}

/** A hostile action a getter may run: detach or shrink one of the call's buffers, or throw. */
type Hook = () => void

function detach(array: FloatArray): void {
  if (array.buffer instanceof ArrayBuffer && array.length > 0) structuredClone(array.buffer, { transfer: [array.buffer] })
}

/** One hostile action on `array`, chosen at random; `message` is what the throwing one throws. */
function hostileHook(array: FloatArray, message: string): Hook {
  return pick<Hook>([
    () => detach(array),
    () => {
      const buffer = array.buffer as ArrayBuffer & { resizable?: boolean; resize?(n: number): void }
      if (buffer.resizable) buffer.resize!(0)
    },
    () => {
      throw new HostileError(message)
    },
  ])
}

function randomDims(): number[] {
  const rank = int(5)
  return Array.from({ length: rank }, () => (chance(0.05) ? 0 : 1 + int(6)))
}

function randomAxis(rank: number): Spec['axis'] {
  switch (int(6)) {
    case 0:
      return undefined
    case 1:
      return null
    case 2:
      return []
    case 3:
      return int(2 * rank + 3) - rank - 1 // sometimes out of range
    default: {
      const axes = Array.from({ length: int(rank + 1) }, () => int(2 * rank + 1) - rank)
      return chance(0.1) ? [...axes, ...axes.slice(0, 1)] : [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))]
    }
  }
}

function randomSpec(rank: number): Spec {
  const kind = pick(['maxNorm', 'maxNorm', 'minMaxNorm', 'unitNorm', 'nonNeg', 'radialConstraint'] as const)
  const spec: Record<string, unknown> = { kind }
  const number = () => pick([0, 0.5, 1, 2, 3, 1e-30, 1e30, -1, Number.NaN, Number.POSITIVE_INFINITY, random() * 4])
  if (kind === 'maxNorm' || kind === 'minMaxNorm') {
    if (chance(0.8)) spec['maxValue'] = number()
    if (kind === 'minMaxNorm') {
      if (chance(0.7)) spec['minValue'] = number()
      if (chance(0.5)) spec['rate'] = pick([0, 0.5, 1, 2, -1])
    }
  }
  if (kind === 'maxNorm' || kind === 'minMaxNorm' || kind === 'unitNorm') {
    const axis = randomAxis(rank)
    if (axis !== undefined) spec['axis'] = axis
    if (chance(0.3)) spec['mode'] = pick(['keras', 'projection', 'bogus'])
    if (chance(0.2)) spec['epsilon'] = pick([1e-7, 1e-3, 0, -1])
  }
  if (chance(0.03)) spec[pick(['max_value', 'axes', 'maxvalue', 'Kind'])] = 1
  if (chance(0.02)) spec['kind'] = pick(['MaxNorm', '', 3, undefined])
  return spec as unknown as Spec
}

function randomData(len: number, f64: boolean): FloatArray {
  const kind = int(10)
  let array: FloatArray
  if (kind === 0) {
    const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer
    const bytes = len * (f64 ? 8 : 4)
    array = f64 ? new Float64Array(new Resizable(bytes, { maxByteLength: bytes })) : new Float32Array(new Resizable(bytes, { maxByteLength: bytes }))
  } else if (kind === 1) {
    const buffer = new SharedArrayBuffer(len * (f64 ? 8 : 4) + 16)
    array = f64 ? new Float64Array(buffer, 8, len) : new Float32Array(buffer, 8, len)
  } else if (kind === 2) {
    // A subarray of a larger buffer: neighbours must never be written.
    const outer = f64 ? new Float64Array(len + 8) : new Float32Array(len + 8)
    outer.fill(7)
    array = outer.subarray(4, 4 + len)
  } else {
    array = f64 ? new Float64Array(len) : new Float32Array(len)
  }
  for (let i = 0; i < len; i++) {
    array[i] = chance(0.01) ? pick([Number.NaN, Number.POSITIVE_INFINITY, 0, -0, 1e-40, 3e38, 1e200]) : (random() * 2 - 1) * pick([0.01, 1, 3, 100])
  }
  return array
}

/** A shape argument: usually honest, sometimes lying, hostile or not an array at all. */
function shapeArgument(dims: number[], hook: Hook | undefined): unknown {
  if (chance(0.03)) return pick(['', new Set(dims), new Int32Array(dims), { length: dims.length }, 3, null])
  if (chance(0.03)) return [...dims, chance(0.5) ? -1 : 1.5]
  const shape = [...dims]
  if (hook !== undefined && shape.length > 0) {
    Object.defineProperty(shape, 0, {
      get: () => {
        hook()
        return dims[0]
      },
      enumerable: true,
    })
  }
  return shape
}

function scalarNorms(data: FloatArray, dims: number[], axes: number[]): Map<number, number> {
  // Norms by slice index, in f64, by walking multi-indices: independent of normclip's layout
  // code. Each slice is scaled by its largest magnitude first, so squares of 1e200 do not overflow.
  const rank = dims.length
  const reduced = new Set(axes.map((a) => (a < 0 ? a + rank : a)))
  const slices = new Map<number, number[]>()
  const index = new Array<number>(rank).fill(0)
  for (let flat = 0; flat < data.length; flat++) {
    let slice = 0
    for (let d = 0; d < rank; d++) if (!reduced.has(d)) slice = slice * dims[d]! + index[d]!
    const values = slices.get(slice) ?? []
    if (values.length === 0) slices.set(slice, values)
    values.push(data[flat]!)
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < dims[d]!) break
      index[d] = 0
    }
  }
  const norms = new Map<number, number>()
  for (const [slice, values] of slices) {
    const scale = values.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
    norms.set(slice, scale === 0 ? 0 : scale * Math.sqrt(values.reduce((sum, x) => sum + (x / scale) ** 2, 0)))
  }
  return norms
}

function fail(call: number, what: string): never {
  console.log(`FAIL seed=${seed} call=${call}: ${what}`)
  console.log(`replay: node --expose-gc --import tsx __test__/adversarial/fuzz.ts ${seed} ${call + 1}`)
  process.exit(1)
}

function sameBits(a: FloatArray, b: FloatArray): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false
  return true
}

function expectRefusal(call: number, error: unknown, what: string): void {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof HostileError) return
  fail(call, `${what}: threw ${String(error)}, expected a TypeError or RangeError`)
}

const stats = { calls: 0, accepted: 0, refused: 0, hostile: 0, async: 0 }
const applyBound = (native as unknown as { applyBound(b: unknown, a: FloatArray): void }).applyBound

/** The constraint of a random spec, or undefined where the binding refused it as it should. */
function createOrRefuse(call: number, spec: Spec): native.NativeConstraint | undefined {
  try {
    return native.NativeConstraint.create(spec)
  } catch (error) {
    expectRefusal(call, error, `create(${JSON.stringify(spec)})`)
    return undefined
  }
}

async function one(call: number): Promise<void> {
  const dims = randomDims()
  const len = dims.reduce((a, b) => a * b, 1)
  const f64 = chance(0.3)
  const spec = randomSpec(dims.length)
  const constraint = createOrRefuse(call, spec)
  if (constraint === undefined) {
    stats.refused++
    return
  }
  const actualLen = chance(0.05) ? Math.max(0, len + pick([-1, 1, 3])) : len
  const array = chance(0.02) ? (pick([new Int32Array(actualLen), [1, 2], null, 'x']) as unknown as FloatArray) : randomData(actualLen, f64)
  const isFloat = array instanceof Float32Array || array instanceof Float64Array
  const before = isFloat ? array.slice() : undefined
  let hostile: Hook | undefined
  if (isFloat && chance(0.05)) {
    stats.hostile++
    hostile = hostileHook(array, 'a getter threw')
  }
  const shape = shapeArgument(dims, hostile)
  const entry = int(10)
  const snapshot = (): FloatArray | undefined => (isFloat && array.length > 0 ? array.slice() : undefined)
  try {
    let result: FloatArray | undefined
    switch (entry) {
      case 0:
        constraint.applyInPlace(array, shape as number[])
        result = snapshot()
        break
      case 1:
        result = constraint.applyCopy(array, shape as number[])
        break
      case 2: {
        const handle = constraint.bind(shape as number[])
        applyBound(handle, array)
        result = snapshot()
        break
      }
      case 3:
        native.applyBatch([{ array, shape: shape as number[], constraint }])
        result = snapshot()
        break
      case 4: {
        stats.async++
        await constraint.applyInPlaceAsync(array, shape as number[])
        result = snapshot()
        break
      }
      case 5: {
        stats.async++
        await native.applyBatchAsync([{ array, shape: shape as number[], constraint }])
        result = snapshot()
        break
      }
      case 6:
        constrain(spec)(array, shape as number[])
        result = snapshot()
        break
      case 7:
        batchTs([{ array, shape: shape as number[], constraint }])
        result = snapshot()
        break
      case 8:
        stats.async++
        await batchAsyncTs([{ array, shape: shape as number[], constraint }])
        result = snapshot()
        break
      default:
        constraint.norms(array, shape as number[])
        break
    }
    stats.accepted++
    if (!isFloat || before === undefined || result === undefined || hostile !== undefined) return
    // Accepted: the copy path and the in-place path agree bit for bit...
    const copy = constraint.applyCopy(before, dims)
    if (!sameBits(copy, result)) fail(call, `entry ${entry}: in-place and copy results differ for ${JSON.stringify(spec)} ${JSON.stringify(dims)}`)
    // ...and every slice of a norm constraint ends within its bound.
    const kind = constraint.kind
    // Any finite data, whatever its magnitude: the core's wide path gives subnormal factors and
    // norms beyond the element range their exact value (issue 8, item 7).
    if (kind === 'maxNorm' || kind === 'unitNorm') {
      const bound = kind === 'maxNorm' ? (spec.maxValue ?? 2) : 1
      const axis = spec.axis === undefined ? [0] : spec.axis === null ? dims.map((_, i) => i) : typeof spec.axis === 'number' ? [spec.axis] : spec.axis
      if (!Array.from(before).every((x) => Number.isFinite(x))) return
      // Each output is within half an ulp of its exact value, so a norm is within 2^-24 relative
      // of the exact one's; bound it by a little more than that.
      for (const [slice, norm] of scalarNorms(result, dims, axis)) {
        if (norm > bound * (1 + 2e-7)) fail(call, `slice ${slice} has norm ${norm} > ${bound} after ${JSON.stringify(spec)} on ${JSON.stringify(dims)}`)
      }
    }
  } catch (error) {
    expectRefusal(call, error, `entry ${entry} with ${JSON.stringify(spec)} on ${JSON.stringify(dims)}`)
    stats.refused++
    // Nothing written: a buffer that is still attached and as long as before holds what it held.
    // (Judged by byteLength and a fresh view: optimized code has been seen to report a stale
    // `length` for a typed array detached inside a native call.)
    if (isFloat && before !== undefined && array.byteLength === before.byteLength && before.length > 0) {
      const Kind = array.constructor as new (buffer: ArrayBufferLike, offset: number, length: number) => FloatArray
      const now = new Kind(array.buffer, array.byteOffset, before.length)
      if (!sameBits(now, before)) fail(call, `entry ${entry} refused the call (${(error as Error).message}) but changed the array`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping: every list entry point of the binding (and the TypeScript wrappers over it)
// on random lists — float arrays of both types, empty ones, shared, resizable and subarrays,
// aliasing ones, holes and wrong types — with hostile element getters that free, shrink or
// throw. Refusals leave every attached array unchanged; accepted calls match an f64 reference.

const clipStats = { calls: 0, accepted: 0, refused: 0, hostile: 0 }
const clipScalar = () => pick([0, 0.5, 1, 2, 3, 1e-30, 1e30, -1, Number.NaN, Number.POSITIVE_INFINITY, random() * 4])

function refNorm(data: ArrayLike<number>, p: number): number {
  let sum = 0
  let max = 0
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!)
    max = Math.max(max, a)
    sum += p === 1 ? a : a * a
  }
  return p === Number.POSITIVE_INFINITY ? max : p === 1 ? sum : Math.sqrt(sum)
}

const near = (a: number, b: number, rel = 1e-5) => Object.is(a, b) || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + 1e-30

/** Each array scaled by `factor` (float32 arrays by its float32 rounding, as the core does). */
function checkScaled(call: number, what: string, arrays: FloatArray[], before: FloatArray[], factor: number): void {
  arrays.forEach((array, t) => {
    for (let i = 0; i < array.length; i++) {
      const expected = before[t]![i]! * factor
      if (!near(array[i]!, expected)) fail(call, `${what}: arrays[${t}][${i}] = ${array[i]}, expected ${before[t]![i]} * ${factor} = ${expected}`)
    }
  })
}

async function clipOne(call: number): Promise<void> {
  clipStats.calls++
  const count = int(4)
  const arrays: FloatArray[] = Array.from({ length: count }, () => randomData(chance(0.1) ? 0 : 1 + int(40), chance(0.3)))
  const list: unknown[] = [...arrays]
  // Whether the list is exactly `arrays` (no wrong element, alias or hole): then results are checked.
  let honest = true
  if (count > 0 && chance(0.03)) {
    list[int(count)] = pick([new Int32Array(3), [1, 2], null, undefined, 'x'])
    honest = false
  }
  if (count > 1 && chance(0.03)) {
    list[1] = arrays[0] // one array twice (written lists refuse it)
    honest = false
  }
  if (count > 0 && chance(0.02)) {
    list.length = count + 2 // holes at the end
    honest = false
  }
  const before = arrays.map((a) => a.slice())
  let hostile = false
  if (count > 1 && chance(0.05)) {
    hostile = true
    clipStats.hostile++
    const victim = arrays[int(count - 1)]!
    const action = hostileHook(victim, 'a list getter threw')
    const last = list[count - 1]
    Object.defineProperty(list, count - 1, {
      get: () => {
        action()
        return last
      },
      enumerable: true,
    })
  }
  const p = pick([1, 2, 2, Number.POSITIVE_INFINITY, 3, 0])
  const c = clipScalar()
  const entry = int(12)
  const finite = honest && arrays.every((a) => Array.from(a).every((x) => Number.isFinite(x) && Math.abs(x) < 1e30))
  const l = list as FloatArray[]
  try {
    switch (entry) {
      case 0: {
        const norms = native.clipTensorNorms(l, p)
        if (finite && !hostile)
          norms.forEach((n, t) => near(n, refNorm(before[t]!, p), 1e-6) || fail(call, `clipTensorNorms p=${p}: ${n} vs ${refNorm(before[t]!, p)}`))
        break
      }
      case 1: {
        const useNorm = chance(0.2) ? clipScalar() : null
        const norm = native.clipByGlobalNorm(l, c, useNorm)
        if (finite && !hostile && useNorm === null) {
          const expected = Math.sqrt(before.reduce((s, a) => s + refNorm(a, 2) ** 2, 0))
          if (!near(norm, expected, 1e-6)) fail(call, `clipByGlobalNorm: norm ${norm} vs ${expected}`)
          if (c > 1e-20 && c < 1e20 && norm > 1e-20) checkScaled(call, `clipByGlobalNorm(${c}) N=${norm}`, arrays, before, c / Math.max(norm, c))
        }
        break
      }
      case 2:
        native.clipEachByNorm(l, c)
        if (finite && !hostile && c > 1e-20 && c < 1e20) {
          arrays.forEach((a, t) => {
            const n = refNorm(before[t]!, 2)
            if (n > 1e-20) checkScaled(call, `clipEachByNorm(${c})`, [a], [before[t]!], c / Math.max(n, c))
          })
        }
        break
      case 3:
        native.clipByValue(l, c)
        if (!hostile && honest) {
          arrays.forEach((a, t) => {
            const v = a instanceof Float32Array ? Math.fround(c) : c
            for (let i = 0; i < a.length; i++) {
              const x = before[t]![i]!
              const expected = Number.isNaN(x) ? x : Math.min(Math.max(x, -v), v)
              if (!Object.is(a[i], Object.is(x, -0) && v > 0 ? x : expected)) fail(call, `clipByValue(${c}): ${x} became ${a[i]}`)
            }
          })
        }
        break
      case 4: {
        const total = native.clipTotalNorm(l, p, chance(0.5))
        if (finite && !hostile) {
          const norms = before.map((a) => refNorm(a, p))
          const expected = p === Number.POSITIVE_INFINITY ? Math.max(0, ...norms) : refNorm(norms, p)
          if (!near(total, expected, 1e-6)) fail(call, `clipTotalNorm p=${p}: ${total} vs ${expected}`)
        }
        break
      }
      case 5: {
        const total = chance(0.5) ? clipScalar() : random() * 10
        native.clipGradsWithNorm(l, c, total)
        if (finite && !hostile && Number.isFinite(total))
          checkScaled(call, `clipGradsWithNorm(${c}, ${total})`, arrays, before, Math.min(c / (total + 1e-6), 1))
        break
      }
      case 6: {
        const total = native.clipGradNorm(l, c, p, chance(0.5))
        if (finite && !hostile && p === 2 && c < 1e20) checkScaled(call, `clipGradNorm(${c})`, arrays, before, Math.min(c / (total + 1e-6), 1))
        break
      }
      case 7: {
        const [norm, clipped] = native.clipUpdate(l, c)
        if (finite && !hostile && c > 1e-20 && c < 1e20) checkScaled(call, `clipUpdate(${c})`, arrays, before, clipped === 1 ? c / norm! : 1)
        break
      }
      case 8: {
        // Per-example: grads[t] of `batch` examples, sums into out[t].
        const batch = chance(0.05) ? pick([0, 2 ** 32 - 1, 2 ** 32, -1, 1.5]) : 1 + int(3)
        const perLayer = chance(0.3)
        const bounds = perLayer ? arrays.map(() => clipScalar()) : [c]
        if (chance(0.03)) bounds.push(1)
        const outs: FloatArray[] = arrays.map((a) =>
          a instanceof Float64Array ? new Float64Array(Math.floor(a.length / Math.max(1, batch))) : new Float32Array(Math.floor(a.length / Math.max(1, batch))),
        )
        if (count > 0 && chance(0.03)) outs[0] = arrays[0]!.subarray(0, outs[0]!.length) // over its own gradient
        const style = pick(['opacus', 'optax', 'tfPrivacy', 'opacus', 'dp'] as const)
        const counts = native.clipPerExample(l, batch, bounds, perLayer, style as 'opacus', outs)
        if (finite && !hostile && style === 'opacus' && !perLayer && c < 1e20) {
          arrays.forEach((_, t) => {
            const per = outs[t]!.length
            for (let j = 0; j < per; j++) {
              // Examples' clipped terms can cancel (two examples of norm > c sum to ~0), so the
              // tolerance is relative to the sum of the terms' magnitudes: each float32 term
              // carries its own rounding, whatever their sum is.
              let sum = 0
              let magnitude = 0
              for (let i = 0; i < batch; i++) {
                const n = Math.sqrt(
                  before.reduce((s, g) => {
                    const r = g.length / batch
                    let q = 0
                    for (let k = i * r; k < (i + 1) * r; k++) q += g[k]! ** 2
                    return s + q
                  }, 0),
                )
                const term = before[t]![i * per + j]! * Math.min(1, c / (n + 1e-6))
                sum += term
                magnitude += Math.abs(term)
              }
              const got = outs[t]![j]!
              if (!Object.is(got, sum) && !(Math.abs(got - sum) <= 1e-4 * magnitude + 1e-30))
                fail(call, `clipPerExample: out[${t}][${j}] = ${outs[t]![j]}, expected ${sum}`)
            }
          })
          arrays.forEach((a, t) => sameBits(a, before[t]!) || fail(call, 'clipPerExample wrote its gradients'))
          if (counts.length !== 1) fail(call, `clipPerExample: ${counts.length} counts`)
        }
        break
      }
      case 9: {
        // clipByNorm on one array with a shape and axes.
        const array = arrays[0] ?? new Float32Array(0)
        const dims = array.length % 2 === 0 && array.length > 0 && chance(0.5) ? [2, array.length / 2] : [array.length]
        const axes = pick<number[] | null>([null, [0], [-1], [0, 1], [5], [0, 0]])
        native.clipByNorm(array, chance(0.03) ? [array.length + 1] : dims, axes, c)
        if (finite && !hostile && c > 1e-20 && c < 1e20 && array.length > 0) {
          for (const [slice, norm] of scalarNorms(array, dims, axes ?? dims.map((_, i) => i))) {
            if (norm > c * (1 + 1e-5) + 1e-30) fail(call, `clipByNorm: slice ${slice} has norm ${norm} > ${c}`)
          }
        }
        break
      }
      case 10: {
        // The TypeScript wrappers (they copy the list, so list getters run before the binding).
        const ts = pick(['clipByGlobalNorm', 'clipGradNorm', 'clipUpdate', 'clipByValue', 'globalNorm', 'getTotalNorm'] as const)
        if (ts === 'clipByGlobalNorm') clipTs.clipByGlobalNorm(l, c)
        else if (ts === 'clipGradNorm') clipTs.clipGradNorm(l, c, chance(0.1) ? ({ normType: p, bogus: 1 } as never) : { normType: p as 2 })
        else if (ts === 'clipUpdate') clipTs.clipUpdate(l, c)
        else if (ts === 'clipByValue') clipTs.clipByValue(l, c)
        else if (ts === 'globalNorm') clipTs.globalNorm(l)
        else clipTs.getTotalNorm(l, p as 2)
        break
      }
      default: {
        const shaped = arrays.map((a) => ({ array: a, shape: a.length % 2 === 0 && a.length > 0 ? [2, a.length / 2] : [a.length] }))
        clipTs.clipPerExample(shaped, chance(0.3) ? arrays.map(() => c) : c, { style: pick(['opacus', 'optax', 'tfPrivacy'] as const), perLayer: chance(0.3) })
        arrays.forEach((a, t) => sameBits(a, before[t]!) || fail(call, 'clipPerExample (TypeScript) wrote its gradients'))
        break
      }
    }
    clipStats.accepted++
  } catch (error) {
    expectRefusal(call, error, `clip entry ${entry} on ${arrays.map((a) => a.length).join(',')}`)
    clipStats.refused++
    arrays.forEach((array, t) => {
      if (array.byteLength !== before[t]!.byteLength || array.length === 0) return
      const Kind = array.constructor as new (buffer: ArrayBufferLike, offset: number, length: number) => FloatArray
      if (!sameBits(new Kind(array.buffer, array.byteOffset, before[t]!.length), before[t]!))
        fail(call, `clip entry ${entry} refused the call (${(error as Error).message}) but changed arrays[${t}]`)
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Zero-copy backend paths: tensors on the wasm backend (heap views) and, when tfjs-node loads,
// on TensorFlow (normclip's op). Each result must be bit-identical to the copy path on the same
// data, and the input tensor unchanged; an unusable input (disposed, int32, a shape the
// constraint does not fit) must be declined (undefined), never crash.

type TfLike = typeof import('@tensorflow/tfjs')
const backendStats: Record<string, number> = {}
let tfBackends: { tf: TfLike; names: string[]; fastApply: typeof import('../../src/backends').fastApply } | undefined

async function loadBackends(): Promise<void> {
  const { loadTfjsNode } = await import('../support/tfjs-node')
  const status = loadTfjsNode()
  const tf = (status.available ? status.tf : await import('@tensorflow/tfjs')) as TfLike
  const wasm = await import('@tensorflow/tfjs-backend-wasm')
  const { dirname, join } = await import('node:path')
  wasm.setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`)
  const names = ['wasm', ...(status.available ? ['tensorflow'] : [])]
  for (const name of names) if (!(await tf.setBackend(name))) fail(-1, `backend ${name} did not start`)
  tfBackends = { tf, names, fastApply: (await import('../../src/backends')).fastApply }
}

async function backendOne(call: number): Promise<void> {
  const { tf, names, fastApply } = tfBackends!
  const name = pick(names)
  if (tf.getBackend() !== name) await tf.setBackend(name)
  const dims = randomDims()
  const len = dims.reduce((a, b) => a * b, 1)
  const spec = randomSpec(dims.length)
  const constraint = createOrRefuse(call, spec)
  if (constraint === undefined) return
  const values = randomData(len, false) as Float32Array
  const plain = values.slice()
  const kind = int(20)
  const tensor =
    kind === 0
      ? tf.tensor(
          Int32Array.from(values, (x) => Math.trunc(x) | 0),
          dims,
          'int32',
        )
      : tf.tensor(plain, dims, 'float32')
  if (kind === 1) tensor.dispose()
  const key = `${name}:${kind === 0 ? 'int32' : kind === 1 ? 'disposed' : 'float32'}`
  const result = fastApply(tensor, constraint)
  let expected: Float32Array | undefined
  try {
    expected = constraint.applyCopy(values, dims) as Float32Array
  } catch (error) {
    expectRefusal(call, error, 'the reference copy')
  }
  backendStats[`${key}:${result === undefined ? 'declined' : 'applied'}`] = (backendStats[`${key}:${result === undefined ? 'declined' : 'applied'}`] ?? 0) + 1
  if (result !== undefined) {
    if (kind <= 1) fail(call, `${key}: an unusable tensor was accepted`)
    if (expected === undefined) fail(call, `${name}: the fast path accepted what the copy path refuses (${JSON.stringify(spec)} on ${JSON.stringify(dims)})`)
    if (!sameBits(result.dataSync() as Float32Array, expected))
      fail(call, `${name}: the fast path differs from the copy path for ${JSON.stringify(spec)} on ${JSON.stringify(dims)}`)
    result.dispose()
  } else if (kind > 1 && expected !== undefined && len > 0 && name === 'wasm') {
    fail(call, `${name}: a usable tensor was declined (${JSON.stringify(spec)} on ${JSON.stringify(dims)})`)
  }
  if (kind !== 1) {
    if (kind > 1 && !sameBits(tensor.dataSync() as Float32Array, values)) fail(call, `${name}: the input tensor changed`)
    tensor.dispose()
  }
}

async function main(): Promise<void> {
  await loadBackends()
  for (let call = 0; call < calls; call++) {
    stats.calls++
    await one(call)
    // Every other call also a clipping call; one in a hundred a backend call.
    if (call % 2 === 1) await clipOne(call)
    if (call % 100 === 7) await backendOne(call)
    if (call % 5000 === 4999) (globalThis as { gc?: () => void }).gc?.()
  }
  console.log(`PASS seed=${seed} ${JSON.stringify(stats)} clip=${JSON.stringify(clipStats)} backends=${JSON.stringify(backendStats)}`)
}

main().catch((error: unknown) => fail(-1, String(error)))
