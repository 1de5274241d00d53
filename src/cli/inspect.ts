// `normclip inspect PATH…`: per weight, its constraint and per-unit norm statistics.
import type { Command } from './command'
import { COMMON_OPTIONS, EXIT_CODES, eachFile, fileFailure, parseFileOptions, withProgress, writeHtml } from './files-common'
import { inspectModel } from '../files/inspect'
import { formatTable, toJson } from '../files/report'

export const command: Command = {
  usage: `Usage: normclip inspect PATH… [options]

Reports every weight of each model file: name, shape, dtype, the constraint its layer declares,
per-unit norm statistics along that constraint's axis (or one norm per output unit of its layer:
min, median, max, how many units exceed the bound), NaN/Inf counts, and whether the constraint's
axis gives one norm per output unit (e.g. a Conv2D kernel constrained along axis 0).

PATH: a .safetensors, .npy or .npz file, a TensorFlow.js model.json (or its folder), a Keras 3
.keras or a Keras 2 / legacy .h5 file.
Files without layer configs report norms over every axis but the last (Keras' layout); pass
--axis -1 for PyTorch's [out, in].

${COMMON_OPTIONS}  --axis A        axes of the norms of weights without a norm constraint: 0, 0,1,2, -1, all
  --norms         include every unit's norm in --json

${EXIT_CODES}`,
  async run(args) {
    const o = parseFileOptions(args, ['--json', '--html', '--constraint', '--match', '--axis', '--norms', '--quiet'])
    try {
      const reports = await withProgress(o.quiet || o.json, (progress) =>
        eachFile(o.paths, (path, i) =>
          inspectModel(path, { constraint: o.constraint, match: o.match, axis: o.axis, onProgress: progress && ((d, t) => progress(i, d, t)) }),
        ),
      )
      writeHtml(o.html, reports)
      if (o.json)
        process.stdout.write(
          `${JSON.stringify(reports.length === 1 && o.paths.length === 1 ? toJson(reports[0]!, o.norms) : reports.map((r) => toJson(r, o.norms)), null, 2)}\n`,
        )
      else for (const r of reports) process.stdout.write(formatTable(r))
      return 0
    } catch (error) {
      return fileFailure(error, 'inspect')
    }
  },
}
