import { type Json, type JsonObject, type PreparedQuery, prepareQuery } from "../query/index.js";
import { type Continuation, decodeContinuation, encodeContinuation, requestHash } from "./continuation.js";
import { badRequest } from "./errors.js";
import { type PartitionKeySpec, prefixRange } from "./partitionKey.js";
import type { StoreEnv } from "./store.js";
import type { ChangeFeedPage, ContainerInfo, FeedPage } from "./types.js";

/** Page size when the client sends no `x-ms-max-item-count` (as Cosmos DB). */
export const DEFAULT_PAGE_SIZE = 100;

/** Largest page body, as Cosmos DB's 4 MB response limit. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;

/** A partition filter: one key (`prefix` for the leading components of a hierarchical key). */
export interface PartitionFilter {
  text: string;
  prefix: boolean;
}

/** Paging of a feed: `maxItemCount` (-1 or undefined: as many as fit) and the continuation token. */
export interface Paging {
  maxItemCount?: number;
  continuation?: string;
}

/** A query as sent: text and parameters (names with "@"). */
export interface QuerySpec {
  query: string;
  parameters?: { name: string; value: Json }[];
}

function pageLimit(maxItemCount: number | undefined): number {
  if (maxItemCount === undefined || maxItemCount === 0) return DEFAULT_PAGE_SIZE;
  if (maxItemCount < 0) return Number.MAX_SAFE_INTEGER;
  return maxItemCount;
}

/** SQL conditions and parameters that select a container's live rows. */
class Where {
  readonly conds: string[] = [];
  readonly params: (string | number | null)[] = [];

  partition(p: PartitionFilter): void {
    if (p.prefix) {
      const [lo, hi] = prefixRange(p.text);
      this.conds.push("pk >= ? AND pk < ?");
      this.params.push(lo, hi);
    } else {
      this.conds.push("pk = ?");
      this.params.push(p.text);
    }
  }

  anyPartition(keys: PartitionFilter[]): void {
    const parts: string[] = [];
    for (const k of keys) {
      if (k.prefix) {
        const [lo, hi] = prefixRange(k.text);
        parts.push("(pk >= ? AND pk < ?)");
        this.params.push(lo, hi);
      } else {
        parts.push("pk = ?");
        this.params.push(k.text);
      }
    }
    this.conds.push(parts.length === 1 ? parts[0] : `(${parts.join(" OR ")})`);
  }

  add(cond: string, ...params: (string | number | null)[]): void {
    this.conds.push(cond);
    this.params.push(...params);
  }

  sql(): string {
    return this.conds.length === 0 ? "" : ` WHERE ${this.conds.join(" AND ")}`;
  }
}

/** Turns the query engine's partition-key hint (values for the pk paths, maybe a prefix) into filters. */
function hintPartitions(spec: PartitionKeySpec, hint: Json[][]): PartitionFilter[] | undefined {
  const out: PartitionFilter[] = [];
  for (const values of hint) {
    if (!Array.isArray(values) || values.length === 0 || values.length > spec.parts.length) return undefined;
    for (const v of values) {
      if (v !== null && typeof v === "object") return undefined; // not a key value: scan instead
    }
    out.push({ text: JSON.stringify(values), prefix: values.length < spec.parts.length });
  }
  return out;
}

/**
 * Iterates the live rows of a container that match `where`, in position order, as the query
 * engine's source. The SQLite iterator is closed when the generator is (finally).
 */
function* scan(
  env: StoreEnv,
  c: ContainerInfo,
  where: Where,
  counter: { scanned: number },
): Generator<{ doc: JsonObject; pos: number }> {
  const sql = `SELECT pos, body FROM ${c.table}${where.sql()} ORDER BY pos`;
  const stmt = env.statement(c, sql);
  const rows = stmt.iterate(...where.params) as IterableIterator<{ pos: number; body: string }>;
  try {
    for (const r of rows) {
      counter.scanned++;
      yield { doc: JSON.parse(r.body) as JsonObject, pos: r.pos };
    }
  } finally {
    rows.return?.();
  }
}

/**
 * The read feed (GET .../docs): live items in position order, optionally of one partition, paged
 * by `maxItemCount` with a position continuation.
 */
