// `npm run release:rehearse`: everything a release does that can run on a Linux x64 host, short of
// publishing. Run by .ci/run.
//
//  1. builds the four Linux platform packages (scripts/release/build.mjs: zig, glibc 2.17, musl,
//     stripped) and checks each binary;
//  2. runs normclip-core's tests for aarch64 (the NEON tier) under qemu-aarch64, release build;
//  3. stages the package as the publish job would (`napi prepublish`: optionalDependencies), packs
//     the main and platform packages, and checks the tarballs' contents and sizes;
//  4. serves the tarballs from a loopback registry and installs `normclip` into brand-new folders
//     whose PATH has no cargo or rustc: for this host (x64 glibc), and with npm's --cpu/--libc for
//     arm64 glibc, x64 musl and arm64 musl, checking that npm picked the right platform package;
//  5. there: CommonJS, ESM and strict `tsc --module nodenext` programs, a tfjs `fit` holding its
//     norms, `npx normclip setup-tfjs-node` (twice: cached, idempotent) and tfjs-node on it;
//     the arm64 package in an arm64 Node under qemu (outputs bit-identical to every x64 tier, the
//     same `fit`); the musl packages loaded by musl's dynamic loader.
//
// Ends with one line `N passed, N failed, N skipped` over its checks and the aarch64 tests.
//   --skip-core-aarch64   leave out step 2 (about 3 minutes)
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, LINUX_TARGETS } from './build.mjs'
import { ensureTools } from './tools.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const work = join(root, 'target', 'rehearsal')
const smokeDir = join(root, 'scripts', 'release', 'smoke')
const napi = join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const args = process.argv.slice(2)

const counts = { passed: 0, failed: 0, skipped: 0 }
const failures = []
function check(name, fn) {
  try {
    const detail = fn()
    counts.passed++
    console.log(`  ok   ${name}${detail ? `: ${detail}` : ''}`)
    return true
  } catch (error) {
    counts.failed++
    failures.push(name)
    console.log(`  FAIL ${name}: ${error instanceof Error ? error.message : error}`)
    return false
  }
}
const section = (title) => console.log(`\n== ${title}`)

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n')
    throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status ?? r.signal ?? r.error?.message}\n${out}`)
  }
  return r.stdout.trim()
}
const lastJson = (text) => JSON.parse(text.trim().split('\n').at(-1))
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`

// ---------------------------------------------------------------- 1. platform binaries
section('platform packages (napi build -x, zig)')
const tools = ensureTools()
const built = build()
for (const b of built) {
  check(
    `${b.platform} binary`,
    () => `${kib(b.bytes)}, ${b.libc === 'glibc' ? `newest symbol ${b.glibcMax}` : 'musl, no glibc symbols'}, NEEDED ${b.needed.join(' ')}, stripped`,
  )
}

// ---------------------------------------------------------------- 2. core tests on aarch64
section('normclip-core tests for aarch64 under qemu-aarch64 (release)')
if (args.includes('--skip-core-aarch64')) {
  counts.skipped++
  console.log('  skipped (--skip-core-aarch64)')
} else {
  const started = Date.now()
  const r = spawnSync('cargo', ['test', '-p', 'normclip-core', '--release', '--target', 'aarch64-unknown-linux-gnu', '--quiet'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER: 'aarch64-linux-gnu-gcc',
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER: `qemu-aarch64 -L ${tools.aarch64Sysroot}`,
    },
  })
  process.stdout.write(r.stdout)
  let seen = 0
  for (const m of r.stdout.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
    seen++
    counts.passed += Number(m[1])
    counts.failed += Number(m[2])
    counts.skipped += Number(m[3])
  }
  if (r.status !== 0 || seen === 0) {
    if (!/test result: FAILED/.test(r.stdout)) counts.failed++
    failures.push('core tests on aarch64')
  }
  console.log(`  core tests on aarch64: exit ${r.status}, ${Math.round((Date.now() - started) / 1000)}s`)
}

