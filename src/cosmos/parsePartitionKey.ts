import { CosmosWireError } from "./errors.js";
import type { PartitionKeyValue } from "./types.js";

/** Longest partition-key JSON accepted (Cosmos DB limits a key value to 2 KB; hierarchical keys have 3). */
export const MAX_PARTITION_KEY_LENGTH = 2048;

/** Most components of a (hierarchical) partition key. */
export const MAX_PARTITION_KEY_COMPONENTS = 3;

/**
 * Parses a partition key as the SDK sends it in `x-ms-documentdb-partitionkey` (and, as a JSON
 * string, in each batch operation's `partitionKey`): a JSON array of 0 to 3 components, each a
 * string, a finite number, a boolean, `null`, or `{}` (the SDK's "none" literal for an undefined key).
 *
 * @param where names the source in the error message, e.g. "the x-ms-documentdb-partitionkey header"
 * @throws CosmosWireError ERR_BAD_PARTITION_KEY (400) for anything else
 * @example
 * ```ts
 * parsePartitionKey('["tenant-1", 42]'); // ["tenant-1", 42]
 * parsePartitionKey('"tenant-1"'); // throws ERR_BAD_PARTITION_KEY
 * ```
 */
export function parsePartitionKey(
  text: string,
  where = "the x-ms-documentdb-partitionkey header",
): PartitionKeyValue {
  if (text.length > MAX_PARTITION_KEY_LENGTH) {
    throw bad(where, `is ${text.length} characters long; the limit is ${MAX_PARTITION_KEY_LENGTH}`);
  }
  const simple = simpleStringKey(text);
  if (simple !== undefined) return [simple];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad(where, "is not JSON");
  }
  if (!Array.isArray(value)) throw bad(where, "is not a JSON array");
  if (value.length > MAX_PARTITION_KEY_COMPONENTS) {
    throw bad(
      where,
      `has ${value.length} components; a partition key has at most ${MAX_PARTITION_KEY_COMPONENTS}`,
    );
  }
  for (let i = 0; i < value.length; i++) {
    const c: unknown = value[i];
    if (c === null || typeof c === "string" || typeof c === "boolean") continue;
    if (typeof c === "number") {
      if (Number.isFinite(c)) continue;
      throw bad(where, `has a component (${i}) that is not a finite number`);
    }
    if (typeof c === "object" && !Array.isArray(c) && isEmptyObject(c)) continue;
    throw bad(
      where,
      `has a component (${i}) that is not a string, number, boolean, null or {} (nested arrays and objects are not partition keys)`,
    );
  }
  return value as PartitionKeyValue;
}

/**
 * The hot path: `["text"]` without escapes, quotes or control characters (what the SDK sends for
 * most keys) is read without JSON.parse, which costs several times more. Anything else → undefined.
 */
function simpleStringKey(text: string): string | undefined {
  const end = text.length - 2;
  if (end < 2 || text.charCodeAt(0) !== 0x5b || text.charCodeAt(1) !== 0x22) return undefined;
  if (text.charCodeAt(end) !== 0x22 || text.charCodeAt(end + 1) !== 0x5d) return undefined;
  for (let i = 2; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20) return undefined;
  }
  return text.slice(2, end);
}

function isEmptyObject(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function bad(where: string, what: string): CosmosWireError {
  return new CosmosWireError(
    "ERR_BAD_PARTITION_KEY",
    `The partition key in ${where} ${what}. Send a JSON array of 1 to 3 values (strings, numbers, booleans, null), e.g. ["tenant-1"], as the Cosmos DB SDK does.`,
  );
}
