// `normclip apply PATH… (--out DEST | --in-place)`: the declared (or given) constraints, written atomically.
import { existsSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { UsageError, type Command } from './command'
import { COMMON_OPTIONS, EXIT_CODES, eachFile, fileFailure, parseFileOptions, withProgress, writeHtml } from './files-common'
import { constrainModel } from '../files/constrain'
import { formatChanges, toJson } from '../files/report'

export const command: Command = {
  usage: `Usage: normclip apply PATH… (--out DEST | --in-place) [options]

Applies the constraints each model's layers declare — or --constraint, for the weights --match
selects — and writes the result. Every other tensor and every other byte is left as it was.
Prints, per constrained weight, how many units were rescaled.

Writes are atomic: a temporary file in the destination's folder, synced, renamed into place; a
tfjs model's shards and model.json change as one unit (in place, the new shards get new names
and model.json's rename is the moment of change). Killed at any moment, the old or the new
model is there, never a mix. The input is never modified without --in-place.

  --out DEST      a file, or a folder (tfjs models; several inputs: DEST/<name> each)
  --in-place      replace each input
  --dequantize    write constrained tfjs-quantized weights as float32 (refused otherwise)
${COMMON_OPTIONS}
${EXIT_CODES}`,
  async run(args) {
    const o = parseFileOptions(args, ['--out', '--in-place', '--dequantize', '--json', '--html', '--constraint', '--match', '--quiet'])
    if ((o.out === undefined) === !o.inPlace) throw new UsageError('give exactly one of --out DEST and --in-place')
    if (o.out !== undefined && o.paths.length > 1 && !(existsSync(o.out) && statSync(o.out).isDirectory())) {
      throw new UsageError('with several inputs, --out must be an existing folder')
    }
    try {
      const results = await withProgress(o.quiet || o.json, (progress) =>
        eachFile(o.paths, (path, i) =>
          constrainModel(path, {
            constraint: o.constraint,
            match: o.match,
            dequantize: o.dequantize,
            inPlace: o.inPlace,
            out: o.out === undefined ? undefined : o.paths.length > 1 ? join(o.out, basename(path)) : o.out,
            onProgress: progress && ((d, t) => progress(i, d, t)),
          }),
        ),
      )
      writeHtml(
        o.html,
        results.map((r) => r.report),
      )
      if (o.json) {
        const json = results.map((r) => ({ output: r.output, changes: r.changes, report: toJson(r.report) }))
        process.stdout.write(`${JSON.stringify(o.paths.length === 1 ? json[0] : json, null, 2)}\n`)
      } else for (const r of results) process.stdout.write(formatChanges(r))
      return 0
    } catch (error) {
      return fileFailure(error, 'apply')
    }
  },
}
