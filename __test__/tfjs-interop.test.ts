import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { afterEach, describe, expect, it } from 'vitest'
import { Constraint, MaxNorm, MinMaxNorm, NonNeg, RadialConstraint, UnitNorm } from '../src/index'
import { checkConstraintAxes, restoreTfjsConstraints, serialize, useNativeConstraints } from '../src/index'
import { onCpuBackend } from './support/cpu-backend'

onCpuBackend()

afterEach(() => {
  restoreTfjsConstraints()
})

/** A Keras 2 (tf.keras 2.15) Sequential model config, as `model.to_json()` writes it. */
function kerasModelJson(): object {
  // What Keras writes for every layer with a kernel and a bias, in its key order.
  const weighted = {
    use_bias: true,
    kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
  }
  return {
    class_name: 'Sequential',
    config: {
      name: 'sequential',
      layers: [
        {
          class_name: 'InputLayer',
          config: { batch_input_shape: [null, 8, 8, 1], dtype: 'float32', sparse: false, ragged: false, name: 'input_1' },
        },
        {
          class_name: 'Conv2D',
          config: {
            name: 'conv2d',
            trainable: true,
            dtype: 'float32',
            filters: 4,
            kernel_size: [3, 3],
            strides: [1, 1],
            padding: 'valid',
            data_format: 'channels_last',
            dilation_rate: [1, 1],
            groups: 1,
            activation: 'relu',
            ...weighted,
            kernel_constraint: { class_name: 'MaxNorm', config: { max_value: 3.0, axis: [0, 1, 2] } },
            bias_constraint: null,
          },
        },
        { class_name: 'Flatten', config: { name: 'flatten', trainable: true, dtype: 'float32', data_format: 'channels_last' } },
        {
          class_name: 'Dense',
          config: {
            name: 'dense',
            trainable: true,
            dtype: 'float32',
            units: 2,
            activation: 'softmax',
            ...weighted,
            kernel_constraint: { class_name: 'MinMaxNorm', config: { min_value: 0.5, max_value: 1.0, rate: 1.0, axis: 0 } },
            bias_constraint: { class_name: 'NonNeg', config: {} },
          },
        },
      ],
    },
    keras_version: '2.15.0',
    backend: 'tensorflow',
  }
}

/** Keras model JSON written by the fixture generator, when it has been run. */
function kerasFixtures(): string[] {
  const dir = resolve(__dirname, 'fixtures')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((name) => /^keras-model-.*\.json$/.test(name))
    .map((name) => join(dir, name))
}

/** tfjs' (unexported) Constraint class type. */
type TfjsConstraint = ReturnType<typeof tf.constraints.maxNorm>

type LayerWithConstraints = tf.layers.Layer & { kernelConstraint?: unknown; biasConstraint?: unknown }

/** The model's `index`-th layer that has weights (a Keras Sequential JSON may list its InputLayer). */
function layer(model: tf.LayersModel, index: number): LayerWithConstraints {
  const withWeights = model.layers.filter((l) => l.getClassName() !== 'InputLayer')
  return withWeights[index] as LayerWithConstraints
}

async function saveToMemory(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
    }),
  )
  return saved!
}

