// Writes __test__/fixtures/files/tfjs-model/ with the real writer: tfjs-node's
// model.save('file://…') (one weights.bin, as tfjs-node writes it), from a model whose layers
// declare constraints the way users write them, including a Conv2D kernel constrained along
// the default axis 0 (not one norm per filter) and tfjs' and normclip's own classes.
// Run: npx tsx scripts/file-fixtures/make-tfjs.ts   (needs scripts/setup-tfjs-node.sh first)
import { join } from 'node:path'
import { rmSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs-node'
import { UnitNorm } from '../../src'

async function main(): Promise<void> {
  const out = join(__dirname, '..', '..', '__test__', 'fixtures', 'files', 'tfjs-model')
  rmSync(out, { recursive: true, force: true })
  // Seeded initializers: the same weights on every run.
  const init = (seed: number, stddev: number) => tf.initializers.randomNormal({ mean: 0, stddev, seed })
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: 'conv',
        inputShape: [8, 8, 3],
        filters: 6,
        kernelSize: 3,
        kernelInitializer: init(1, 0.8),
        kernelConstraint: tf.constraints.maxNorm({ maxValue: 2 }), // axis 0: the Conv2D mistake
        biasConstraint: tf.constraints.nonNeg(),
        biasInitializer: init(2, 1),
      }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({
        name: 'hidden',
        units: 16,
        kernelInitializer: init(3, 0.3),
        kernelConstraint: tf.constraints.maxNorm({ maxValue: 1.5, axis: 0 }),
      }),
      tf.layers.dense({
        name: 'out',
        units: 4,
        kernelInitializer: init(4, 0.9),
        kernelConstraint: new UnitNorm({ axis: 0 }),
      }),
    ],
  })
  await model.save(`file://${out}`)
  console.error(`wrote ${out}`)
}

void main()
