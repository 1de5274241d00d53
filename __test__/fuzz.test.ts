/**
 * The randomized fuzz of every entry point (`adversarial/fuzz.ts`), in a child process so that a
 * crash fails this test instead of killing the runner. A new seed each run unless NORMCLIP_FUZZ_SEED
 * is set; NORMCLIP_FUZZ_CALLS calls (default 100,000) of the constraint entry points, plus half as
 * many gradient-clipping calls and one backend call (wasm heap, TensorFlow op) per hundred. A
 * failure prints the seed and the call to replay.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { expect, it } from 'vitest'

const seed = Number(process.env['NORMCLIP_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31))
const calls = Number(process.env['NORMCLIP_FUZZ_CALLS'] ?? 100_000)

it(`fuzz: ${calls} random calls across every entry point, ${Math.floor(calls / 2)} clipping calls, ${Math.floor(calls / 100)} backend calls (seed ${seed})`, () => {
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, 'adversarial', 'fuzz.ts'), String(seed), String(calls)], {
    cwd: join(__dirname, '..'),
    encoding: 'utf8',
    timeout: 600_000,
  })
  const crash = result.signal !== null ? `killed by ${result.signal}` : `exit code ${result.status}`
  const report = `seed ${seed}, ${crash}\n${result.stdout}\n${result.stderr.slice(-4000)}`
  expect(result.stdout, report).toMatch(/^PASS /m)
  expect(result.status, report).toBe(0)
  console.log(result.stdout.trim())
}, 660_000)
