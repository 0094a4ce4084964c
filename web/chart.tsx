// Server-rendered SVG for the dashboard: the month's daily traffic as bars, and the used-traffic bar. No script, no
// inline style (the CSP allows neither): sizes are SVG attributes, colours come from /static/panel.css classes.
import type { Language } from '../lib/language'
import { daysOfMonth } from '../lib/period'
import { formatBytes, formatDate, formatNumber, t } from './i18n'

export interface ChartDay {
  day: string
  bytes: number
  messages: number
}

const W = 720
const H = 200
const LEFT = 8
const BOTTOM = 18
const TOP = 16

/** A bar per day of the month (days not yet come stay empty); each bar has a title with its figures. */
export function DailyChart({ lang, month, days, timeZone }: { lang: Language; month: string; days: ChartDay[]; timeZone: string }) {
  const all = daysOfMonth(month)
  const by = new Map(days.map((d) => [d.day, d]))
  const max = Math.max(0, ...days.map((d) => d.bytes))
  const slot = (W - LEFT) / all.length
  const plot = H - BOTTOM - TOP
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={t(lang, 'dash.chart')} data-max-bytes={String(max)}>
      <line class="axis" x1={LEFT} y1={H - BOTTOM} x2={W} y2={H - BOTTOM} />
      {max > 0 && <text x={LEFT} y={TOP - 4}>{formatBytes(lang, max)}</text>}
      {all.map((day, i) => {
        const d = by.get(day)
        const h = d && max > 0 ? Math.max(d.bytes > 0 ? 1 : 0, Math.round((d.bytes / max) * plot)) : 0
        const x = LEFT + i * slot + slot * 0.15
        const n = Number(day.slice(8))
        const date = new Date(`${day}T12:00:00Z`)
        return (
          <g>
            {h > 0 && (
              <rect class="day" x={x.toFixed(1)} y={H - BOTTOM - h} width={(slot * 0.7).toFixed(1)} height={h} data-day={day} data-bytes={String(d!.bytes)}>
                <title>{t(lang, 'dash.chart_day', { date: formatDate(lang, date, timeZone), bytes: formatBytes(lang, d!.bytes), messages: formatNumber(lang, d!.messages) })}</title>
              </rect>
            )}
            {(n === 1 || n % 5 === 0) && <text x={(x + slot * 0.35).toFixed(1)} y={H - 4} text-anchor="middle">{String(n)}</text>}
          </g>
        )
      })}
    </svg>
  )
}

/** The share of the allowance used, as a bar: accent below 80 %, warning from 80 %, full at 100 %. */
export function UsageBar({ percent, label }: { percent: number; label: string }) {
  const w = Math.max(0, Math.min(100, percent))
  const kind = percent >= 100 ? 'fill full' : percent >= 80 ? 'fill warn' : 'fill'
  return (
    <svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label={label}>
      <rect class="track" x="0" y="0" width="100" height="6" rx="3" />
      {w > 0 && <rect class={kind} x="0" y="0" width={w.toFixed(1)} height="6" rx="3" />}
    </svg>
  )
}
