/**
 * Another Node.js major version, from the npm registry (`node-<platform>-<arch>` packages carry
 * the official binaries), cached under `.cache/node-<major>/`. The adversarial suite runs its
 * async attacks under it too: `ArrayBuffer.prototype.transfer` exists from Node 22 on, and
 * normclip's addon (Node-API, ABI-stable) must be as safe there.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..', '..')

/** The pinned version per major: a fixed binary, so results do not move under us. */
const PINNED: Record<number, string> = { 22: '22.23.5' }

/** The path of that Node's binary, or a reason why there is none here. */
export function otherNode(major: number): { node: string } | { skip: string } {
  const version = PINNED[major]
  if (version === undefined) return { skip: `no pinned Node ${major}` }
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
    return { skip: `node-${process.platform}-${process.arch} is not fetched here (Linux x64/arm64 only)` }
  }
  const dir = join(root, '.cache', `node-${version}`)
  const node = join(dir, 'package', 'bin', 'node')
  if (existsSync(node)) return { node }
  try {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    execFileSync('npm', ['pack', `node-linux-${process.arch}@${version}`, '--silent', '--pack-destination', dir], {
      stdio: 'pipe',
      timeout: 300_000,
    })
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))
    if (tarball === undefined) return { skip: 'npm pack produced no tarball' }
    execFileSync('tar', ['xzf', tarball], { cwd: dir, stdio: 'pipe' })
    rmSync(join(dir, tarball))
    return existsSync(node) ? { node } : { skip: `the package has no bin/node` }
  } catch (error) {
    return {
      skip: `could not fetch node-linux-${process.arch}@${version} from the npm registry: ${(error as Error).message.split('\n')[0]}`,
    }
  }
}
