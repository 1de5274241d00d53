/**
 * normclip on @tensorflow/tfjs-node: TensorFlow's native backend, where our users train.
 *
 * tfjs-node is optional (`bash scripts/setup-tfjs-node.sh` installs it). Without it this file
 * skips, and says so on stderr; with NORMCLIP_REQUIRE_TFJS_NODE=1 (CI) its absence is a failure.
 *
 * Expected values come from a plain-JS float64 Keras formula (`keras-constraints.md`:
 * `w * clip(n, 0, max) / (eps + n)`, eps = 1e-7), never from tfjs or normclip themselves; the
 * same inputs then go through the cpu backend, which must agree with tfjs-node.
 */
import type * as Tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MaxNorm, applyConstraints, constraintCallback, maxNorm } from '../src/index'
import { REQUIRE_TFJS_NODE_ENV, SETUP_HINT, describeTfjsNode, loadTfjsNode, tfjsNodeRequired, type TfjsNode } from './support/tfjs-node'

const status = loadTfjsNode()
const required = tfjsNodeRequired()
if (!status.available && !required) {
  console.warn(`\n[tfjs-node.test] SKIPPED: ${status.reason}\n` + `[tfjs-node.test] set ${REQUIRE_TFJS_NODE_ENV}=1 to make this a failure (CI does).\n`)
}

/** Keras' backend epsilon, as tfjs-node uses it (float32 backend: 1e-7). */
const EPS = 1e-7
/** float32 rounding against a float64 reference: a few ulps of the largest magnitudes involved. */
const TOL = 1e-6

describe('tfjs-node availability', () => {
  it.runIf(required)(`is installed and runs on TensorFlow (${REQUIRE_TFJS_NODE_ENV}=1)`, () => {
    if (!status.available) throw new Error(`${REQUIRE_TFJS_NODE_ENV}=1 but ${status.reason}`)
    expect(status.tf.getBackend()).toBe('tensorflow')
  })
  // A real skip, with its reason in the run summary (CI's NORMCLIP_REQUIRE_TFJS_NODE=1 makes the
  // test above fail instead).
  if (!required && !status.available) it.skip(`on tfjs-node: skipped, ${status.reason} (${SETUP_HINT})`, () => {})
})

