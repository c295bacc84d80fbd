import { hash } from "node:crypto";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";

/** A character JSON.stringify escapes: `"`, `\\`, a control character or a surrogate (lone ones are escaped). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON.stringify escapes exactly these.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

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
      // Most strings need no escaping; JSON.stringify is only needed for the others.
      return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
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
  if (typeof event !== "object" || event === null || Array.isArray(event) || Object.hasOwn(event, "seq"))
    return canonicalJson({ ...event, seq });
  const proto = Object.getPrototypeOf(event);
  if (proto !== Object.prototype && proto !== null) throw notJson("an object that is not a plain object");
  // Same text as canonicalJson({ ...event, seq }) without copying the event.
  const keys = Object.keys(event);
  keys.push("seq");
  const order = keyOrder(keys);
  const record = event as unknown as Record<string, unknown>;
  let out = "{";
  for (let i = 0; i < order.sorted.length; i++) {
    const key = order.sorted[i];
    const v = key === "seq" ? seq : record[key];
    if (v === undefined) continue;
    out += (out.length === 1 ? order.first[i] : order.rest[i]) + canonicalJson(v);
  }
  return out + "}";
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
  // One-shot crypto.hash (Node >= 20.12) costs about half of createHash().update().digest().
  return hash("sha256", `${prevHash}\n${data}`, "hex");
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
  const order = keyOrder(Object.keys(obj));
  let out = "{";
  for (let i = 0; i < order.sorted.length; i++) {
    const v = obj[order.sorted[i]];
    if (v === undefined) continue;
    out += (out.length === 1 ? order.first[i] : order.rest[i]) + canonicalJson(v);
  }
  return out + "}";
}

/** The sorted keys of an object, with their JSON-quoted `"key":` prefixes (`first` without a comma). */
interface KeyOrder {
  keys: readonly string[];
  sorted: readonly string[];
  first: readonly string[];
  rest: readonly string[];
}

/**
 * Audit events come in a few shapes (the same keys in the same insertion order), so the sort and
 * the quoting of their keys are cached per shape: a lookup compares the key lists element by element.
 */
const orders: KeyOrder[] = [];
const MAX_ORDERS = 16;
let nextOrder = 0;

function keyOrder(keys: string[]): KeyOrder {
  const n = keys.length;
  search: for (let j = 0; j < orders.length; j++) {
    const cached = orders[j];
    const ck = cached.keys;
    if (ck.length !== n) continue;
    for (let i = 0; i < n; i++) if (ck[i] !== keys[i]) continue search;
    return cached;
  }
  const sorted = keys.slice().sort();
  const first = sorted.map((k) => `${JSON.stringify(k)}:`);
  const order: KeyOrder = { keys, sorted, first, rest: first.map((p) => `,${p}`) };
  if (orders.length < MAX_ORDERS) orders.push(order);
  else {
    orders[nextOrder] = order;
    nextOrder = (nextOrder + 1) % MAX_ORDERS;
  }
  return order;
}

function notJson(what: string): AuditError {
  return new AuditError(
    "ERR_AUDIT_EVENT",
    `an audit event may hold only JSON values; it has ${what}. Convert it to a string or number first.`,
  );
}
