import type { Json, JsonObject } from "../query/index.js";
import { badRequest, tooLarge } from "./errors.js";

/** Largest item Cosmos DB accepts: 2 MB of JSON. */
export const MAX_ITEM_BYTES = 2 * 1024 * 1024;

/** Longest id Cosmos DB accepts. */
export const MAX_ID_LENGTH = 255;

/** System properties the store sets on every resource; values sent by clients are replaced. */
export const SYSTEM_PROPERTIES = ["_rid", "_self", "_etag", "_ts", "_attachments"] as const;

/**
 * Checks a resource id as Cosmos DB does: a non-empty string of at most 255 characters without
 * "/", "\\" or "#"; database, container and script ids also exclude "?" (item ids may hold it:
 * the service reads it back from the path, where the SDK leaves it unescaped).
 */
export function checkId(id: Json | undefined, what: string): string {
  if (id === undefined || id === null) {
    throw badRequest(
      `The input content is invalid because the required properties - 'id; ' - are missing. Give the ${what} an "id".`,
    );
  }
  if (typeof id !== "string") {
    throw badRequest(
      `The ${what}'s "id" must be a string; got ${Array.isArray(id) ? "an array" : typeof id}.`,
    );
  }
  if (id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw badRequest(
      `The input name '${clip(id)}' is invalid. Ensure to provide a unique non-empty string less than '${MAX_ID_LENGTH}' characters.`,
    );
  }
  const item = what === "item";
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x2f || c === 0x5c || c === 0x23 || (c === 0x3f && !item)) {
      throw badRequest(
        `Id contains illegal chars. The ${what} id '${clip(id)}' contains ${item ? "'/', '\\' or '#'" : "'/', '\\', '#' or '?'"}, which Cosmos DB ids cannot contain.`,
      );
    }
    if (c < 0x20 || c === 0x7f) {
      throw badRequest(`Id contains illegal chars. The ${what} id contains a control character.`);
    }
  }
  return id;
}

/** Parses a JSON request body that must be an object. */
export function parseObject(body: Buffer | string, what: string): JsonObject {
  const v = parseJson(body, what);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw badRequest(`The request body must be a JSON object (the ${what}).`);
  }
  return v as JsonObject;
}

/** Deepest nesting of objects and arrays Cosmos DB accepts in a document. */
export const MAX_NESTING = 128;

/**
 * Parses a JSON request body (documents at most {@link MAX_NESTING} levels deep; `envelope` is how
 * many levels the request wraps them in, e.g. 3 for a batch: array, operation, resourceBody).
 */
export function parseJson(body: Buffer | string, what: string, envelope = 0): Json {
  const text = typeof body === "string" ? body : body.toString("utf8");
  if (text.length === 0) throw badRequest(`The request body is empty; send the ${what} as JSON.`);
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (err) {
    throw badRequest(
      `The request body is not valid JSON (${(err as Error).message.slice(0, 120)}); send the ${what} as JSON.`,
    );
  }
  if (nesting(text) > MAX_NESTING + envelope) {
    throw badRequest(
      `The ${what} nests objects and arrays more than ${MAX_NESTING} levels deep, Cosmos DB's limit.`,
    );
  }
  return value;
}

/** The deepest bracket nesting of valid JSON text (one pass, skipping strings). */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string: up to the next unescaped quote.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/** Throws 413 when a document's JSON text is larger than {@link MAX_ITEM_BYTES}. */
export function checkItemSize(text: string): void {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: measure only when it could be too large.
  if (text.length * 3 > MAX_ITEM_BYTES && Buffer.byteLength(text, "utf8") > MAX_ITEM_BYTES) {
    throw tooLarge(
      `Request size is too large: the item is ${Buffer.byteLength(text, "utf8")} bytes of JSON; Cosmos DB's limit is ${MAX_ITEM_BYTES} bytes (2 MB).`,
    );
  }
}

/**
 * A TTL in seconds as Cosmos DB accepts it: -1 (never expire) or a positive 32-bit integer.
 * `null`/absent means "not set".
 */
export function checkTtl(v: Json | undefined, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v === 0 || v < -1 || v > 2147483647) {
    throw badRequest(
      `The value of ${what} is invalid: it must be -1 (never expire) or a positive number of seconds; got ${JSON.stringify(v)}.`,
    );
  }
  return v;
}

export function clip(s: string, n = 40): string {
  return s.length > n ? s.slice(0, n) + "…" : s;
}
