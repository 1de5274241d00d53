// Child process of files-big.test.ts and files-kill.test.ts: runs one inspect or apply and prints
// its peak RSS, so a test measures the memory of exactly that work (a fresh process), or kills it.
import { constrainModel, inspectModel } from '../../src'

async function main(): Promise<void> {
  const [mode, input, constraintJson, out] = process.argv.slice(2)
  // `null`: the constraints the model declares; `--in-place` as the output: replace the input.
  const constraint = (JSON.parse(constraintJson!) as unknown) ?? undefined
  const target = out === '--in-place' ? { inPlace: true } : { out: out! }
  const start = Date.now()
  const result =
    mode === 'apply'
      ? {
          changes: (await constrainModel(input!, { constraint, match: constraint === undefined ? undefined : /weight$/, ...target })).changes.map((c) => ({
            name: c.name,
            unitsRescaled: c.unitsRescaled,
          })),
        }
      : {
          weights: (await inspectModel(input!, { constraint, match: /weight$/ })).weights.map((w) => ({
            name: w.name,
            exceeding: w.exceeding,
            max: w.norms?.max ?? null,
            nan: w.nan,
          })),
        }
  // maxRSS is in KiB.
  process.stdout.write(JSON.stringify({ ...result, maxRssBytes: process.resourceUsage().maxRSS * 1024, ms: Date.now() - start }))
}

void main()