describe('normclip constraints inside tfjs layers', () => {
  it('tf.layers accept them as they are, and setWeights applies them (LayerVariable.write)', () => {
    const constraint = new MaxNorm({ maxValue: 1 })
    const dense = tf.layers.dense({ units: 2, inputShape: [2], kernelConstraint: constraint, biasConstraint: new NonNeg() })
    const model = tf.sequential({ layers: [dense] })
    expect((dense as unknown as LayerWithConstraints).kernelConstraint).toBe(constraint)
    const kernel = tf.tensor([
      [3, 0.3],
      [4, 0.4],
    ])
    const bias = tf.tensor([-1, 1])
    model.setWeights([kernel, bias])
    const [k, b] = model.getWeights()
    const values = Array.from(k!.dataSync())
    expect(values[0]).toBeCloseTo(0.6, 6) // column [3, 4] → norm 1
    expect(values[2]).toBeCloseTo(0.8, 6)
    expect(values[1]).toBeCloseTo(0.3, 6) // column [0.3, 0.4] is within bounds
    expect(Array.from(b!.dataSync())).toEqual([0, 1])
    tf.dispose([kernel, bias])
    model.dispose()
  })

  it('setWeights leaves no more tensors behind than with tfjs’ own MaxNorm', () => {
    const count = (kernelConstraint: TfjsConstraint): number => {
      const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], kernelConstraint })] })
      const weights = [tf.ones([4, 3]), tf.zeros([3])]
      const before = tf.memory().numTensors
      model.setWeights(weights)
      const grown = tf.memory().numTensors - before
      tf.dispose(weights)
      model.dispose()
      return grown
    }
    expect(count(new MaxNorm({ maxValue: 1 }))).toBe(count(tf.constraints.maxNorm({ maxValue: 1 })))
  })

  it('model.save / tf.loadLayersModel keeps the constraints, with their options', async () => {
    const kernelConstraint = new MaxNorm({ maxValue: 2, axis: [0, 1, 2], mode: 'projection' })
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, kernelConstraint }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, kernelConstraint: new MinMaxNorm({ minValue: 0.5, max_value: 1.5, rate: 0.5 }) }),
      ],
    })
    const artifacts = await saveToMemory(model)
    const topology = JSON.stringify(artifacts.modelTopology)
    expect(topology).toContain('"kernel_constraint":{"class_name":"normclip>MaxNorm","config":{"max_value":2,"axis":[0,1,2],"mode":"projection"}}')
    expect(topology).toContain('"class_name":"normclip>MinMaxNorm","config":{"min_value":0.5,"max_value":1.5,"rate":0.5,"axis":0}')

    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    const conv = layer(loaded, 0).kernelConstraint
    expect(conv).toBeInstanceOf(MaxNorm)
    expect((conv as MaxNorm).getConfig()).toEqual({ maxValue: 2, axis: [0, 1, 2], mode: 'projection' })
    expect((layer(loaded, 2).kernelConstraint as MinMaxNorm).getConfig()).toEqual({ minValue: 0.5, maxValue: 1.5, rate: 0.5, axis: 0 })
    // Loading writes the weights through LayerVariable.write, which applies the (native) constraint.
    const saved = model.getWeights()[0]!
    const reloaded = loaded.getWeights()[0]!
    const expected = (conv as MaxNorm).applyCopy(saved.dataSync() as Float32Array, saved.shape)
    expect(Array.from(reloaded.dataSync())).toEqual(Array.from(expected))
    model.dispose()
    loaded.dispose()
  })
})

