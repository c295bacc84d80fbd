import { createHash } from "node:crypto";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";

/**
 * Serializes a JSON value canonically: object keys sorted by UTF-16 code units (as
 * `Array.prototype.sort` and RFC 8785 order them), `undefined` object members omitted, no
 * whitespace, numbers and strings as `JSON.stringify` writes them. The same value always gives the
 * same text, so a hash over it is stable.
 *
 * Hand-written (a few lines) rather than a dependency: the audit values are plain JSON and the
 * rules above are all that is needed.
 *
 * @throws {AuditError} `ERR_AUDIT_EVENT` for what JSON cannot hold faithfully: non-finite numbers,
 *   bigints, functions, symbols, `undefined` inside arrays, class instances (Date, Map, ...).
 *
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [true, "x"], c: undefined }); // '{"a":[true,"x"],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw notJson(`the number ${value}`);
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (value[i] === undefined) throw notJson("undefined inside an array");
          out += (i === 0 ? "" : ",") + canonicalJson(value[i]);
        }
        return out + "]";
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw notJson("an object that is not a plain object");
      return canonicalObject(value as Record<string, unknown>);
    }
    default:
      throw notJson(`a ${typeof value}`);
  }
}

/**
 * The canonical JSON of an audit event together with its sequence number: the text stored in the
 * `data` column and covered by the record's hash.
 *
 * @example
 * ```ts
 * canonicalRecord(7, event); // '{"actions":["read"],"decision":"allow",...,"seq":7,...}'
 * ```
 */
export function canonicalRecord(seq: number, event: AuditEvent): string {
  return canonicalJson({ ...event, seq });
}

/**
 * SHA-256 (hex) over `prevHash + "\n" + data`, where `data` is an already canonical record text
 * (see {@link canonicalRecord}). Use this when the text is at hand, as the writer and the verifier do.
 *
 * @example
 * ```ts
 * const data = canonicalRecord(1, event);
 * const hash = hashCanonical("", data);
 * ```
 */
export function hashCanonical(prevHash: string, data: string): string {
  return createHash("sha256").update(prevHash).update("\n").update(data).digest("hex");
}

/**
 * The hash of record `seq`: SHA-256 (hex) over `prevHash + "\n" + canonicalRecord(seq, event)`.
 * The first record of a chain has `prevHash` `""`.
 *
 * @example
 * ```ts
 * const h1 = hashRecord("", 1, first);
 * const h2 = hashRecord(h1, 2, second);
 * ```
 */
export function hashRecord(prevHash: string, seq: number, event: AuditEvent): string {
  return hashCanonical(prevHash, canonicalRecord(seq, event));
}

function canonicalObject(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj).sort();
  if (isFlat(obj, keys)) {
    // Fast path (audit events are flat): given the sorted key list as replacer, JSON.stringify
    // writes the members in that order and omits undefined ones; isFlat checked the values.
    return JSON.stringify(obj, keys);
  }
  let out = "{";
  let first = true;
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined) continue;
    out += (first ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(v);
    first = false;
  }
  return out + "}";
}

/** True when every member is a JSON primitive or an array of them; throws on what JSON cannot hold. */
function isFlat(obj: Record<string, unknown>, keys: readonly string[]): boolean {
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined || isPrimitive(v)) continue;
    if (!Array.isArray(v)) return false;
    for (const item of v) {
      if (item === undefined) throw notJson("undefined inside an array");
      if (!isPrimitive(item)) return false;
    }
  }
  return true;
}

/** A JSON primitive; throws for a non-finite number, a bigint, a function or a symbol. */
function isPrimitive(v: unknown): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      if (!Number.isFinite(v)) throw notJson(`the number ${v}`);
      return true;
    case "object":
      return v === null;
    case "undefined":
      return false;
    default:
      throw notJson(`a ${typeof v}`);
  }
}

function notJson(what: string): AuditError {
  return new AuditError(
    "ERR_AUDIT_EVENT",
    `an audit event may hold only JSON values; it has ${what}. Convert it to a string or number first.`,
  );
}
