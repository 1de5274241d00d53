/**
 * Tensors constrained on their backend's own memory (`src/backends/`): tfjs-node through
 * normclip's TensorFlow ops (`crates/normclip-tf`), tfjs wasm through views of the wasm heap.
 *
 * Every output is checked bit for bit against normclip in place on a plain copy of the same data
 * (the path every other test checks against Keras), the input against its original values, and
 * tf.memory() for leaks. tfjs-node is optional here as in `tfjs-node.test.ts` (required in CI);
 * tfjs wasm is a dev dependency and always runs.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type * as Tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import * as native from '../src/native/index.js'
import { MaxNorm, MinMaxNorm, NonNeg, RadialConstraint, UnitNorm, type NativeBackedConstraint } from '../src/constraints'
import { applyConstraints, constraintCallback } from '../src/training'
import { fastApply, fastApplyToVariables, fastPathStatus, setFastPaths } from '../src/backends'
import { CONSTRAIN_OP } from '../src/backends/tfjs-node'
import { describeTfjsNode, loadTfjsNode, tfjsNodeRequired, type TfjsNode } from './support/tfjs-node'

const repo = join(__dirname, '..')
const status = loadTfjsNode()
const required = tfjsNodeRequired()

/** Deterministic weights with norms well above 1 and both signs, zeros included. */
function weights(size: number, seed = 1): Float32Array {
  let state = seed >>> 0
  return Float32Array.from({ length: size }, (_, i) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return i % 13 === 0 ? 0 : ((state / 2 ** 32) * 2 - 1) * 3
  })
}

const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer))

/** The same constraint in place on a copy: the reference every fast path must match to the bit. */
function inPlace(constraint: NativeBackedConstraint, values: Float32Array, shape: number[]): Float32Array {
  const copy = values.slice()
  constraint.applyInPlace(copy, shape)
  return copy
}

/** Two identical small models (same weights) whose kernels carry normclip's and tfjs' MaxNorm. */
function twinModels(tf: typeof Tf): [Tf.Sequential, Tf.Sequential] {
  const build = () =>
    tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [12], units: 16, kernelConstraint: new MaxNorm({ maxValue: 0.5 }), biasConstraint: new NonNeg() }),
        tf.layers.dense({ units: 3, kernelConstraint: tf.constraints.maxNorm({ maxValue: 0.5 }) }),
      ],
    })
  const a = build()
  const b = build()
  // Not setWeights: tfjs applies the constraints when it writes weights that way.
  a.weights.forEach((weight, i) => {
    const copy = tf.clone(weight.read())
    ;(b.weights[i]!.read() as Tf.Variable).assign(copy)
    copy.dispose()
  })
  return [a, b]
}

const weightBits = (model: Tf.LayersModel) => model.getWeights().map((w) => bits(w.dataSync()))

/** `body` run with the `path` fast path off (through the copy path), then the path back on. */
function withoutFastPath<T>(path: 'tfjsNode' | 'wasm', body: () => T): T {
  setFastPaths({ [path]: false })
  try {
    return body()
  } finally {
    setFastPaths({ [path]: true })
  }
}

/** Constraints × shapes covering every kind, both modes, leading, trailing, all and no axes. */
const cases: { name: string; constraint: NativeBackedConstraint; shape: number[] }[] = [
  { name: 'MaxNorm Dense axis 0', constraint: new MaxNorm({ maxValue: 1 }), shape: [37, 19] },
  { name: 'MaxNorm Conv2D [0,1,2]', constraint: new MaxNorm({ maxValue: 2, axis: [0, 1, 2] }), shape: [3, 3, 5, 7] },
  { name: 'MaxNorm axis -1 projection', constraint: new MaxNorm({ maxValue: 0.5, axis: -1, mode: 'projection' }), shape: [6, 33] },
  { name: 'MaxNorm axis null', constraint: new MaxNorm({ maxValue: 3, axis: null }), shape: [4, 5, 6] },
  { name: 'MinMaxNorm rate 0.5', constraint: new MinMaxNorm({ minValue: 0.5, maxValue: 1.5, rate: 0.5, axis: [0, 2] }), shape: [4, 3, 5] },
  { name: 'UnitNorm axis [] epsilon 1e-3', constraint: new UnitNorm({ axis: [], epsilon: 1e-3 }), shape: [9, 2] },
  { name: 'NonNeg', constraint: new NonNeg(), shape: [31] },
  { name: 'RadialConstraint', constraint: new RadialConstraint(), shape: [3, 3, 2, 4] },
  { name: 'MaxNorm narrow [100000,10]', constraint: new MaxNorm({ maxValue: 1 }), shape: [100000, 10] },
]