// ---------------------------------------------------------------- 3. stage, prepublish, pack
section('stage, napi prepublish, pack')
rmSync(work, { recursive: true, force: true })
const stage = join(work, 'stage')
const tarballs = join(work, 'tarballs')
mkdirSync(tarballs, { recursive: true })
run('npm', ['run', 'build:ts'], { cwd: root })
mkdirSync(stage, { recursive: true })
for (const entry of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist', 'scripts/setup-tfjs-node.sh', 'scripts/tfjs-node', 'npm']) {
  cpSync(join(root, entry), join(stage, entry), { recursive: true })
}
// The publish job lists all seven targets; here only the four built ones can be complete.
const stagedPkg = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8'))
stagedPkg.napi.targets = LINUX_TARGETS.map((t) => t.triple)
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(stagedPkg, null, 2)}\n`)
for (const dir of readdirSync(join(stage, 'npm'))) {
  if (!LINUX_TARGETS.some((t) => t.platform === dir)) rmSync(join(stage, 'npm', dir), { recursive: true })
}
run(process.execPath, [napi, 'prepublish', '-t', 'npm', '--no-gh-release', '--skip-optional-publish'], { cwd: stage })
const published = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8'))
check('prepublish wrote optionalDependencies', () => {
  const want = Object.fromEntries(LINUX_TARGETS.map((t) => [`${pkg.name}-${t.platform}`, pkg.version]))
  if (JSON.stringify(published.optionalDependencies) !== JSON.stringify(want)) throw new Error(JSON.stringify(published.optionalDependencies))
  return Object.keys(want).join(', ')
})

function pack(dir) {
  const [info] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], { cwd: dir }))
  return { ...info, path: join(tarballs, info.filename) }
}
const mainTarball = pack(stage)
const platformTarballs = LINUX_TARGETS.map((t) => ({ target: t, ...pack(join(stage, 'npm', t.platform)) }))

const MAIN_ALLOWED = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^CHANGELOG\.md$/,
  /^dist\/([\w-]+\/)*[\w-]+\.(js|d\.ts|js\.map)$/,
  /^dist\/index\.(mjs|d\.mts)$/,
  /^dist\/native\/index\.(js|d\.ts)$/,
  /^scripts\/setup-tfjs-node\.sh$/,
  /^scripts\/tfjs-node\/(package\.json|package-lock\.json|libtensorflow-requirements\.txt|verify\.cjs)$/,
]
check('main tarball: only the runtime files', () => {
  const stray = mainTarball.files.map((f) => f.path).filter((p) => !MAIN_ALLOWED.some((re) => re.test(p)))
  if (stray.length > 0) throw new Error(`unexpected: ${stray.join(', ')}`)
  for (const must of [
    'dist/index.js',
    'dist/index.mjs',
    'dist/index.d.ts',
    'dist/index.d.mts',
    'dist/cli/index.js',
    'dist/native/index.js',
    'LICENSE',
    'scripts/setup-tfjs-node.sh',
  ]) {
    if (!mainTarball.files.some((f) => f.path === must)) throw new Error(`missing ${must}`)
  }
  return `${mainTarball.entryCount} files`
})
check('main tarball: no tests, no addon, no TypeScript sources', () => {
  const bad = mainTarball.files.map((f) => f.path).filter((p) => /__test__|\.test\.|\.node$|(?<!\.d)\.m?ts$|^src\/|^crates\//.test(p))
  if (bad.length > 0) throw new Error(bad.join(', '))
})
check('main tarball: every source map carries its sources', () => {
  const maps = mainTarball.files.filter((f) => f.path.endsWith('.map'))
  for (const f of maps) {
    const map = JSON.parse(readFileSync(join(stage, f.path), 'utf8'))
    if (
      !Array.isArray(map.sourcesContent) ||
      map.sourcesContent.length !== map.sources.length ||
      map.sourcesContent.some((s) => typeof s !== 'string' || s.length === 0)
    ) {
      throw new Error(`${f.path}: sources ${map.sources} without their content`)
    }
  }
  return `${maps.length} maps`
})
for (const t of platformTarballs) {
  check(`${t.name} tarball: package.json, README.md, LICENSE and the binary`, () => {
    const got = t.files
      .map((f) => f.path)
      .sort()
      .join(' ')
    const want = ['LICENSE', 'README.md', `normclip.${t.target.platform}.node`, 'package.json'].sort().join(' ')
    if (got !== want) throw new Error(got)
    const m = JSON.parse(readFileSync(join(stage, 'npm', t.target.platform, 'package.json'), 'utf8'))
    const libc = t.target.libc
    if (m.version !== pkg.version || m.os?.[0] !== 'linux' || m.cpu?.[0] !== (t.target.machine === 'x86-64' ? 'x64' : 'arm64') || m.libc?.[0] !== libc) {
      throw new Error(`os ${m.os} cpu ${m.cpu} libc ${m.libc} version ${m.version}`)
    }
  })
}
console.log('\n  tarball                                  packed     unpacked  files')
for (const t of [mainTarball, ...platformTarballs]) {
  console.log(`  ${t.filename.padEnd(40)} ${kib(t.size).padStart(8)} ${kib(t.unpackedSize).padStart(10)}  ${String(t.entryCount).padStart(5)}`)
}

// ---------------------------------------------------------------- 4. install from a registry
section('install from a loopback registry into new folders, PATH without cargo/rustc')
const upstream = run('npm', ['config', 'get', 'registry'])
const registryProcess = spawn(
  process.execPath,
  [join(root, 'scripts', 'release', 'registry.mjs'), upstream, mainTarball.path, ...platformTarballs.map((t) => t.path)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
const registryOutput = createInterface({ input: registryProcess.stdout })[Symbol.asyncIterator]()
const registry = JSON.parse((await registryOutput.next()).value)
// No Rust on the PATH: only directories without cargo and rustc are kept.
const userPath = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((d) => d && !existsSync(join(d, 'cargo')) && !existsSync(join(d, 'rustc')))
  .join(delimiter)
const userEnv = {
  ...process.env,
  PATH: userPath,
  npm_config_registry: registry.url,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
}
for (const k of Object.keys(userEnv))
  if (/^(CARGO|RUSTUP|RUSTC)/.test(k) || k.startsWith('npm_package_') || k === 'npm_lifecycle_event' || k === 'npm_lifecycle_script' || k === 'INIT_CWD')
    delete userEnv[k]
check('the user PATH has neither cargo nor rustc', () => {
  for (const tool of ['cargo', 'rustc']) {
    const r = spawnSync(tool, ['--version'], { env: userEnv })
    if (!r.error) throw new Error(`${tool} runs`)
  }
})

const devVersion = (name) => (pkg.devDependencies[name] ?? '').replace(/^[\^~]/, '')
// The user folders live outside this repo: Node resolves packages from every ancestor's
// node_modules, and the repo's own (tfjs, tfjs-node) would stand in for what npm installed.
const userRoot = mkdtempSync(join(tmpdir(), 'normclip-rehearsal-'))
check('the new folders have no node_modules above them', () => {
  for (let d = dirname(userRoot); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) throw new Error(`${join(d, 'node_modules')} exists`)
    if (dirname(d) === d) return userRoot
  }
})
function install(name, deps, npmFlags = []) {
  const dir = join(userRoot, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: `rehearsal-${name}`, private: true, version: '0.0.0' }, null, 2)}\n`)
  for (const f of readdirSync(smokeDir)) cpSync(join(smokeDir, f), join(dir, f))
  const started = Date.now()
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...npmFlags, `${pkg.name}@${pkg.version}`, ...deps], { cwd: dir, env: userEnv })
  return { dir, seconds: Math.round((Date.now() - started) / 1000) }
}
const installed = (dir) => readdirSync(join(dir, 'node_modules')).filter((n) => n.startsWith(`${pkg.name}-`))
function picks(dir, want) {
  const got = installed(dir)
  if (got.length !== 1 || got[0] !== want) throw new Error(`installed ${got.join(', ') || 'no platform package'}, expected ${want}`)
  return want
}

