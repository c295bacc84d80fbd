// JSON values with Cosmos DB semantics: `undefined` is a value (a missing property), types never
// convert implicitly, comparisons across types are undefined.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };
/** A query value: JSON or undefined. */
export type Val = Json | undefined;

export function isObject(v: Val): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Type rank for ORDER BY and MIN/MAX across types: undefined < null < boolean < number < string < array < object. */
export function typeRank(v: Val): number {
  switch (typeof v) {
    case "undefined":
      return 0;
    case "boolean":
      return 2;
    case "number":
      return 3;
    case "string":
      return 4;
    default:
      return v === null ? 1 : Array.isArray(v) ? 5 : 6;
  }
}

/** Deep equality of two defined values of the same kind (object key order does not matter). */
export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return false;
  }
  const aa = Array.isArray(a);
  if (aa !== Array.isArray(b)) return false;
  if (aa) {
    const bb = b as Json[];
    const al = a as Json[];
    if (al.length !== bb.length) return false;
    for (let i = 0; i < al.length; i++) if (!deepEqual(al[i], bb[i])) return false;
    return true;
  }
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k) || !deepEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/** Cosmos `=`: undefined when either side is undefined or the types differ. */
export function sqlEquals(a: Val, b: Val): boolean | undefined {
  if (a === undefined || b === undefined) return undefined;
  const ta = typeRank(a);
  if (ta !== typeRank(b)) return undefined;
  if (ta <= 4) return a === b;
  return deepEqual(a, b);
}

/**
 * Cosmos relational comparison: defined only for two primitives of the same type
 * (null, boolean, number, string). Returns <0, 0, >0 or undefined.
 */
export function sqlCompare(a: Val, b: Val): number | undefined {
  const ta = typeof a;
  if (ta !== typeof b) return undefined;
  switch (ta) {
    case "number":
      return (a as number) < (b as number)
        ? -1
        : (a as number) > (b as number)
          ? 1
          : (a as number) === (b as number)
            ? 0
            : undefined;
    case "string":
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
    case "boolean":
      return a === b ? 0 : a ? 1 : -1;
    case "object":
      return a === null && b === null ? 0 : undefined;
    default:
      return undefined;
  }
}

/** Total order used by ORDER BY, MIN and MAX (and for deterministic ordering of arrays/objects). */
export function orderCompare(a: Val, b: Val): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 2:
      return a === b ? 0 : a ? 1 : -1;
    case 3: {
      const x = a as number;
      const y = b as number;
      if (x < y) return -1;
      if (x > y) return 1;
      if (x === y) return 0;
      // NaN sorts before every other number, deterministically.
      return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : -1) : 1;
    }
    case 4:
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
    case 5: {
      const x = a as Json[];
      const y = b as Json[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = orderCompare(x[i], y[i]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 6: {
      const x = canonicalKey(a);
      const y = canonicalKey(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default:
      return 0;
  }
}

/** A string that is equal for two values exactly when they are deep-equal (DISTINCT, GROUP BY, sets). */
export function canonicalKey(v: Val): string {
  switch (typeof v) {
    case "undefined":
      return "u";
    case "boolean":
      return v ? "t" : "f";
    case "number":
      return `d${Object.is(v, -0) ? 0 : v}`;
    case "string":
      return `s${JSON.stringify(v)}`;
    default: {
      if (v === null) return "n";
      if (Array.isArray(v)) {
        let out = "[";
        for (let i = 0; i < v.length; i++) out += (i ? "," : "") + canonicalKey(v[i]);
        return `${out}]`;
      }
      const keys = Object.keys(v).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++)
        out += `${i ? "," : ""}${JSON.stringify(keys[i])}:${canonicalKey(v[keys[i]])}`;
      return `${out}}`;
    }
  }
}

/** Property access with Cosmos semantics: only on objects, only own properties. */
export function getProp(v: Val, name: string): Val {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  return Object.hasOwn(v, name) ? v[name] : undefined;
}

/** Array element access: only on arrays, only non-negative integer indexes in range. */
export function getIndex(v: Val, i: number): Val {
  if (!Array.isArray(v) || !Number.isInteger(i) || i < 0 || i >= v.length) return undefined;
  return v[i];
}

/** `v[key]` where the key is computed: strings index objects, numbers index arrays. */
export function getMember(v: Val, key: Val): Val {
  if (typeof key === "string") return getProp(v, key);
  if (typeof key === "number") return getIndex(v, key);
  return undefined;
}

/** `o[k] = v` that also works for the key "__proto__" (a plain assignment would set the prototype). */
export function setOwn(o: JsonObject, k: string, v: Json): void {
  if (k === "__proto__")
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Names inherited from Object.prototype: a plain `obj[name]` would find them, so they need an own-property check. */
export function isUnsafeName(name: string): boolean {
  return name in Object.prototype;
}
