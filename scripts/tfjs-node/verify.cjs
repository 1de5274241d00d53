// Checks that @tensorflow/tfjs-node loads from the directory given as argv[2] (default: cwd), runs
// on its native TensorFlow backend, and computes right values. With --shared it also checks that
// tfjs-node resolves the very same @tensorflow/tfjs and tfjs-core files as that directory's own
// project does: two copies would split tfjs' engine and kernel/serialization registries, so a
// normclip constraint registered through the project's tfjs would be invisible to tfjs-node.
// Exit code 0 = all good; anything else prints one line saying what is wrong.
'use strict'
const path = require('node:path')
const { createRequire } = require('node:module')

const root = path.resolve(process.argv[2] || process.cwd())
const checkShared = process.argv.includes('--shared')
// TensorFlow's C++ INFO logs (oneDNN, CPU features) are noise for a yes/no check.
process.env.TF_CPP_MIN_LOG_LEVEL = process.env.TF_CPP_MIN_LOG_LEVEL || '2'

function fail(msg) {
  console.error(`verify: ${msg}`)
  process.exit(2)
}

const req = createRequire(path.join(root, 'noop.js'))
let tfn
try {
  tfn = req('@tensorflow/tfjs-node')
} catch (e) {
  fail(`require('@tensorflow/tfjs-node') from ${root} failed: ${e && e.message ? e.message.split('\n')[0] : e}`)
}
if (tfn.getBackend() !== 'tensorflow') fail(`backend is '${tfn.getBackend()}', expected 'tensorflow'`)

// A value check through the native kernels: [[1,2],[3,4]]^2 = [[7,10],[15,22]]; column L2 norms
// of [[3,0],[4,5]] = [5,5].
const a = tfn.tensor2d([[1, 2], [3, 4]])
const mm = Array.from(tfn.matMul(a, a).dataSync())
if (JSON.stringify(mm) !== JSON.stringify([7, 10, 15, 22])) fail(`matMul gave ${mm}`)
const n = Array.from(tfn.norm(tfn.tensor2d([[3, 0], [4, 5]]), 'euclidean', 0).dataSync())
if (n.some((v) => Math.abs(v - 5) > 1e-6)) fail(`column norms gave ${n}`)

if (checkShared) {
  const fromNode = createRequire(req.resolve('@tensorflow/tfjs-node'))
  for (const pkg of ['@tensorflow/tfjs', '@tensorflow/tfjs-core']) {
    const mine = req.resolve(pkg)
    const theirs = fromNode.resolve(pkg)
    if (mine !== theirs) fail(`tfjs-node resolves ${pkg} to ${theirs}, the project to ${mine} (two copies)`)
  }
  // Same module instance => same engine: the project's tfjs now runs on tfjs-node's backend.
  if (req('@tensorflow/tfjs').getBackend() !== 'tensorflow') fail(`the project's @tensorflow/tfjs does not see tfjs-node's backend`)
}

console.log(`ok: tfjs-node ${tfn.version['tfjs-node']} on TensorFlow ${tfn.backend().binding.TF_Version} (backend '${tfn.getBackend()}')${checkShared ? ', sharing the project\'s @tensorflow/tfjs' : ''}`)