const tfjsVersion = devVersion('@tensorflow/tfjs')
const x64 = install('app-x64', [`@tensorflow/tfjs@${tfjsVersion}`, `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`])
check(`npm install normclip (x64 glibc) picks ${pkg.name}-linux-x64-gnu`, () => `${picks(x64.dir, `${pkg.name}-linux-x64-gnu`)} (${x64.seconds}s)`)
const arm64 = install('app-arm64', [`@tensorflow/tfjs@${tfjsVersion}`], ['--cpu=arm64', '--os=linux', '--libc=glibc'])
check(`npm install --cpu=arm64 picks ${pkg.name}-linux-arm64-gnu`, () => picks(arm64.dir, `${pkg.name}-linux-arm64-gnu`))
const musl = install('app-x64-musl', [], ['--cpu=x64', '--os=linux', '--libc=musl'])
check(`npm install --libc=musl picks ${pkg.name}-linux-x64-musl`, () => picks(musl.dir, `${pkg.name}-linux-x64-musl`))
const arm64Musl = install('app-arm64-musl', [], ['--cpu=arm64', '--os=linux', '--libc=musl'])
check(`npm install --cpu=arm64 --libc=musl picks ${pkg.name}-linux-arm64-musl`, () => picks(arm64Musl.dir, `${pkg.name}-linux-arm64-musl`))
registryProcess.kill('SIGTERM')
const served = JSON.parse((await registryOutput.next()).value)
console.log(`  registry: ${served.local} local requests, ${served.upstream} passed upstream`)

