// Built-in scalar functions of the Cosmos DB NoSQL query language (names are case-insensitive).
// Rule from the Cosmos docs: when any argument is undefined the function is not called and the
// result is undefined — except the type checks (IS_*), IIF, CHOOSE and the ARRAY_CONTAINS_ANY/ALL
// family, which look at undefined themselves.
import {
  addToDateTime,
  binDateTime,
  datePart,
  diffDateTime,
  formatDateTime,
  fromParts,
  msFromTicks,
  parseDateTime,
  partOfDateTime,
  ticksFromMs,
} from "./datetime.js";
import { canonicalKey, deepEqual, isObject, type Json, type JsonObject, type Val } from "./values.js";

export interface FnContext {
  /** Current time in ms (GetCurrentDateTime etc.). */
  now: () => number;
  /** Time in ms fixed for the whole query (the *Static variants). */
  staticNow: number;
}

export interface FnDef {
  min: number;
  max: number;
  fn: (args: Val[], ctx: FnContext) => Val;
  /** false: the function receives undefined arguments itself. Default true. */
  strict?: boolean;
  /** false: the result may differ between calls with the same arguments (RAND, GetCurrent*). */
  pure?: boolean;
}

const num = (v: Val): v is number => typeof v === "number";
const str = (v: Val): v is string => typeof v === "string";
const bool = (v: Val): v is boolean => typeof v === "boolean";

/** CONTAINS, STARTSWITH, ENDSWITH, StringEquals: two strings and an optional ignore-case flag. */
function stringTest(test: (s: string, t: string) => boolean): FnDef {
  return {
    min: 2,
    max: 3,
    fn: ([s, t, ic]) => {
      if (!str(s) || !str(t) || (ic !== undefined && !bool(ic))) return undefined;
      return ic ? test(s.toLowerCase(), t.toLowerCase()) : test(s, t);
    },
  };
}

function math1(f: (x: number) => number): FnDef {
  return { min: 1, max: 1, fn: ([x]) => (num(x) ? f(x) : undefined) };
}

function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;
function isInt64(x: Val): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= INT64_MIN && x <= INT64_MAX;
}
function int2(f: (a: bigint, b: bigint) => bigint | undefined): FnDef {
  return {
    min: 2,
    max: 2,
    fn: ([a, b]) => {
      if (!isInt64(a) || !isInt64(b)) return undefined;
      const r = f(BigInt(a), BigInt(b));
      return r === undefined ? undefined : Number(BigInt.asIntN(64, r));
    },
  };
}

function trimSet(s: string, chars: string | undefined, left: boolean, right: boolean): string {
  if (chars === undefined) {
    if (left && right) return s.trim();
    return left ? s.trimStart() : s.trimEnd();
  }
  if (chars === "") return s;
  const set = new Set(chars);
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.has(s[a])) a++;
  if (right) while (b > a && set.has(s[b - 1])) b--;
  return s.slice(a, b);
}

function containsValue(arr: Json[], v: Json, partial: boolean): boolean {
  for (const el of arr) {
    if (partial && isObject(v) && isObject(el)) {
      let all = true;
      for (const k of Object.keys(v)) {
        if (!Object.hasOwn(el, k) || !deepEqual(el[k], v[k])) {
          all = false;
          break;
        }
      }
      if (all) return true;
    } else if (typeof el === typeof v && deepEqual(el, v)) {
      return true;
    }
  }
  return false;
}

function parseJsonAs(s: Val, pred: (v: unknown) => boolean): Val {
  if (!str(s)) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    return pred(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

function toStringValue(v: Json): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
    return String(v);
  }
  return JSON.stringify(v);
}

function regexFor(pattern: string, modifiers: string): RegExp | undefined {
  let flags = "u";
  let src = pattern;
  for (const m of modifiers) {
    if (m === "i" || m === "m" || m === "s") {
      if (!flags.includes(m)) flags += m;
    } else if (m === "x") {
      // PCRE extended mode: unescaped whitespace outside classes is ignored.
      let out = "";
      let inClass = false;
      for (let i = 0; i < src.length; i++) {
        const c = src[i];
        if (c === "\\") {
          out += c + (src[i + 1] ?? "");
          i++;
          continue;
        }
        if (c === "[") inClass = true;
        else if (c === "]") inClass = false;
        if (!inClass && /\s/.test(c)) continue;
        out += c;
      }
      src = out;
    } else {
      return undefined;
    }
  }
  try {
    return new RegExp(src, flags);
  } catch {
    // PCRE accepts some patterns that unicode-mode JavaScript refuses (e.g. a literal "{"); retry leniently.
    try {
      return new RegExp(src, flags.replace("u", ""));
    } catch {
      return undefined;
    }
  }
}

