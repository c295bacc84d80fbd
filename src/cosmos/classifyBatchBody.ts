import { CosmosWireError } from "./errors.js";
import { parsePartitionKey } from "./parsePartitionKey.js";
import type { Action, BatchOperation, CosmosOperation, PartitionKeyValue } from "./types.js";

/** Most operations in one transactional batch or one bulk request (the service's and the SDK's limit). */
export const MAX_BATCH_OPERATIONS = 100;

// Bits of the action union, in canonical order.
const ORDER: readonly Action[] = ["read", "create", "upsert", "replace", "patch", "delete"];

/**
 * Reads the body of a transactional batch or bulk request (`op.atomic` defined, from
 * {@link classify}) and returns the operation with `batch` (one entry per body operation, in order)
 * and `actions` (the distinct actions of the operations, in the order read, create, upsert,
 * replace, patch, delete). Any other operation is returned unchanged.
 *
 * The body is what the SDK sends (`Items.batch`, `Items.executeBulkOperations`, `Items.bulk`): a JSON
 * array of `{operationType, id?, resourceBody?, partitionKey?, ifMatch?, ifNoneMatch?}` where
 * `partitionKey` is itself a JSON string of an array (`'["eu"]'`). In an atomic batch an operation
 * without `partitionKey` takes the request's partition key, and one that names another key is refused.
 * Duplicate keys among the fields that decide authorization (`operationType`, `id`, `partitionKey`,
 * `resourceBody`, and `id` one level down) are refused: JSON parsers disagree on which one wins.
 *
 * @throws CosmosWireError ERR_BAD_BATCH (400) for a body that is not an array of 1..100 operation
 *   objects with a known operationType; ERR_BAD_PARTITION_KEY (400) for a malformed partitionKey
 * @example
 * ```ts
 * const op = classify("POST", "/dbs/shop/colls/orders/docs", {
 *   "x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "true",
 *   "x-ms-documentdb-partitionkey": '["eu"]', "content-type": "application/json",
 * });
 * const full = classifyBatchBody(op, '[{"operationType":"Create","resourceBody":{"id":"a1","region":"eu"}}]');
 * // full.actions ["create"]; full.batch [{index: 0, operationType: "Create", action: "create", id: "a1", partitionKey: ["eu"]}]
 * ```
 */
export function classifyBatchBody(op: CosmosOperation, body: Buffer | string): CosmosOperation {
  if (op.atomic === undefined) return op;
  const atomic = op.atomic;
  const text = typeof body === "string" ? body : body.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad("is not JSON");
  }
  if (!Array.isArray(parsed)) throw bad("is not a JSON array of operations");
  const count = parsed.length;
  if (count === 0 || count > MAX_BATCH_OPERATIONS) {
    throw bad(`has ${count} operations; send 1 to ${MAX_BATCH_OPERATIONS} per request`);
  }
  rejectDuplicateKeys(text);

  const requestKey = op.partitionKey;
  const batch: BatchOperation[] = new Array(count);
  let union = 0;
  for (let index = 0; index < count; index++) {
    const entry: unknown = parsed[index];
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw bad(`has an operation (${index}) that is not a JSON object`);
    }
    const o = entry as Record<string, unknown>;
    const operationType = o.operationType;
    let bit: number;
    switch (operationType) {
      case "Read":
        bit = 0;
        break;
      case "Create":
        bit = 1;
        break;
      case "Upsert":
        bit = 2;
        break;
      case "Replace":
        bit = 3;
        break;
      case "Patch":
        bit = 4;
        break;
      case "Delete":
        bit = 5;
        break;
      default:
        throw bad(
          `has an operation (${index}) whose operationType is not one of Create, Upsert, Read, Delete, Replace, Patch`,
        );
    }
    union |= 1 << bit;

    let id: string | undefined;
    if (o.id !== undefined) {
      if (typeof o.id !== "string") throw bad(`has an operation (${index}) whose id is not a string`);
      id = o.id;
    } else {
      const resourceBody = o.resourceBody;
      if (resourceBody !== null && typeof resourceBody === "object") {
        const bodyId = (resourceBody as Record<string, unknown>).id;
        if (typeof bodyId === "string") id = bodyId;
      }
    }

    let partitionKey: PartitionKeyValue | undefined;
    const pk = o.partitionKey;
    if (pk === undefined) {
      if (atomic) partitionKey = requestKey;
    } else {
      if (typeof pk !== "string") {
        throw new CosmosWireError(
          "ERR_BAD_PARTITION_KEY",
          `Batch operation ${index} has a partitionKey that is not a string; send it as the SDK does, a JSON string of an array such as "[\\"eu\\"]".`,
        );
      }
      partitionKey = parsePartitionKey(pk, `batch operation ${index}'s partitionKey`);
      if (atomic && requestKey !== undefined && !samePartitionKey(partitionKey, requestKey)) {
        throw bad(
          `has an operation (${index}) whose partitionKey differs from the x-ms-documentdb-partitionkey header; every operation of a transactional batch must be in the request's partition`,
        );
      }
    }

    const item: BatchOperation = {
      index,
      operationType: operationType as BatchOperation["operationType"],
      action: ORDER[bit],
    };
    if (id !== undefined) item.id = id;
    if (partitionKey !== undefined) item.partitionKey = partitionKey;
    batch[index] = item;
  }

  const actions: Action[] = [];
  for (let bit = 0; bit < ORDER.length; bit++) if (union & (1 << bit)) actions.push(ORDER[bit]);
  return { ...op, actions, batch };
}

