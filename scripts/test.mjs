// `npm test`: every check CI makes, cheapest first, in plain Node so that it runs on any OS
// (no shell, no bash). It ends with one line counting every test that ran:
// `N passed, N failed, N skipped`.
//
//   npm test                      all steps, stopping at the first that fails
//   npm test -- --keep-going      all steps whatever fails
//   npm test -- vitest clippy     only the named steps (in the order of STEPS)
//
// Adding a step is one line in STEPS. A step whose runner reports test counts gets a `counts`
// reader; a step without one (a linter) counts as nothing when it passes and as one failed test
// when it fails, so a red check can never hide behind a green total.
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const target = join(root, 'target')
const vitestJson = join(target, 'vitest-results.json')

const STEPS = [
  { name: 'rustfmt', cmd: ['cargo', 'fmt', '--all', '--check'] },
  { name: 'clippy', cmd: ['cargo', 'clippy', '--workspace', '--all-targets', '--quiet', '--', '-D', 'warnings'] },
  // The benchmark build (the `probe` feature; it also compiles the cargo benches and examples).
  { name: 'clippy-probe', cmd: ['cargo', 'clippy', '--workspace', '--all-targets', '--all-features', '--quiet', '--', '-D', 'warnings'] },
  { name: 'tsc', cmd: [npmBin('typescript', 'tsc'), '--noEmit', '-p', 'tsconfig.json'] },
  // Biome: the TypeScript/JavaScript linter and formatter (biome.jsonc); `npm run format` fixes.
  { name: 'biome', cmd: [npmBin('@biomejs/biome', 'biome'), 'ci', '--colors=off', '.'] },
  // Release: the property tests run large tensors.
  {
    name: 'cargo test',
    cmd: ['cargo', 'test', '-p', 'normclip-core', '-p', 'normclip-files', '-p', 'normclip-tf', '--release', '--quiet'],
    counts: cargoCounts,
  },
  {
    name: 'vitest',
    cmd: [npmBin('vitest'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`],
    counts: vitestCounts,
    before: () => rmSync(vitestJson, { force: true }),
  },
]

// A package's own bin script, run by this Node: no `npx`, no `.cmd` shims on Windows.
function npmBin(pkg, name = pkg) {
  const require = createRequire(join(root, 'package.json'))
  const manifestPath = require.resolve(`${pkg}/package.json`)
  const { bin } = JSON.parse(readFileSync(manifestPath, 'utf8'))
  const rel = typeof bin === 'string' ? bin : bin?.[name]
  if (!rel) throw new Error(`${pkg} has no bin '${name}'`)
  return { node: join(dirname(manifestPath), rel) }
}

function cargoCounts(stdout) {
  const total = { passed: 0, failed: 0, skipped: 0 }
  let seen = false
  for (const m of stdout.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
    seen = true
    total.passed += Number(m[1])
    total.failed += Number(m[2])
    total.skipped += Number(m[3])
  }
  return seen ? total : null
}

function vitestCounts() {
  let report
  try {
    report = JSON.parse(readFileSync(vitestJson, 'utf8'))
  } catch {
    return null // vitest died before writing its report: the step's exit code tells the rest
  }
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
  }
}

// Runs one command with its output shown as it comes; stdout is also kept for a counts reader.
function run([command, ...args]) {
  const [file, argv] = typeof command === 'object' ? [process.execPath, [command.node, ...args]] : [command, args]
  return new Promise((resolvePromise) => {
    const child = spawn(file, argv, { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      stdout += chunk
    })
    child.on('error', (error) => resolvePromise({ code: null, stdout, error }))
    child.on('close', (code, signal) => resolvePromise({ code: signal ? null : code, stdout, signal }))
  })
}

const argv = process.argv.slice(2)
const keepGoing = argv.includes('--keep-going')
const only = argv.filter((a) => !a.startsWith('--'))
for (const name of only) {
  if (!STEPS.some((s) => s.name === name)) {
    console.error(`unknown step '${name}'; steps: ${STEPS.map((s) => s.name).join(', ')}`)
    process.exit(2)
  }
}

mkdirSync(target, { recursive: true })
const total = { passed: 0, failed: 0, skipped: 0 }
const failedSteps = []
for (const step of STEPS) {
  if (only.length > 0 && !only.includes(step.name)) continue
  console.log(`== ${step.name}`)
  step.before?.()
  const { code, stdout, error, signal } = await run(step.cmd)
  const counts = step.counts?.(stdout) ?? null
  if (counts) {
    total.passed += counts.passed
    total.failed += counts.failed
    total.skipped += counts.skipped
  }
  if (code !== 0) {
    const why = error ? error.message : signal ? `killed by ${signal}` : `exit code ${code}`
    console.error(`== ${step.name} FAILED (${why})`)
    failedSteps.push(step.name)
    // A runner that failed without reporting a failed test (a build error, a crash) still fails.
    if (!counts || counts.failed === 0) total.failed += 1
    if (!keepGoing) break
  }
}
if (failedSteps.length > 0) console.error(`failed: ${failedSteps.join(', ')}`)
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`)
process.exit(failedSteps.length > 0 || total.failed > 0 ? 1 : 0)
