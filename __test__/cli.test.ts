// The `normclip` command line as a user runs it: a separate Node process, exit codes and output.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> }

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), ...args], { encoding: 'utf8', cwd: root })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const scratch = mkdtempSync(join(tmpdir(), 'normclip-cli-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('normclip CLI', () => {
  it('is the package bin, compiled from src/cli/index.ts', () => {
    expect(pkg.bin).toEqual({ normclip: 'dist/cli/index.js' })
    expect(readFileSync(join(root, 'src/cli/index.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
  })

  it('--help lists the commands and exits 0; no command prints the same and exits 2', () => {
    const help = cli('--help')
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^normclip \d+\.\d+\.\d+/)
    expect(help.stdout).toMatch(/\n {2}setup-tfjs-node {2}/)
    const bare = cli()
    expect(bare.code).toBe(2)
    expect(bare.stdout).toBe(help.stdout)
  })

  it('--version prints the package version', () => {
    expect(cli('--version')).toMatchObject({ code: 0, stdout: `${pkg.version}\n` })
  })

  it('an unknown command is an error naming it, exit 2', () => {
    const r = cli('frobnicate')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("unknown command 'frobnicate'")
    expect(r.stdout).toBe('')
  })

  it('<command> --help and help <command> print its usage', () => {
    const a = cli('setup-tfjs-node', '--help')
    expect(a.code).toBe(0)
    expect(a.stdout).toMatch(/^Usage: normclip setup-tfjs-node/)
    expect(a.stdout).toContain('What it cannot do')
    expect(cli('help', 'setup-tfjs-node').stdout).toBe(a.stdout)
  })

  it('setup-tfjs-node: unknown options and bad --project are usage errors, exit 2', () => {
    const unknown = cli('setup-tfjs-node', '--bogus')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("unknown option '--bogus'")
    const missing = cli('setup-tfjs-node', '--project')
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--project needs a directory')
    const noPkg = cli('setup-tfjs-node', '--project', scratch)
    expect(noPkg.code).toBe(2)
    expect(noPkg.stderr).toContain('has no package.json')
  })

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('setup-tfjs-node in a project without @tensorflow/tfjs says what to install, exit 1', () => {
    const project = join(scratch, 'app')
    rmSync(project, { recursive: true, force: true })
    spawnSync('mkdir', ['-p', project])
    writeFileSync(join(project, 'package.json'), '{"name":"app","private":true}\n')
    const r = cli('setup-tfjs-node', '--project', project, '--cache', join(scratch, 'cache'))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`node_modules/@tensorflow/tfjs is missing in ${project}`)
    expect(r.stderr).toContain('npm install @tensorflow/tfjs@4.22.0')
  })
})
