/**
 * The permanent adversarial suite: every attack of `adversarial/attacks.ts`, each in a child
 * process of its own, so that a crash (SIGSEGV, an abort from a panic) fails that test instead
 * of killing the runner.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { attacks } from './adversarial/attacks'
import { otherNode } from './support/other-node'

const runner = join(__dirname, 'adversarial', 'run.ts')

interface Outcome {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function runAttack(name: string, env: Record<string, string> = {}, node = process.execPath): Outcome {
  const result = spawnSync(node, ['--expose-gc', '--import', 'tsx', runner, name], {
    cwd: join(__dirname, '..'),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr }
}

function expectPass(outcome: Outcome): string {
  const crash = outcome.signal !== null ? `killed by ${outcome.signal}` : `exit code ${outcome.status}`
  expect(outcome.stdout, `${crash}\n${outcome.stdout}\n${outcome.stderr}`).toMatch(/^PASS /m)
  expect(outcome.status, `${crash}\n${outcome.stderr}`).toBe(0)
  return outcome.stdout.replace(/^PASS /, '')
}

describe('adversarial: each attack in its own process', () => {
  for (const name of Object.keys(attacks)) {
    it(name, () => {
      expectPass(runAttack(name))
    })
  }
})

describe('adversarial: bounded resources', () => {
  it('NORMCLIP_THREADS=20000 is capped at 4 per core, with a message', () => {
    const outcome = runAttack('NORMCLIP_THREADS=20000 is capped', { NORMCLIP_THREADS: '20000' })
    expectPass(outcome)
    expect(outcome.stderr).toMatch(/NORMCLIP_THREADS=20000 is above the limit of \d+ \(4 per core/)
  })

  // Results of synchronous calls are memory V8 owns and collects as it collects `slice()`'s.
  for (const loop of ['applyCopy', 'norms']) {
    it(`a loop of 1M ${loop} calls on 64-element arrays stays within 2x the RSS of the same loop with slice()`, () => {
      const peak = (name: string) => Number(expectPass(runAttack(name)).split(' ')[0])
      const ours = peak(`loop: ${loop}`)
      const slice = peak('loop: slice')
      expect(ours, `peak RSS ${ours} KiB against slice()'s ${slice} KiB`).toBeLessThanOrEqual(2 * slice)
    })
  }
})

// Node 22 has ArrayBuffer.prototype.transfer (Node 20 does not): the async attacks run there too,
// with the same addon (Node-API is ABI-stable across versions).
describe('adversarial: async attacks under Node 22', () => {
  const node22 = otherNode(22)
  const asyncAttacks = Object.keys(attacks).filter((name) => name.startsWith('async:'))
  for (const name of asyncAttacks) {
    it.skipIf('skip' in node22)(`${name}${'skip' in node22 ? ` (skipped: ${node22.skip})` : ''}`, () => {
      if (!('node' in node22)) return
      const report = expectPass(runAttack(name, {}, node22.node))
      if (name.includes('ArrayBuffer.prototype.transfer')) expect(report).toMatch(/^Node v22/)
    })
  }
})
