// Date and time helpers for the Cosmos DB date functions. Cosmos represents a date-time as an
// ISO 8601 UTC string with seven fractional digits ("2020-07-03T00:00:00.0000000Z"), ticks are
// 100-nanosecond units since the Unix epoch, timestamps are milliseconds since the Unix epoch.
// Internally a date-time is a bigint of ticks since the Unix epoch.

const TICKS_PER_MS = 10_000n;
const TICKS_PER_SECOND = 10_000_000n;
const TICKS_PER_MINUTE = 60n * TICKS_PER_SECOND;
const TICKS_PER_HOUR = 60n * TICKS_PER_MINUTE;
const TICKS_PER_DAY = 24n * TICKS_PER_HOUR;
/** 0001-01-01T00:00:00 and 9999-12-31T23:59:59.9999999, as ticks since the Unix epoch. */
const MIN_TICKS = -621355968000000000n;
const MAX_TICKS = 2534023007999999999n;

/** YYYY-MM-DDThh:mm:ss with an optional fraction (up to 7 digits) and an optional Z. */
const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?Z?$/;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function daysFromCivil(y: number, m: number, d: number): number {
  // Howard Hinnant's algorithm: days since 1970-01-01 for a proleptic Gregorian date.
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z0: number): { y: number; m: number; d: number } {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const y = yoe + era * 400;
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return { y: m <= 2 ? y + 1 : y, m, d };
}