// ---------------------------------------------------------------- 5. use it
section('x64: CommonJS, ESM, tsc --module nodenext, tfjs fit')
const inX64 = { cwd: x64.dir, env: userEnv }
const digests = {}
check('CommonJS: require(normclip) loads the platform package and computes', () => {
  const r = lastJson(run(process.execPath, ['smoke.cjs', `${pkg.name}-linux-x64-gnu`], inX64))
  digests[`x64 ${r.tier}`] = r.sha256
  return `${r.addon}, tier ${r.tier}`
})
check('ESM: import from normclip gives the same instance and outputs', () => {
  const r = lastJson(run(process.execPath, ['smoke.mjs'], inX64))
  if (r.sha256 !== Object.values(digests)[0]) throw new Error(`digest ${r.sha256} differs from CommonJS'`)
  return `${r.exports} named exports`
})
check('strict tsc --module nodenext (ESM and CJS programs, kernelConstraint: new MaxNorm(...)) compiles', () => {
  run(process.execPath, [join(x64.dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], inX64)
})
check('the compiled ESM program trains with its norms held', () => lastJson(run(process.execPath, ['out/app.mjs'], inX64)).maxUnitNorm.toPrecision(6))
check('the compiled CJS program runs', () => lastJson(run(process.execPath, ['out/app.cjs'], inX64)).constraint)
check('tfjs fit: constraintCallback() holds MaxNorm(0.5), without it the norms pass 0.5', () => {
  const r = lastJson(run(process.execPath, ['fit.cjs'], inX64))
  return `max unit norm ${r.withCallback.toFixed(4)} with, ${r.without.toFixed(4)} without`
})
for (const tier of ['portable', 'avx2', 'avx512']) {
  const r = spawnSync(process.execPath, ['smoke.cjs', `${pkg.name}-linux-x64-gnu`], { ...inX64, encoding: 'utf8', env: { ...userEnv, NORMCLIP_TIER: tier } })
  if (r.status !== 0) {
    counts.skipped++
    console.log(`  skip x64 tier ${tier}: not supported here`)
    continue
  }
  const out = lastJson(r.stdout)
  if (out.tier === tier) digests[`x64 ${tier}`] = out.sha256
}

section('npx normclip setup-tfjs-node in the new folder')
// The staging install inside the setup goes to the real registry; the cache is the one the
// repo's own setup step filled (.ci/run points both at ~/.cache/normclip/tfjs-node).
const { npm_config_registry: _loopback, ...tfjsNodeEnv } = {
  ...userEnv,
  NORMCLIP_TFJS_NODE_CACHE: process.env.NORMCLIP_TFJS_NODE_CACHE || join(root, '.cache', 'tfjs-node'),
}
check('npx normclip --version', () => {
  const v = run('npx', ['--no-install', 'normclip', '--version'], { cwd: x64.dir, env: userEnv })
  if (v !== pkg.version) throw new Error(v)
  return v
})
check('npx normclip setup-tfjs-node installs tfjs-node', () => {
  const started = Date.now()
  const r = spawnSync('npx', ['--no-install', 'normclip', 'setup-tfjs-node'], { cwd: x64.dir, env: tfjsNodeEnv, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`exit ${r.status}\n${r.stderr.trim().split('\n').slice(-10).join('\n')}`)
  return `${Math.round((Date.now() - started) / 1000)}s, cache ${tfjsNodeEnv.NORMCLIP_TFJS_NODE_CACHE}`
})
check('a second run is a no-op that says so', () => {
  const r = spawnSync('npx', ['--no-install', 'normclip', 'setup-tfjs-node'], { cwd: x64.dir, env: tfjsNodeEnv, encoding: 'utf8' })
  if (r.status !== 0 || !/already set up/.test(r.stderr)) throw new Error(`exit ${r.status}: ${r.stderr.trim()}`)
  return r.stderr.trim().split('\n').at(-1)
})
check('normclip constrains a tfjs-node tensor', () => {
  const code = `
    const tf = require('@tensorflow/tfjs-node'); const nc = require('normclip')
    if (tf.getBackend() !== 'tensorflow') throw new Error('backend ' + tf.getBackend())
    const out = new nc.MaxNorm({ maxValue: 1 }).apply(tf.tensor2d([[3, 0], [4, 0]]))
    const v = Array.from(out.dataSync())
    if (Math.abs(Math.hypot(v[0], v[2]) - 1) > 1e-6 || v[1] !== 0) throw new Error(String(v))
    console.log(tf.backend().binding.TF_Version)`
  return `TensorFlow ${run(process.execPath, ['-e', code], { ...inX64, env: { ...userEnv, TF_CPP_MIN_LOG_LEVEL: '2' } })
    .split('\n')
    .at(-1)}`
})

section('arm64: the installed package in an arm64 Node under qemu-aarch64')
const qemu = ['-L', tools.aarch64Sysroot, tools.arm64Node]
check('arm64 Node runs', () => run('qemu-aarch64', [...qemu, '-p', 'process.arch + " " + process.version'], { cwd: arm64.dir, env: userEnv }))
check('CommonJS smoke: outputs bit-identical to every x64 tier', () => {
  const r = lastJson(run('qemu-aarch64', [...qemu, 'smoke.cjs', `${pkg.name}-linux-arm64-gnu`], { cwd: arm64.dir, env: userEnv }))
  digests[`arm64 ${r.tier}`] = r.sha256
  const distinct = new Set(Object.values(digests))
  if (distinct.size !== 1) throw new Error(JSON.stringify(digests, null, 1))
  return `${Object.keys(digests).join(', ')}: sha256 ${r.sha256.slice(0, 16)}…`
})
check('tfjs fit under qemu: constraintCallback() holds MaxNorm(0.5)', () => {
  const r = lastJson(run('qemu-aarch64', [...qemu, 'fit.cjs'], { cwd: arm64.dir, env: userEnv }))
  return `${r.arch} ${r.tier}: max unit norm ${r.withCallback.toFixed(4)} with, ${r.without.toFixed(4)} without`
})

section("musl: the installed packages under musl's dynamic loader")
const harness = join(work, 'musl-dlopen')
run('musl-gcc', ['-O2', '-o', harness, join(smokeDir, 'musl-dlopen.c')])
const harnessArm64 = join(work, 'musl-dlopen-arm64')
run(tools.zig, ['cc', '-target', 'aarch64-linux-musl', '-dynamic', '-O2', '-o', harnessArm64, join(smokeDir, 'musl-dlopen.c')])
const muslNode = (dir, platform) => join(dir, 'node_modules', `${pkg.name}-${platform}`, `normclip.${platform}.node`)
check('linux-x64-musl loads under /lib/ld-musl-x86_64.so.1 (RTLD_NOW)', () => run(harness, [muslNode(musl.dir, 'linux-x64-musl')]))
check('the glibc x64 binary does not (the check can fail)', () => {
  const r = spawnSync(harness, [muslNode(x64.dir, 'linux-x64-gnu')], { encoding: 'utf8' })
  if (r.status === 0) throw new Error('a glibc binary loaded under musl')
  return r.stderr.trim().replace(/^.*: /, '')
})
check("linux-arm64-musl loads under musl's aarch64 loader in qemu (RTLD_NOW)", () =>
  run('qemu-aarch64', ['-L', tools.muslArm64Sysroot, harnessArm64, muslNode(arm64Musl.dir, 'linux-arm64-musl')]),
)

// ---------------------------------------------------------------- summary
section('summary')
for (const b of built) console.log(`  ${b.platform.padEnd(17)} ${kib(b.bytes).padStart(8)}  ${b.libc === 'glibc' ? `glibc >= ${b.glibcMax.slice(6)}` : 'musl'}`)
if (failures.length > 0) console.log(`  failed: ${failures.join('; ')}`)
console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`)
if (failures.length === 0) rmSync(userRoot, { recursive: true, force: true })
else console.log(`  the folders are kept for a look: ${userRoot}`)
process.exit(counts.failed > 0 || failures.length > 0 ? 1 : 0)