const regexCache = new Map<string, RegExp | undefined>();
function cachedRegex(pattern: string, modifiers: string): RegExp | undefined {
  const key = `${modifiers}/${pattern}`;
  if (regexCache.has(key)) return regexCache.get(key);
  const r = regexFor(pattern, modifiers);
  if (regexCache.size > 256) regexCache.clear();
  regexCache.set(key, r);
  return r;
}

function dateArg(v: Val): bigint | undefined {
  return str(v) ? parseDateTime(v) : undefined;
}

export const BUILTINS: Record<string, FnDef> = {
  // ---------------------------------------------------------------- type checks
  IS_ARRAY: { min: 1, max: 1, strict: false, fn: ([v]) => Array.isArray(v) },
  IS_BOOL: { min: 1, max: 1, strict: false, fn: ([v]) => typeof v === "boolean" },
  IS_DEFINED: { min: 1, max: 1, strict: false, fn: ([v]) => v !== undefined },
  IS_NULL: { min: 1, max: 1, strict: false, fn: ([v]) => v === null },
  IS_NUMBER: { min: 1, max: 1, strict: false, fn: ([v]) => typeof v === "number" },
  IS_OBJECT: { min: 1, max: 1, strict: false, fn: ([v]) => isObject(v) },
  IS_PRIMITIVE: {
    min: 1,
    max: 1,
    strict: false,
    fn: ([v]) => v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string",
  },
  IS_STRING: { min: 1, max: 1, strict: false, fn: ([v]) => typeof v === "string" },
  IS_FINITE_NUMBER: {
    min: 1,
    max: 1,
    strict: false,
    fn: ([v]) => typeof v === "number" && Number.isFinite(v),
  },
  IS_INTEGER: { min: 1, max: 1, strict: false, fn: ([v]) => isInt64(v) },

  // ---------------------------------------------------------------- conditionals
  IIF: { min: 3, max: 3, strict: false, fn: ([c, a, b]) => (c === true ? a : b) },
  CHOOSE: {
    min: 2,
    max: Number.POSITIVE_INFINITY,
    strict: false,
    fn: ([i, ...rest]) =>
      num(i) && Number.isInteger(i) && i >= 1 && i <= rest.length ? rest[i - 1] : undefined,
  },

  // ---------------------------------------------------------------- strings
  CONCAT: {
    min: 2,
    max: Number.POSITIVE_INFINITY,
    fn: (a) => (a.every(str) ? (a as string[]).join("") : undefined),
  },
  CONTAINS: stringTest((s, sub) => s.includes(sub)),
  STARTSWITH: stringTest((s, p) => s.startsWith(p)),
  ENDSWITH: stringTest((s, p) => s.endsWith(p)),
  STRINGEQUALS: stringTest((a, b) => a === b),
  INDEX_OF: {
    min: 2,
    max: 3,
    fn: ([s, sub, start]) => {
      if (!str(s) || !str(sub)) return undefined;
      if (start !== undefined && (!num(start) || !Number.isInteger(start))) return undefined;
      return s.indexOf(sub, start === undefined ? 0 : Math.max(0, start));
    },
  },
  LASTINDEXOF: {
    min: 2,
    max: 2,
    fn: ([s, sub]) => (str(s) && str(sub) ? s.lastIndexOf(sub) : undefined),
  },
  LEFT: {
    min: 2,
    max: 2,
    fn: ([s, n]) => (str(s) && num(n) && Number.isInteger(n) && n >= 0 ? s.slice(0, n) : undefined),
  },
  RIGHT: {
    min: 2,
    max: 2,
    fn: ([s, n]) =>
      str(s) && num(n) && Number.isInteger(n) && n >= 0 ? (n === 0 ? "" : s.slice(-n)) : undefined,
  },
  LENGTH: { min: 1, max: 1, fn: ([s]) => (str(s) ? s.length : undefined) },
  LOWER: { min: 1, max: 1, fn: ([s]) => (str(s) ? s.toLowerCase() : undefined) },
  UPPER: { min: 1, max: 1, fn: ([s]) => (str(s) ? s.toUpperCase() : undefined) },
  LTRIM: {
    min: 1,
    max: 2,
    fn: ([s, c]) => (str(s) && (c === undefined || str(c)) ? trimSet(s, c, true, false) : undefined),
  },
  RTRIM: {
    min: 1,
    max: 2,
    fn: ([s, c]) => (str(s) && (c === undefined || str(c)) ? trimSet(s, c, false, true) : undefined),
  },
  TRIM: {
    min: 1,
    max: 2,
    fn: ([s, c]) => (str(s) && (c === undefined || str(c)) ? trimSet(s, c, true, true) : undefined),
  },
  REPLACE: {
    min: 3,
    max: 3,
    fn: ([s, a, b]) => (str(s) && str(a) && str(b) ? (a === "" ? s : s.split(a).join(b)) : undefined),
  },
  REPLICATE: {
    min: 2,
    max: 2,
    fn: ([s, n]) => {
      if (!str(s) || !num(n) || n < 0 || !Number.isFinite(n)) return undefined;
      const count = Math.trunc(n);
      if (s.length * count > 10_000) return undefined;
      return s.repeat(count);
    },
  },
  REVERSE: { min: 1, max: 1, fn: ([s]) => (str(s) ? [...s].reverse().join("") : undefined) },
  SUBSTRING: {
    min: 3,
    max: 3,
    fn: ([s, start, len]) => {
      if (!str(s) || !num(start) || !num(len) || !Number.isInteger(start) || !Number.isInteger(len))
        return undefined;
      if (len <= 0) return "";
      const a = Math.max(0, start);
      return s.slice(a, a + len);
    },
  },
  TOSTRING: { min: 1, max: 1, fn: ([v]) => toStringValue(v as Json) },
  STRINGTOARRAY: { min: 1, max: 1, fn: ([s]) => parseJsonAs(s, Array.isArray) },
  STRINGTOOBJECT: {
    min: 1,
    max: 1,
    fn: ([s]) => parseJsonAs(s, (v) => typeof v === "object" && v !== null && !Array.isArray(v)),
  },
  STRINGTOBOOLEAN: {
    min: 1,
    max: 1,
    fn: ([s]) => {
      if (!str(s)) return undefined;
      const t = s.trim();
      return t === "true" ? true : t === "false" ? false : undefined;
    },
  },
  STRINGTONULL: { min: 1, max: 1, fn: ([s]) => (str(s) && s.trim() === "null" ? null : undefined) },
  STRINGTONUMBER: {
    min: 1,
    max: 1,
    fn: ([s]) => {
      if (!str(s)) return undefined;
      const t = s.trim();
      return /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(t) ? Number(t) : undefined;
    },
  },
  REGEXMATCH: {
    min: 2,
    max: 3,
    fn: ([s, p, mods]) => {
      if (!str(s) || !str(p) || (mods !== undefined && !str(mods))) return undefined;
      const re = cachedRegex(p, mods ?? "");
      return re ? re.test(s) : undefined;
    },
  },

  // ---------------------------------------------------------------- arrays
  ARRAY_CONTAINS: {
    min: 2,
    max: 3,
    fn: ([a, v, partial]) => {
      if (!Array.isArray(a) || (partial !== undefined && !bool(partial))) return undefined;
      return containsValue(a, v as Json, partial === true);
    },
  },
  ARRAY_CONTAINS_ANY: {
    min: 2,
    max: Number.POSITIVE_INFINITY,
    strict: false,
    fn: ([a, ...vs]) => {
      if (!Array.isArray(a)) return undefined;
      let sawUndefined = false;
      for (const v of vs) {
        if (v === undefined) sawUndefined = true;
        else if (containsValue(a, v, false)) return true;
      }
      return sawUndefined ? undefined : false;
    },
  },
  ARRAY_CONTAINS_ALL: {
    min: 2,
    max: Number.POSITIVE_INFINITY,
    strict: false,
    fn: ([a, ...vs]) => {
      if (!Array.isArray(a)) return undefined;
      let sawUndefined = false;
      for (const v of vs) {
        if (v === undefined) sawUndefined = true;
        else if (!containsValue(a, v, false)) return false;
      }
      return sawUndefined ? undefined : true;
    },
  },
  ARRAY_LENGTH: { min: 1, max: 1, fn: ([a]) => (Array.isArray(a) ? a.length : undefined) },
  ARRAY_SLICE: {
    min: 2,
    max: 3,
    fn: ([a, start, len]) => {
      if (!Array.isArray(a) || !num(start) || !Number.isInteger(start)) return undefined;
      if (len !== undefined && (!num(len) || !Number.isInteger(len))) return undefined;
      let s = start < 0 ? Math.max(0, a.length + start) : start;
      if (s > a.length) s = a.length;
      if (len === undefined) return a.slice(s);
      if (len <= 0) return [];
      return a.slice(s, s + len);
    },
  },
  ARRAY_CONCAT: {
    min: 2,
    max: Number.POSITIVE_INFINITY,
    fn: (as) => (as.every(Array.isArray) ? ([] as Json[]).concat(...(as as Json[][])) : undefined),
  },
  SETINTERSECT: {
    min: 2,
    max: 2,
    fn: ([a, b]) => {
      if (!Array.isArray(a) || !Array.isArray(b)) return undefined;
      const inA = new Set(a.map(canonicalKey));
      const seen = new Set<string>();
      const out: Json[] = [];
      for (const v of b) {
        const k = canonicalKey(v);
        if (inA.has(k) && !seen.has(k)) {
          seen.add(k);
          out.push(v);
        }
      }
      return out;
    },
  },
  SETUNION: {
    min: 2,
    max: 2,
    fn: ([a, b]) => {
      if (!Array.isArray(a) || !Array.isArray(b)) return undefined;
      const seen = new Set<string>();
      const out: Json[] = [];
      for (const v of [...a, ...b]) {
        const k = canonicalKey(v);
        if (!seen.has(k)) {
          seen.add(k);
          out.push(v);
        }
      }
      return out;
    },
  },
  OBJECTTOARRAY: {
    min: 1,
    max: 3,
    fn: ([o, kName, vName]) => {
      if (!isObject(o) || (kName !== undefined && !str(kName)) || (vName !== undefined && !str(vName)))
        return undefined;
      const kn = kName ?? "k";
      const vn = vName ?? "v";
      return Object.keys(o).map((k) => ({ [kn]: k, [vn]: o[k] }) as JsonObject);
    },
  },

  // ---------------------------------------------------------------- math
  ABS: math1(Math.abs),
  CEILING: math1(Math.ceil),
  FLOOR: math1(Math.floor),
  ROUND: math1(roundAway),
  TRUNC: math1(Math.trunc),
  SQRT: math1(Math.sqrt),
  SQUARE: math1((x) => x * x),
  EXP: math1(Math.exp),
  LOG10: math1(Math.log10),
  SIGN: math1(Math.sign),
  SIN: math1(Math.sin),
  COS: math1(Math.cos),
  TAN: math1(Math.tan),
  COT: math1((x) => 1 / Math.tan(x)),
  ASIN: math1(Math.asin),
  ACOS: math1(Math.acos),
  ATAN: math1(Math.atan),
  DEGREES: math1((x) => (x * 180) / Math.PI),
  RADIANS: math1((x) => (x * Math.PI) / 180),
  LOG: {
    min: 1,
    max: 2,
    fn: ([x, base]) => {
      if (!num(x) || (base !== undefined && !num(base))) return undefined;
      return base === undefined ? Math.log(x) : Math.log(x) / Math.log(base);
    },
  },
  POWER: { min: 2, max: 2, fn: ([x, y]) => (num(x) && num(y) ? x ** y : undefined) },
  ATN2: { min: 2, max: 2, fn: ([y, x]) => (num(y) && num(x) ? Math.atan2(y, x) : undefined) },
  PI: { min: 0, max: 0, fn: () => Math.PI },
  RAND: { min: 0, max: 0, pure: false, fn: () => Math.random() },
  NUMBERBIN: {
    min: 1,
    max: 2,
    fn: ([x, size]) => {
      if (!num(x) || (size !== undefined && !num(size))) return undefined;
      const b = size ?? 1;
      if (b === 0) return undefined;
      return Math.floor(x / b) * b;
    },
  },
  INTADD: int2((a, b) => a + b),
  INTSUB: int2((a, b) => a - b),
  INTMUL: int2((a, b) => a * b),
  INTDIV: int2((a, b) => (b === 0n ? undefined : a / b)),
  INTMOD: int2((a, b) => (b === 0n ? undefined : a % b)),
  INTBITAND: int2((a, b) => a & b),
  INTBITOR: int2((a, b) => a | b),
  INTBITXOR: int2((a, b) => a ^ b),
  INTBITLEFTSHIFT: int2((a, b) => (b < 0n || b > 63n ? undefined : a << b)),
  INTBITRIGHTSHIFT: int2((a, b) => (b < 0n || b > 63n ? undefined : a >> b)),
  INTBITNOT: {
    min: 1,
    max: 1,
    fn: ([a]) => (isInt64(a) ? Number(BigInt.asIntN(64, ~BigInt(a))) : undefined),
  },

  // ---------------------------------------------------------------- dates
  GETCURRENTDATETIME: { min: 0, max: 0, pure: false, fn: (_a, c) => formatDateTime(ticksFromMs(c.now())) },
  GETCURRENTTIMESTAMP: { min: 0, max: 0, pure: false, fn: (_a, c) => Math.trunc(c.now()) },
  GETCURRENTTICKS: { min: 0, max: 0, pure: false, fn: (_a, c) => Number(ticksFromMs(c.now())) },
  GETCURRENTDATETIMESTATIC: {
    min: 0,
    max: 0,
    pure: false,
    fn: (_a, c) => formatDateTime(ticksFromMs(c.staticNow)),
  },
  GETCURRENTTIMESTAMPSTATIC: { min: 0, max: 0, pure: false, fn: (_a, c) => Math.trunc(c.staticNow) },
  GETCURRENTTICKSSTATIC: { min: 0, max: 0, pure: false, fn: (_a, c) => Number(ticksFromMs(c.staticNow)) },
  DATETIMEADD: {
    min: 3,
    max: 3,
    fn: ([p, n, d]) => {
      const part = str(p) ? datePart(p) : undefined;
      const t = dateArg(d);
      if (part === undefined || !num(n) || t === undefined) return undefined;
      const r = addToDateTime(part, n, t);
      return r === undefined ? undefined : formatDateTime(r);
    },
  },
  DATETIMEDIFF: {
    min: 3,
    max: 3,
    fn: ([p, a, b]) => {
      const part = str(p) ? datePart(p) : undefined;
      const ta = dateArg(a);
      const tb = dateArg(b);
      if (part === undefined || ta === undefined || tb === undefined) return undefined;
      return diffDateTime(part, ta, tb);
    },
  },
  DATETIMEPART: {
    min: 2,
    max: 2,
    fn: ([p, d]) => {
      const part = str(p) ? datePart(p) : undefined;
      const t = dateArg(d);
      return part === undefined || t === undefined ? undefined : partOfDateTime(part, t);
    },
  },
  DATETIMEBIN: {
    min: 2,
    max: 4,
    fn: ([d, p, size, origin]) => {
      const t = dateArg(d);
      const part = str(p) ? datePart(p) : undefined;
      const o = origin === undefined ? 0n : dateArg(origin);
      if (t === undefined || part === undefined || o === undefined) return undefined;
      if (size !== undefined && !num(size)) return undefined;
      if (o < -116444736000000000n) return undefined;
      const r = binDateTime(t, part, size ?? 1, o);
      return r === undefined ? undefined : formatDateTime(r);
    },
  },
  DATETIMEFROMPARTS: {
    min: 3,
    max: 7,
    fn: (a) => {
      if (!a.every((x) => num(x) && Number.isInteger(x))) return undefined;
      const [y, m, d, hh = 0, mi = 0, ss = 0, frac = 0] = a as number[];
      const t = fromParts({ y, m, d, hh, mi, ss, frac });
      return t === undefined ? undefined : formatDateTime(t);
    },
  },
  DATETIMETOTIMESTAMP: {
    min: 1,
    max: 1,
    fn: ([d]) => {
      const t = dateArg(d);
      return t === undefined ? undefined : msFromTicks(t);
    },
  },
  DATETIMETOTICKS: {
    min: 1,
    max: 1,
    fn: ([d]) => {
      const t = dateArg(d);
      return t === undefined ? undefined : Number(t);
    },
  },
  TIMESTAMPTODATETIME: {
    min: 1,
    max: 1,
    fn: ([ms]) => (num(ms) && Number.isFinite(ms) ? formatDateTime(ticksFromMs(ms)) : undefined),
  },
  TICKSTODATETIME: {
    min: 1,
    max: 1,
    fn: ([t]) => (num(t) && Number.isInteger(t) ? formatDateTime(BigInt(t)) : undefined),
  },
};

/** Functions Cosmos DB has that the embedded store does not run: naming them gives a clear error. */
export const KNOWN_UNSUPPORTED = new Set([
  "DOCUMENTID",
  "ST_DISTANCE",
  "ST_WITHIN",
  "ST_INTERSECTS",
  "ST_ISVALID",
  "ST_ISVALIDDETAILED",
  "ST_AREA",
  "FULLTEXTCONTAINS",
  "FULLTEXTCONTAINSALL",
  "FULLTEXTCONTAINSANY",
  "FULLTEXTSCORE",
  "VECTORDISTANCE",
  "RRF",
]);
