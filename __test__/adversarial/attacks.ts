/**
 * Attacks on the native boundary, as a hostile caller would make them. Each runs in a child
 * process of its own (see `run.ts` and `../adversarial.test.ts`): a crash kills the child, not
 * the test runner, and is reported as the child's signal. An attack throws when normclip
 * misbehaves without crashing (a missing error, memory written that it does not own, a buffer
 * changed by a call that failed); it returns a line for the report when all is well.
 */
import { MessageChannel, Worker } from 'node:worker_threads'
import * as native from '../../src/native/index.js'
import type { TfjsNode } from '../support/tfjs-node'

type Native = typeof native
type AttackResult = string

/** The public TypeScript API, loaded lazily: some attacks must see the binding alone. */
async function api() {
  return import('../../src/index')
}

function fail(message: string): never {
  throw new Error(message)
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message)
}

/**
 * tfjs-node, loaded lazily (attacks on the binding alone must not pay for it), or the report line
 * of an attack skipped without it; its absence fails where the run requires it.
 */
async function tfjsNodeOrSkip(): Promise<TfjsNode | AttackResult> {
  const { loadTfjsNode, tfjsNodeRequired, describeTfjsNode } = await import('../support/tfjs-node')
  const status = loadTfjsNode()
  if (!status.available) {
    check(!tfjsNodeRequired(), `tfjs-node is required here: ${describeTfjsNode(status)}`)
    return `skipped: ${describeTfjsNode(status)}`
  }
  return status.tf
}

function expectThrow(fn: () => unknown, Kind: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, pattern: RegExp): string {
  try {
    fn()
  } catch (error) {
    check(error instanceof Kind, `expected a ${Kind.name}, got ${String(error)}`)
    const message = (error as Error).message
    check(pattern.test(message), `expected a message matching ${pattern}, got ${JSON.stringify(message)}`)
    return message
  }
  return fail(`expected a ${Kind.name} matching ${pattern}, nothing was thrown`)
}

async function expectReject(
  promise: Promise<unknown>,
  Kind: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor,
  pattern: RegExp,
): Promise<string> {
  try {
    await promise
  } catch (error) {
    check(error instanceof Kind, `expected a ${Kind.name} rejection, got ${String(error)}`)
    const message = (error as Error).message
    check(pattern.test(message), `expected a rejection matching ${pattern}, got ${JSON.stringify(message)}`)
    return message
  }
  return fail(`expected a ${Kind.name} rejection matching ${pattern}, the promise resolved`)
}

/** For async entry points: a synchronous throw and a rejection are both a refusal. */
async function expectThrowOrReject(fn: () => Promise<unknown>, Kind: TypeErrorConstructor | RangeErrorConstructor, pattern: RegExp): Promise<string> {
  let pending: Promise<unknown>
  try {
    pending = fn()
  } catch (error) {
    return expectThrow(
      () => {
        throw error
      },
      Kind,
      pattern,
    )
  }
  return expectReject(pending, Kind, pattern)
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc
  check(collect !== undefined, 'the attack child must run with --expose-gc')
  collect!()
}

/** Moves an ArrayBuffer's memory away from its owner: the owner is detached. */
function transferAway(buffer: ArrayBufferLike): ArrayBuffer {
  return structuredClone(buffer, { transfer: [buffer as ArrayBuffer] }) as ArrayBuffer
}

/** A resizable ArrayBuffer (ES2024; Node 20 has it, TypeScript's ES2022 lib does not). */
type ResizableBuffer = ArrayBuffer & { resize(byteLength: number): void }
function resizableBuffer(byteLength: number): ResizableBuffer {
  const Resizable = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableBuffer
  return new Resizable(byteLength, { maxByteLength: byteLength })
}

const N = 1 << 16
const filled = (value = 3) => new Float32Array(N).fill(value)

/**
 * Frees `victim`'s memory (transfer to an unreachable clone, then collect) and allocates many
 * zeroed buffers of the same size, which are likely to take its place: if a call later writes
 * through a stale pointer, one of these stops being zero.
 */
function freeAndRefill(victim: Float32Array): Float32Array[] {
  transferAway(victim.buffer)
  gc()
  gc()
  return Array.from({ length: 64 }, () => new Float32Array(N))
}

function assertAllZero(arrays: Float32Array[], what: string): void {
  for (const [index, array] of arrays.entries()) {
    for (let i = 0; i < array.length; i++) {
      if (array[i] !== 0) fail(`${what}: memory allocated after the victim was freed was written (array ${index}, element ${i} = ${array[i]})`)
    }
  }
}

function assertUnchanged(array: Float32Array | Float64Array, before: Float32Array | Float64Array, what: string): void {
  check(array.length === before.length, `${what}: length changed`)
  for (let i = 0; i < array.length; i++) {
    if (!Object.is(array[i], before[i])) fail(`${what}: element ${i} changed from ${before[i]} to ${array[i]} although the call failed`)
  }
}

/** A shape whose first element's getter runs `hook` (once), as a hostile caller writes it. */
function hostileShape(dims: number[], hook: () => void): number[] {
  const shape = [...dims]
  let ran = false
  Object.defineProperty(shape, 0, {
    get() {
      if (!ran) {
        ran = true
        hook()
      }
      return dims[0]
    },
    enumerable: true,
  })
  return shape
}

function maxNorm(n: Native, maxValue = 1) {
  return n.NativeConstraint.create({ kind: 'maxNorm', maxValue, axis: 0 })
}

// ---------------------------------------------------------------------------------------------
// 1. Use after free in synchronous calls

/** Each synchronous entry point, called on `array` with `shape` (binding level). */
function syncCalls(n: Native): Record<string, (array: Float32Array, shape: number[]) => unknown> {
  const c = maxNorm(n)
  return {
    applyInPlace: (array, shape) => c.applyInPlace(array, shape),
    applyCopy: (array, shape) => c.applyCopy(array, shape),
    norms: (array, shape) => c.norms(array, shape),
    bind: (array, shape) => (n as unknown as { applyBound(b: unknown, a: Float32Array): void }).applyBound(c.bind(shape), array),
    applyBatch: (array, shape) => n.applyBatch([{ array, shape, constraint: c }]),
    'applyBatch output': (array, shape) =>
      n.applyBatch([
        { array: new Float32Array(N), shape: [N], constraint: c, output: array },
        { array: new Float32Array(N), shape, constraint: c },
      ]),
  }
}