function samePartitionKey(a: PartitionKeyValue, b: PartitionKeyValue): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    // {} (the "none" literal) equals {}; parsePartitionKey admits no other objects.
    if (x !== null && y !== null && typeof x === "object" && typeof y === "object") continue;
    return false;
  }
  return true;
}

// Keys tracked for duplicates: in an operation object (depth 2) and one level below (depth 3).
const K_OPERATION_TYPE = 1;
const K_ID = 2;
const K_PARTITION_KEY = 4;
const K_RESOURCE_BODY = 8;

/**
 * Refuses a body in which an operation object (or an object directly inside one, such as
 * resourceBody) repeats a key that decides authorization. Runs on text JSON.parse has accepted, so
 * it only tracks nesting, strings and keys. Written by hand: no JSON library reports duplicate keys
 * cheaply, and JSON.parse silently keeps the last one where another parser might keep the first.
 */
function rejectDuplicateKeys(text: string): void {
  const isObject: boolean[] = [];
  let depth = 0;
  let expectKey = false;
  let seen2 = 0;
  let seen3 = 0;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (expectKey) {
        expectKey = false;
        if (depth === 2) {
          const bit = keyBit(text, i, end, true);
          if (bit !== 0) {
            if (seen2 & bit) throw duplicate(text, i, end);
            seen2 |= bit;
          }
        } else if (depth === 3) {
          const bit = keyBit(text, i, end, false);
          if (bit !== 0) {
            if (seen3 & bit) throw duplicate(text, i, end);
            seen3 |= bit;
          }
        }
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      isObject[++depth] = true;
      expectKey = true;
      if (depth === 2) seen2 = 0;
      else if (depth === 3) seen3 = 0;
    } else if (c === 0x5b /* [ */) {
      isObject[++depth] = false;
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = isObject[depth];
    }
  }
}

/** Index of the closing quote of the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let j = start;
  for (;;) {
    j = text.indexOf('"', j + 1);
    let k = j - 1;
    while (text.charCodeAt(k) === 0x5c) k--;
    if ((j - 1 - k) % 2 === 0) return j;
  }
}

function keyBit(text: string, start: number, end: number, operationLevel: boolean): number {
  const key = keyText(text, start, end);
  if (key === "id") return K_ID;
  if (!operationLevel) return 0;
  if (key === "operationType") return K_OPERATION_TYPE;
  if (key === "partitionKey") return K_PARTITION_KEY;
  if (key === "resourceBody") return K_RESOURCE_BODY;
  return 0;
}

/** The key's text, decoding escapes only when there are any. Longer keys than ours are skipped unread. */
function keyText(text: string, start: number, end: number): string {
  const rawLength = end - start - 1;
  let escaped = false;
  for (let k = start + 1; k < end; k++) {
    if (text.charCodeAt(k) === 0x5c) {
      escaped = true;
      break;
    }
  }
  if (!escaped) return rawLength > 13 ? "" : text.slice(start + 1, end);
  // An escaped key of ours is at most 13 characters of 6 escape characters each.
  return rawLength > 13 * 6 ? "" : (JSON.parse(text.slice(start, end + 1)) as string);
}

function duplicate(text: string, start: number, end: number): CosmosWireError {
  return bad(`repeats the key "${keyText(text, start, end)}" in one object; send each key once`);
}

function bad(what: string): CosmosWireError {
  return new CosmosWireError(
    "ERR_BAD_BATCH",
    `The batch request body ${what}. A batch body is a JSON array of up to ${MAX_BATCH_OPERATIONS} objects like {"operationType": "Create", "resourceBody": {...}}, as the Cosmos DB SDK sends.`,
  );
}
