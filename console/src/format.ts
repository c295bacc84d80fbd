/** Dates, durations and numbers for people (local time; the exact ISO time is in `datetime`/`title`). */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const precise = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "medium",
});
const numbers = new Intl.NumberFormat();

export function toDate(t: string | number): Date {
  return new Date(t);
}

export function formatDate(t: string | number | null | undefined, withSeconds = false): string {
  if (t === null || t === undefined || t === "") return "Never";
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return (withSeconds ? precise : dateTime).format(d);
}

export function formatNumber(n: number): string {
  return numbers.format(n);
}

/** "in 3 minutes", "2 hours ago". */
export function relative(t: string | number, now = Date.now()): string {
  const ms = toDate(t).getTime() - now;
  const abs = Math.abs(ms);
  const units: [number, Intl.RelativeTimeFormatUnit][] = [
    [86_400_000, "day"],
    [3_600_000, "hour"],
    [60_000, "minute"],
    [1000, "second"],
  ];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [size, unit] of units) {
    if (abs >= size || unit === "second") return rtf.format(Math.round(ms / size), unit);
  }
  return "";
}

/** "45 s", "12 min", "3 h", "2 d". */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

/** "alice, bob" or the fallback. */
export function list(values: readonly string[] | undefined, none = "None"): string {
  return values && values.length > 0 ? values.join(", ") : none;
}

/** Splits "a, b  c" into ["a", "b", "c"] (commas or spaces), without empty or duplicate entries. */
export function splitList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter((s) => s !== ""))];
}

/** A long id shortened for a narrow column (the full value stays in `title`). */
export function short(id: string, keep = 10): string {
  return id.length > keep + 1 ? `${id.slice(0, keep)}…` : id;
}