describe.skipIf(!status.available && !required)(`tfjs-node: normclip's TensorFlow ops (${describeTfjsNode(status)})`, () => {
  const tf = (status as { tf: TfjsNode }).tf

  beforeAll(async () => {
    if (!status.available) throw new Error(`NORMCLIP_REQUIRE_TFJS_NODE=1 but ${status.reason}`)
    await tf.setBackend('tensorflow')
  })
  beforeEach(() => {
    setFastPaths({ tfjsNode: true, wasm: true })
  })

  it('registers NormclipConstrain with the libtensorflow tfjs-node loaded', () => {
    const registered = native.tfOpsRegister()
    expect(registered.available).toBe(true)
    expect(registered.ops).toEqual([CONSTRAIN_OP])
    expect(registered.library).toMatch(/libtensorflow(_framework|_cc)?\.so\.2$/)
    expect(registered.tensorflowVersion).toBe(status.available ? status.tensorflowVersion : '')
    // Once per process: a second call reports the same registration.
    expect(native.tfOpsRegister()).toEqual(registered)
    expect(fastPathStatus().tfjsNode).toEqual(registered)
  })

  for (const { name, constraint, shape } of cases) {
    it(`${name}: bit-identical to in place, input untouched, no tensor left behind`, () => {
      const size = shape.reduce((a, b) => a * b, 1)
      const values = weights(size, size)
      const x = tf.tensor(values, shape)
      const before = tf.memory()
      const counts = native.tfOpsOutputCounts()
      const y = fastApply(x, constraint.native)
      expect(y, 'the op path was taken').toBeDefined()
      expect(y!.shape).toEqual(shape)
      expect(y!.dtype).toBe('float32')
      expect(bits(y!.dataSync())).toEqual(bits(inPlace(constraint, values, shape)))
      expect(bits(x.dataSync())).toEqual(bits(values))
      // One fresh TensorFlow buffer per output: tfjs-node holds every input handle, so TensorFlow
      // never lets the kernel forward (reuse) the input's buffer.
      const after = native.tfOpsOutputCounts()
      expect(after.copied - counts.copied).toBe(1)
      expect(after.forwarded).toBe(counts.forwarded)
      expect(tf.memory().numTensors).toBe(before.numTensors + 1)
      tf.dispose([x, y!])
    })
  }

  it('MaxNorm.apply is bit-identical through the op and through the copy path', () => {
    const shape = [784, 64]
    const values = weights(784 * 64, 5)
    const x = tf.tensor(values, shape)
    const c = new MaxNorm({ maxValue: 1 })
    const slow = withoutFastPath('tfjsNode', () => c.apply(x))
    const fast = fastApply(x, c.native)!
    expect(bits(fast.dataSync())).toEqual(bits(slow.dataSync()))
    tf.dispose([x, slow, fast])
  })

  it('works inside tf.tidy (the output is tracked like any tensor) and on empty tensors', () => {
    const c = new MaxNorm({ maxValue: 1 })
    const before = tf.memory().numTensors
    const kept = tf.tidy(() => {
      const x = tf.tensor(weights(40), [8, 5])
      fastApply(x, c.native) // dropped: tidy must free it
      return fastApply(x, c.native)!
    })
    expect(tf.memory().numTensors).toBe(before + 1)
    kept.dispose()
    const empty = tf.zeros([0, 5])
    const out = fastApply(empty, c.native)!
    expect(out.shape).toEqual([0, 5])
    tf.dispose([empty, out])
    expect(tf.memory().numTensors).toBe(before)
  })

  it('one op call constrains every variable; bit-identical, old buffers freed, nothing leaks', () => {
    const shapes = [[64, 32], [3, 3, 4, 8], [32]]
    const constraints = [new MaxNorm({ maxValue: 1 }), new MaxNorm({ maxValue: 2, axis: [0, 1, 2] }), new NonNeg()]
    const values = shapes.map((s, i) =>
      weights(
        s.reduce((a, b) => a * b, 1),
        10 + i,
      ),
    )
    const variables = values.map((v, i) => tf.variable(tf.tensor(v, shapes[i]!)))
    const natives = constraints.map((c) => c.native)
    const before = tf.memory()
    const counts = native.tfOpsOutputCounts()
    for (let step = 0; step < 3; step++) {
      expect(fastApplyToVariables(variables, natives)).toBe(true)
      values.forEach((v, i) => (values[i] = inPlace(constraints[i]!, v, shapes[i]!)))
    }
    variables.forEach((variable, i) => expect(bits(variable.dataSync())).toEqual(bits(values[i]!)))
    expect(native.tfOpsOutputCounts().copied - counts.copied).toBe(9)
    expect(tf.memory().numTensors).toBe(before.numTensors)
    expect(tf.memory().numBytes).toBe(before.numBytes)
    tf.dispose(variables)
  })

  it('a tensor that shares data with a variable keeps its values', () => {
    const v = tf.variable(tf.tensor(weights(24), [4, 6]))
    const snapshot = v.clone()
    const original = Array.from(snapshot.dataSync())
    expect(fastApplyToVariables([v], [new MaxNorm({ maxValue: 0.1 }).native])).toBe(true)
    expect(Array.from(snapshot.dataSync())).toEqual(original)
    expect(Array.from(v.dataSync())).not.toEqual(original)
    tf.dispose([v, snapshot])
  })

  it('declines, changing nothing, what it cannot take: disposed, int32, another backend, a bad axis', async () => {
    const c = new MaxNorm({ maxValue: 1, axis: 3 }) // rank 2 tensors below: the kernel rejects it
    const x = tf.tensor(weights(12), [3, 4])
    const before = tf.memory().numTensors
    expect(fastApply(x, c.native)).toBeUndefined()
    expect(tf.memory().numTensors).toBe(before)
    const good = fastApply(x, new MaxNorm({ maxValue: 1 }).native) // a bad call does not turn the path off
    expect(good).toBeDefined()
    good!.dispose()
    const ints = tf.tensor([1, 2, 3], [3], 'int32')
    expect(fastApply(ints, new NonNeg().native)).toBeUndefined()
    const disposed = tf.tensor([1, 2, 3])
    disposed.dispose()
    expect(fastApply(disposed, new NonNeg().native)).toBeUndefined()
    const v = tf.variable(tf.tensor(weights(12), [3, 4]))
    const kept = Array.from(v.dataSync())
    expect(fastApplyToVariables([v], [c.native])).toBe(false)
    expect(Array.from(v.dataSync())).toEqual(kept)
    await tf.setBackend('cpu')
    const onCpu = tf.tensor([1, -2, 3])
    await tf.setBackend('tensorflow')
    expect(fastApply(onCpu, new NonNeg().native)).toBeUndefined() // its data is not in TensorFlow
    tf.dispose([x, ints, v])
  })

  it('reports its own errors through TensorFlow without crashing: a bad spec, a shape that does not fit', () => {
    const backend = tf.backend() as unknown as {
      binding: { TF_ATTR_INT: number; TF_ATTR_STRING: number }
      executeMultipleOutputs(name: string, attrs: object[], inputs: Tf.Tensor[], n: number): Tf.Tensor[]
    }
    const run = (spec: string, inputs: Tf.Tensor[]) =>
      backend.executeMultipleOutputs(
        CONSTRAIN_OP,
        [
          { name: 'N', type: backend.binding.TF_ATTR_INT, value: inputs.length },
          { name: 'spec', type: backend.binding.TF_ATTR_STRING, value: spec },
        ],
        inputs,
        inputs.length,
      )
    const x = tf.tensor(weights(6), [2, 3])
    const before = tf.memory().numTensors
    expect(() => run('maxNorm,max=-1.0,axis=0,mode=keras,eps=1e-7', [x])).toThrow(/normclip NormclipConstrain: .*maxValue/)
    expect(() => run('nonNeg;nonNeg', [x])).toThrow(/1 inputs for 2 constraints/)
    expect(() => run('unitNorm,axis=5,mode=keras,eps=1e-7', [x])).toThrow(/input 0 of shape \[2, 3\]: axis/)
    expect(() => run('radialConstraint', [x])).toThrow(/normclip NormclipConstrain/)
    expect(tf.memory().numTensors).toBe(before)
    expect(Array.from(x.dataSync())).toEqual(Array.from(weights(6)))
    x.dispose()
  })

  it('MaxNorm.apply and applyConstraints / constraintCallback go through the op, bit-identical to the copy path', async () => {
    const [fast, slow] = twinModels(tf)
    const counts = native.tfOpsOutputCounts()
    const before = tf.memory().numTensors
    applyConstraints(fast)
    expect(native.tfOpsOutputCounts().copied - counts.copied, 'one output per constrained weight, one op call').toBe(3)
    withoutFastPath('tfjsNode', () => applyConstraints(slow))
    expect(weightBits(fast)).toEqual(weightBits(slow))
    expect(tf.memory().numTensors).toBe(before)
    // MaxNorm.apply itself.
    const kernel = fast.layers[0]!.getWeights()[0]!
    const c = new MaxNorm({ maxValue: 0.1 })
    const mid = native.tfOpsOutputCounts().copied
    const viaApply = c.apply(kernel)
    expect(native.tfOpsOutputCounts().copied).toBe(mid + 1)
    expect(bits(viaApply.dataSync())).toEqual(bits(inPlace(c, Float32Array.from(kernel.dataSync()), kernel.shape)))
    viaApply.dispose() // (kernel is the layer's own variable)
    // In fit, after every batch.
    for (const model of [fast, slow]) model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' })
    const x = tf.tensor(weights(8 * 12, 2), [8, 12])
    const y = tf.tensor(weights(8 * 3, 3), [8, 3])
    const start = native.tfOpsOutputCounts().copied
    await fast.fit(x, y, { batchSize: 4, epochs: 1, shuffle: false, verbose: 0, callbacks: [constraintCallback()] })
    expect(native.tfOpsOutputCounts().copied - start).toBe(2 * 3)
    setFastPaths({ tfjsNode: false })
    await slow.fit(x, y, { batchSize: 4, epochs: 1, shuffle: false, verbose: 0, callbacks: [constraintCallback()] })
    setFastPaths({ tfjsNode: true })
    expect(weightBits(fast)).toEqual(weightBits(slow))
    tf.dispose([x, y])
    fast.dispose()
    slow.dispose()
  })

  it('runs a 4M-element tensor with threads, bit-identical', () => {
    const shape = [2048, 2048]
    const values = weights(2048 * 2048, 3)
    const x = tf.tensor(values, shape)
    const c = new MaxNorm({ maxValue: 1 })
    const y = fastApply(x, c.native)!
    expect(bits(y.dataSync())).toEqual(bits(inPlace(c, values, shape)))
    tf.dispose([x, y])
  })
})