export const attacks: Record<string, () => Promise<AttackResult>> = {
  async 'sync: a shape getter transfers the buffer away and lets it be collected'() {
    const lines: string[] = []
    for (const [name, call] of Object.entries(syncCalls(native))) {
      const victim = filled()
      let refill: Float32Array[] = []
      const shape = hostileShape([256, 256], () => {
        refill = freeAndRefill(victim)
      })
      const message = expectThrow(() => call(victim, shape), RangeError, /detached|expected length/)
      assertAllZero(refill, name)
      lines.push(`${name}: ${message}`)
    }
    return lines.join('\n')
  },

  async 'sync: a shape getter shrinks a resizable buffer (length-tracking and fixed views)'() {
    const lines: string[] = []
    for (const tracking of [true, false]) {
      for (const [name, call] of Object.entries(syncCalls(native))) {
        const buffer = resizableBuffer(N * 4)
        const victim = tracking ? new Float32Array(buffer) : new Float32Array(buffer, 0, N)
        victim.fill(3)
        const shape = hostileShape([256, 256], () => buffer.resize(0))
        const message = expectThrow(() => call(victim, shape), RangeError, /expected length 65536|detached/)
        buffer.resize(N * 4)
        lines.push(`${tracking ? 'length-tracking' : 'fixed'} ${name}: ${message}`)
      }
    }
    return lines.join('\n')
  },

  async 'sync: item k of a batch frees item j < k'() {
    const c = maxNorm(native)
    const first = filled()
    const second = filled()
    const before = second.slice()
    let refill: Float32Array[] = []
    const items = [
      { array: first, shape: [256, 256], constraint: c },
      {
        array: second,
        get shape() {
          refill = freeAndRefill(first)
          return [256, 256]
        },
        constraint: c,
      },
    ]
    const message = expectThrow(() => native.applyBatch(items as never), RangeError, /items\[0\]\.array: expected an attached buffer/)
    assertAllZero(refill, 'applyBatch')
    assertUnchanged(second, before, 'items[1]')
    return message
  },

  async 'sync: Proxies and getters through the TypeScript API'() {
    const { MaxNorm, constrain, applyBatch } = await api()
    const lines: string[] = []
    const m = new MaxNorm({ maxValue: 1 })
    const fast = constrain({ kind: 'maxNorm', maxValue: 1 })
    const calls: Record<string, (a: Float32Array, s: number[]) => unknown> = {
      'MaxNorm.applyInPlace': (a, s) => m.applyInPlace(a, s),
      'MaxNorm.applyCopy': (a, s) => m.applyCopy(a, s),
      'MaxNorm.norms': (a, s) => m.norms(a, s),
      'constrain()': (a, s) => fast(a, s),
      applyBatch: (a, s) => applyBatch([{ array: a, shape: s, constraint: m }]),
    }
    for (const [name, call] of Object.entries(calls)) {
      const victim = filled()
      let refill: Float32Array[] = []
      const proxy = new Proxy([256, 256], {
        get(target, key, receiver) {
          if (key === '0') refill = freeAndRefill(victim)
          return Reflect.get(target, key, receiver)
        },
      })
      const message = expectThrow(() => call(victim, proxy), RangeError, /detached/)
      assertAllZero(refill, name)
      lines.push(`${name}: ${message}`)
    }
    // The binding itself takes no Proxy for a shape: it reads real Arrays only.
    expectThrow(() => maxNorm(native).applyInPlace(filled(), new Proxy([256, 256], {})), TypeError, /shape: expected an array/)
    return lines.join('\n')
  },

  // -------------------------------------------------------------------------------------------
  // 2. Async calls must hold memory that cannot vanish

  async 'async: the buffer is transferred (structuredClone) while the call is pending'() {
    const lines: string[] = []
    const { MaxNorm } = await api()
    const calls: Record<string, (a: Float32Array) => Promise<unknown>> = {
      'NativeConstraint.applyInPlaceAsync': (a) => maxNorm(native).applyInPlaceAsync(a, [256, 256]),
      'MaxNorm.applyInPlaceAsync': (a) => new MaxNorm({ maxValue: 1 }).applyInPlaceAsync(a, [256, 256]),
      applyBatchAsync: (a) => native.applyBatchAsync([{ array: a, shape: [256, 256], constraint: maxNorm(native) }]),
    }
    for (const [name, call] of Object.entries(calls)) {
      const victim = filled()
      const pending = call(victim)
      const moved = new Float32Array(transferAway(victim.buffer))
      const message = await expectReject(pending, RangeError, /detached.*nothing was written/)
      check(
        moved.every((x) => x === 3),
        `${name}: the new owner's memory was written`,
      )
      lines.push(`${name}: ${message}`)
    }
    return lines.join('\n')
  },

  async 'async: the buffer is posted to a worker with transfer while the call is pending'() {
    const victim = filled()
    const pending = expectReject(maxNorm(native).applyInPlaceAsync(victim, [256, 256]), RangeError, /detached/)
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
       parentPort.once('message', (buffer) => {
         const a = new Float32Array(buffer)
         setTimeout(() => parentPort.postMessage(a.every((x) => x === 3)), 50)
       })`,
      { eval: true },
    )
    worker.postMessage(victim.buffer, [victim.buffer])
    check(victim.length === 0, 'postMessage did not detach the buffer')
    const message = await pending
    const untouched = await new Promise<boolean>((resolve) => worker.once('message', resolve))
    await worker.terminate()
    check(untouched, "the worker's memory was written")
    // And through a MessagePort: the same.
    const second = filled()
    const again = expectReject(maxNorm(native).applyInPlaceAsync(second, [256, 256]), RangeError, /detached/)
    const { port1, port2 } = new MessageChannel()
    port1.postMessage(second.buffer, [second.buffer])
    const received = await new Promise<ArrayBuffer>((resolve) => port2.once('message', resolve))
    port1.close()
    port2.close()
    await again
    check(
      new Float32Array(received).every((x) => x === 3),
      "the port receiver's memory was written",
    )
    return message
  },

  async 'async: ArrayBuffer.prototype.transfer while the call is pending'() {
    const transfer = (ArrayBuffer.prototype as { transfer?: (n?: number) => ArrayBuffer }).transfer
    if (transfer === undefined) return `skipped: ArrayBuffer.prototype.transfer does not exist on Node ${process.version}`
    const lines: string[] = []
    for (const length of [undefined, 0, 16]) {
      const victim = filled()
      const pending = maxNorm(native).applyInPlaceAsync(victim, [256, 256])
      const moved = new Float32Array(transfer.call(victim.buffer, length === undefined ? undefined : length * 4))
      lines.push(await expectReject(pending, RangeError, /detached/))
      check(
        moved.every((x) => x === 3),
        'the new owner was written',
      )
    }
    return `Node ${process.version}: ${lines.join('; ')}`
  },

  async 'async: a resizable buffer shrinks (resize(0)) while the call is pending'() {
    const lines: string[] = []
    for (const tracking of [true, false]) {
      const buffer = resizableBuffer(N * 4)
      const victim = tracking ? new Float32Array(buffer) : new Float32Array(buffer, 0, N)
      victim.fill(3)
      const pending = maxNorm(native).applyInPlaceAsync(victim, [256, 256])
      buffer.resize(0)
      lines.push(await expectReject(pending, RangeError, /expected length 65536.*nothing was written/))
      buffer.resize(N * 4)
      check(
        victim.every((x) => x === 0),
        'a resized-away region was written',
      )
    }
    // Shrunk and grown back before it settles: the same memory and length again, so it is written.
    const buffer = resizableBuffer(16)
    const back = new Float32Array(buffer)
    back.set([3, 4, 0, 0])
    const pending = maxNorm(native).applyInPlaceAsync(back, [2, 2])
    buffer.resize(0)
    buffer.resize(16)
    await pending
    check(back[0] === 1 && back[1] === 1, `grown back: expected the constrained values, got ${back.join(',')}`)
    return lines.join('\n')
  },

  async 'async: a batch with one item detached meanwhile writes no item'() {
    const c = maxNorm(native)
    const kept = filled()
    const lost = filled()
    const pending = native.applyBatchAsync([
      { array: kept, shape: [256, 256], constraint: c },
      { array: lost, shape: [256, 256], constraint: c },
    ])
    transferAway(lost.buffer)
    const message = await expectReject(pending, RangeError, /items\[1\]\.array: expected an attached buffer.*nothing was written/)
    check(
      kept.every((x) => x === 3),
      'items[0] was written although the batch failed',
    )
    return message
  },

  async 'async: SharedArrayBuffer arrays are constrained in place, with no copy'() {
    const shared = new Float32Array(new SharedArrayBuffer(N * 4)).fill(3)
    const c = maxNorm(native)
    const pending = c.applyInPlaceAsync(shared, [256, 256])
    // A SharedArrayBuffer cannot be transferred: the attempt throws and the call goes on.
    expectThrow(() => structuredClone(shared.buffer, { transfer: [shared.buffer as unknown as ArrayBuffer] }), Error, /./)
    await pending
    const expected = c.applyCopy(filled(), [256, 256])
    check(
      shared.every((x, i) => x === expected[i]),
      'the shared array does not hold the constrained values',
    )
    return 'in place on shared memory; transfer of it refused by the runtime'
  },

  // -------------------------------------------------------------------------------------------
  // 3. Panics must not abort Node; empty tensors allocate nothing

  async 'panics: a panic in a sync export, in applyBound, and on the pool becomes an Error'() {
    const panic = (native as unknown as { __panicForTests(kind: string): unknown }).__panicForTests
    const lines = [
      expectThrow(() => panic('sync'), Error, /internal error/),
      expectThrow(() => panic('bound'), Error, /internal error/),
      await expectReject(panic('async') as Promise<unknown>, Error, /internal error/),
    ]
    // Still alive and working.
    const a = new Float32Array([3, 4])
    maxNorm(native).applyInPlace(a, [2])
    check(Math.abs(a[0]! - 0.6) < 1e-6, 'normclip stopped working after a caught panic')
    return lines.join('\n')
  },

  async 'empty tensors with huge other dimensions: no panic, no allocation'() {
    const c = maxNorm(native)
    const empty = new Float32Array(0)
    const lines: string[] = []
    for (const shape of [
      [0, 2 ** 40, 2 ** 40],
      [0, 2 ** 20, 2 ** 20],
      [2 ** 40, 2 ** 40, 0],
      [0, 20000, 20000],
    ]) {
      const rss = process.memoryUsage().rss
      const start = performance.now()
      c.applyInPlace(empty, shape)
      check(c.applyCopy(empty, shape).length === 0, 'applyCopy of an empty tensor is not empty')
      native.applyBatch([{ array: empty, shape, constraint: c }])
      await c.applyInPlaceAsync(empty, shape)
      await native.applyBatchAsync([{ array: empty, shape, constraint: c }])
      const ms = performance.now() - start
      const grew = (process.memoryUsage().rss - rss) / 2 ** 20
      // Generous sanity bounds (this is no benchmark): the work is nothing at all.
      check(ms < 500 && grew < 64, `${JSON.stringify(shape)}: ${ms.toFixed(1)} ms, RSS +${grew.toFixed(1)} MiB for an empty tensor`)
      lines.push(`${JSON.stringify(shape)}: ${ms.toFixed(2)} ms, RSS +${grew.toFixed(1)} MiB`)
    }
    lines.push(expectThrow(() => c.norms(empty, [0, 2 ** 40, 2 ** 40]), RangeError, /more values than fit in memory/))
    lines.push(expectThrow(() => c.applyInPlace(empty, [2 ** 40, 2 ** 40, 2 ** 40]), RangeError, /overflows/))
    const norms = c.norms(empty, [0, 3, 5])
    check(norms.norms.length === 15 && norms.norms.every((x) => x === 0), 'norms of an empty [0,3,5] are not 15 zeros')
    return lines.join('\n')
  },

  async 'async: a getter detaches an earlier item while applyBatchAsync reads its items'() {
    const c = maxNorm(native)
    const first = filled()
    const second = filled()
    const items = [
      { array: first, shape: [256, 256], constraint: c },
      {
        array: second,
        get shape() {
          transferAway(first.buffer)
          return [256, 256]
        },
        constraint: c,
      },
    ]
    const message = expectThrow(() => native.applyBatchAsync(items as never), RangeError, /items\[0\]\.array: expected an attached buffer/)
    check(
      second.every((x) => x === 3),
      'items[1] was written',
    )
    return message
  },

  // -------------------------------------------------------------------------------------------
  // 4. Silent wrong answers

  async 'specs: unknown keys are errors, the spec is a snapshot'() {
    const { constrain } = await api()
    const lines: string[] = []
    for (const spec of [
      { kind: 'maxNorm', max_value: 3 },
      { kind: 'maxNorm', maxvalue: 3 },
      { kind: 'maxNorm', axes: [0] },
      { kind: 'nonNeg', axis: 0 },
      { kind: 'unitNorm', maxValue: 1 },
    ]) {
      lines.push(expectThrow(() => constrain(spec as never), TypeError, /unknown key/))
      expectThrow(() => native.NativeConstraint.create(spec as never), TypeError, /unknown key/)
    }
    const spec = { kind: 'maxNorm' as const, maxValue: 1, axis: 0 }
    const fast = constrain(spec)
    const c = native.NativeConstraint.create(spec)
    spec.maxValue = 100
    spec.axis = 1
    for (const shape of [[2], [2, 1]]) {
      const a = new Float32Array([3, 4])
      fast(a, shape)
      const b = c.applyCopy(new Float32Array([3, 4]), shape)
      check(Math.abs(a[0]! - 0.6) < 1e-6 && Math.abs(b[0]! - 0.6) < 1e-6, `${JSON.stringify(shape)}: a mutated spec changed an earlier constraint`)
    }
    // A getter on the spec is read once.
    let reads = 0
    native.NativeConstraint.create({
      kind: 'maxNorm',
      get maxValue() {
        reads++
        return 1
      },
    })
    check(reads === 1, `maxValue was read ${reads} times`)
    return lines.join('\n')
  },

  async 'shapes: a getter that answers differently on each read cannot poison the plan cache'() {
    const { constrain, MaxNorm } = await api()
    const fast = constrain({ kind: 'maxNorm', maxValue: 1, axis: 0 })
    const m = new MaxNorm({ maxValue: 1 })
    for (const call of [fast, (a: Float32Array, s: number[]) => m.applyInPlace(a, s)]) {
      let flip = 0
      const liar = [0, 2]
      Object.defineProperty(liar, 0, { get: () => (flip++ % 2 === 0 ? 2 : 1), enumerable: true })
      const a = new Float32Array([3, 4, 0, 0])
      call(a, liar) // read once: [2, 2]
      const honest = new Float32Array([3, 4, 0, 0])
      call(honest, [2, 2])
      const expected = m.applyCopy(new Float32Array([3, 4, 0, 0]), [2, 2])
      check(a.every((x, i) => x === expected[i]) && honest.every((x, i) => x === expected[i]), 'a lying shape changed a result')
      // And the [1, 2] plan, if any, fits the [1, 2] shape only.
      expectThrow(() => call(new Float32Array(4), [1, 2]), RangeError, /expected length 2/)
    }
    return 'each shape read once; plans keyed by that copy'
  },

  async 'shapes: only Arrays are shapes, in every wrapper'() {
    const { MaxNorm, constrain, applyBatch, applyBatchAsync } = await api()
    const m = new MaxNorm({ maxValue: 1 })
    const fast = constrain({ kind: 'maxNorm' })
    const c = maxNorm(native)
    const lines: string[] = []
    for (const shape of ['', new Set([4]), new Int32Array([4]), { length: 1, 0: 4 }, 4]) {
      const a = filled().subarray(0, 4)
      const before = a.slice()
      const calls: Array<() => unknown> = [
        () => m.applyInPlace(a, shape as never),
        () => m.applyCopy(a, shape as never),
        () => m.norms(a, shape as never),
        () => fast(a, shape as never),
        () => c.applyInPlace(a, shape as never),
        () => c.applyCopy(a, shape as never),
        () => c.norms(a, shape as never),
        () => c.bind(shape as never),
        () => applyBatch([{ array: a, shape: shape as never, constraint: m }]),
        () => native.applyBatch([{ array: a, shape: shape as never, constraint: c }]),
      ]
      for (const call of calls) lines.push(expectThrow(call, TypeError, /shape: expected an array/))
      for (const call of [
        () => m.applyInPlaceAsync(a, shape as never),
        () => c.applyInPlaceAsync(a, shape as never),
        () => applyBatchAsync([{ array: a, shape: shape as never, constraint: m }]),
        () => native.applyBatchAsync([{ array: a, shape: shape as never, constraint: c }]),
      ]) {
        lines.push(await expectThrowOrReject(call, TypeError, /shape: expected an array/))
      }
      assertUnchanged(a, before, String(shape))
    }
    return `${lines.length} calls refused`
  },

  async 'NativeConstraint cannot be called as a function or constructed directly'() {
    const Class = native.NativeConstraint as unknown as (spec: unknown) => unknown
    const before = Object.keys(globalThis).length
    const lines = [
      expectThrow(() => Class({ kind: 'maxNorm' }), Error, /constructor/),
      expectThrow(() => new (native.NativeConstraint as unknown as new (spec: unknown) => unknown)({ kind: 'maxNorm' }), Error, /constructor/),
    ]
    check(Object.keys(globalThis).length === before, 'globalThis gained properties')
    return lines.join('\n')
  },

  // -------------------------------------------------------------------------------------------
  // 5. Training never writes into arrays tfjs handed out

  async 'training: arrays the app got from dataSync on the cpu backend stay as they were'() {
    const tf = await import('@tensorflow/tfjs')
    const { MaxNorm, applyConstraints, constraintCallback } = await api()
    await tf.setBackend('cpu')
    const layer = tf.layers.dense({
      inputShape: [8],
      units: 4,
      kernelConstraint: new MaxNorm({ maxValue: 0.1 }),
      kernelInitializer: 'ones',
    })
    const model = tf.sequential({ layers: [layer] })
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' })
    const variable = () => layer.trainableWeights[0]!.read()
    // The cpu backend's dataSync hands out its own storage: the app may keep it.
    const held = variable().dataSync() as Float32Array
    const snapshot = held.slice()
    applyConstraints(model)
    assertUnchanged(held, snapshot, 'a dataSync() array after applyConstraints')
    const later = variable().dataSync() as Float32Array
    const laterSnapshot = later.slice()
    const xs = tf.randomNormal([16, 8], 0, 1, 'float32', 1)
    const ys = tf.randomNormal([16, 4], 0, 1, 'float32', 2)
    await model.fit(xs, ys, { epochs: 2, batchSize: 4, verbose: 0, callbacks: [constraintCallback()] })
    applyConstraints(model)
    applyConstraints(model)
    assertUnchanged(later, laterSnapshot, 'a dataSync() array after fit with constraintCallback')
    const norms = new MaxNorm({ maxValue: 0.1 }).norms(variable().dataSync() as Float32Array, [8, 4]).norms
    check(
      norms.every((n) => n <= 0.1 * (1 + 1e-6)),
      'the constraint no longer holds',
    )
    tf.dispose([xs, ys])
    return 'held arrays unchanged across applyConstraints and fit; norms within the bound'
  },
  // -------------------------------------------------------------------------------------------
  // 7. Gradient clipping (crates/normclip-node/src/clip.rs, crates/normclip-core/src/clip/)

  async 'clip: a list, axes or bounds claiming 2**32-1 elements is refused before anything is allocated'() {
    // `new Array(2 ** 32 - 1)` is 4 billion holes in a few bytes: nothing may be sized by the
    // length an Array claims, only by the elements actually read (the first hole is an error).
    const huge = () => new Array(2 ** 32 - 1) as never
    const a = filled().subarray(0, 4)
    const before = a.slice()
    const out = new Float32Array(2)
    const calls: Record<string, () => unknown> = {
      clipTensorNorms: () => native.clipTensorNorms(huge(), 2),
      clipByGlobalNorm: () => native.clipByGlobalNorm(huge(), 1, null),
      clipEachByNorm: () => native.clipEachByNorm(huge(), 1),
      clipByValue: () => native.clipByValue(huge(), 1),
      clipTotalNorm: () => native.clipTotalNorm(huge(), 2, false),
      clipGradsWithNorm: () => native.clipGradsWithNorm(huge(), 1, 1),
      clipGradNorm: () => native.clipGradNorm(huge(), 1, 2, false),
      clipUpdate: () => native.clipUpdate(huge(), 1),
      'clipPerExample grads': () => native.clipPerExample(huge(), 2, [1], false, 'opacus', [out]),
      'clipPerExample out': () => native.clipPerExample([a], 2, [1], false, 'opacus', huge()),
      'clipPerExample bounds': () => native.clipPerExample([a], 2, huge(), true, 'opacus', [out]),
      'clipByNorm axes': () => native.clipByNorm(a, [4], huge(), 1),
      tfOpSpec: () => native.tfOpSpec(huge()),
    }
    const lines: string[] = []
    for (const [name, call] of Object.entries(calls)) {
      const rss = process.memoryUsage().rss
      let message: string
      try {
        call()
        return fail(`${name}: a list of 2**32-1 holes was accepted`)
      } catch (error) {
        check(error instanceof TypeError || error instanceof RangeError, `${name}: expected a TypeError or RangeError, got ${String(error)}`)
        message = (error as Error).message
      }
      const grew = (process.memoryUsage().rss - rss) / 2 ** 20
      check(grew < 64, `${name}: RSS +${grew.toFixed(0)} MiB to refuse a list of holes`)
      assertUnchanged(a, before, name)
      check(
        out.every((x) => x === 0),
        `${name}: out was written`,
      )
      lines.push(`${name}: ${message}`)
    }
    return lines.join('\n')
  },

  async 'clip: per-example clipping of empty gradients with a batch of 2**32-1 allocates nothing'() {
    const { clipPerExample } = await api()
    const lines: string[] = []
    const batch = 2 ** 32 - 1
    for (const [style, clipNorm, clippedAll] of [
      ['opacus', 1, false],
      ['opacus', 0, true],
      ['optax', 1, false],
      ['tfPrivacy', 1, false],
    ] as const) {
      for (const perLayer of [false, true]) {
        const rss = process.memoryUsage().rss
        const start = performance.now()
        // Through the public API, as a DP-SGD step on a layer with no parameters would call it.
        const result = clipPerExample(
          [
            { array: new Float32Array(0), shape: [batch, 0] },
            { array: new Float64Array(0), shape: [batch, 3, 0] },
          ],
          perLayer ? [clipNorm, clipNorm] : clipNorm,
          { style, perLayer },
        )
        const ms = performance.now() - start
        const grew = (process.memoryUsage().rss - rss) / 2 ** 20
        check(ms < 500 && grew < 64, `${style} ${perLayer}: ${ms.toFixed(0)} ms, RSS +${grew.toFixed(0)} MiB for empty gradients`)
        // Every example is the same empty example: its norm is 0, its factor the style's
        // factor at 0 (Opacus' C / 1e-6 is below 1 only for C = 0).
        const expected = clippedAll ? batch : 0
        const counts = Array.isArray(result.clipped) ? result.clipped : [result.clipped]
        check(
          counts.length === (perLayer ? 2 : 1) && counts.every((c) => c === expected),
          `${style} perLayer=${perLayer}: clipped ${JSON.stringify(result.clipped)}, expected ${expected} each`,
        )
        check(result.sums.length === 2 && result.sums.every((s) => (s as Float32Array).length === 0), 'sums of empty examples are not empty')
        lines.push(
          `${style} clipNorm=${clipNorm} perLayer=${perLayer}: clipped ${JSON.stringify(result.clipped)} in ${ms.toFixed(1)} ms, RSS +${grew.toFixed(1)} MiB`,
        )
      }
    }
    // The binding with no tensors at all: nothing to clip, whatever the batch (no panic).
    for (const perLayer of [false, true]) {
      const counts = native.clipPerExample([], batch, perLayer ? [] : [1], perLayer, 'opacus', [])
      check(JSON.stringify(counts) === (perLayer ? '[]' : '[0]'), `no tensors, perLayer=${perLayer}: got ${JSON.stringify(counts)}`)
    }
    return lines.join('\n')
  },

  async 'clip: a getter in a gradient list frees or shrinks an earlier array'() {
    const lines: string[] = []
    const calls: Record<string, (list: Float32Array[]) => unknown> = {
      clipTensorNorms: (l) => native.clipTensorNorms(l, 2),
      clipByGlobalNorm: (l) => native.clipByGlobalNorm(l, 1, null),
      clipEachByNorm: (l) => native.clipEachByNorm(l, 1),
      clipByValue: (l) => native.clipByValue(l, 1),
      clipTotalNorm: (l) => native.clipTotalNorm(l, 2, false),
      clipGradsWithNorm: (l) => native.clipGradsWithNorm(l, 1, 1e6),
      clipGradNorm: (l) => native.clipGradNorm(l, 1, 2, false),
      clipUpdate: (l) => native.clipUpdate(l, 1),
      'clipPerExample grads': (l) => native.clipPerExample(l, 2, [1], false, 'opacus', [new Float32Array(N / 2), new Float32Array(N / 2)]),
      'clipPerExample out': (l) => native.clipPerExample([filled(), filled()], 1, [1], false, 'opacus', l),
    }
    for (const [name, call] of Object.entries(calls)) {
      for (const attack of ['free', 'shrink'] as const) {
        const buffer = resizableBuffer(N * 4)
        const victim = attack === 'shrink' ? new Float32Array(buffer) : filled()
        victim.fill(3)
        const second = filled()
        const secondBefore = second.slice()
        let refill: Float32Array[] = []
        const list = [victim, second]
        Object.defineProperty(list, 1, {
          get() {
            if (attack === 'free') refill = freeAndRefill(victim)
            else buffer.resize(4 * 16)
            return second
          },
          enumerable: true,
        })
        const message = expectThrow(() => call(list), RangeError, /\[0\]: expected (an attached buffer|length)/)
        assertAllZero(refill, `${name} ${attack}`)
        assertUnchanged(second, secondBefore, `${name} ${attack}: the array still attached`)
        if (attack === 'shrink')
          check(
            victim.every((x) => x === 3),
            `${name}: the shrunk array was written`,
          )
        lines.push(`${name} (${attack}): ${message}`)
      }
    }
    return lines.join('\n')
  },

  async 'clip: written arrays must not overlap (outputs over their gradients neither); read-only lists may share memory'() {
    const memory = filled()
    const before = memory.slice()
    const lines = [
      // Written lists whose arrays share memory: one write would be seen by another's norm.
      expectThrow(() => native.clipByGlobalNorm([memory.subarray(0, 100), memory.subarray(50, 150)], 1, null), RangeError, /overlaps/),
      expectThrow(() => native.clipGradNorm([memory, memory], 1, 2, false), RangeError, /overlaps/),
      // Per-example sums written over the gradients they are computed from.
      expectThrow(() => native.clipPerExample([memory], 2, [1], false, 'opacus', [memory.subarray(N / 4, (3 * N) / 4)]), RangeError, /overlaps/),
      expectThrow(
        () =>
          native.clipPerExample([memory.subarray(0, N / 2), memory.subarray(N / 2)], 2, [1], false, 'opacus', [
            memory.subarray(N / 4, N / 2),
            new Float32Array(N / 4),
          ]),
        RangeError,
        /overlaps/,
      ),
    ]
    assertUnchanged(memory, before, 'overlapping lists')
    // Read-only lists may share memory: TF's global_norm([t, t]) is a norm like any other.
    const one = native.clipTensorNorms([memory], 2)[0]!
    const twice = native.clipTensorNorms([memory, memory, memory.subarray(1)], 2)
    check(twice[0] === one && twice[1] === one, `norms of one array twice: ${twice.join(', ')}, expected ${one} each`)
    const total = native.clipTotalNorm([memory, memory], 2, false)
    check(Math.abs(total - Math.SQRT2 * one) <= 1e-9 * total, `total norm of one array twice: ${total}`)
    assertUnchanged(memory, before, 'read-only lists sharing memory')
    lines.push(`read-only lists sharing memory: norms ${twice.join(', ')}; total ${total}`)
    return lines.join('\n')
  },

  async 'clip: refused calls of the TypeScript API leave every input as it was'() {
    const { clipByNorm, clipByGlobalNorm, clipGradNorm, clipGradsWithNorm, getTotalNorm, clipPerExample, clipUpdate, clipByValue, globalNorm } = await api()
    const a = filled().subarray(0, 6)
    const b = new Float64Array([30, -40, 0])
    const a0 = a.slice()
    const b0 = b.slice()
    const bad: Array<[string, () => unknown, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, RegExp]> = [
      ['clipByNorm NaN', () => clipByNorm(a, Number.NaN), RangeError, /clipNorm/],
      ['clipByNorm axes', () => clipByNorm(a, 1, [2], [2, 3]), RangeError, /axis/],
      ['clipByNorm shape', () => clipByNorm(a, 1, 0, [4, 2]), RangeError, /expected length 8 .*got 6/],
      ['clipByNorm lying shape', () => clipByNorm(a, 1, 0, [2, { valueOf: () => 3 }] as never), TypeError, /shape/],
      ['clipByGlobalNorm -1', () => clipByGlobalNorm([a, b], -1), RangeError, /clipNorm/],
      ['clipByGlobalNorm useNorm', () => clipByGlobalNorm([a, b], 1, -2), RangeError, /useNorm/],
      ['clipGradNorm p=3', () => clipGradNorm([a, b], 1, { normType: 3 as never }), RangeError, /normType/],
      ['clipGradNorm option', () => clipGradNorm([a, b], 1, { norm_type: 2 } as never), RangeError, /unknown option/],
      [
        'clipGradNorm nonfinite',
        () => clipGradNorm([a, b, new Float32Array([Number.POSITIVE_INFINITY])], 1, { errorIfNonfinite: true }),
        RangeError,
        /errorIfNonfinite/,
      ],
      ['clipGradsWithNorm', () => clipGradsWithNorm([a, b], 1, -1), RangeError, /totalNorm/],
      ['getTotalNorm', () => getTotalNorm([a, b], 0.5 as never), RangeError, /normType/],
      [
        'clipPerExample batch',
        () =>
          clipPerExample(
            [
              { array: a, shape: [2, 3] },
              { array: b, shape: [3] },
            ],
            1,
          ),
        RangeError,
        /batch size/,
      ],
      ['clipPerExample length', () => clipPerExample([{ array: a, shape: [4, 2] }], 1), RangeError, /multiple of the batch|expected length/],
      ['clipPerExample style', () => clipPerExample([{ array: a, shape: [2, 3] }], 1, { style: 'torch' as never }), RangeError, /style/],
      ['clipUpdate', () => clipUpdate([a, b], Number.POSITIVE_INFINITY), RangeError, /clipNorm/],
      ['clipByValue', () => clipByValue([a, b], -1), RangeError, /clipValue/],
      ['globalNorm of an Int32Array', () => globalNorm([a, new Int32Array(3) as never]), TypeError, /xs\[1\]/],
    ]
    const lines: string[] = []
    for (const [name, call, Kind, pattern] of bad) {
      lines.push(`${name}: ${expectThrow(call, Kind, pattern)}`)
      assertUnchanged(a, a0, name)
      assertUnchanged(b, b0, name)
    }
    return lines.join('\n')
  },
  // -------------------------------------------------------------------------------------------
  // 8. The TensorFlow op family (crates/normclip-tf) and the wasm heap views (src/backends/)

  async 'tf ops: hostile executions of NormclipConstrain fail inside TensorFlow, inputs unchanged'() {
    // Once registered, the op is TensorFlow's: any code in the process can execute it by name with
    // any inputs and attributes, so the kernel must check everything it is given.
    const tf = await tfjsNodeOrSkip()
    if (typeof tf === 'string') return tf
    check(native.tfOpsRegister().available, 'the ops did not register')
    const backend = tf.backend() as unknown as {
      binding: { TF_ATTR_INT: number; TF_ATTR_STRING: number }
      executeMultipleOutputs(
        name: string,
        attrs: unknown[],
        inputs: unknown[],
        n: number,
      ): Array<{ dataSync(): Float32Array; shape: number[]; dispose(): void }>
    }
    const exec = (inputs: unknown[], spec: string, n = inputs.length) =>
      backend.executeMultipleOutputs(
        'NormclipConstrain',
        [
          { name: 'N', type: backend.binding.TF_ATTR_INT, value: n },
          { name: 'spec', type: backend.binding.TF_ATTR_STRING, value: spec },
        ],
        inputs,
        n,
      )
    const maxNormSpec = native.tfOpSpec([maxNorm(native)])
    const values = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2.5)
    const t = tf.tensor(values, [3, 4])
    const ints = tf.tensor([1, -2], [2], 'int32')
    const lines: string[] = []
    const refused: Array<[string, () => unknown, RegExp]> = [
      ['N inputs, another number of constraints', () => exec([t, t], maxNormSpec), /normclip NormclipConstrain: 2 inputs for 1 constraints/],
      ['a spec that is not one', () => exec([t], 'maxNorm;;=,,'), /normclip NormclipConstrain: spec item 0/],
      ['an unknown kind', () => exec([t], 'dropout,rate=1'), /unknown constraint kind/],
      ['a key twice', () => exec([t], 'nonNeg,axis=0,axis=0'), /given twice/],
      ['an axis beyond i64', () => exec([t], 'maxNorm,max=1.0,axis=99999999999999999999,mode=keras,eps=1e-7'), /axis: expected integers/],
      ['an axis of i64::MAX', () => exec([t], 'maxNorm,max=1.0,axis=9223372036854775807,mode=keras,eps=1e-7'), /axis/],
      ['an axis of i64::MIN', () => exec([t], 'maxNorm,max=1.0,axis=-9223372036854775808,mode=keras,eps=1e-7'), /axis/],
      ['a NaN bound', () => exec([t], 'maxNorm,max=NaN,axis=0,mode=keras,eps=1e-7'), /max/i],
      ['a scalar for a norm constraint', () => exec([tf.scalar(3)], maxNormSpec), /input 0 of shape \[\]/],
      ['an int32 input', () => exec([ints], 'nonNeg'), /float|int32/],
      ['no inputs', () => exec([], 'nonNeg', 0), /N|0|at least 1|>= 1/],
      ['a megabyte of spec items', () => exec([t], `${'nonNeg;'.repeat(1 << 17)}nonNeg`), /1 inputs for 131073 constraints/],
    ]
    for (const [name, call, pattern] of refused) {
      const message = expectThrow(call, Error, pattern)
      lines.push(`${name}: ${message.replace(/\s+/g, ' ').slice(0, 160)}`)
      check(
        Array.from(t.dataSync()).every((x, i) => x === values[i]),
        `${name}: the input changed`,
      )
    }
    // Accepted oddities compute what normclip computes on a plain copy.
    const reference = maxNorm(native).applyCopy(values, [3, 4])
    const [a, b] = exec([t, t], `${maxNormSpec};${maxNormSpec}`) // one tensor twice
    check(
      a!.dataSync().every((x, i) => Object.is(x, reference[i])) && b!.dataSync().every((x, i) => Object.is(x, reference[i])),
      'the same tensor twice: wrong outputs',
    )
    const [empty] = exec([tf.zeros([0, 2 ** 20, 2 ** 20])], maxNormSpec) // empty, huge other dimensions
    check(empty!.shape.join() === `0,${2 ** 20},${2 ** 20}` && empty!.dataSync().length === 0, 'an empty input did not give an empty output')
    check(
      Array.from(t.dataSync()).every((x, i) => x === values[i]),
      'the input changed',
    )
    lines.push(`accepted: one tensor twice, [0, 2**20, 2**20]; output counts ${JSON.stringify(native.tfOpsOutputCounts())}`)
    // And the ordinary path still takes the op afterwards (hostile calls did not turn it off).
    const { MaxNorm } = await api()
    const { fastPathStatus } = await import('../../src/backends')
    const viaOp = new MaxNorm({ maxValue: 1 }).apply(t as never) as unknown as { dataSync(): Float32Array }
    check(
      viaOp.dataSync().every((x, i) => Object.is(x, reference[i])),
      'MaxNorm.apply is wrong after the hostile calls',
    )
    check(fastPathStatus().tfjsNode?.available === true, 'the op path was turned off by hostile calls')
    return lines.join('\n')
  },
  async "tf ops: TensorFlow's flush-to-zero mode does not change what the op computes"() {
    // TensorFlow runs kernels with denormals flushed to zero. Under that mode a float32 factor of
    // a norm beyond 1e38 is zero: MaxNorm zeroed such a column and MinMaxNorm ended below its
    // minimum. The op must give the bits of the ordinary path, and TensorFlow's mode come back.
    const tf = await tfjsNodeOrSkip()
    if (typeof tf === 'string') return tf
    const { MaxNorm, MinMaxNorm, UnitNorm, NonNeg } = await api()
    const { fastApply } = await import('../../src/backends')
    const lines: string[] = []
    const data: Record<string, number[]> = {
      'norms beyond 1e38': [3e38, 3e38, 1, 1],
      denormals: [1e-40, 2e-40, 1e-39, -3e-39],
      'denormal and normal': [1e-40, -1e-40, 0.5, -0],
    }
    for (const constraint of [new MaxNorm({ maxValue: 1 }), new MinMaxNorm({ minValue: 0.5, maxValue: 1 }), new UnitNorm(), new NonNeg()]) {
      for (const [what, values] of Object.entries(data)) {
        const plain = Float32Array.from(values)
        const expected = constraint.applyCopy(plain, [2, 2])
        const x = tf.tensor(plain, [2, 2])
        const viaOp = fastApply(x, constraint.native)
        check(viaOp !== undefined, `${constraint.getClassName()}: the op path was not taken`)
        const got = viaOp!.dataSync()
        check(
          got.every((v, i) => Object.is(v, expected[i])),
          `${constraint.getClassName()} on ${what}: the op gave ${Array.from(got).join(', ')}, the ordinary path ${Array.from(expected).join(', ')}`,
        )
        tf.dispose([x, viaOp!])
      }
      lines.push(`${constraint.getClassName()}: the op's bits are the ordinary path's`)
    }
    // The ordinary path itself keeps denormals (no mode leaked out of TensorFlow), and MinMaxNorm
    // ends within its bounds.
    const kept = new NonNeg().applyCopy(new Float32Array([1e-40]), [1])
    check(kept[0] === Math.fround(1e-40), `NonNeg(1e-40) = ${kept[0]} on the main thread after TensorFlow ops`)
    const x = tf.tensor([3e38, 3e38, 1, 1], [2, 2])
    const y = new MinMaxNorm({ minValue: 0.5, maxValue: 1 }).apply(x as never) as unknown as { dataSync(): Float32Array }
    const [a, b, c, d] = y.dataSync()
    for (const n of [Math.hypot(a!, c!), Math.hypot(b!, d!)])
      check(n >= 0.5 * (1 - 1e-6) && n <= 1 + 1e-6, `MinMaxNorm(0.5, 1) via the op ended with a norm of ${n}`)
    return lines.join('\n')
  },

  async 'backends: tensors and the arrays dataSync handed out are never written (cpu, wasm heap, tfjs-node)'() {
    // Every zero-copy path (wasm heap views, TensorFlow ops) and every copy path (clipping reads
    // tensors through dataSync) must leave an input tensor, and any array the app already got
    // from it, exactly as they were.
    const { loadTfjsNode } = await import('../support/tfjs-node')
    const status = loadTfjsNode()
    const tf = (status.available ? status.tf : await import('@tensorflow/tfjs')) as typeof import('@tensorflow/tfjs')
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    const { dirname, join } = await import('node:path')
    wasm.setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`)
    const { MaxNorm, applyConstraints, clipByGlobalNorm, clipByNorm, clipUpdate, clipByValue, clipPerExample } = await api()
    const backends = ['cpu', 'wasm', ...(status.available ? ['tensorflow'] : [])]
    const lines: string[] = []
    for (const name of backends) {
      check(await tf.setBackend(name), `backend ${name} did not start`)
      const values = Float32Array.from({ length: 64 }, (_, i) => ((i * 7) % 11) - 5)
      const x = tf.tensor(values, [8, 8])
      const held = x.dataSync() as Float32Array // on cpu: the backend's own storage
      const bystander = tf.tensor(
        values.map((v) => v * 2),
        [8, 8],
      )
      const results = [
        new MaxNorm({ maxValue: 0.5 }).apply(x as never) as unknown as import('@tensorflow/tfjs').Tensor,
        clipByGlobalNorm([x, bystander], 0.5)[0][0]!,
        clipByNorm(x, 0.5, 0),
        clipUpdate([x], 0.5).deltas[0]!,
        clipByValue([x], 0.5)[0]!,
        clipPerExample([x], 0.5).sums[0]! as import('@tensorflow/tfjs').Tensor,
      ]
      for (const [i, r] of results.entries()) check(r !== (x as unknown), `${name}: result ${i} is the input itself`)
      assertUnchanged(held, values, `${name}: an array dataSync handed out`)
      assertUnchanged(x.dataSync() as Float32Array, values, `${name}: the input tensor`)
      assertUnchanged(
        bystander.dataSync() as Float32Array,
        values.map((v) => v * 2),
        `${name}: another tensor`,
      )
      // Training: the variable's earlier dataSync array stays as it was.
      const layer = tf.layers.dense({ inputShape: [8], units: 8, kernelConstraint: new MaxNorm({ maxValue: 0.1 }), kernelInitializer: 'ones' })
      const model = tf.sequential({ layers: [layer] })
      const kernelHeld = layer.trainableWeights[0]!.read().dataSync() as Float32Array
      const kernelSnapshot = kernelHeld.slice()
      applyConstraints(model)
      assertUnchanged(kernelHeld, kernelSnapshot, `${name}: a variable's dataSync array after applyConstraints`)
      const norms = new MaxNorm({ maxValue: 0.1 }).norms(layer.trainableWeights[0]!.read().dataSync() as Float32Array, [8, 8]).norms
      check(
        norms.every((n) => n <= 0.1 * (1 + 1e-6)),
        `${name}: the constraint did not hold`,
      )
      tf.dispose([x, bystander, ...results])
      model.dispose()
      lines.push(`${name}: inputs, held arrays and other tensors unchanged`)
    }
    return lines.join('\n')
  },
  // -------------------------------------------------------------------------------------------
  // 9. Weight files (crates/normclip-files, crates/normclip-node/src/files.rs, src/files)

  async 'files: a weight file truncated while a job reads it gives an error, not SIGBUS'() {
    // A job runs on the pool while JavaScript runs: the app (or another process, or a Worker)
    // can truncate the file meanwhile. A read through a mapping of the lost pages is SIGBUS,
    // which kills Node; a read with `pread` reports a short file.
    const { constrainModel, inspectModel, WeightFileError } = await import('../../src/files')
    const { ftruncateSync, mkdtempSync, openSync, closeSync, rmSync, truncateSync, writeSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'normclip-truncate-'))
    const path = join(dir, 'model.safetensors')
    const [rows, cols] = [8192, 8192]
    const header = JSON.stringify({ kernel: { dtype: 'F32', shape: [rows, cols], data_offsets: [0, rows * cols * 4] } })
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8)
    const full = 8 + padded.length + rows * cols * 4
    const fd = openSync(path, 'w')
    const length = Buffer.alloc(8)
    length.writeBigUInt64LE(BigInt(padded.length))
    writeSync(fd, length)
    writeSync(fd, Buffer.from(padded))
    ftruncateSync(fd, full) // 256 MiB of zeros as a hole: no disk writes, reads at page-cache speed
    closeSync(fd)
    const outcomes = { resolved: 0, refused: 0 }
    try {
      for (let attempt = 0; attempt < 60; attempt++) {
        truncateSync(path, full)
        const job =
          attempt % 2 === 0
            ? inspectModel(path)
            : constrainModel(path, { out: join(dir, 'out.safetensors'), constraint: { class_name: 'MaxNorm', config: { max_value: 1, axis: 0 } } })
        await new Promise((resolve) => setTimeout(resolve, attempt % 15))
        truncateSync(path, 8 + padded.length)
        try {
          await job
          outcomes.resolved++
        } catch (error) {
          check(error instanceof WeightFileError, `attempt ${attempt}: expected a WeightFileError, got ${String(error)}`)
          check(/truncated|shorter|past the end|end of the file|size/i.test((error as Error).message), `attempt ${attempt}: ${(error as Error).message}`)
          outcomes.refused++
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    check(outcomes.refused > 0, 'no job saw the truncation: the attack did not race')
    return `60 jobs on a file truncated under them: ${outcomes.resolved} finished first, ${outcomes.refused} refused with an error`
  },
  async 'files: a job plan whose lists claim 2**32-1 elements is refused before anything is allocated'() {
    const huge = () => new Array(2 ** 32 - 1)
    const tensor = (over: Record<string, unknown> = {}) => ({
      name: 'w',
      dtype: { name: 'float32' },
      shape: [2],
      segments: [{ file: 0, offset: 0, length: 8 }],
      ...over,
    })
    const task = (over: Record<string, unknown> = {}, axes: unknown = { all: true, list: [] }) => ({ tensor: tensor(over), axes, countNegatives: false })
    const plan = (over: Record<string, unknown>) => ({ inputs: ['/nonexistent'], outputs: [], tensors: [task()], crcPatches: [], ...over })
    const plans: Record<string, unknown> = {
      inputs: plan({ inputs: huge() }),
      outputs: plan({ outputs: huge() }),
      tensors: plan({ tensors: huge() }),
      crcPatches: plan({ crcPatches: huge() }),
      'tensor.shape': plan({ tensors: [task({ shape: huge() })] }),
      'tensor.segments': plan({ tensors: [task({ segments: huge() })] }),
      'axes.list': plan({ tensors: [task({}, { all: false, list: huge() })] }),
      'output pieces': plan({ outputs: [{ path: '/nonexistent-out', display: 'out', pieces: huge() }] }),
      'crc positions': plan({ crcPatches: [{ output: 0, start: 0, length: 0, positions: huge() }] }),
    }
    const lines: string[] = []
    for (const [name, p] of Object.entries(plans)) {
      const rss = process.memoryUsage().rss
      const message = expectThrow(() => new native.NativeFileJob(p as never, false), Error, /./)
      const grew = (process.memoryUsage().rss - rss) / 2 ** 20
      check(grew < 64, `${name}: RSS +${grew.toFixed(0)} MiB to refuse a list of holes`)
      lines.push(`${name}: ${message}`)
    }
    return lines.join('\n')
  },
}

// -------------------------------------------------------------------------------------------
// 6. Resources (run with their own environment, see adversarial.test.ts)

export const resourceAttacks: Record<string, () => Promise<AttackResult>> = {
  async 'NORMCLIP_THREADS=20000 is capped'() {
    const cores = (await import('node:os')).availableParallelism()
    const threads = native.threadCount()
    check(threads === cores * 4, `threadCount() = ${threads}, expected ${cores * 4}`)
    const big = new Float32Array(1 << 21).fill(1)
    const start = performance.now()
    maxNorm(native).applyInPlace(big, [1 << 21])
    const ms = performance.now() - start
    check(ms < 5000, `a 2M-element call took ${ms.toFixed(0)} ms`)
    return `threadCount() = ${threads}; first 2M-element call ${ms.toFixed(0)} ms`
  },

  /** A loop of one million small calls; the parent compares its peak RSS with a `slice()` loop. */
  async 'loop: applyCopy'() {
    const c = maxNorm(native)
    const a = new Float32Array(64).fill(3)
    let sink = 0
    for (let i = 0; i < 1_000_000; i++) sink += c.applyCopy(a, [8, 8])[0]!
    return `${process.resourceUsage().maxRSS} ${sink > 0}`
  },

  async 'loop: norms'() {
    const c = maxNorm(native)
    const a = new Float32Array(64).fill(3)
    let sink = 0
    for (let i = 0; i < 1_000_000; i++) sink += c.norms(a, [8, 8]).norms[0]!
    return `${process.resourceUsage().maxRSS} ${sink > 0}`
  },

  async 'loop: slice'() {
    const a = new Float32Array(64).fill(3)
    let sink = 0
    for (let i = 0; i < 1_000_000; i++) sink += a.slice()[0]!
    return `${process.resourceUsage().maxRSS} ${sink > 0}`
  },
}
