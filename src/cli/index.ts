#!/usr/bin/env node
// `normclip <command> [options]`: one dispatcher, one module per command under src/cli/.
// A new command is one line in COMMANDS. Its module exports `command: Command` and is loaded
// only when it runs, so `normclip --help` loads neither the native addon nor tfjs.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UsageError, type Command } from './command'

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  inspect: {
    summary: 'per-unit norms, constraints and NaN/Inf of model files (safetensors, npy/npz, tfjs, .keras, .h5)',
    load: async () => (await import('./inspect')).command,
  },
  apply: { summary: 'apply the constraints a model declares (or --constraint) and write it atomically', load: async () => (await import('./apply')).command },
  check: { summary: 'exit status 1 if a weight breaks its constraint or holds NaN/Inf (for CI)', load: async () => (await import('./check')).command },
  'setup-tfjs-node': {
    summary: 'build @tensorflow/tfjs-node from npm + PyPI into this project (Linux x64)',
    load: async () => (await import('./setup-tfjs-node')).command,
  },
}

function version(): string {
  // The same relative path from src/cli (tsx, tests) and dist/cli (the package).
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version
}

function overview(): string {
  const names = Object.keys(COMMANDS)
  const width = Math.max(...names.map((n) => n.length))
  return [
    `normclip ${version()}: Keras-exact weight constraints on a SIMD Rust core`,
    '',
    'Usage: normclip <command> [options]',
    '       normclip <command> --help',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]!.summary}`),
    '',
  ].join('\n')
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) {
      process.stdout.write((await COMMANDS[topic]!.load()).usage)
      return 0
    }
    process.stdout.write(overview())
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    process.stderr.write(`normclip: unknown command '${name}'\n\n${overview()}`)
    return 2
  }
  const command = await COMMANDS[name]!.load()
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (error) {
    process.stderr.write(`normclip ${name}: ${error instanceof Error ? error.message : String(error)}\n`)
    if (error instanceof UsageError) {
      process.stderr.write(`'normclip ${name} --help' lists the options\n`)
      return 2
    }
    return 1
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      process.stderr.write(`normclip: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exitCode = 1
    },
  )
}