/** Runs `code` (TypeScript) in a fresh Node process from the repository root; returns its stdout. */
function runChild(code: string, env: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'normclip-tfops-'))
  const file = join(dir, 'child.ts')
  writeFileSync(file, code)
  return execFileSync(process.execPath, ['--import', 'tsx', file], {
    cwd: repo,
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

describe.skipIf(!status.available && !required)('tfjs-node: registration and fallback, each in a fresh process', () => {
  const src = JSON.stringify(join(repo, 'src'))
  const support = JSON.stringify(join(repo, '__test__', 'support', 'tfjs-node'))

  it('without libtensorflow in the process the ops are unavailable, and registering later works', () => {
    const out = runChild(`
      const native = require(${src} + '/native/index.js')
      const before = native.tfOpsRegister()
      require(${support}).loadTfjsNode()
      const after = native.tfOpsRegister()
      console.log(JSON.stringify({ before, after }))
    `)
    const { before, after } = JSON.parse(out) as { before: native.TfOpsStatus; after: native.TfOpsStatus }
    expect(before.available).toBe(false)
    expect(before.reason).toMatch(/no TensorFlow library is loaded in this process/)
    expect(after.available).toBe(true)
  })

  it('NORMCLIP_TF_OPS=0: unavailable, and MaxNorm.apply / the variables take the copy path with the same results', () => {
    const out = runChild(
      `
      const { tf } = require(${support}).loadTfjsNode()
      const native = require(${src} + '/native/index.js')
      const { MaxNorm } = require(${src} + '/constraints')
      const { fastApply, fastApplyToVariables } = require(${src} + '/backends')
      const values = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 3)
      const c = new MaxNorm({ maxValue: 1 })
      const x = tf.tensor(values, [12, 5])
      const v = tf.variable(x.clone())
      const reference = values.slice(); c.applyInPlace(reference, [12, 5])
      console.log(JSON.stringify({
        status: native.tfOpsRegister(),
        fast: fastApply(x, c.native) === undefined,
        variables: fastApplyToVariables([v], [c.native]),
        apply: Array.from(c.apply(x).dataSync()),
        reference: Array.from(reference),
      }))
    `,
      { NORMCLIP_TF_OPS: '0' },
    )
    const result = JSON.parse(out) as {
      status: native.TfOpsStatus
      fast: boolean
      variables: boolean
      apply: number[]
      reference: number[]
    }
    expect(result.status).toMatchObject({ available: false, reason: 'disabled by NORMCLIP_TF_OPS=0' })
    expect(result.fast).toBe(true)
    expect(result.variables).toBe(false)
    expect(result.apply).toEqual(result.reference)
  })

  it('a second copy of the addon in one process declines to register the ops twice (TensorFlow would abort)', () => {
    const copyDir = mkdtempSync(join(tmpdir(), 'normclip-copy-'))
    const addon = require.resolve('../src/native/normclip.linux-x64-gnu.node')
    const copy = join(copyDir, 'normclip-copy.node')
    copyFileSync(addon, copy)
    const out = runChild(`
      require(${support}).loadTfjsNode()
      const first = require(${src} + '/native/index.js').tfOpsRegister()
      const module = { exports: {} }
      process.dlopen(module, ${JSON.stringify(copy)})
      const second = module.exports.tfOpsRegister()
      console.log(JSON.stringify({ first, second }))
    `)
    const { first, second } = JSON.parse(out) as { first: native.TfOpsStatus; second: native.TfOpsStatus }
    expect(first.available).toBe(true)
    expect(second.available).toBe(false)
    expect(second.reason).toMatch(/already registered in this process/)
    expect(dirname(copy)).toBe(copyDir)
  })
})

describe('tfjs wasm: views of the wasm heap', () => {
  let tf: typeof Tf
  let backend: { wasm: { HEAPU8: Uint8Array } }

  beforeAll(async () => {
    tf = (status.available ? status.tf : require('@tensorflow/tfjs')) as typeof Tf
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm')
    wasm.setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`)
    expect(await tf.setBackend('wasm')).toBe(true)
    backend = tf.backend() as unknown as typeof backend
  })
  afterAll(async () => {
    await tf.setBackend(status.available ? 'tensorflow' : 'cpu')
  })
  beforeEach(() => {
    setFastPaths({ tfjsNode: true, wasm: true })
  })

  for (const { name, constraint, shape } of cases) {
    it(`${name}: bit-identical to in place, input untouched, no tensor left behind`, () => {
      const size = shape.reduce((a, b) => a * b, 1)
      const values = weights(size, size + 1)
      const x = tf.tensor(values, shape)
      const before = tf.memory().numTensors
      const y = fastApply(x, constraint.native)
      expect(y, 'the heap path was taken').toBeDefined()
      expect(y!.shape).toEqual(shape)
      expect(bits(y!.dataSync())).toEqual(bits(inPlace(constraint, values, shape)))
      expect(bits(x.dataSync())).toEqual(bits(values))
      expect(tf.memory().numTensors).toBe(before + 1)
      tf.dispose([x, y!])
    })
  }

  it('MaxNorm.apply and applyConstraints take the heap path, bit-identical to the copy path; variables stay where they are', () => {
    const [fast, slow] = twinModels(tf)
    const offset = (t: Tf.Tensor) => (tf.backend() as unknown as { getMemoryOffset(d: object): number }).getMemoryOffset(t.dataId)
    // tfjs-layers' initial values are disposed by now: each variable alone holds its data.
    const variables = fast.trainableWeights.map((w) => w.read())
    const where = variables.map(offset)
    const before = tf.memory().numTensors
    applyConstraints(fast)
    expect(
      fast.trainableWeights.map((w) => offset(w.read())),
      'constrained in place',
    ).toEqual(where)
    withoutFastPath('wasm', () => applyConstraints(slow))
    expect(weightBits(fast)).toEqual(weightBits(slow))
    expect(tf.memory().numTensors).toBe(before)
    const kernel = fast.layers[1]!.getWeights()[0]!
    const c = new MaxNorm({ maxValue: 0.1, axis: -1 })
    const viaApply = c.apply(kernel)
    expect(bits(viaApply.dataSync())).toEqual(bits(inPlace(c, Float32Array.from(kernel.dataSync()), kernel.shape)))
    viaApply.dispose() // (kernel is the layer's own variable)
    fast.dispose()
    slow.dispose()
  })

  it('a heap that grows between calls (and during one: the output allocation) is handled', () => {
    const c = new MaxNorm({ maxValue: 1 })
    const values = weights(4096, 9)
    const x = tf.tensor(values, [64, 64])
    const reference = bits(inPlace(c, values, [64, 64]))
    const first = fastApply(x, c.native)!
    const stale = new Float32Array(backend.wasm.HEAPU8.buffer, 0, 16)
    // Far beyond the free heap: the backend has to grow its memory, detaching every view of it.
    const big = tf.zeros([64 << 20])
    expect(stale.length, 'the heap grew').toBe(0)
    const second = fastApply(x, c.native)!
    expect(bits(first.dataSync())).toEqual(reference)
    expect(bits(second.dataSync())).toEqual(reference)
    // An output that cannot fit either: the allocation inside fastApply grows the heap itself.
    const huge = tf.tensor(weights(1 << 22, 2), [2048, 2048])
    const free = fastApply(huge, c.native)!
    expect(bits(free.dataSync())).toEqual(bits(inPlace(c, weights(1 << 22, 2), [2048, 2048])))
    tf.dispose([x, first, second, big, huge, free])
  })

  it('variables: constrained where they are when only they hold their data, via a new buffer when shared', () => {
    const c = new MaxNorm({ maxValue: 1 })
    const values = weights(256, 4)
    const initial = tf.tensor(values, [16, 16])
    const v = tf.variable(initial)
    initial.dispose() // until then the variable shares its data with it
    const offset = (t: Tf.Tensor) => (tf.backend() as unknown as { getMemoryOffset(d: object): number }).getMemoryOffset(t.dataId)
    const where = offset(v)
    const before = tf.memory()
    expect(fastApplyToVariables([v], [c.native])).toBe(true)
    let expected = inPlace(c, values, [16, 16])
    expect(bits(v.dataSync())).toEqual(bits(expected))
    expect(offset(v), 'in place').toBe(where)
    const snapshot = v.reshape([256]) // shares the data (wasm's reshape is a view): the variable must move, the view keep its values
    expect(fastApplyToVariables([v], [c.native])).toBe(true)
    expect(bits(snapshot.dataSync())).toEqual(bits(expected))
    expected = inPlace(c, expected, [16, 16])
    expect(bits(v.dataSync())).toEqual(bits(expected))
    expect(offset(v)).not.toBe(where)
    snapshot.dispose()
    expect(tf.memory().numTensors).toBe(before.numTensors)
    expect(tf.memory().numBytes).toBe(before.numBytes)
    v.dispose()
  })

  it('declines, changing nothing, what it cannot take', async () => {
    const bad = new MaxNorm({ maxValue: 1, axis: 2 }).native
    const x = tf.tensor(weights(12), [3, 4])
    const variable = () => {
      const initial = x.clone()
      const made = tf.variable(initial)
      initial.dispose() // the variable alone holds its data
      return made
    }
    const v = variable()
    const w = variable()
    const shared = v.reshape([12]) // v's data is shared: v would get a new buffer, w is in place
    const before = tf.memory().numTensors
    expect(fastApply(x, bad)).toBeUndefined()
    // Every item is checked before any is written: w (in place, bad axis) stays as it was, and v
    // is not assigned the new buffer that was fine.
    expect(fastApplyToVariables([v, w], [new MaxNorm().native, bad])).toBe(false)
    expect(tf.memory().numTensors).toBe(before)
    for (const t of [x, v, w, shared]) expect(bits(t.dataSync())).toEqual(bits(weights(12)))
    const ints = tf.tensor([1, 2], [2], 'int32')
    expect(fastApply(ints, new NonNeg().native)).toBeUndefined()
    const disposed = tf.tensor([1, 2])
    disposed.dispose()
    expect(fastApply(disposed, new NonNeg().native)).toBeUndefined()
    await tf.setBackend('cpu')
    const onCpu = tf.tensor([1, -2])
    await tf.setBackend('wasm')
    expect(fastApply(onCpu, new NonNeg().native)).toBeUndefined()
    tf.dispose([x, v, w, shared, ints])
  })

  it('setFastPaths({ wasm: false }) turns the path off', () => {
    setFastPaths({ wasm: false })
    const x = tf.tensor([1, -2, 3])
    expect(fastApply(x, new NonNeg().native)).toBeUndefined()
    x.dispose()
  })
})

describe('applyCopyInto: the native side of the heap path', () => {
  const c = new MaxNorm({ maxValue: 1 }).native
  it('writes the constrained copy and leaves the source, for either element type', () => {
    const source = weights(20)
    const target = new Float32Array(20)
    native.applyCopyInto(c, source, target, [4, 5])
    const reference = source.slice()
    c.applyInPlace(reference, [4, 5])
    expect(bits(target)).toEqual(bits(reference))
    expect(bits(source)).toEqual(bits(weights(20)))
    const source64 = Float64Array.from(weights(20))
    const target64 = new Float64Array(20)
    native.applyCopyInto(c, source64, target64, [4, 5])
    const reference64 = source64.slice()
    c.applyInPlace(reference64, [4, 5])
    expect(Array.from(target64)).toEqual(Array.from(reference64))
  })

  it('rejects overlapping views, mixed types and wrong lengths, with both arrays unchanged', () => {
    const heap = new Float32Array(weights(30))
    const copy = heap.slice()
    expect(() => native.applyCopyInto(c, heap.subarray(0, 20), heap.subarray(10, 30), [4, 5])).toThrow(RangeError)
    expect(() => native.applyCopyInto(c, heap.subarray(0, 20), heap.subarray(0, 20), [4, 5])).toThrow(/overlaps/)
    expect(() => native.applyCopyInto(c, heap.subarray(0, 20), new Float32Array(19), [4, 5])).toThrow(
      /target: expected length 20 \(the product of shape \[4,5\]\), got 19|target: expected length 20/,
    )
    expect(() => native.applyCopyInto(c, new Float64Array(20), new Float32Array(20), [4, 5])).toThrow(TypeError)
    expect(() => native.applyCopyInto(c, heap.subarray(0, 20), new Float32Array(20), [4, 6])).toThrow(/source: expected length 24/)
    expect(bits(heap)).toEqual(bits(copy))
  })

  it('a shape getter that detaches the source runs before any view is taken: an error, no crash', () => {
    const source = weights(20)
    const target = new Float32Array(20)
    const shape = [4, 5]
    Object.defineProperty(shape, 0, {
      get() {
        structuredClone(source.buffer, { transfer: [source.buffer as ArrayBuffer] })
        return 4
      },
    })
    expect(() => native.applyCopyInto(c, source, target, shape)).toThrow(/source: expected an attached buffer, got a detached Float32Array/)
    expect(Array.from(target)).toEqual(new Array(20).fill(0))
  })
})
