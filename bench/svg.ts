// A log-log line chart as plain SVG text (no dependency): throughput against tensor size.

export interface Series {
  label: string
  color: string
  /** SVG stroke-dasharray, e.g. '6 4'. */
  dash?: string
  width?: number
  points: Point[]
}

export interface Point {
  x: number
  y: number
  /** Marker shape; points with a shape other than 'circle' are not joined by the series' line. */
  shape?: 'circle' | 'square' | 'triangle'
}

export interface ChartOptions {
  title: string
  subtitle: string
  xLabel: string
  yLabel: string
  /** Case names written above the x axis at their positions. */
  ticks: { x: number; label: string }[]
  /** Extra legend lines explaining the marker shapes. */
  markerNotes?: { shape: 'square' | 'triangle'; label: string }[]
}

function marker(shape: Point['shape'], x: number, y: number, color: string): string {
  if (shape === 'square') return `<rect x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${color}"/>`
  if (shape === 'triangle')
    return `<path d="M${x.toFixed(1)},${(y - 5).toFixed(1)} L${(x + 5).toFixed(1)},${(y + 4).toFixed(1)} L${(x - 5).toFixed(1)},${(y + 4).toFixed(1)} Z" fill="${color}"/>`
  return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.2" fill="${color}"/>`
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${bytes / (1 << 30)} GiB`
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`
  if (bytes >= 1 << 10) return `${bytes / (1 << 10)} KiB`
  return `${bytes} B`
}

function formatRate(value: number): string {
  return value >= 1 ? String(value) : value.toPrecision(1)
}

export function logLogChart(series: readonly Series[], options: ChartOptions): string {
  const width = 1250
  const height = 700
  const left = 90
  const top = 78
  const plotWidth = 760
  const plotHeight = 520
  const all = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y))
  const xs = all.map((p) => p.x)
  const ys = all.map((p) => p.y)
  // x: powers of 4 bytes (tensor sizes); y: decades of GB/s.
  const xMin = 4 ** Math.floor(Math.log(Math.min(...xs)) / Math.log(4))
  const xMax = 4 ** Math.ceil(Math.log(Math.max(...xs) * 1.3) / Math.log(4))
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys)))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys)))
  const px = (x: number) => left + ((Math.log(x) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin))) * plotWidth
  const py = (y: number) => top + plotHeight - ((Math.log(y) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin))) * plotHeight
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="30" font-size="20" font-weight="bold">${escapeXml(options.title)}</text>`,
    `<text x="${left}" y="54" font-size="13" fill="#444">${escapeXml(options.subtitle)}</text>`,
  )
  // Grid and axis labels.
  for (let y = yMin; y <= yMax * 1.0001; y *= 10) {
    out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${py(y)}" y2="${py(y)}" stroke="#ccc"/>`)
    out.push(`<text x="${left - 8}" y="${py(y) + 4}" font-size="13" text-anchor="end">${formatRate(y)}</text>`)
    for (let k = 2; k < 10 && y * k < yMax; k++) {
      out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${py(y * k)}" y2="${py(y * k)}" stroke="#eee"/>`)
    }
  }
  for (let x = xMin; x <= xMax * 1.0001; x *= 4) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${top + plotHeight}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${px(x)}" y="${top + plotHeight + 20}" font-size="13" text-anchor="middle">${formatBytes(x)}</text>`)
  }
  for (const tick of options.ticks) {
    const x = px(tick.x)
    out.push(`<line x1="${x}" x2="${x}" y1="${top + plotHeight - 6}" y2="${top + plotHeight}" stroke="#333"/>`)
    out.push(`<text transform="translate(${x + 4},${top + plotHeight - 10}) rotate(-90)" font-size="11" fill="#555">${escapeXml(tick.label)}</text>`)
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`)
  out.push(
    `<text x="${left + plotWidth / 2}" y="${top + plotHeight + 48}" font-size="15" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(28,${top + plotHeight / 2}) rotate(-90)" font-size="15" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  )
  // Lines and markers.
  for (const s of series) {
    const points = s.points.filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y)).sort((a, b) => a.x - b.x)
    if (points.length === 0) continue
    const joined = points.filter((p) => (p.shape ?? 'circle') === 'circle')
    const path = joined.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : ''
    if (joined.length > 1) out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${dash} stroke-linejoin="round"/>`)
    for (const p of points) out.push(marker(p.shape, px(p.x), py(p.y), s.color))
  }
  // Legend, right of the plot.
  const legendX = left + plotWidth + 24
  series.forEach((s, i) => {
    const y = top + 10 + i * 24
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : ''
    out.push(`<line x1="${legendX}" x2="${legendX + 30}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="${s.width ?? 2}"${dash}/>`)
    out.push(`<circle cx="${legendX + 15}" cy="${y}" r="3.2" fill="${s.color}"/>`)
    out.push(`<text x="${legendX + 38}" y="${y + 4.5}" font-size="13">${escapeXml(s.label)}</text>`)
  })
  ;(options.markerNotes ?? []).forEach((note, i) => {
    const y = top + 10 + (series.length + 0.6 + i) * 24
    out.push(marker(note.shape, legendX + 15, y, '#333'))
    out.push(`<text x="${legendX + 38}" y="${y + 4.5}" font-size="13">${escapeXml(note.label)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
