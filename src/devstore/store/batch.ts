import type { Json, JsonObject } from "../query/index.js";
import { badRequest, DevStoreError } from "./errors.js";
import {
  createItem,
  deleteItem,
  etagMatches,
  parsePatchSpec,
  patchItem,
  readItem,
  replaceItem,
} from "./items.js";
import { extractPartitionKey, headerPartitionKey, partitionKeyText } from "./partitionKey.js";
import type { StoreEnv } from "./store.js";
import type { ContainerInfo, ItemResult } from "./types.js";
import { checkId } from "./validate.js";

/** Most operations in one batch or bulk request (Cosmos DB's limit). */
export const MAX_BATCH_OPERATIONS = 100;

/** One operation's outcome, as Cosmos DB reports it in a batch response. */
export interface BatchOperationResult {
  statusCode: number;
  subStatusCode?: number;
  /** The document's JSON text (embedded as is in the response). */
  body?: string;
  eTag?: string;
  message?: string;
  requestCharge: number;
}

export interface BatchOutcome {
  /** 200 when every operation succeeded, 207 otherwise (the SDK reads each operation's status). */
  status: 200 | 207;
  results: BatchOperationResult[];
  lsn: number;
}

export type OperationType = "Create" | "Upsert" | "Read" | "Delete" | "Replace" | "Patch";

