// Where the time of `MaxNorm.apply` on backend tensors goes, in one process:
//
//   npx tsx bench/tensor-paths.ts [--backend=tensorflow|wasm] [--rounds=N]
//
// For each case, every method takes turns (bench/measure.ts): normclip in place on a warm buffer
// and on a ring of cold ones; a plain memcpy of the same bytes (the floor of any copy); the fused
// copy the zero-copy paths run (`applyCopyInto`) between plain JS buffers; the path's own step
// alone (tfjs-node: `NormclipConstrain` through the binding, no tfjs tensor made; wasm: the fused
// copy between heap views, no allocation); `MaxNorm.apply` end to end; the backend's own
// `maxNorm`; and for reference one cheap op of the backend (tfjs-node: `Identity` through the
// binding; wasm: `tf.clone`). With the MLP's kernels also the training callback's step. Prints
// medians with ± half the IQR, ratios to in place, and minor page faults per `MaxNorm.apply`
// (fresh output memory would show here).
process.env['NORMCLIP_THREADS'] ??= '1'
import * as tf from '@tensorflow/tfjs'
import { constrain, MaxNorm } from '../src'
import * as native from '../src/binding'
import { constraintCallback } from '../src/training'
import { type BackendName, loadBackends, useBackend } from './backends'
import { fmtSample, machine } from './harness'
import { type Method, measureInterleaved } from './measure'

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const backendName = (option('backend') ?? 'tensorflow') as BackendName
const budgetMs = 1500 * Number(option('rounds') ?? 1)

const CASES: { name: string; shapes: number[][]; axis: number | number[] }[] = [
  { name: '[64,64], 0', shapes: [[64, 64]], axis: 0 },
  { name: '[784,512], 0 (Dense)', shapes: [[784, 512]], axis: 0 },
  { name: '[3,3,256,256], [0,1,2] (Conv2D)', shapes: [[3, 3, 256, 256]], axis: [0, 1, 2] },
  { name: '[100000,10], 0', shapes: [[100000, 10]], axis: 0 },
  {
    name: 'MLP 784-512-256-10: 3 kernels',
    shapes: [
      [784, 512],
      [512, 256],
      [256, 10],
    ],
    axis: 0,
  },
]
const RING = 6

/** What is used of tfjs-node's backend and binding (4.x). */
interface NodeBinding {
  TF_ATTR_INT: number
  TF_ATTR_STRING: number
  TF_ATTR_TYPE: number
  TF_FLOAT: number
  executeOp(name: string, attrs: object[], ids: number[], outputs: number): { id: number }[]
  deleteTensor(id: number): void
}
interface WasmHeap {
  wasm: { HEAPU8: Uint8Array }
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined }
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)
const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin((i + seed) * 12.9898) * 2)

function mlp(): tf.LayersModel {
  const kernelConstraint = () => tf.constraints.maxNorm({ maxValue: 1, axis: 0 })
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 512, kernelConstraint: kernelConstraint() }),
      tf.layers.dense({ units: 256, kernelConstraint: kernelConstraint() }),
      tf.layers.dense({ units: 10, kernelConstraint: kernelConstraint() }),
    ],
  })
}

/** The path's own step, without making tfjs tensors: the op through tfjs-node's binding, or the heap-view copy. */
function backendMethods(shapes: number[][], tensors: tf.Tensor[], ours: MaxNorm): Method[] {
  const backend = tf.backend() as unknown as { binding?: NodeBinding; getInputTensorIds?(ts: tf.Tensor[]): number[] } & Partial<WasmHeap>
  const { binding, getInputTensorIds } = backend
  if (binding !== undefined && getInputTensorIds !== undefined) {
    ours.apply(tensors[0]!).dispose() // registers the op family
    const ids = getInputTensorIds.call(backend, tensors)
    const spec = native.tfOpSpec(tensors.map(() => ours.native))
    const opAttrs = [
      { name: 'N', type: binding.TF_ATTR_INT, value: tensors.length },
      { name: 'spec', type: binding.TF_ATTR_STRING, value: spec },
    ]
    const identity = [{ name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT }]
    const run = (name: string, attrs: object[], inputs: number[], outputs: number) => {
      for (const output of binding.executeOp(name, attrs, inputs, outputs)) binding.deleteTensor(output.id)
    }
    return [
      { key: 'NormclipConstrain alone (one call, all weights)', run: () => run('NormclipConstrain', opAttrs, ids, ids.length), repeatable: true },
      { key: 'Identity op alone (fixed-cost reference)', run: () => ids.forEach((id) => run('Identity', identity, [id], 1)), repeatable: true },
    ]
  }
  const { wasm, dataIdMap } = backend
  if (wasm === undefined || dataIdMap === undefined) return []
  const outputs = tensors.map((t) => tf.zerosLike(t))
  const view = (t: tf.Tensor) => new Float32Array(wasm.HEAPU8.buffer, dataIdMap.get(t.dataId)!.memoryOffset, t.size)
  return [
    {
      key: 'heap-view copy alone (no allocation)',
      run: () => tensors.forEach((t, i) => native.applyCopyInto(ours.native, view(t), view(outputs[i]!), shapes[i]!)),
      repeatable: true,
    },
    { key: 'tf.clone (fixed-cost reference)', run: () => tensors.forEach((t) => tf.clone(t).dispose()), repeatable: true },
  ]
}

