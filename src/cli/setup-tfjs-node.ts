// `normclip setup-tfjs-node`: the repo's scripts/setup-tfjs-node.sh, shipped in the package, run
// for the user's project. tfjs-node's own install downloads libtensorflow from a host that many
// build machines cannot reach; the script builds it from npm + PyPI instead (see its header).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { UsageError, type Command } from './command'

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'setup-tfjs-node.sh')

function defaultCache(): string {
  if (process.env.NORMCLIP_TFJS_NODE_CACHE) return process.env.NORMCLIP_TFJS_NODE_CACHE
  // Per user, not per project: ~580 MB that every project on the machine can share.
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'normclip', 'tfjs-node')
}

function nearestProject(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return resolve(from)
  }
}

export const command: Command = {
  usage: `Usage: normclip setup-tfjs-node [--project DIR] [--cache DIR]

Installs a working @tensorflow/tfjs-node 4.22.0 into DIR/node_modules without running its
install script, which downloads libtensorflow from a host many machines cannot reach:
libtensorflow 2.12.1 comes from the tensorflow-cpu wheel on PyPI, and the binding is built from
tfjs-node's own sources against the local Node headers. Idempotent: a second run checks the
installed copy and exits in seconds.

  --project DIR  the project to install into (default: the nearest folder with a package.json,
                 here ${nearestProject(process.cwd())}); it must have @tensorflow/tfjs 4.22.0
  --cache DIR    build cache, ~580 MB (default: $NORMCLIP_TFJS_NODE_CACHE or
                 ${defaultCache()})

What it cannot do:
  - run anywhere but Linux x64 (the wheel is manylinux x86_64): elsewhere use
    'npm install @tensorflow/tfjs-node' (it needs its download host) or the wasm backend;
  - build without python3, make, g++ and binutils (nm) on the PATH;
  - survive 'npm install': npm prunes packages missing from package.json, so run this again
    afterwards (it restores from the cache in seconds), e.g. from your "postinstall" script.
`,
  async run(args) {
    let project = nearestProject(process.cwd())
    let cache = defaultCache()
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!
      const value = (): string => {
        const v = args[++i]
        if (v === undefined || v.startsWith('--')) throw new UsageError(`${arg} needs a directory`)
        return v
      }
      if (arg === '--project') project = resolve(value())
      else if (arg === '--cache') cache = resolve(value())
      else throw new UsageError(`unknown option '${arg}'`)
    }
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new Error(
        `only Linux x64 is supported (libtensorflow comes from the manylinux x86_64 tensorflow-cpu wheel), this is ${process.platform}-${process.arch}: ` +
          `install @tensorflow/tfjs-node with npm where its download host is reachable, or use @tensorflow/tfjs-backend-wasm`,
      )
    }
    if (!existsSync(join(project, 'package.json'))) throw new UsageError(`--project ${project} has no package.json`)
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: this normclip install is incomplete`)
    return await new Promise<number>((resolvePromise, reject) => {
      const child = spawn('bash', [SCRIPT], {
        stdio: 'inherit',
        env: { ...process.env, NORMCLIP_PROJECT_DIR: project, NORMCLIP_TFJS_NODE_CACHE: cache },
      })
      child.on('error', (error) => reject(new Error(`cannot run bash (${error.message}): the setup is a bash script`)))
      child.on('close', (code, signal) => resolvePromise(signal ? 1 : (code ?? 1)))
    })
  },
}