interface ParsedOperation {
  type: OperationType;
  id?: string;
  body?: JsonObject;
  patch?: Json;
  pk?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** Thrown inside an atomic batch's transaction to roll it back. */
class Rollback extends Error {}

/**
 * A transactional batch (`atomic`: one SQLite transaction, all or nothing; when an operation fails
 * it reports its own status and every other operation 424) or a bulk request (each operation on
 * its own, with its own partition key; `continueOnError` false stops at the first failure).
 */
export function executeBatch(
  env: StoreEnv,
  c: ContainerInfo,
  body: Json,
  opts: { atomic: boolean; partitionKey?: string; continueOnError: boolean },
): BatchOutcome {
  if (!Array.isArray(body)) {
    throw badRequest("A batch request body must be a JSON array of operations.");
  }
  if (body.length === 0) throw badRequest("The batch request has no operations.");
  if (body.length > MAX_BATCH_OPERATIONS) {
    throw badRequest(
      `Batch request has more operations than what is supported: ${body.length}; the limit is ${MAX_BATCH_OPERATIONS}.`,
    );
  }
  const ops = body.map((raw, i) => parseOperation(raw, i));
  if (opts.atomic) {
    if (opts.partitionKey === undefined) {
      throw badRequest(
        "A transactional batch needs the x-ms-documentdb-partitionkey header (all its operations share one partition key).",
      );
    }
    for (const op of ops) {
      if (
        op.pk !== undefined &&
        headerPartitionKey(op.pk, c.pk, false, "a batch operation's partitionKey").text !== opts.partitionKey
      ) {
        throw badRequest(
          "One or more operations within the batch request have a different partition key value than the request.",
        );
      }
    }
    return atomicBatch(env, c, ops, opts.partitionKey);
  }
  return bulk(env, c, ops, opts.continueOnError);
}

function atomicBatch(env: StoreEnv, c: ContainerInfo, ops: ParsedOperation[], pk: string): BatchOutcome {
  const results: BatchOperationResult[] = new Array(ops.length);
  let failed = -1;
  try {
    env.transaction(c, () => {
      for (let i = 0; i < ops.length; i++) {
        try {
          results[i] = success(run(env, c, ops[i], pk), ops[i].type);
        } catch (err) {
          if (!(err instanceof DevStoreError)) throw err;
          results[i] = failure(err);
          failed = i;
          throw new Rollback();
        }
      }
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  if (failed >= 0) {
    for (let i = 0; i < ops.length; i++) {
      if (i !== failed) results[i] = failedDependency();
    }
    return { status: 207, results, lsn: c.lsn };
  }
  return { status: 200, results, lsn: c.lsn };
}

function bulk(
  env: StoreEnv,
  c: ContainerInfo,
  ops: ParsedOperation[],
  continueOnError: boolean,
): BatchOutcome {
  const results: BatchOperationResult[] = new Array(ops.length);
  let anyFailed = false;
  let stopped = false;
  // One outer transaction (one disk sync for the request); each operation in its own savepoint.
  env.transaction(c, () => {
    for (let i = 0; i < ops.length; i++) {
      if (stopped) {
        results[i] = failedDependency();
        continue;
      }
      try {
        const op = ops[i];
        const pk = bulkPartitionKey(c, op);
        results[i] = success(
          env.transaction(c, () => run(env, c, op, pk)),
          op.type,
        );
      } catch (err) {
        if (!(err instanceof DevStoreError)) throw err;
        results[i] = failure(err);
        anyFailed = true;
        if (!continueOnError) stopped = true;
      }
    }
  });
  return { status: anyFailed ? 207 : 200, results, lsn: c.lsn };
}

/** A bulk operation's partition key: its own `partitionKey`, else the one in its body. */
function bulkPartitionKey(c: ContainerInfo, op: ParsedOperation): string {
  if (op.pk !== undefined) return headerPartitionKey(op.pk, c.pk, false, "the operation's partitionKey").text;
  if (op.body !== undefined) return partitionKeyText(extractPartitionKey(op.body, c.pk));
  throw badRequest(`A bulk ${op.type} operation needs a "partitionKey".`);
}

function run(env: StoreEnv, c: ContainerInfo, op: ParsedOperation, pk: string): ItemResult {
  switch (op.type) {
    case "Create":
      return createItem(env, c, pk, need(op.body, op), false);
    case "Upsert":
      return createItem(env, c, pk, need(op.body, op), true, { ifMatch: op.ifMatch });
    case "Read": {
      const r = readItem(env, c, need(op.id, op), pk);
      if (op.ifNoneMatch !== undefined && r.etag !== undefined && etagMatches(op.ifNoneMatch, r.etag)) {
        return { status: 304, etag: r.etag, lsn: r.lsn };
      }
      return r;
    }
    case "Replace":
      return replaceItem(env, c, need(op.id, op), pk, need(op.body, op), { ifMatch: op.ifMatch });
    case "Delete":
      return deleteItem(env, c, need(op.id, op), pk, { ifMatch: op.ifMatch });
    case "Patch":
      return patchItem(env, c, need(op.id, op), pk, parsePatchSpec(op.patch ?? null), {
        ifMatch: op.ifMatch,
      });
  }
}

function need<T>(v: T | undefined, op: ParsedOperation): T {
  if (v === undefined) {
    throw badRequest(
      `A batch ${op.type} operation needs ${op.type === "Create" || op.type === "Upsert" ? '"resourceBody"' : '"id"'}.`,
    );
  }
  return v;
}

const TYPES = new Set<string>(["Create", "Upsert", "Read", "Delete", "Replace", "Patch"]);

function parseOperation(raw: Json, i: number): ParsedOperation {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw badRequest(`Batch operation ${i} is not a JSON object.`);
  }
  const type = raw.operationType;
  if (typeof type !== "string" || !TYPES.has(type)) {
    throw badRequest(
      `Batch operation ${i} has operationType ${JSON.stringify(type ?? null)}; use Create, Upsert, Read, Delete, Replace or Patch.`,
    );
  }
  const op: ParsedOperation = { type: type as OperationType };
  if (raw.id !== undefined) op.id = checkId(raw.id, "item");
  const rb = raw.resourceBody;
  if (type === "Patch") {
    op.patch = rb;
  } else if (rb !== undefined && rb !== null) {
    if (typeof rb !== "object" || Array.isArray(rb)) {
      throw badRequest(`Batch operation ${i}'s resourceBody must be a JSON object.`);
    }
    op.body = rb;
    if (op.id === undefined && (type === "Replace" || type === "Read" || type === "Delete")) {
      op.id = checkId(rb.id, "item");
    }
  }
  if (raw.partitionKey !== undefined && raw.partitionKey !== null) {
    op.pk = typeof raw.partitionKey === "string" ? raw.partitionKey : JSON.stringify(raw.partitionKey);
  }
  if (typeof raw.ifMatch === "string") op.ifMatch = raw.ifMatch;
  if (typeof raw.ifNoneMatch === "string") op.ifNoneMatch = raw.ifNoneMatch;
  return op;
}

function success(r: ItemResult, type: OperationType): BatchOperationResult {
  const out: BatchOperationResult = { statusCode: r.status, requestCharge: itemCharge(type, r.body) };
  if (r.etag !== undefined) out.eTag = r.etag;
  if (r.body !== undefined) out.body = r.body;
  return out;
}

function failure(err: DevStoreError): BatchOperationResult {
  const out: BatchOperationResult = { statusCode: err.status, requestCharge: 1.24, message: err.message };
  if (err.substatus !== undefined) out.subStatusCode = err.substatus;
  return out;
}

function failedDependency(): BatchOperationResult {
  return {
    statusCode: 424,
    requestCharge: 0,
    message: "The operation was not performed because another operation in the batch failed.",
  };
}

/**
 * A plausible request charge in RU, as Cosmos DB bills: about 1 RU per KB read, about 5-10 RU per
 * write of a small item, growing with its size.
 */
export function itemCharge(type: OperationType | "Query", body: string | undefined): number {
  const kb = body === undefined ? 0 : body.length / 1024;
  const ru = type === "Read" ? Math.max(1, kb) : type === "Delete" ? 5.33 : 5.71 + kb * 1.9;
  return Math.round(ru * 100) / 100;
}

/** Serializes batch results as Cosmos DB does, embedding each document's stored JSON unchanged. */
export function batchResponseBody(results: readonly BatchOperationResult[], minimal: boolean): string {
  const parts: string[] = new Array(results.length);
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    let s = `{"statusCode":${r.statusCode}`;
    if (r.subStatusCode !== undefined) s += `,"subStatusCode":${r.subStatusCode}`;
    s += `,"requestCharge":${r.requestCharge}`;
    if (r.eTag !== undefined) s += `,"eTag":${JSON.stringify(r.eTag)}`;
    if (r.message !== undefined) s += `,"message":${JSON.stringify(r.message)}`;
    if (r.body !== undefined && !minimal) s += `,"resourceBody":${r.body}`;
    parts[i] = s + "}";
  }
  return `[${parts.join(",")}]`;
}
