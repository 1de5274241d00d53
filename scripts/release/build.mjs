// Builds the Linux platform packages this host can build (x64 and arm64, glibc and musl) with
// `napi build -x` (cargo-zigbuild + zig), checks each binary, and moves them into npm/<platform>/
// with `napi artifacts`, as the CI workflow's publish job does with the downloaded artifacts.
//
//   node scripts/release/build.mjs [platform...]     e.g. linux-arm64-gnu; default: all four
//
// glibc targets are linked against zig's glibc 2.17 stubs (the `.2.17` suffix), so every
// versioned symbol they import exists in glibc 2.17; musl targets are dynamic against musl's libc
// (napi adds `-C target-feature=-crt-static`). The `dist` profile strips symbols.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureTools } from './tools.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export const LINUX_TARGETS = [
  { platform: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', zigTarget: 'x86_64-unknown-linux-gnu.2.17', machine: 'x86-64', libc: 'glibc' },
  { platform: 'linux-x64-musl', triple: 'x86_64-unknown-linux-musl', zigTarget: 'x86_64-unknown-linux-musl', machine: 'x86-64', libc: 'musl' },
  { platform: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', zigTarget: 'aarch64-unknown-linux-gnu.2.17', machine: 'ARM aarch64', libc: 'glibc' },
  { platform: 'linux-arm64-musl', triple: 'aarch64-unknown-linux-musl', zigTarget: 'aarch64-unknown-linux-musl', machine: 'ARM aarch64', libc: 'musl' },
]
export const GLIBC_FLOOR = [2, 17]
const ARTIFACTS = join(root, 'artifacts')

const text = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8' })

/** What a published binary must be; returns the facts the rehearsal reports. Throws otherwise. */
export function checkBinary(file, target) {
  const problems = []
  const kind = text('file', ['-b', file])
  if (!kind.includes('ELF 64-bit LSB shared object')) problems.push(`not a 64-bit shared object: ${kind}`)
  if (!kind.includes(target.machine === 'x86-64' ? 'x86-64' : 'ARM aarch64')) problems.push(`wrong machine: ${kind}`)
  if (!/\bstripped\b/.test(kind) || /not stripped/.test(kind)) problems.push(`not stripped: ${kind}`)
  if (/\.symtab/.test(text('readelf', ['-S', '-W', file]))) problems.push('has a .symtab')
  const needed = [...text('readelf', ['-d', '-W', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
  const glibcVersions = [...new Set([...text('objdump', ['-T', file]).matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)].map((m) => m[0]))]
  const parse = (v) => v.slice(6).split('.').map(Number)
  const newer = (a, b) => (a[0] !== b[0] ? a[0] > b[0] : (a[1] ?? 0) > (b[1] ?? 0))
  let glibcMax = null
  for (const v of glibcVersions) if (!glibcMax || newer(parse(v), parse(glibcMax))) glibcMax = v
  if (target.libc === 'glibc') {
    const allowed = /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/
    for (const n of needed) if (!allowed.test(n)) problems.push(`needs ${n}`)
    if (!needed.includes('libc.so.6')) problems.push(`does not need libc.so.6: ${needed}`)
    if (glibcMax && newer(parse(glibcMax), GLIBC_FLOOR)) problems.push(`needs ${glibcMax}, newer than GLIBC_${GLIBC_FLOOR.join('.')}`)
  } else {
    // A musl binary names musl's libc and no glibc library or symbol version.
    for (const n of needed) if (!/^libc\.so$|^libc\.musl-(x86_64|aarch64)\.so\.1$|^libgcc_s\.so\.1$/.test(n)) problems.push(`needs ${n}`)
    if (glibcVersions.length > 0) problems.push(`imports glibc symbol versions ${glibcVersions.join(' ')}`)
  }
  if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`)
  return { file, bytes: statSync(file).size, needed, glibcMax, kind: kind.trim() }
}

export function build(platforms = LINUX_TARGETS.map((t) => t.platform)) {
  const tools = ensureTools()
  const targets = platforms.map((p) => {
    const t = LINUX_TARGETS.find((x) => x.platform === p)
    if (!t) throw new Error(`unknown platform ${p}; buildable here: ${LINUX_TARGETS.map((x) => x.platform).join(', ')}`)
    return t
  })
  rmSync(ARTIFACTS, { recursive: true, force: true })
  const results = []
  for (const t of targets) {
    const out = join(ARTIFACTS, `bindings-${t.triple}`)
    console.log(`== napi build -x --target ${t.zigTarget}`)
    const started = Date.now()
    execFileSync(
      process.execPath,
      [
        join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'),
        'build',
        '--platform',
        '--profile',
        'dist',
        '-x',
        '--target',
        t.zigTarget,
        '--manifest-path',
        'crates/normclip-node/Cargo.toml',
        '--package-json-path',
        'package.json',
        '--output-dir',
        out,
        '--no-js',
        '--dts',
        'index.d.ts',
      ],
      { cwd: root, stdio: 'inherit', env: { ...process.env, ...tools.env } },
    )
    // Only the binary is an artifact; the type definitions come from the host build.
    for (const f of readdirSync(out)) if (!f.endsWith('.node')) rmSync(join(out, f))
    const facts = checkBinary(join(out, `normclip.${t.platform}.node`), t)
    results.push({ ...t, ...facts, seconds: Math.round((Date.now() - started) / 1000) })
  }
  // As the publish job: artifacts/ -> npm/<platform>/, plus the license each package ships.
  // `napi artifacts` wants every configured target: a config of the built ones stands in for the
  // package.json `napi` field here (the publish job, with all seven, uses the field itself).
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const config = join(ARTIFACTS, 'napi.built-targets.json')
  writeFileSync(config, JSON.stringify({ ...pkg.napi, targets: targets.map((t) => t.triple) }))
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'), 'artifacts', '--config-path', config, '--output-dir', 'artifacts', '--npm-dir', 'npm'],
    { cwd: root, stdio: 'inherit' },
  )
  for (const t of targets) copyFileSync(join(root, 'LICENSE'), join(root, 'npm', t.platform, 'LICENSE'))
  for (const r of results) {
    console.log(
      `${r.platform.padEnd(17)} ${(r.bytes / 1024).toFixed(0).padStart(5)} KiB  ${r.libc === 'glibc' ? `max ${r.glibcMax}` : 'musl'}  needs ${r.needed.join(' ')}  (${r.seconds}s)`,
    )
  }
  return results.map((r) => ({ ...r, file: join(root, 'npm', r.platform, `normclip.${r.platform}.node`) }))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(ARTIFACTS, { recursive: true })
  build(process.argv.length > 2 ? process.argv.slice(2) : undefined)
}