export function readFeed(
  env: StoreEnv,
  c: ContainerInfo,
  partition: PartitionFilter | undefined,
  paging: Paging,
): FeedPage {
  const hash = requestHash("feed", c.rid, partition?.text ?? "", partition?.prefix ? "prefix" : "");
  const cont = paging.continuation ? decodeContinuation(paging.continuation, hash) : undefined;
  const where = new Where();
  if (partition) where.partition(partition);
  where.add("(expires_at IS NULL OR expires_at > ?)", env.now());
  if (cont?.p !== undefined) where.add("pos >= ?", cont.p);
  const limit = pageLimit(paging.maxItemCount);
  const stmt = env.statement(c, `SELECT pos, body FROM ${c.table}${where.sql()} ORDER BY pos LIMIT ?`);
  const rows = stmt.all(...where.params, limit === Number.MAX_SAFE_INTEGER ? -1 : limit + 1) as {
    pos: number;
    body: string;
  }[];
  const items: string[] = [];
  let bytes = 0;
  let next: number | undefined;
  for (const r of rows) {
    if (items.length >= limit || (items.length > 0 && bytes + r.body.length > MAX_PAGE_BYTES)) {
      next = r.pos;
      break;
    }
    items.push(r.body);
    bytes += r.body.length;
  }
  return {
    items,
    continuation: next === undefined ? undefined : encodeContinuation({ h: hash, e: 0, p: next }),
    scanned: items.length,
    lsn: c.lsn,
  };
}

/**
 * Runs a query on one container completely (ORDER BY, aggregates, GROUP BY, DISTINCT, OFFSET
 * LIMIT, TOP: there is one partition-key range, so nothing is left for the client to merge).
 * Storage is narrowed by the partition key header, else by the engine's sound hints; the engine
 * re-checks everything. Pages resume by source position when the query streams, else by the
 * number of results already returned.
 */
export function queryContainer(
  env: StoreEnv,
  c: ContainerInfo,
  spec: QuerySpec,
  partition: PartitionFilter | undefined,
  paging: Paging,
): FeedPage {
  const prepared = prepareQuery(spec.query, {
    parameters: spec.parameters,
    partitionKeyPaths: c.pk.paths,
    udf: env.udfResolver(c),
    now: env.now,
  });
  const hash = requestHash(
    "query",
    c.rid,
    spec.query,
    JSON.stringify(spec.parameters ?? []),
    partition?.text ?? "",
    partition?.prefix ? "prefix" : "",
  );
  const cont = paging.continuation ? decodeContinuation(paging.continuation, hash) : undefined;
  if (cont !== undefined && (cont.p !== undefined) !== prepared.streamable) {
    throw badRequest("The continuation token (x-ms-continuation) does not fit this query.");
  }

  const where = new Where();
  if (partition) {
    where.partition(partition);
  } else if (prepared.hints.partitionKeys !== undefined) {
    const keys = hintPartitions(c.pk, prepared.hints.partitionKeys);
    if (keys !== undefined) {
      if (keys.length === 0) return { items: [], scanned: 0, lsn: c.lsn }; // WHERE c.pk IN () : nothing
      where.anyPartition(keys);
    }
  }
  const ids = prepared.hints.ids;
  if (ids !== undefined) {
    if (ids.length === 0) return { items: [], scanned: 0, lsn: c.lsn };
    where.add(`id IN (${ids.map(() => "?").join(",")})`, ...ids);
  }
  if (prepared.hints.sql !== undefined)
    where.add(`(${prepared.hints.sql.where})`, ...prepared.hints.sql.params);
  where.add("(expires_at IS NULL OR expires_at > ?)", env.now());
  if (cont?.p !== undefined) where.add("pos >= ?", cont.p);

  const counter = { scanned: 0 };
  const source = scan(env, c, where, counter);
  return runPaged(prepared, source, cont, hash, pageLimit(paging.maxItemCount), counter, c.lsn);
}

/**
 * Runs a query over a list of resource bodies (databases, containers, scripts, offers), in list
 * order, paged by results emitted.
 */
export function queryResources(
  bodies: readonly string[],
  spec: QuerySpec,
  paging: Paging,
  feed: string,
  now: () => number,
): FeedPage {
  const prepared = prepareQuery(spec.query, { parameters: spec.parameters, now });
  const hash = requestHash("resources", feed, spec.query, JSON.stringify(spec.parameters ?? []));
  const cont = paging.continuation ? decodeContinuation(paging.continuation, hash) : undefined;
  const counter = { scanned: 0 };
  function* source(): Generator<{ doc: JsonObject; pos: number }> {
    const start = cont?.p ?? 0;
    for (let i = start; i < bodies.length; i++) {
      counter.scanned++;
      yield { doc: JSON.parse(bodies[i]) as JsonObject, pos: i };
    }
  }
  return runPaged(prepared, source(), cont, hash, pageLimit(paging.maxItemCount), counter, 0);
}

/** Pages a list of resource bodies (list feeds of databases, containers, scripts, ...). */
export function pageResources(bodies: readonly string[], paging: Paging, feed: string): FeedPage {
  const hash = requestHash("list", feed);
  const cont = paging.continuation ? decodeContinuation(paging.continuation, hash) : undefined;
  const start = cont?.p ?? 0;
  const limit = pageLimit(paging.maxItemCount);
  const end = Math.min(bodies.length, start + Math.min(limit, bodies.length));
  const items = bodies.slice(start, end);
  return {
    items,
    continuation: end < bodies.length ? encodeContinuation({ h: hash, e: 0, p: end }) : undefined,
    scanned: items.length,
    lsn: 0,
  };
}

