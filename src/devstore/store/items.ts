import { randomUUID } from "node:crypto";
import { type Json, type JsonObject, prepareCondition } from "../query/index.js";
import { applyPatch, type PatchOperation } from "../query/patch.js";
import { badRequest, conflict, notFound, preconditionFailed } from "./errors.js";
import { checkPartitionKey, extractPartitionKey, partitionKeyText } from "./partitionKey.js";
import { itemRid } from "./rid.js";
import type { StoreEnv } from "./store.js";
import type { ContainerInfo, ItemResult, ItemRow } from "./types.js";
import { checkId, checkItemSize, checkTtl } from "./validate.js";

/** Options of item writes. */
export interface WriteOptions {
  /** `If-Match`: the write happens only if the item's current etag is this ("*": if it exists). */
  ifMatch?: string;
}

/** A patch request: its operations and optional condition ("from c where ..."). */
export interface PatchSpec {
  operations: PatchOperation[];
  condition?: string;
}

/** True when an `If-Match`/`If-None-Match` value names `etag` ("*" names any). */
export function etagMatches(header: string, etag: string): boolean {
  for (let part of header.split(",")) {
    part = part.trim();
    if (part === "*" || part === etag) return true;
    if (part.startsWith("W/") && part.slice(2) === etag) return true;
    // Accept an etag sent without its quotes.
    if (!part.startsWith('"') && `"${part}"` === etag) return true;
  }
  return false;
}

/** The row when it exists and has not expired (an expired row not swept yet counts as gone). */
function live(row: ItemRow | undefined, now: number): ItemRow | undefined {
  return row !== undefined && (row.expires_at === null || row.expires_at > now) ? row : undefined;
}

function getRow(c: ContainerInfo, id: string, pk: string): ItemRow | undefined {
  return c.stmts.get.get(id, pk) as ItemRow | undefined;
}

/** Point read. 404 when missing or expired; 304 when `ifNoneMatch` names the current etag. */
export function readItem(
  env: StoreEnv,
  c: ContainerInfo,
  id: string,
  pk: string,
  ifNoneMatch?: string,
): ItemResult {
  const row = live(getRow(c, id, pk), env.now());
  if (row === undefined) throw notFound();
  if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, row.etag)) {
    return { status: 304, etag: row.etag, lsn: c.lsn };
  }
  return { status: 200, body: row.body, etag: row.etag, lsn: c.lsn };
}

/**
 * Create (or, with `upsert`, create-or-replace) `doc` in partition `pk`. The document's own
 * partition key must equal `pk` (400/1001 otherwise). Runs inside the caller's transaction.
 */
export function createItem(
  env: StoreEnv,
  c: ContainerInfo,
  pk: string,
  doc: JsonObject,
  upsert: boolean,
  opts: WriteOptions = {},
): ItemResult {
  const id = checkId(doc.id, "item");
  checkPartitionKey(partitionKeyText(extractPartitionKey(doc, c.pk)), pk);
  const stored = getRow(c, id, pk);
  const now = env.now();
  const row = live(stored, now);
  if (row !== undefined) {
    if (!upsert) throw conflict();
    if (opts.ifMatch !== undefined && !etagMatches(opts.ifMatch, row.etag)) throw preconditionFailed();
    const r = writeDoc(env, c, id, pk, doc, row, now);
    return { status: 200, body: r.text, etag: r.etag, lsn: c.lsn };
  }
  if (opts.ifMatch !== undefined) throw preconditionFailed();
  if (stored !== undefined) c.stmts.remove.run(stored.pos); // an expired row not swept yet
  const r = writeDoc(env, c, id, pk, doc, undefined, now);
  return { status: 201, body: r.text, etag: r.etag, lsn: c.lsn };
}

/** Replace the item `id` of partition `pk` with `doc` (same id). */
export function replaceItem(
  env: StoreEnv,
  c: ContainerInfo,
  id: string,
  pk: string,
  doc: JsonObject,
  opts: WriteOptions = {},
): ItemResult {
  const bodyId = checkId(doc.id, "item");
  if (bodyId !== id) {
    throw badRequest(
      `The id in the request body ('${bodyId}') differs from the id in the path ('${id}'); an item's id cannot be changed by a replace.`,
    );
  }
  checkPartitionKey(partitionKeyText(extractPartitionKey(doc, c.pk)), pk);
  const now = env.now();
  const row = live(getRow(c, id, pk), now);
  if (row === undefined) throw notFound();
  if (opts.ifMatch !== undefined && !etagMatches(opts.ifMatch, row.etag)) throw preconditionFailed();
  const r = writeDoc(env, c, id, pk, doc, row, now);
  return { status: 200, body: r.text, etag: r.etag, lsn: c.lsn };
}

