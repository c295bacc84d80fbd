/**
 * Allowed vs denied over time as stacked SVG bars, with a text summary (the chart's accessible
 * description) and the same numbers as a table for screen readers and keyboard users.
 */
import { formatDate, formatNumber } from "../format";

export interface TimePoint {
  /** Start of the bucket, ms since the epoch. */
  start: number;
  allow: number;
  deny: number;
}

const W = 640;
const H = 160;
const PAD_TOP = 4;

/** "1,234 allowed and 5 denied from … to …; busiest …" */
export function summarize(points: TimePoint[], bucketMs: number): string {
  if (points.length === 0) return "No records in this time range.";
  const allow = points.reduce((n, p) => n + p.allow, 0);
  const deny = points.reduce((n, p) => n + p.deny, 0);
  const from = formatDate(points[0].start);
  const to = formatDate(points[points.length - 1].start + bucketMs);
  let text = `${formatNumber(allow)} allowed and ${formatNumber(deny)} denied from ${from} to ${to}.`;
  if (allow + deny > 0) {
    const busiest = points.reduce((a, b) => (b.allow + b.deny > a.allow + a.deny ? b : a));
    text += ` Busiest: ${formatDate(busiest.start)} with ${formatNumber(busiest.allow + busiest.deny)}.`;
    const denied = points.filter((p) => p.deny > 0);
    if (denied.length > 0) {
      const worst = denied.reduce((a, b) => (b.deny > a.deny ? b : a));
      text += ` Most denied: ${formatDate(worst.start)} with ${formatNumber(worst.deny)}.`;
    }
  }
  return text;
}

function niceMax(n: number): number {
  if (n <= 4) return Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return n;
}

export function Timeline({
  points,
  bucketMs,
  title,
  id,
}: {
  points: TimePoint[];
  bucketMs: number;
  title: string;
  id: string;
}) {
  const summary = summarize(points, bucketMs);
  const max = niceMax(Math.max(0, ...points.map((p) => p.allow + p.deny)));
  const plotH = H - PAD_TOP;
  const bw = points.length > 0 ? W / points.length : W;
  const y = (v: number) => PAD_TOP + plotH - (v / max) * plotH;
  const span = points.length * bucketMs;
  const tick = new Intl.DateTimeFormat(
    undefined,
    span > 7 * 86_400_000
      ? { month: "short", day: "numeric" }
      : span > 86_400_000
        ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
        : { timeStyle: "short" },
  );
  const short = (t: number) => tick.format(new Date(t));
  return (
    <figure class="timeline" data-testid={`${id}-chart`}>
      <figcaption id={`${id}-summary`}>
        <strong>{title}.</strong> {summary}
      </figcaption>
      <div class="legend" aria-hidden="true">
        <span class="swatch allow" /> Allowed <span class="swatch deny" /> Denied
      </div>
      <div class="chart-frame">
        <span class="y-max" aria-hidden="true">
          {formatNumber(max)}
        </span>
        <svg
          viewBox={`0 0 ${W} ${H}`}
          role="img"
          aria-labelledby={`${id}-summary`}
          preserveAspectRatio="none"
          class="chart"
        >
          <title>{title}</title>
          <line class="grid" x1={0} x2={W} y1={y(max)} y2={y(max)} />
          <line class="axis" x1={0} x2={W} y1={y(0)} y2={y(0)} />
          {points.map((p, i) => {
            const x = i * bw + (bw > 4 ? 1 : 0);
            const w = Math.max(1, bw - (bw > 4 ? 2 : 0));
            return (
              <g key={p.start}>
                <title>
                  {formatDate(p.start)}: {p.allow} allowed, {p.deny} denied
                </title>
                {p.allow > 0 && (
                  <rect class="bar allow" x={x} width={w} y={y(p.allow)} height={y(0) - y(p.allow)} />
                )}
                {p.deny > 0 && (
                  <rect
                    class="bar deny"
                    x={x}
                    width={w}
                    y={y(p.allow + p.deny)}
                    height={y(p.allow) - y(p.allow + p.deny)}
                  />
                )}
              </g>
            );
          })}
        </svg>
      </div>
      {points.length > 0 && (
        <div class="ticks" aria-hidden="true">
          <span>{short(points[0].start)}</span>
          <span>{short(points[Math.floor(points.length / 2)].start)}</span>
          <span>{short(points[points.length - 1].start + bucketMs)}</span>
        </div>
      )}
      <details class="chart-table">
        <summary>Show the numbers as a table</summary>
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{title}</caption>
            <thead>
              <tr>
                <th scope="col">From</th>
                <th scope="col">Allowed</th>
                <th scope="col">Denied</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p) => (
                <tr key={p.start}>
                  <th scope="row">{formatDate(p.start)}</th>
                  <td>{formatNumber(p.allow)}</td>
                  <td>{formatNumber(p.deny)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