function minorFaultsPerCall(run: () => void, calls: number): number {
  const before = process.resourceUsage().minorPageFault
  for (let i = 0; i < calls; i++) run()
  return (process.resourceUsage().minorPageFault - before) / calls
}

async function main(): Promise<void> {
  await loadBackends()
  await useBackend(backendName)
  console.log(`${machine().line}\nbackend ${tf.getBackend()}, NORMCLIP_THREADS=${process.env['NORMCLIP_THREADS']}, budget ${budgetMs} ms per method`)
  for (const { name, shapes, axis } of CASES) {
    const warm = shapes.map((s, i) => filled(sizeOf(s), i))
    const cold = Array.from({ length: RING }, (_, r) => shapes.map((s, i) => filled(sizeOf(s), i + r)))
    const targets = shapes.map((s) => new Float32Array(sizeOf(s)))
    const tensors = shapes.map((s, i) => tf.tensor(warm[i]!, s, 'float32'))
    const bound = constrain({ kind: 'maxNorm', maxValue: 1, axis })
    const ours = new MaxNorm({ maxValue: 1, axis })
    const theirs = tf.constraints.maxNorm({ maxValue: 1, axis: axis as number })
    let turn = 0
    const applyAll = () => tensors.forEach((t) => ours.apply(t).dispose())
    const methods: Method[] = [
      { key: 'normclip in place (warm buffer)', run: () => shapes.forEach((s, i) => bound(warm[i]!, s)), repeatable: true },
      {
        key: `normclip in place (ring of ${RING} buffers)`,
        run: () => shapes.forEach((s, i) => bound(cold[turn++ % RING]![i]!, s)),
        repeatable: true,
      },
      { key: 'memcpy of the same bytes (TypedArray.set)', run: () => shapes.forEach((_, i) => targets[i]!.set(warm[i]!)), repeatable: true },
      {
        key: 'applyCopyInto, plain JS buffers',
        run: () => shapes.forEach((s, i) => native.applyCopyInto(ours.native, warm[i]!, targets[i]!, s)),
        repeatable: true,
      },
      ...backendMethods(shapes, tensors, ours),
      { key: 'MaxNorm.apply', run: applyAll, repeatable: true },
      { key: `${backendName} maxNorm`, run: () => tensors.forEach((t) => tf.tidy(() => theirs.apply(t)).dispose()), repeatable: true },
    ]
    if (shapes.length > 1) {
      const callback = constraintCallback({ model: mlp() })
      methods.push({ key: 'constraintCallback step (the MLP)', run: () => void callback.onBatchEnd(0), repeatable: true })
    }
    const results = await measureInterleaved(methods, { budgetMs, minSampleMs: 5, maxSamples: 200 })
    const inPlace = results.get('normclip in place (warm buffer)')!.median
    console.log(`\n${name}: ${shapes.reduce((a, s) => a + sizeOf(s), 0)} elements`)
    for (const [key, sample] of results) console.log(`  ${key.padEnd(48)} ${fmtSample(sample).padStart(16)}  ${(sample.median / inPlace).toFixed(2)}× in place`)
    const apply = results.get('MaxNorm.apply')!.median
    console.log(`  ${backendName} maxNorm / MaxNorm.apply: ${(results.get(`${backendName} maxNorm`)!.median / apply).toFixed(2)}×`)
    console.log(`  minor page faults per MaxNorm.apply: ${minorFaultsPerCall(applyAll, 50).toFixed(2)}`)
    for (const t of tensors) t.dispose()
  }
}

void main()