function runPaged(
  prepared: PreparedQuery,
  source: Generator<{ doc: JsonObject; pos: number }>,
  cont: Continuation | undefined,
  hash: string,
  limit: number,
  counter: { scanned: number },
  lsn: number,
): FeedPage {
  const emittedBefore = cont?.e ?? 0;
  // Streamable: the first doc (at cont.p) already gave cont.k results on earlier pages.
  let skip = prepared.streamable ? (cont?.k ?? 0) : 0;
  const startPos = cont?.p;
  const results = prepared.run(source, { emitted: emittedBefore - skip })[Symbol.iterator]();
  const items: string[] = [];
  let bytes = 0;
  let lastPos = -1;
  let atLastPos = 0; // results on this page from the doc at lastPos
  let more = false;
  try {
    for (;;) {
      const n = results.next();
      if (n.done) break;
      if (skip > 0 && n.value.pos === startPos) {
        skip--;
        continue;
      }
      skip = 0;
      const text = JSON.stringify(n.value.value);
      if (text === undefined) continue;
      if (items.length >= limit || (items.length > 0 && bytes + text.length > MAX_PAGE_BYTES)) {
        more = true;
        break;
      }
      items.push(text);
      bytes += text.length;
      if (n.value.pos === lastPos) atLastPos++;
      else {
        lastPos = n.value.pos;
        atLastPos = 1;
      }
    }
  } finally {
    results.return?.();
    source.return(undefined);
  }
  let continuation: string | undefined;
  if (more) {
    const emitted = emittedBefore + items.length;
    if (prepared.streamable) {
      // Resume at the last doc that produced output, skipping what it already produced.
      const k = lastPos === startPos ? (cont?.k ?? 0) + atLastPos : atLastPos;
      continuation = encodeContinuation({ h: hash, e: emitted, p: lastPos, k });
    } else {
      continuation = encodeContinuation({ h: hash, e: emitted });
    }
  }
  return { items, continuation, scanned: counter.scanned, lsn };
}

/** Where a change-feed read starts. */
export interface ChangeFeedStart {
  /** `If-None-Match`: "*" (from now) or the etag of the previous read (its last LSN). */
  ifNoneMatch?: string;
  /** `If-Modified-Since`, ms since the epoch: changes made at or after this time. */
  since?: number;
}

/**
 * The incremental change feed: the latest version of each item changed after the start point, in
 * LSN order, at most `maxItemCount`. `items` empty means 304 (nothing changed); `etag` is the
 * continuation to send back in `If-None-Match`.
 */
export function changeFeed(
  env: StoreEnv,
  c: ContainerInfo,
  partition: PartitionFilter | PartitionFilter[] | undefined,
  start: ChangeFeedStart,
  maxItemCount: number | undefined,
): ChangeFeedPage {
  let after = 0;
  const inm = start.ifNoneMatch?.trim();
  if (inm === "*") {
    return { items: [], etag: `"${c.lsn}"`, lsn: c.lsn };
  }
  if (inm !== undefined && inm !== "") {
    const digits = inm.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
    if (!/^\d{1,15}$/.test(digits)) {
      throw badRequest(
        "The change feed continuation (If-None-Match) is not one this store issued: send back the etag of the previous change-feed response, or '*' to start from now.",
      );
    }
    after = Number(digits);
  }
  const where = new Where();
  where.add("lsn > ?", after);
  if (Array.isArray(partition)) {
    if (partition.length === 0) return { items: [], etag: `"${Math.max(after, c.lsn)}"`, lsn: c.lsn };
    where.anyPartition(partition);
  } else if (partition) {
    where.partition(partition);
  }
  where.add("(expires_at IS NULL OR expires_at > ?)", env.now());
  if (start.since !== undefined) where.add("modified >= ?", start.since);
  const limit = pageLimit(maxItemCount);
  const stmt = env.statement(c, `SELECT lsn, body FROM ${c.table}${where.sql()} ORDER BY lsn LIMIT ?`);
  const rows = stmt.all(...where.params, limit === Number.MAX_SAFE_INTEGER ? -1 : limit) as {
    lsn: number;
    body: string;
  }[];
  const items: string[] = [];
  let bytes = 0;
  let last = after;
  let full = rows.length === limit;
  for (const r of rows) {
    if (items.length > 0 && bytes + r.body.length > MAX_PAGE_BYTES) {
      full = true;
      break;
    }
    items.push(r.body);
    bytes += r.body.length;
    last = r.lsn;
  }
  // A short page read everything up to now: the next read starts after the container's LSN.
  const next = full ? last : Math.max(last, c.lsn);
  return { items, etag: `"${next}"`, lsn: c.lsn };
}
