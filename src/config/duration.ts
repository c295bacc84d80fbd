/**
 * Parses a duration such as "500ms", "30s", "10m", "24h", "7d" (or a number of milliseconds).
 *
 * @example parseDuration("10m") // 600000
 * @returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const text = value.trim();
  let i = 0;
  while (i < text.length && ((text[i] >= "0" && text[i] <= "9") || text[i] === ".")) i++;
  if (i === 0) return undefined;
  const n = Number(text.slice(0, i));
  if (!Number.isFinite(n)) return undefined;
  const unit = text.slice(i).trim();
  const factor = UNITS[unit];
  return factor === undefined ? undefined : Math.round(n * factor);
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
