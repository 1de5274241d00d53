/**
 * Reports for people and machines: a table for the terminal, JSON, and a self-contained HTML page
 * with an SVG histogram of each constrained weight's per-unit norms against its bound.
 */
import type { Axis } from '../constraints'
import type { ModelReport, WeightReport } from './inspect'
import type { ConstrainResult } from './constrain'

const fmt = (n: number): string =>
  Number.isNaN(n)
    ? 'NaN'
    : !Number.isFinite(n)
      ? n > 0
        ? 'inf'
        : '-inf'
      : Math.abs(n) >= 1e4 || (Math.abs(n) < 1e-3 && n !== 0)
        ? n.toExponential(3)
        : n.toPrecision(4)

export function axisText(axis: Axis): string {
  return axis === null ? 'all' : Array.isArray(axis) ? `[${axis.join(',')}]` : String(axis)
}

function constraintText(w: WeightReport): string {
  if (w.constraint === null) return w.constraintProblem === null ? '-' : 'unsupported'
  const c = w.constraint.config
  const args = Object.entries(c)
    .filter(([k]) => k !== 'axis')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
  return `${w.constraint.className}(${args.join(', ')})${w.constraint.source === 'option' ? '*' : ''}`
}

/** A plain-text table, one line per weight, then notes (axis advice, problems). */
export function formatTable(report: ModelReport): string {
  const header = ['weight', 'shape', 'dtype', 'constraint', 'axis', 'units', 'min', 'median', 'max', 'over', 'nan/inf']
  const rows = report.weights.map((w) => [
    w.name,
    `[${w.shape.join(',')}]`,
    w.dtype,
    constraintText(w),
    w.norms === null ? '-' : axisText(w.axis),
    w.norms === null ? '-' : String(w.norms.units),
    w.norms === null ? '-' : fmt(w.norms.min),
    w.norms === null ? '-' : fmt(w.norms.median),
    w.norms === null ? '-' : fmt(w.norms.max),
    w.constraint === null ? '-' : w.constraint.className === 'NonNeg' ? `${w.negative} neg` : String(w.exceeding),
    w.nan + w.inf === 0 ? '0' : `${w.nan}/${w.inf}`,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i >= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const out = [`${report.path} (${report.format}, ${report.weights.length} weights, ${report.bytes} bytes)`, line(header), ...rows.map(line)]
  for (const w of report.weights) {
    if (w.axisAdvice !== null) out.push(`  axis: ${w.axisAdvice}`)
    if (w.constraintProblem !== null) out.push(`  ${w.name}: its constraint cannot be run: ${w.constraintProblem}`)
  }
  if (report.weights.some((w) => w.constraint?.source === 'option')) out.push('  * constraint given on the command line')
  out.push(report.violations === 0 ? '  every weight within its constraint' : `  ${report.violations} weight(s) break their constraint or hold NaN/Inf`)
  return `${out.join('\n')}\n`
}

export function formatChanges(result: ConstrainResult): string {
  const lines = [`${result.output}: ${result.changes.length} constrained weight(s)`]
  for (const c of result.changes) {
    const range = (s: { min: number; max: number } | null): string => (s === null ? '-' : `${fmt(s.min)}..${fmt(s.max)}`)
    lines.push(`  ${c.name}: ${c.constraint}, ${c.unitsRescaled} of ${c.units} units rescaled (norms ${range(c.before)} -> ${range(c.after)})`)
  }
  return `${lines.join('\n')}\n`
}

/** The report as JSON: everything but the per-unit norm arrays (unless `norms`). */
export function toJson(report: ModelReport, norms = false): unknown {
  return {
    ...report,
    weights: report.weights.map((w) => {
      const { unitNorms, ...rest } = w
      return norms && unitNorms !== null ? { ...rest, unitNorms: Array.from(unitNorms) } : rest
    }),
  }
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** An SVG histogram of `norms` with the bound drawn as lines. */
export function histogramSvg(norms: Float64Array, bound: { min: number; max: number } | null, title: string): string {
  const width = 520
  const height = 160
  const pad = { left: 40, right: 12, top: 18, bottom: 28 }
  const finite = Array.from(norms).filter(Number.isFinite)
  let lo = Math.min(...finite, bound?.min ?? Infinity)
  let hi = Math.max(...finite, bound?.max ?? -Infinity)
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0
    hi = 1
  }
  if (hi === lo) hi = lo + 1
  const span = hi - lo
  lo -= span * 0.02
  hi += span * 0.02
  const bins = 40
  const counts = new Array<number>(bins).fill(0)
  for (const n of finite) counts[Math.min(bins - 1, Math.floor(((n - lo) / (hi - lo)) * bins))]!++
  const top = Math.max(1, ...counts)
  const x = (v: number): number => pad.left + ((v - lo) / (hi - lo)) * (width - pad.left - pad.right)
  const plotH = height - pad.top - pad.bottom
  const bars = counts
    .map((c, i) => {
      const h = (c / top) * plotH
      const x0 = x(lo + (i / bins) * (hi - lo))
      const w = (width - pad.left - pad.right) / bins - 1
      const over = bound !== null && lo + ((i + 0.5) / bins) * (hi - lo) > bound.max
      return `<rect x="${x0.toFixed(1)}" y="${(pad.top + plotH - h).toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${over ? '#d9534f' : '#4a7fb5'}"/>`
    })
    .join('')
  const lines =
    bound === null
      ? ''
      : [...new Set([bound.min, bound.max])]
          .filter((b) => b > lo && b < hi)
          .map(
            (b) =>
              `<line x1="${x(b).toFixed(1)}" x2="${x(b).toFixed(1)}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#222" stroke-dasharray="4 3"/><text x="${(x(b) + 3).toFixed(1)}" y="${pad.top + 10}" font-size="10">bound ${fmt(b)}</text>`,
          )
          .join('')
  const ticks = [lo, (lo + hi) / 2, hi]
    .map((v) => `<text x="${x(v).toFixed(1)}" y="${height - 10}" font-size="10" text-anchor="middle">${fmt(v)}</text>`)
    .join('')
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">` +
    `<text x="${pad.left}" y="12" font-size="11">${escapeHtml(title)}: ${norms.length} unit norms, max ${top} per bin</text>` +
    `<line x1="${pad.left}" x2="${width - pad.right}" y1="${pad.top + plotH}" y2="${pad.top + plotH}" stroke="#888"/>` +
    bars +
    lines +
    ticks +
    `</svg>`
  )
}

/** One self-contained page (no scripts, no network) for one or more reports. */
export function formatHtml(reports: readonly ModelReport[]): string {
  const sections = reports.map((report) => {
    const rows = report.weights
      .map(
        (w) =>
          `<tr class="${w.violation ? 'bad' : ''}"><td>${escapeHtml(w.name)}</td><td>[${w.shape.join(', ')}]</td><td>${w.dtype}</td><td>${escapeHtml(constraintText(w))}</td>` +
          `<td>${w.norms === null ? '-' : axisText(w.axis)}</td><td>${w.norms === null ? '-' : `${fmt(w.norms.min)} / ${fmt(w.norms.median)} / ${fmt(w.norms.max)}`}</td>` +
          `<td>${w.constraint === null ? '-' : w.exceeding}</td><td>${w.nan}/${w.inf}</td></tr>`,
      )
      .join('\n')
    const pictures = report.weights
      .filter((w) => w.constraint !== null && w.unitNorms !== null && w.unitNorms.length > 0)
      .map(
        (w) =>
          `<figure>${histogramSvg(w.unitNorms!, w.bound, w.name)}${w.axisAdvice === null ? '' : `<figcaption>${escapeHtml(w.axisAdvice)}</figcaption>`}</figure>`,
      )
      .join('\n')
    return (
      `<section><h2>${escapeHtml(report.path)}</h2><p>${report.format}, ${report.weights.length} weights, ${report.violations} with a violation</p>` +
      `<table><tr><th>weight</th><th>shape</th><th>dtype</th><th>constraint</th><th>axis</th><th>norm min / median / max</th><th>over bound</th><th>NaN/Inf</th></tr>\n${rows}</table>\n` +
      `${pictures || '<p>No constrained weights.</p>'}</section>`
    )
  })
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>normclip report</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}tr.bad td{background:#fbe3e3}figure{display:inline-block;margin:8px}figcaption{max-width:520px;font-size:12px}</style>
</head><body><h1>normclip: per-unit norms</h1>
${sections.join('\n')}
</body></html>
`
}
