import { parsePartitionKey } from "../../cosmos/parsePartitionKey.js";
import type { Json, JsonObject } from "../query/index.js";
import { badRequest, PARTITION_KEY_MISMATCH, SUBSTATUS } from "./errors.js";

/** One component of a partition key value: a primitive, null, or `{}` for "undefined" (no value). */
export type PartitionKeyComponent = string | number | boolean | null | Record<string, never>;

/** A container's partition key definition as kept (and returned) by the store. */
export interface PartitionKeyDefinition {
  paths: string[];
  kind: "Hash" | "MultiHash";
  version?: number;
  [k: string]: Json | undefined;
}

/** A container's partition key: its definition and each path split into property names. */
export interface PartitionKeySpec {
  definition: PartitionKeyDefinition;
  paths: string[];
  parts: string[][];
}

/**
 * Validates a container's `partitionKey` as sent on create (the SDK always sends one; `/id` when
 * the caller gave none) and keeps it as given, with `kind` defaulted to "Hash".
 */
export function partitionKeySpec(value: Json | undefined): PartitionKeySpec {
  if (value === undefined || value === null) {
    // The SDK always sends a definition; a raw REST client may not: Cosmos DB then partitions on /id.
    return partitionKeySpec({ paths: ["/id"], kind: "Hash" });
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw badRequest(
      'The container\'s "partitionKey" must be an object such as {"paths": ["/tenant"], "kind": "Hash"}.',
    );
  }
  const paths = value.paths;
  if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== "string")) {
    throw badRequest(
      'The container\'s "partitionKey.paths" must be a non-empty array of paths such as ["/tenant"].',
    );
  }
  const kind = value.kind ?? (paths.length > 1 ? "MultiHash" : "Hash");
  if (kind !== "Hash" && kind !== "MultiHash") {
    throw badRequest(
      `Partition key kind "${String(kind)}" is not supported; use "Hash" or "MultiHash" (hierarchical keys).`,
    );
  }
  if (kind === "Hash" && paths.length !== 1) {
    throw badRequest(
      'A "Hash" partition key has exactly one path; use kind "MultiHash" with version 2 for hierarchical keys.',
    );
  }
  if (paths.length > 3) {
    throw badRequest("A hierarchical partition key has at most 3 paths.");
  }
  const parts = (paths as string[]).map(parsePath);
  const definition = { ...value, paths: paths as string[], kind } as PartitionKeyDefinition;
  return { definition, paths: paths as string[], parts };
}

/**
 * Splits a partition key path ("/a/b", '/"a b"/c') into property names. Hand-written: the grammar
 * is four rules (leading slash, segments, optional double quotes, no empty segment).
 */
export function parsePath(path: string): string[] {
  if (!path.startsWith("/") || path.length < 2) {
    throw badRequest(
      `The partition key path "${path}" is invalid: it must start with "/" and name a property, e.g. "/tenant".`,
    );
  }
  const parts: string[] = [];
  let i = 1;
  while (i <= path.length) {
    let part: string;
    if (path[i] === '"') {
      const end = path.indexOf('"', i + 1);
      if (end === -1) throw badRequest(`The partition key path "${path}" has an unterminated quote.`);
      part = path.slice(i + 1, end);
      i = end + 1;
      if (i < path.length && path[i] !== "/") {
        throw badRequest(`The partition key path "${path}" has text after a quoted name.`);
      }
    } else {
      let end = path.indexOf("/", i);
      if (end === -1) end = path.length;
      part = path.slice(i, end);
      i = end;
    }
    if (part === "" || part === "*" || part === "?") {
      throw badRequest(
        `The partition key path "${path}" has an empty or wildcard segment; name a property, e.g. "/tenant".`,
      );
    }
    parts.push(part);
    i++; // skip "/"
  }
  return parts;
}

const NONE: Record<string, never> = Object.freeze({}) as Record<string, never>;

/** The partition key value of a document: one component per path; a missing or non-primitive value is `{}`. */
export function extractPartitionKey(doc: JsonObject, spec: PartitionKeySpec): PartitionKeyComponent[] {
  const out: PartitionKeyComponent[] = new Array(spec.parts.length);
  for (let p = 0; p < spec.parts.length; p++) {
    let v: Json | undefined = doc;
    for (const name of spec.parts[p]) {
      if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.hasOwn(v, name)) {
        v = undefined;
        break;
      }
      v = (v as JsonObject)[name];
    }
    out[p] =
      v === null ||
      typeof v === "string" ||
      typeof v === "boolean" ||
      (typeof v === "number" && Number.isFinite(v))
        ? v
        : NONE;
  }
  return out;
}

/** The canonical text of a partition key value: its JSON, e.g. `["eu"]`, `["a",1]`, `[{}]`. */
export function partitionKeyText(value: readonly PartitionKeyComponent[]): string {
  return JSON.stringify(value);
}

/**
 * The canonical text of a partition key sent in `x-ms-documentdb-partitionkey` (or a batch
 * operation's `partitionKey`), checked against the container's definition. A full key for point
 * operations; `allowPrefix` accepts fewer components (hierarchical keys in queries and feeds).
 */
export function headerPartitionKey(
  raw: string,
  spec: PartitionKeySpec,
  allowPrefix: boolean,
  where = "the x-ms-documentdb-partitionkey header",
): { text: string; prefix: boolean } {
  const value = parsePartitionKey(raw, where) as PartitionKeyComponent[];
  const n = spec.parts.length;
  if (value.length > n || value.length === 0 || (value.length < n && !allowPrefix)) {
    throw badRequest(
      `Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document. The container's partition key has ${n} path(s) (${spec.paths.join(", ")}); ${where} has ${value.length} component(s).`,
    );
  }
  // Normalize numbers like 1.0 and the "undefined" literal `{}`.
  const norm = value.map((c) => (c !== null && typeof c === "object" ? NONE : c));
  return { text: partitionKeyText(norm), prefix: value.length < n };
}

/** Throws Cosmos DB's 400/1001 unless the document's key equals the request's. */
export function checkPartitionKey(docKey: string, requestKey: string): void {
  if (docKey !== requestKey) throw badRequest(PARTITION_KEY_MISMATCH, SUBSTATUS.PARTITION_KEY_MISMATCH);
}

/**
 * The half-open text range [lo, hi) of the canonical texts of every full key that starts with the
 * prefix key `prefix` (itself canonical, e.g. `["a"]`): full keys print as `["a",...]`.
 */
export function prefixRange(prefix: string): [string, string] {
  const lo = prefix.slice(0, -1) + ","; // '["a"' + ','
  const hi = prefix.slice(0, -1) + "-"; // ',' + 1
  return [lo, hi];
}