function daysInMonth(y: number, m: number): number {
  return [
    31,
    (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28,
    31,
    30,
    31,
    30,
    31,
    31,
    30,
    31,
    30,
    31,
  ][m - 1];
}

export interface Parts {
  y: number;
  m: number;
  d: number;
  hh: number;
  mi: number;
  ss: number;
  /** 0..9999999 ticks within the second */
  frac: number;
}

export function fromParts(p: Parts): bigint | undefined {
  if (p.y < 1 || p.y > 9999 || p.m < 1 || p.m > 12 || p.d < 1 || p.d > daysInMonth(p.y, p.m))
    return undefined;
  if (
    p.hh < 0 ||
    p.hh > 23 ||
    p.mi < 0 ||
    p.mi > 59 ||
    p.ss < 0 ||
    p.ss > 59 ||
    p.frac < 0 ||
    p.frac > 9_999_999
  )
    return undefined;
  const days = BigInt(daysFromCivil(p.y, p.m, p.d));
  return (
    days * TICKS_PER_DAY +
    BigInt(p.hh) * TICKS_PER_HOUR +
    BigInt(p.mi) * TICKS_PER_MINUTE +
    BigInt(p.ss) * TICKS_PER_SECOND +
    BigInt(p.frac)
  );
}

export function toParts(ticks: bigint): Parts {
  const days = floorDiv(ticks, TICKS_PER_DAY);
  let rem = ticks - days * TICKS_PER_DAY;
  const { y, m, d } = civilFromDays(Number(days));
  const hh = Number(rem / TICKS_PER_HOUR);
  rem %= TICKS_PER_HOUR;
  const mi = Number(rem / TICKS_PER_MINUTE);
  rem %= TICKS_PER_MINUTE;
  const ss = Number(rem / TICKS_PER_SECOND);
  const frac = Number(rem % TICKS_PER_SECOND);
  return { y, m, d, hh, mi, ss, frac };
}

/** Parses "YYYY-MM-DDThh:mm:ss.fffffffZ" (fraction and Z optional); anything else is not a date-time. */
export function parseDateTime(s: string): bigint | undefined {
  const m = ISO.exec(s);
  if (!m) return undefined;
  return fromParts({
    y: Number(m[1]),
    m: Number(m[2]),
    d: Number(m[3]),
    hh: Number(m[4]),
    mi: Number(m[5]),
    ss: Number(m[6]),
    frac: Number((m[7] ?? "").padEnd(7, "0")),
  });
}

function pad(n: number, w: number): string {
  return String(n).padStart(w, "0");
}

export function formatDateTime(ticks: bigint): string | undefined {
  if (ticks < MIN_TICKS || ticks > MAX_TICKS) return undefined;
  const p = toParts(ticks);
  return `${pad(p.y, 4)}-${pad(p.m, 2)}-${pad(p.d, 2)}T${pad(p.hh, 2)}:${pad(p.mi, 2)}:${pad(p.ss, 2)}.${pad(p.frac, 7)}Z`;
}

export function ticksFromMs(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * TICKS_PER_MS;
}

export function msFromTicks(ticks: bigint): number {
  return Number(floorDiv(ticks, TICKS_PER_MS));
}

export type DatePart =
  | "year"
  | "month"
  | "day"
  | "hour"
  | "minute"
  | "second"
  | "millisecond"
  | "microsecond"
  | "nanosecond";

const PART_NAMES: Record<string, DatePart> = {
  year: "year",
  yyyy: "year",
  yy: "year",
  month: "month",
  mm: "month",
  m: "month",
  day: "day",
  dd: "day",
  d: "day",
  hour: "hour",
  hh: "hour",
  minute: "minute",
  mi: "minute",
  n: "minute",
  second: "second",
  ss: "second",
  s: "second",
  millisecond: "millisecond",
  ms: "millisecond",
  microsecond: "microsecond",
  mcs: "microsecond",
  nanosecond: "nanosecond",
  ns: "nanosecond",
};

export function datePart(name: string): DatePart | undefined {
  const key = name.toLowerCase();
  return Object.hasOwn(PART_NAMES, key) ? PART_NAMES[key] : undefined;
}

const FIXED_TICKS: Partial<Record<DatePart, bigint>> = {
  day: TICKS_PER_DAY,
  hour: TICKS_PER_HOUR,
  minute: TICKS_PER_MINUTE,
  second: TICKS_PER_SECOND,
  millisecond: TICKS_PER_MS,
  microsecond: 10n,
};

export function addToDateTime(part: DatePart, n: number, ticks: bigint): bigint | undefined {
  if (!Number.isInteger(n)) return undefined;
  if (part === "year" || part === "month") {
    const p = toParts(ticks);
    const months = p.y * 12 + (p.m - 1) + (part === "year" ? n * 12 : n);
    const y = Math.floor(months / 12);
    const m = months - y * 12 + 1;
    if (y < 1 || y > 9999) return undefined;
    const d = Math.min(p.d, daysInMonth(y, m));
    return fromParts({ ...p, y, m, d });
  }
  if (part === "nanosecond") return ticks + BigInt(Math.trunc(n / 100));
  const unit = FIXED_TICKS[part] as bigint;
  const out = ticks + BigInt(n) * unit;
  return out < MIN_TICKS || out > MAX_TICKS ? undefined : out;
}

/** Number of `part` boundaries crossed from start to end (like T-SQL DATEDIFF). */
export function diffDateTime(part: DatePart, start: bigint, end: bigint): number {
  if (part === "year" || part === "month") {
    const a = toParts(start);
    const b = toParts(end);
    return part === "year" ? b.y - a.y : b.y * 12 + b.m - (a.y * 12 + a.m);
  }
  if (part === "nanosecond") return Number((end - start) * 100n);
  const unit = FIXED_TICKS[part] as bigint;
  return Number(floorDiv(end, unit) - floorDiv(start, unit));
}

export function partOfDateTime(part: DatePart, ticks: bigint): number {
  const p = toParts(ticks);
  switch (part) {
    case "year":
      return p.y;
    case "month":
      return p.m;
    case "day":
      return p.d;
    case "hour":
      return p.hh;
    case "minute":
      return p.mi;
    case "second":
      return p.ss;
    case "millisecond":
      return Math.floor(p.frac / 10_000);
    case "microsecond":
      return Math.floor(p.frac / 10);
    case "nanosecond":
      return p.frac * 100;
  }
}

/** DateTimeBin: rounds down to a multiple of binSize parts counted from origin (day and smaller units only). */
export function binDateTime(
  ticks: bigint,
  part: DatePart,
  binSize: number,
  origin: bigint,
): bigint | undefined {
  const unit = FIXED_TICKS[part];
  if (unit === undefined || !Number.isInteger(binSize) || binSize <= 0) return undefined;
  const width = unit * BigInt(binSize);
  return origin + floorDiv(ticks - origin, width) * width;
}

export const UNIX_EPOCH_TICKS = 0n;