describe.skipIf(!status.available)(`on tfjs-node (${describeTfjsNode(status)})`, () => {
  // Only reached when available; the cast keeps the tests free of narrowing noise.
  const tf = (status as { tf: TfjsNode }).tf

  beforeAll(async () => {
    await tf.setBackend('tensorflow')
  })
  afterAll(async () => {
    await tf.setBackend('tensorflow')
  })

  it("runs on TensorFlow's native backend, sharing the project's tfjs", async () => {
    expect(tf.getBackend()).toBe('tensorflow')
    expect(tf.version['tfjs-core']).toBe('4.22.0')
    // normclip loads the tfjs that tfjs-node re-exports: one engine, one class hierarchy, so its
    // constraints are instances of the Constraint class tfjs-node's layers check against.
    const { loadTfjs } = await import('../src/tfjs')
    const normclipTf = loadTfjs()
    expect(normclipTf).not.toBeNull()
    expect(normclipTf!.Tensor).toBe(tf.Tensor)
    // tfjs' Constraint base class, reached through one of its built-ins.
    const TfjsConstraint = Object.getPrototypeOf(tf.constraints.maxNorm({ maxValue: 1 }).constructor) as abstract new () => object
    expect(new MaxNorm({ maxValue: 2 })).toBeInstanceOf(TfjsConstraint)
  })

  it('computes real ops with right values', () => {
    const a = tf.tensor2d([
      [1, 2],
      [3, 4],
    ])
    expect(Array.from(tf.matMul(a, a).dataSync())).toEqual([7, 10, 15, 22])
    // Column L2 norms of [[3, 0], [4, 5]] and [[1, 2], [3, 4]] (axis 0, as a MaxNorm on a Dense kernel).
    expectClose(
      tf
        .norm(
          tf.tensor2d([
            [3, 0],
            [4, 5],
          ]),
          'euclidean',
          0,
        )
        .dataSync(),
      [5, 5],
    )
    expectClose(tf.sqrt(tf.sum(tf.square(a), 0)).dataSync(), [Math.sqrt(10), Math.sqrt(20)])
    expectClose(tf.clipByValue(tf.tensor1d([-1, 0.5, 3]), 0, 2).dataSync(), [0, 0.5, 2])
    expectClose(tf.sigmoid(tf.tensor1d([0, Math.log(3)])).dataSync(), [0.5, 0.75])
    // A kernel that really goes through TensorFlow, not a JS fallback: tfjs-node's binding runs it.
    expect(tf.backend().constructor.name).toBe('NodeJSKernelBackend')
  })

  describe('MaxNorm.apply gives the Keras values, as on the cpu backend', () => {
    // 5×4, columns with norms below, at and above 2, a zero column: every branch of the formula.
    const shape: [number, number] = [5, 4]
    const values = [
      0.1,
      3,
      0,
      -4, //
      -0.2,
      0,
      0,
      4, //
      0.3,
      0,
      0,
      -4, //
      0.1,
      0,
      0,
      0.5, //
      -0.4,
      0,
      0,
      1, //
    ]

    for (const axis of [0, 1] as const) {
      it(`on a tensor, axis ${axis}`, async () => {
        const expected = kerasMaxNorm(values, shape, 2, axis)
        const onNode = new MaxNorm({ maxValue: 2, axis }).apply(tf.tensor2d(values, shape))
        expect(tf.getBackend()).toBe('tensorflow')
        expect(onNode.shape).toEqual(shape)
        expect(onNode.dtype).toBe('float32')
        const nodeValues = onNode.dataSync()
        expectClose(nodeValues, expected)

        const onCpu = await onBackend(tf, 'cpu', () => Array.from(new MaxNorm({ maxValue: 2, axis }).apply(tf.tensor2d(values, shape)).dataSync()))
        expectClose(onCpu, expected)
        expectClose(nodeValues, onCpu)
      })
    }

    it('on a tf.Variable, leaving the variable itself unchanged', async () => {
      const expected = kerasMaxNorm(values, shape, 2, 0)
      const variable = tf.variable(tf.tensor2d(values, shape))
      const result = maxNorm({ maxValue: 2 }).apply(variable)
      expectClose(result.dataSync(), expected)
      // apply returns a new tensor (as Keras' constraint call); the variable is assigned by the caller.
      expectClose(variable.dataSync(), values)

      const onCpu = await onBackend(tf, 'cpu', () => {
        const v = tf.variable(tf.tensor2d(values, shape))
        return Array.from(maxNorm({ maxValue: 2 }).apply(v).dataSync())
      })
      expectClose(result.dataSync(), onCpu)
    })

    it('never writes into its input, whether tfjs-node hands out a fresh copy or the JS values', () => {
      // A tensor made from JS values keeps them (dataSync returns that very array); one computed
      // by TensorFlow is copied out on every dataSync. normclip writes into the data only in the
      // second case, and must leave both inputs unchanged.
      const fromValues = tf.tensor2d([3, 0, 4, 1], [2, 2])
      const computed = tf.mul(fromValues, 2)
      for (const [input, values] of [
        [fromValues, [3, 0, 4, 1]],
        [computed, [6, 0, 8, 2]],
      ] as const) {
        const result = new MaxNorm({ maxValue: 1 }).apply(input)
        expectClose(input.dataSync(), values)
        expectClose(result.dataSync(), [0.6, 0, 0.8, 1])
        result.dispose()
      }
      computed.dispose()
      fromValues.dispose()
    })

    it('matches the Keras golden values (MaxNorm(2) on 3×4 columns [0,0,0], [1,0,0], [3,0,0], [3,3,3])', () => {
      const w = tf.tensor2d([0, 1, 3, 3, 0, 0, 0, 3, 0, 0, 0, 3], [3, 4])
      const s = 2 / Math.sqrt(3)
      expectClose(new MaxNorm({ maxValue: 2 }).apply(w).dataSync(), [0, 1, 2, s, 0, 0, 0, s, 0, 0, 0, s])
    })
  })

  describe('training with fit', () => {
    const MAX = 1
    const UNITS = 3
    const IN = 4

    /**
     * A linear regression whose true kernel has column norms ≈ 5.5, 4.8 and 5.8, far above MAX:
     * unconstrained, fit drives the kernel there; only an applied constraint keeps it at MAX.
     */
    function data(): { xs: Tf2D; ys: Tf2D } {
      const n = 64
      const x: number[] = []
      for (let i = 0; i < n * IN; i++) x.push(Math.sin(1.3 * i + 0.7))
      const trueKernel = [
        [3, -2, 4], //
        [-2, 3, 1], //
        [4, 1, -2], //
        [1, -3, 3.5], //
      ]
      const y: number[] = []
      for (let r = 0; r < n; r++) {
        for (let u = 0; u < UNITS; u++) {
          let s = 0
          for (let k = 0; k < IN; k++) s += x[r * IN + k]! * trueKernel[k]![u]!
          y.push(s)
        }
      }
      return { xs: tf.tensor2d(x, [n, IN]), ys: tf.tensor2d(y, [n, UNITS]) }
    }

    function model(): ReturnType<TfjsNode['sequential']> {
      const m = tf.sequential({
        layers: [
          tf.layers.dense({
            inputShape: [IN],
            units: UNITS,
            kernelConstraint: maxNorm({ maxValue: MAX, axis: 0 }),
            // Seeded: both runs start from the same weights, so the only difference is the callback.
            kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
          }),
        ],
      })
      m.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' })
      return m
    }

    async function train(withCallback: boolean): Promise<{ norms: number[]; loss: number; steps: number }> {
      const { xs, ys } = data()
      const m = model()
      const callback = constraintCallback()
      const history = await m.fit(xs, ys, {
        epochs: 30,
        batchSize: 16,
        shuffle: false,
        verbose: 0,
        callbacks: withCallback ? [callback] : [],
      })
      const kernel = m.layers[0]!.getWeights()[0]!
      expect(kernel.shape).toEqual([IN, UNITS])
      const norms = columnNorms(Array.from(kernel.dataSync()), IN, UNITS)
      const losses = history.history['loss'] as number[]
      return { norms, loss: losses[losses.length - 1]!, steps: callback.steps }
    }

    it('keeps every column norm of a maxNorm kernel ≤ maxValue with constraintCallback, and not without', async () => {
      const without = await train(false)
      const withCb = await train(true)
      expect(tf.getBackend()).toBe('tensorflow')

      // Without: tfjs never applies the constraint during fit, so the kernel clearly breaks it.
      expect(Math.max(...without.norms)).toBeGreaterThan(3 * MAX)
      expect(without.loss).toBeLessThan(0.5)

      // With: applied after each of the 30 × 4 batches; every unit ends at (not merely below)
      // the bound, since the data pulls every column far beyond it.
      expect(withCb.steps).toBe(30 * 4)
      for (const n of withCb.norms) {
        expect(n).toBeLessThanOrEqual(MAX + 1e-6)
        expect(n).toBeGreaterThan(MAX - 1e-3)
      }
      expect(Number.isFinite(withCb.loss)).toBe(true)
    })

    it('applyConstraints on a tfjs-node model projects the kernel in place', () => {
      const m = model()
      const dense = m.layers[0]!
      const big = Array.from({ length: IN * UNITS }, (_, i) => (i % 5) - 2 + 0.25 * i)
      // setWeights would apply tfjs' write-time constraint; write the raw variable instead.
      ;(dense.trainableWeights[0]!.read() as Tf.Variable).assign(tf.tensor2d(big, [IN, UNITS]))
      applyConstraints(m)
      const after = Array.from(dense.getWeights()[0]!.dataSync())
      expectClose(after, kerasMaxNorm(big, [IN, UNITS], MAX, 0))
    })
  })
})

