// `npm run bench`: every benchmark suite, each in a process of its own (one suite's JIT state,
// heap and tfjs backends do not weigh on the next), with the same arguments, writing into one
// directory: target/bench/<time>-<cpu kind>/, and with --update also bench/results/<cpu kind>/ and
// the index bench/RESULTS.md. Switches: see bench/harness.ts.
//
// A new suite is a script that measures with bench/measure.ts and writes its files with
// harness.writeResult(), plus one line in SUITES.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { benchArgs, outputDir, writeIndex } from './harness'

const SUITES = [
  { name: 'constraints', file: 'constraints.ts' }, // MaxNorm against every peer, tensors, training
  { name: 'clipping', file: 'clipping.ts' }, // gradient clipping
  { name: 'files', file: 'files.ts' }, // weight files: inspect/apply against cat/cp
  { name: 'threads', file: 'threads.ts' }, // in place on NORMCLIP_THREADS=2 against a probe on as many
]

const args = benchArgs()
const unknown = args.suite !== undefined && !SUITES.some((s) => s.name === args.suite)
if (unknown) throw new Error(`bench: no suite ${JSON.stringify(args.suite)}; expected one of ${SUITES.map((s) => s.name).join(', ')}`)
const dir = outputDir()
for (const suite of SUITES) {
  if (args.suite !== undefined && suite.name !== args.suite) continue
  console.log(`== bench: ${suite.name}`)
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, suite.file), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_RUN_DIR: dir },
  })
  if (result.status !== 0) {
    console.error(`bench: suite ${suite.name} failed (${result.signal ?? `exit ${result.status}`})`)
    process.exit(1)
  }
}
console.log(`bench: results in ${dir}`)
if (args.update) console.log(`bench: committed results updated; index ${writeIndex()}`)