/** Delete the item `id` of partition `pk`. */
export function deleteItem(
  env: StoreEnv,
  c: ContainerInfo,
  id: string,
  pk: string,
  opts: WriteOptions = {},
): ItemResult {
  const row = live(getRow(c, id, pk), env.now());
  if (row === undefined) throw notFound();
  if (opts.ifMatch !== undefined && !etagMatches(opts.ifMatch, row.etag)) throw preconditionFailed();
  c.stmts.remove.run(row.pos);
  c.lsn++;
  return { status: 204, lsn: c.lsn };
}

/** Apply patch operations (and the optional condition) to the item `id` of partition `pk`. */
export function patchItem(
  env: StoreEnv,
  c: ContainerInfo,
  id: string,
  pk: string,
  patch: PatchSpec,
  opts: WriteOptions = {},
): ItemResult {
  const now = env.now();
  const row = live(getRow(c, id, pk), now);
  if (row === undefined) throw notFound();
  if (opts.ifMatch !== undefined && !etagMatches(opts.ifMatch, row.etag)) throw preconditionFailed();
  const doc = JSON.parse(row.body) as JsonObject;
  if (patch.condition !== undefined) {
    const holds = prepareCondition(patch.condition, {
      partitionKeyPaths: c.pk.paths,
      udf: env.udfResolver(c),
      now: env.now,
    });
    if (!holds(doc)) throw preconditionFailed();
  }
  const next = applyPatch(doc, patch.operations, { partitionKeyPaths: c.pk.paths });
  if (next.id !== id) throw badRequest("A patch cannot change an item's id.");
  checkPartitionKey(partitionKeyText(extractPartitionKey(next, c.pk)), pk);
  const r = writeDoc(env, c, id, pk, next, row, now);
  return { status: 200, body: r.text, etag: r.etag, lsn: c.lsn };
}

/** Reads a patch request body: `{operations, condition?}` or a bare array of operations. */
export function parsePatchSpec(body: Json): PatchSpec {
  let operations: Json | undefined;
  let condition: Json | undefined;
  if (Array.isArray(body)) {
    operations = body;
  } else if (body !== null && typeof body === "object") {
    operations = body.operations;
    condition = body.condition;
  }
  if (!Array.isArray(operations) || operations.length === 0) {
    throw badRequest(
      'A patch request needs a non-empty "operations" array, e.g. {"operations": [{"op": "set", "path": "/status", "value": "done"}]}.',
    );
  }
  if (condition !== undefined && condition !== null && typeof condition !== "string") {
    throw badRequest('The patch "condition" must be a string such as "from c where c.status = \'open\'".');
  }
  for (const op of operations) {
    if (
      op === null ||
      typeof op !== "object" ||
      Array.isArray(op) ||
      typeof op.op !== "string" ||
      typeof op.path !== "string"
    ) {
      throw badRequest(
        'Each patch operation must be an object with "op" and "path", e.g. {"op": "remove", "path": "/tmp"}.',
      );
    }
  }
  return {
    operations: operations as unknown as PatchOperation[],
    condition: typeof condition === "string" ? condition : undefined,
  };
}

/**
 * Stamps system properties on `doc` and stores it: a new row (new position) or, given the live
 * `existing` row, an update in place (same position and `_rid`). Takes the container's next LSN
 * (the caller's {@link StoreEnv.transaction} persists the counters).
 */
function writeDoc(
  env: StoreEnv,
  c: ContainerInfo,
  id: string,
  pk: string,
  doc: JsonObject,
  existing: ItemRow | undefined,
  now: number,
): { text: string; etag: string } {
  const expiresAt = expiry(c, doc, now);
  if (c.uniqueKeys.length > 0) env.checkUniqueKeys(c, pk, doc, existing?.pos ?? -1, now);
  const pos = existing !== undefined ? existing.pos : ++c.pos;
  const lsn = ++c.lsn;
  const etag = `"${randomUUID()}"`;
  const rid = itemRid(c.ridBytes, pos);
  const stamped: JsonObject = {
    ...doc,
    _rid: rid,
    _self: `${c.self}docs/${rid}/`,
    _etag: etag,
    _attachments: "attachments/",
    _ts: Math.floor(now / 1000),
  };
  const text = JSON.stringify(stamped);
  checkItemSize(text);
  if (existing !== undefined) {
    c.stmts.update.run(etag, lsn, now, expiresAt, text, pos);
  } else {
    c.stmts.insert.run(pos, id, pk, etag, lsn, now, expiresAt, text);
  }
  return { text, etag };
}

/** When an item written at `now` expires (ms), or null: the container's defaultTtl, overridden by the item's `ttl`. */
export function expiry(c: ContainerInfo, doc: JsonObject, now: number): number | null {
  if (c.defaultTtl === undefined) return null;
  const own = checkTtl(doc.ttl, 'the item\'s "ttl"');
  const secs = own ?? c.defaultTtl;
  return secs === -1 ? null : now + secs * 1000;
}