type Tf2D = ReturnType<TfjsNode['tensor2d']>

/** Runs `fn` on another registered backend and returns to 'tensorflow' whatever happens. */
async function onBackend<T>(tf: TfjsNode, name: string, fn: () => T): Promise<T> {
  expect(await tf.setBackend(name)).toBe(true)
  try {
    expect(tf.getBackend()).toBe(name)
    return fn()
  } finally {
    await tf.setBackend('tensorflow')
  }
}

/** Keras MaxNorm in float64 on a row-major 2-D array: `w * clip(n, 0, max) / (eps + n)` along `axis`. */
function kerasMaxNorm(values: readonly number[], [rows, cols]: readonly [number, number], maxValue: number, axis: 0 | 1): number[] {
  const out = values.slice()
  const outer = axis === 0 ? cols : rows
  const inner = axis === 0 ? rows : cols
  const at = (o: number, i: number): number => (axis === 0 ? i * cols + o : o * cols + i)
  for (let o = 0; o < outer; o++) {
    let sq = 0
    for (let i = 0; i < inner; i++) sq += values[at(o, i)]! ** 2
    const n = Math.sqrt(sq)
    const factor = Math.min(Math.max(n, 0), maxValue) / (EPS + n)
    for (let i = 0; i < inner; i++) out[at(o, i)] = values[at(o, i)]! * factor
  }
  return out
}

/** L2 norm of each column of a row-major [rows, cols] array, in float64. */
function columnNorms(values: readonly number[], rows: number, cols: number): number[] {
  const norms: number[] = []
  for (let c = 0; c < cols; c++) {
    let sq = 0
    for (let r = 0; r < rows; r++) sq += values[r * cols + c]! ** 2
    norms.push(Math.sqrt(sq))
  }
  return norms
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  expect(actual.length).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!
    const e = expected[i]!
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (±${tol} relative); all: [${Array.from(actual).join(', ')}]`)
    }
  }
}
