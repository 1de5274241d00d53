// `normclip check PATH…`: exit status 1 when a weight breaks its declared constraint (for CI).
import type { Command } from './command'
import { COMMON_OPTIONS, EXIT_CODES, eachFile, fileFailure, parseFileOptions, withProgress, writeHtml } from './files-common'
import { inspectModel } from '../files/inspect'
import { formatTable, toJson } from '../files/report'

export const command: Command = {
  usage: `Usage: normclip check PATH… [options]

The report of 'normclip inspect', and exit status 1 if any weight breaks its constraint (a unit
norm outside the bound, beyond the rounding of its dtype; a negative weight under NonNeg) or
holds NaN/Inf. For CI pipelines.

${COMMON_OPTIONS}
${EXIT_CODES}`,
  async run(args) {
    const o = parseFileOptions(args, ['--json', '--html', '--constraint', '--match', '--quiet'])
    try {
      const reports = await withProgress(o.quiet || o.json, (progress) =>
        eachFile(o.paths, (path, i) => inspectModel(path, { constraint: o.constraint, match: o.match, onProgress: progress && ((d, t) => progress(i, d, t)) })),
      )
      writeHtml(o.html, reports)
      if (o.json) process.stdout.write(`${JSON.stringify(o.paths.length === 1 ? toJson(reports[0]!) : reports.map((r) => toJson(r)), null, 2)}\n`)
      else for (const r of reports) process.stdout.write(formatTable(r))
      return reports.some((r) => r.violations > 0) ? 1 : 0
    } catch (error) {
      return fileFailure(error, 'check')
    }
  },
}
