// The `files` suite of `npm run bench` (alone: `npm run bench:files`): normclip inspect/apply on a
// safetensors file against `cat FILE > /dev/null`, `cp FILE DEST` and `cp` followed by an fsync of
// DEST (`sync DEST`: the floor for apply, whose atomic write fsyncs its output before the rename),
// measured in the same run, warm cache, methods taking turns. Switches as every suite (bench/harness.ts): --quick (256 MiB,
// 3 rounds), --update (also bench/results/<cpu kind>/files.md). BENCH_FILES_DIR: where the
// temporary files go (default the OS temp folder).
//
// The file: float32 tensors of [4096, 4096] (64 MiB each) plus a bfloat16 one, all constrained
// (MaxNorm(1), axis 0: every unit over the bound, so every byte is rewritten). Writes
// files.md with the CPU (lscpu), medians and IQRs, and the ratios the issue sets:
// inspect ≥ 70% of cat's speed, apply ≥ 50% of cp's.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constrainModel, inspectModel, simdTier } from '../src'
import { benchArgs, loadNote, loadavg, machine, revision, writeResult } from './harness'
import { openSafetensors } from './safetensors'

const args = benchArgs()
const megabytes = args.quick ? 256 : 1024
const runs = args.quick ? 3 : 9
const dir = mkdtempSync(join(process.env['BENCH_FILES_DIR'] ?? tmpdir(), 'normclip-bench-files-'))

function makeFile(path: string): number {
  const tensors: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {}
  let at = 0
  const f32 = 4096 * 4096 * 4
  const count = Math.max(1, Math.floor((megabytes * 2 ** 20 - 2 ** 25) / f32))
  for (let i = 0; i < count; i++) {
    tensors[`layers.${i}.weight`] = { dtype: 'F32', shape: [4096, 4096], data_offsets: [at, at + f32] }
    at += f32
  }
  tensors['embed.weight'] = { dtype: 'BF16', shape: [4096, 4096], data_offsets: [at, at + 4096 * 4096 * 2] }
  at += 4096 * 4096 * 2
  const { fd, dataStart } = openSafetensors(path, tensors)
  // Random floats in ±1; the bfloat16 tensor holds their top halves (the low halves read as
  // bfloat16 would hold NaNs and infinities).
  const block = new Float32Array(2 ** 22)
  for (let i = 0; i < block.length; i++) block[i] = Math.random() * 2 - 1
  const bytes = Buffer.from(block.buffer)
  const halves = new Uint16Array(block.length)
  const words = new Uint32Array(block.buffer)
  for (let i = 0; i < block.length; i++) halves[i] = words[i]! >>> 16
  const half = Buffer.from(halves.buffer)
  const floatBytes = at - 4096 * 4096 * 2
  for (let left = floatBytes; left > 0; left -= bytes.length) writeSync(fd, bytes, 0, Math.min(left, bytes.length))
  for (let left = 4096 * 4096 * 2; left > 0; left -= half.length) writeSync(fd, half, 0, Math.min(left, half.length))
  closeSync(fd)
  return dataStart + at
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo)
}

async function time(f: () => Promise<unknown> | unknown): Promise<number> {
  const t = process.hrtime.bigint()
  await f()
  return Number(process.hrtime.bigint() - t) / 1e6
}

async function main(): Promise<void> {
  const loadStart = loadavg()
  const input = join(dir, 'model.safetensors')
  const bytes = makeFile(input)
  const out = join(dir, 'out.safetensors')
  const copy = join(dir, 'copy.safetensors')
  const constraint = { class_name: 'MaxNorm', config: { max_value: 1, axis: 0 } }
  const methods: Record<string, () => Promise<unknown> | unknown> = {
    cat: () => execFileSync('sh', ['-c', `cat '${input}' > /dev/null`]),
    'normclip inspect': () => inspectModel(input, { constraint }),
    cp: () => {
      rmSync(copy, { force: true })
      execFileSync('cp', [input, copy])
    },
    'cp + fsync': () => {
      rmSync(copy, { force: true })
      execFileSync('sh', ['-c', `cp '${input}' '${copy}' && sync '${copy}'`])
    },
    'normclip apply': async () => {
      rmSync(out, { force: true })
      await constrainModel(input, { constraint, out })
    },
  }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((k) => [k, []]))
  // One warm-up round (page cache, first-call costs), then rounds in turn.
  for (const f of Object.values(methods)) await f()
  for (let r = 0; r < runs; r++) for (const [name, f] of Object.entries(methods)) times[name]!.push(await time(f))
  const mb = bytes / 2 ** 20
  const row = (name: string): string => {
    const t = times[name]!
    return `| ${name} | ${median(t).toFixed(0)} ms | ${(quantile(t, 0.75) - quantile(t, 0.25)).toFixed(0)} ms | ${((mb / median(t)) * 1000).toFixed(0)} MiB/s |`
  }
  const ratio = (a: string, b: string): string => `${((median(times[b]!) / median(times[a]!)) * 100).toFixed(0)}%`
  const text = `# Weight files: normclip against cat and cp

\`npm run bench -- --suite=files\`${args.quick ? ' --quick' : ''} at ${revision()}: one safetensors file of ${mb.toFixed(0)} MiB
(${Math.floor((megabytes * 2 ** 20 - 2 ** 25) / (4096 * 4096 * 4))} float32 [4096, 4096] tensors and one bfloat16 [4096, 4096]),
warm page cache, all five commands taking turns, ${runs} rounds after a warm-up. Every tensor is
constrained (MaxNorm(1), axis 0; every unit is over the bound, so every byte is rewritten).
normclip runs in process (the library call under the CLI; the CLI adds Node's start-up, ~0.3 s).
apply includes what cp does not do: fsync of the output before its atomic rename; \`cp + fsync\`
(\`cp\` then \`sync DEST\`, one shell) shows what that fsync costs a plain copy.

${machine().line}; SIMD tier ${simdTier()}.
${loadNote(loadStart, loadavg())} The machine is shared by several agents: figures are noisy.

| method | median | IQR | throughput |
|---|---|---|---|
${row('cat')}
${row('normclip inspect')}
${row('cp')}
${row('cp + fsync')}
${row('normclip apply')}

- inspect at **${ratio('normclip inspect', 'cat')}** of cat's speed (goal ≥ 70%)
- apply at **${ratio('normclip apply', 'cp')}** of cp's speed (goal ≥ 50%), **${ratio('normclip apply', 'cp + fsync')}** of cp + fsync's
`
  const paths = writeResult(args, 'files.md', text)
  process.stdout.write(`${text}\nbench files: ${paths.join(', ')}\n`)
  rmSync(dir, { recursive: true, force: true })
}

main().catch((error: unknown) => {
  rmSync(dir, { recursive: true, force: true })
  throw error
})