describe('Keras model JSON', () => {
  it("loads with tfjs' own classes by default, with the Keras config", async () => {
    const model = await tf.models.modelFromJSON(kerasModelJson() as tf.io.ModelJSON['modelTopology'] as never)
    const conv = layer(model, 0).kernelConstraint as TfjsConstraint
    expect(conv).not.toBeInstanceOf(MaxNorm)
    expect(conv.getClassName()).toBe('MaxNorm')
    expect(conv.getConfig()).toEqual({ maxValue: 3, axis: [0, 1, 2] })
    model.dispose()
  })

  it('useNativeConstraints makes them normclip classes; undo restores tfjs; idempotent', async () => {
    const undo = useNativeConstraints()
    useNativeConstraints() // a second call changes nothing, and one undo still restores tfjs
    const model = await tf.models.modelFromJSON(kerasModelJson() as never)
    const conv = layer(model, 0).kernelConstraint
    expect(conv).toBeInstanceOf(MaxNorm)
    expect((conv as MaxNorm).getConfig()).toEqual({ maxValue: 3, axis: [0, 1, 2] })
    const dense = layer(model, 2)
    expect(dense.kernelConstraint).toBeInstanceOf(MinMaxNorm)
    expect((dense.kernelConstraint as MinMaxNorm).getConfig()).toEqual({ minValue: 0.5, maxValue: 1, rate: 1, axis: 0 })
    expect(dense.biasConstraint).toBeInstanceOf(NonNeg)
    // String ids given to layers resolve the same way.
    const fromString = tf.layers.dense({ units: 1, kernelConstraint: 'unitNorm' }) as unknown as LayerWithConstraints
    expect(fromString.kernelConstraint).toBeInstanceOf(UnitNorm)
    model.dispose()

    undo()
    const again = await tf.models.modelFromJSON(kerasModelJson() as never)
    expect(layer(again, 0).kernelConstraint).not.toBeInstanceOf(MaxNorm)
    expect((layer(again, 0).kernelConstraint as TfjsConstraint).getClassName()).toBe('MaxNorm')
    again.dispose()
  })

  it('RadialConstraint (Keras 2 only, no tfjs class) loads once useNativeConstraints is on', async () => {
    const json = kerasModelJson() as { config: { layers: Array<{ config: Record<string, unknown> }> } }
    json.config.layers[1]!.config['kernel_constraint'] = { class_name: 'RadialConstraint', config: {} }
    await expect(tf.models.modelFromJSON(json as never)).rejects.toThrow(/Unknown constraint: RadialConstraint/)
    useNativeConstraints()
    const model = await tf.models.modelFromJSON(json as never)
    expect(layer(model, 0).kernelConstraint).toBeInstanceOf(RadialConstraint)
    model.dispose()
  })

  it('the tf_keras model fixtures load with every constraint a normclip class, serializing back to the same dicts', async () => {
    const fixtures = kerasFixtures()
    expect(fixtures.length).toBeGreaterThan(0)
    useNativeConstraints()
    for (const path of fixtures) {
      const json = JSON.parse(readFileSync(path, 'utf8')) as {
        config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> }
      }
      const model = await tf.models.modelFromJSON(json as never)
      let checked = 0
      for (const spec of json.config.layers) {
        for (const [key, dict] of Object.entries(spec.config)) {
          if (!key.endsWith('_constraint') || dict === null) continue
          const loaded = model.getLayer(spec.config['name'] as string) as unknown as Record<string, unknown>
          const property = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) // kernel_constraint → kernelConstraint
          const constraint = loaded[property] as Constraint
          expect(constraint, `${path}: ${spec.config['name']}.${property}`).toBeInstanceOf(Constraint)
          expect(serialize(constraint)).toEqual(dict)
          checked++
        }
      }
      expect(checked).toBeGreaterThan(0)
      // Their kernels are all constrained per unit (Conv2D [0, 1, 2], Dense 0).
      expect(checkConstraintAxes(model)).toEqual([])
      model.dispose()
    }
  })
})

describe('backends', () => {
  it('apply works on the wasm backend, one tensor in, one out', async () => {
    await tf.setBackend('wasm')
    try {
      const x = tf.tensor1d([-1, 2, 0, 4, -5, 6])
      const before = tf.memory().numTensors
      const y = new MaxNorm().apply(x)
      expect(tf.memory().numTensors).toBe(before + 1)
      const expected = [-0.2208630521, 0.4417261043, 0, 0.8834522086, -1.104315261, 1.325178313]
      Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6))
      expect(Array.from(x.dataSync())).toEqual([-1, 2, 0, 4, -5, 6])
      tf.dispose([x, y])
    } finally {
      await tf.setBackend('cpu')
    }
  })
})

/**
 * Writes a module for `node --require` that runs `hook` (JavaScript that sees `request`) before
 * every resolution, so a child process sees the packages a test pretends are or are not there.
 */
function writeResolveHook(path: string, hook: string): void {
  writeFileSync(
    path,
    `const Module = require('module')
const resolveFilename = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  ${hook}
  return resolveFilename.call(this, request, ...rest)
}
`,
  )
}

describe('without TensorFlow.js installed', () => {
  it('the typed-array API works, and the tfjs-only parts say what they need', () => {
    const dir = mkdtempSync(join(tmpdir(), 'normclip-no-tfjs-'))
    const block = join(dir, 'block-tfjs.cjs')
    // Makes every @tensorflow/* package unresolvable, as in an app that does not install tfjs.
    writeResolveHook(
      block,
      `if (request.startsWith('@tensorflow/')) {
    const error = new Error("Cannot find module '" + request + "'")
    error.code = 'MODULE_NOT_FOUND'
    throw error
  }`,
    )
    const src = resolve(__dirname, '../src')
    const script = join(dir, 'script.ts')
    writeFileSync(
      script,
      `import { MaxNorm, NonNeg, applyBatch, get, serialize, useNativeConstraints, perUnitAxes } from ${JSON.stringify(join(src, 'index'))}
const a = new Float32Array([3, 4])
new MaxNorm({ maxValue: 1 }).applyInPlace(a, [2])
const b = new Float64Array([-1, 2])
applyBatch([{ array: b, shape: [2], constraint: new NonNeg() }])
let error = ''
try { useNativeConstraints() } catch (e) { error = (e as Error).message }
console.log(JSON.stringify({
  a: Array.from(a), b: Array.from(b),
  keras: serialize(get('max_norm')!),
  axes: perUnitAxes('Conv2D'),
  error,
}))
`,
    )
    const tsx = resolve(__dirname, '../node_modules/.bin/tsx')
    const out = execFileSync(tsx, ['--require', block, script], { encoding: 'utf8' })
    const result = JSON.parse(out.trim().split('\n').pop()!)
    expect(result.a[0]).toBeCloseTo(0.6, 6)
    expect(result.b).toEqual([0, 2])
    expect(result.keras).toEqual({
      module: 'keras.constraints',
      class_name: 'MaxNorm',
      config: { max_value: 2, axis: 0 },
      registered_name: null,
    })
    expect(result.axes).toEqual([0, 1, 2])
    expect(result.error).toMatch(/useNativeConstraints needs TensorFlow\.js; install @tensorflow\/tfjs/)
  })
})

describe('which tfjs normclip uses', () => {
  it('with @tensorflow/tfjs-node installed: the tfjs it re-exports, without loading tfjs-node itself', () => {
    const dir = mkdtempSync(join(tmpdir(), 'normclip-tfjs-node-'))
    const nodeBinding = join(dir, 'node_modules/@tensorflow/tfjs-node')
    const nested = join(nodeBinding, 'node_modules/@tensorflow/tfjs')
    mkdirSync(nested, { recursive: true })
    writeFileSync(join(nodeBinding, 'package.json'), '{"name": "@tensorflow/tfjs-node", "main": "index.js"}')
    writeFileSync(join(nodeBinding, 'index.js'), "throw new Error('normclip must not load tfjs-node and its native library')")
    // A copy of tfjs only tfjs-node can see (as npm nests it when versions conflict), marked.
    writeFileSync(join(nested, 'package.json'), '{"name": "@tensorflow/tfjs", "main": "index.js"}')
    const realTfjs = require.resolve('@tensorflow/tfjs')
    writeFileSync(join(nested, 'index.js'), `module.exports = Object.assign({}, require(${JSON.stringify(realTfjs)}), { nestedUnderTfjsNode: true })`)
    const script = join(dir, 'script.ts')
    const src = resolve(__dirname, '../src')
    writeFileSync(
      script,
      `import { loadTfjs } from ${JSON.stringify(join(src, 'tfjs'))}
import { MaxNorm } from ${JSON.stringify(join(src, 'constraints'))}
const tf = loadTfjs() as unknown as { nestedUnderTfjsNode?: boolean; layers: { dense(args: object): { kernelConstraint?: unknown } } }
const c = new MaxNorm()
console.log(JSON.stringify({ nested: tf.nestedUnderTfjsNode === true, accepted: tf.layers.dense({ units: 1, kernelConstraint: c }).kernelConstraint === c }))
`,
    )
    // Resolves '@tensorflow/tfjs-node' to the fake, whether or not the project has the real one.
    const redirect = join(dir, 'redirect.cjs')
    writeResolveHook(redirect, `if (request === '@tensorflow/tfjs-node') return ${JSON.stringify(join(nodeBinding, 'index.js'))}`)
    const tsx = resolve(__dirname, '../node_modules/.bin/tsx')
    const out = execFileSync(tsx, ['--require', redirect, script], { encoding: 'utf8' })
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ nested: true, accepted: true })
  })
})
