import type { Statement } from "better-sqlite3";
import { parseDuration } from "../config/duration.js";
import type { Database } from "../store/index.js";
import { AuditError } from "./errors.js";
import { scopeOf } from "./schema.js";
import type { AuditRecord } from "./types.js";

/**
 * What to look for in the audit trail. Every field is optional; those given must all match.
 * Times are milliseconds since the epoch: `from` inclusive, `to` exclusive.
 */
export interface AuditFilter {
  /** The record's subject (the principal, or the user an identity event is about), exactly. */
  actor?: string;
  /** The credential ID (the WebAuthn key), exactly. */
  key?: string;
  /** A short action name the record holds among its `actions` ("read", "create", "manage", ...). */
  action?: string;
  /** The event type exactly ("signin.failed"), or a prefix ending in `*` ("credential.*"). */
  type?: string;
  /**
   * The resource exactly ("/dbs/shop/colls/orders"), or a prefix: a value ending in `/` matches
   * the resources below it ("/dbs/shop/"), one ending in `*` every resource starting with what
   * comes before the `*` ("/dbs/shop/colls/ord*").
   */
  resource?: string;
  decision?: "allow" | "deny" | "error";
  from?: number;
  to?: number;
}

/** Options of {@link searchAudit}. */
export interface SearchOptions extends AuditFilter {
  /** At most this many records; default: all that match. */
  limit?: number;
  /** `"desc"` (default): newest first; `"asc"`: oldest first. Records are ordered by time, then seq. */
  order?: "asc" | "desc";
}

/** A stored record before it is parsed: what every query of this module reads. */
export interface RawRecord {
  seq: number;
  time: number;
  /** Canonical JSON of the event with its seq (the text the hash covers). */
  data: string;
  prev_hash: string;
  hash: string;
}

/** The query plans of a search: one for the indexed records, one for the newer ones. */
export interface SearchPlan {
  /** The index the search reads `audit_index` through. */
  index: string;
  /** EXPLAIN QUERY PLAN details of the query over the indexed records. */
  indexed: string[];
  /** EXPLAIN QUERY PLAN details of the scan of the records newer than the index's high-water mark. */
  tail: string[];
}

const DECISIONS: ReadonlySet<string> = new Set(["allow", "deny", "error"]);

/**
 * Checks a filter's values and returns it normalized (empty prefixes dropped).
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` naming the bad field.
 *
 * @example
 * ```ts
 * checkFilter({ actor: "ada", from: Date.now() - 3_600_000 });
 * ```
 */
export function checkFilter<F extends AuditFilter>(filter: F): F {
  const out = { ...filter };
  for (const field of ["actor", "key", "action", "type", "resource"] as const) {
    const v = out[field];
    if (v === undefined) continue;
    if (typeof v !== "string" || v.length === 0) throw argument(`${field} must be a non-empty string`);
  }
  if (out.decision !== undefined && !DECISIONS.has(out.decision))
    throw argument(`decision must be "allow", "deny" or "error"; got ${JSON.stringify(out.decision)}`);
  for (const field of ["from", "to"] as const) {
    const v = out[field];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v)))
      throw argument(`${field} must be a time in milliseconds since the epoch`);
  }
  if (out.from !== undefined && out.to !== undefined && out.from >= out.to)
    throw argument(
      `the time window is empty: from ${iso(out.from)} is not before to ${iso(out.to)}; swap them or widen the window`,
    );
  if (out.resource === "*") delete out.resource;
  if (out.type === "*") delete out.type;
  return out;
}

/**
 * Searches the audit trail, streaming: one record at a time, ordered by time then seq (newest
 * first unless `order: "asc"`). Memory stays constant whatever the number of matches.
 *
 * Records up to the index's high-water mark (`SELECT max(seq) FROM audit_index`) are found through
 * the indexes of `audit_index` and `audit_index_actions` (one chosen per search, the most
 * selective filter given: key, actor, exact resource, exact type, action, deny/error decision,
 * resource prefix, type prefix, then time); the few newer records, not indexed yet, are read by
 * seq range from `audit_events` and merged in. The set searched is fixed when the search starts:
 * records appended while it runs are not returned.
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` for a bad filter; `ERR_AUDIT_READ` when the trail
 *   cannot be read.
 *
 * @example
 * ```ts
 * for (const r of searchAudit(db, { actor: "ada", action: "delete", from: Date.now() - 86_400_000, limit: 50 }))
 *   console.log(formatRecord(r));
 * ```
 */
export function* searchAudit(db: Database, opts: SearchOptions = {}): Generator<AuditRecord> {
  for (const row of searchRaw(db, opts)) yield toRecord(row);
}

/**
 * {@link searchAudit} without parsing the records: rows of `audit_events` as stored.
 *
 * @throws {AuditError} as {@link searchAudit}.
 */
export function* searchRaw(db: Database, opts: SearchOptions = {}): Generator<RawRecord> {
  const filter = checkFilter(opts);
  const limit = opts.limit ?? -1;
  if (opts.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0))
    throw argument(`limit must be a non-negative whole number; got ${String(opts.limit)}`);
  if (opts.order !== undefined && opts.order !== "asc" && opts.order !== "desc")
    throw argument(`order must be "asc" or "desc"; got ${JSON.stringify(opts.order)}`);
  if (limit === 0) return;
  const desc = (opts.order ?? "desc") === "desc";
  const bounds = readBounds(db);
  const q = buildQuery(filter, chooseDriver(db, filter));

  // The unindexed tail is small (at most a batch or two): read its matches first, then merge.
  const dir = desc ? "DESC" : "ASC";
  const tailSql =
    `SELECT seq, time, data, prev_hash, hash FROM audit_events WHERE seq > ? AND seq <= ?${and(q.tail.where)} ` +
    `ORDER BY time ${dir}, seq ${dir} LIMIT ?`;
  const tail = read(db, () =>
    prepare<RawRecord>(db, tailSql).all(bounds.hw, bounds.head, ...q.tail.params, limit),
  );

  const indexedSql =
    `SELECT e.seq AS seq, s.t AS time, e.data AS data, e.prev_hash AS prev_hash, e.hash AS hash FROM (` +
    `SELECT ${q.indexed.seq} AS seq, ${q.indexed.time} AS t FROM ${q.indexed.from} WHERE ${q.indexed.seq} <= ?${and(q.indexed.where)} ` +
    `ORDER BY ${q.indexed.time} ${dir}, ${q.indexed.seq} ${dir} LIMIT ?) AS s ` +
    `CROSS JOIN audit_events AS e ON e.seq = s.seq ORDER BY s.t ${dir}, s.seq ${dir}`;
  const rows = read(db, () =>
    prepare<RawRecord>(db, indexedSql).iterate(bounds.hw, ...q.indexed.params, limit),
  );

  let left = limit;
  let ti = 0;
  const before = desc
    ? (a: RawRecord, b: RawRecord) => a.time > b.time || (a.time === b.time && a.seq > b.seq)
    : (a: RawRecord, b: RawRecord) => a.time < b.time || (a.time === b.time && a.seq < b.seq);
  try {
    for (;;) {
      const next = read(db, () => rows.next());
      if (next.done) break;
      const row = next.value;
      while (ti < tail.length && before(tail[ti], row)) {
        yield tail[ti++];
        if (--left === 0) return;
      }
      yield row;
      if (--left === 0) return;
    }
    while (ti < tail.length) {
      yield tail[ti++];
      if (--left === 0) return;
    }
  } finally {
    rows.return?.();
  }
}

/**
 * How many records match `filter` (for a progress bar's total), counted through the same indexes.
 *
 * @throws {AuditError} as {@link searchAudit}.
 *
 * @example
 * ```ts
 * const total = countAudit(db, { from: Date.parse("2025-01-01T00:00:00Z") });
 * ```
 */
export function countAudit(db: Database, filter: AuditFilter = {}): number {
  const f = checkFilter(filter);
  const bounds = readBounds(db);
  const q = buildQuery(f, chooseDriver(db, f));
  return read(db, () => {
    const indexed = prepare<number>(
      db,
      `SELECT count(*) FROM ${q.indexed.from} WHERE ${q.indexed.seq} <= ?${and(q.indexed.where)}`,
    )
      .pluck()
      .get(bounds.hw, ...q.indexed.params) as number;
    const tail = prepare<number>(
      db,
      `SELECT count(*) FROM audit_events WHERE seq > ? AND seq <= ?${and(q.tail.where)}`,
    )
      .pluck()
      .get(bounds.hw, bounds.head, ...q.tail.params) as number;
    return indexed + tail;
  });
}

/**
 * The records matching `filter` in seq order (the chain's order), streaming: what an export
 * writes. Without filters other than time, the indexed part is one seq range of `audit_events`
 * (its bounds found through the time index); with other filters, the seqs the index finds are
 * read back in seq order (`seq IN (...)`, SQLite keeps that set of integers in its temporary
 * storage, spilling to disk when large). The newer, unindexed records follow in seq order.
 *
 * @throws {AuditError} as {@link searchAudit}.
 *
 * @example
 * ```ts
 * for (const row of seqOrdered(db, { from })) out.write(`${row.data}\n`);
 * ```
 */
export function* seqOrdered(db: Database, filter: AuditFilter = {}): Generator<RawRecord> {
  const f = checkFilter(filter);
  const bounds = readBounds(db);
  const q = buildQuery(f, chooseDriver(db, f));
  const cols = "seq, time, data, prev_hash, hash";
  const timeOnly = q.indexed.index === "audit_index_time";
  let rows: IterableIterator<RawRecord>;
  if (timeOnly && f.from === undefined && f.to === undefined && f.decision === undefined) {
    // Everything indexed: the records themselves, in seq order.
    rows = read(db, () =>
      prepare<RawRecord>(db, `SELECT ${cols} FROM audit_events WHERE seq <= ? ORDER BY seq`).iterate(
        bounds.hw,
      ),
    );
  } else if (timeOnly) {
    // One seq range holds every record of the window: [min, max] of their seqs (the time index
    // covers both). Records in that range outside the window (their clocks disagree) are filtered.
    const range = read(db, () =>
      prepare<{ lo: number | null; hi: number | null }>(
        db,
        `SELECT min(seq) AS lo, max(seq) AS hi FROM ${q.indexed.from} WHERE seq <= ?${and(q.indexed.where)}`,
      ).get(bounds.hw, ...q.indexed.params),
    );
    const lo = range?.lo ?? 1;
    const hi = range?.hi ?? 0;
    rows = read(db, () =>
      prepare<RawRecord>(
        db,
        `SELECT ${cols} FROM audit_events WHERE seq >= ? AND seq <= ?${and(q.tail.where)} ORDER BY seq`,
      ).iterate(lo, hi, ...q.tail.params),
    );
  } else {
    rows = read(db, () =>
      prepare<RawRecord>(
        db,
        `SELECT ${cols} FROM audit_events WHERE seq IN (SELECT ${q.indexed.seq} FROM ${q.indexed.from} ` +
          `WHERE ${q.indexed.seq} <= ?${and(q.indexed.where)}) ORDER BY seq`,
      ).iterate(bounds.hw, ...q.indexed.params),
    );
  }
  yield* drain(db, rows);
  const tail = read(db, () =>
    prepare<RawRecord>(
      db,
      `SELECT ${cols} FROM audit_events WHERE seq > ? AND seq <= ?${and(q.tail.where)} ORDER BY seq`,
    ).iterate(bounds.hw, bounds.head, ...q.tail.params),
  );
  yield* drain(db, tail);
}

/**
 * The query plans {@link searchAudit} and {@link seqOrdered} use for `filter` (EXPLAIN QUERY
 * PLAN), to show that a search reads indexes, not the whole trail.
 *
 * @example
 * ```ts
 * explainSearch(db, { actor: "ada" }).indexed; // ["SEARCH i USING COVERING INDEX audit_index_subject_time (subject=?)", ...]
 * ```
 */
export function explainSearch(db: Database, filter: AuditFilter = {}): SearchPlan & { exported: string[] } {
  const f = checkFilter(filter);
  const q = buildQuery(f, chooseDriver(db, f));
  const plan = (sql: string, params: unknown[]) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  const indexed = plan(
    `SELECT e.data FROM (SELECT ${q.indexed.seq} AS seq, ${q.indexed.time} AS t FROM ${q.indexed.from} ` +
      `WHERE ${q.indexed.seq} <= ?${and(q.indexed.where)} ORDER BY ${q.indexed.time} DESC, ${q.indexed.seq} DESC LIMIT ?) AS s ` +
      "CROSS JOIN audit_events AS e ON e.seq = s.seq ORDER BY s.t DESC, s.seq DESC",
    [0, ...q.indexed.params, 10],
  );
  const tail = plan(
    `SELECT data FROM audit_events WHERE seq > ? AND seq <= ?${and(q.tail.where)} ORDER BY time DESC, seq DESC LIMIT ?`,
    [0, 0, ...q.tail.params, 10],
  );
  const exported =
    q.indexed.index === "audit_index_time"
      ? plan(`SELECT min(seq), max(seq) FROM ${q.indexed.from} WHERE seq <= ?${and(q.indexed.where)}`, [
          0,
          ...q.indexed.params,
        ])
      : plan(
          `SELECT data FROM audit_events WHERE seq IN (SELECT ${q.indexed.seq} FROM ${q.indexed.from} ` +
            `WHERE ${q.indexed.seq} <= ?${and(q.indexed.where)}) ORDER BY seq`,
          [0, ...q.indexed.params],
        );
  return { index: q.indexed.index, indexed, tail, exported };
}

/**
 * Parses a time given on the command line: ISO 8601 (`2025-01-02`, `2025-01-02T03:04:05Z`,
 * `2025-01-02T05:04+02:00`; a date or time without a zone is UTC, as the audit prints times),
 * `now`, or a duration before `now` (`90s`, `15m`, `1h`, `7d`).
 *
 * @returns milliseconds since the epoch, or undefined when the text is none of these.
 *
 * @example
 * ```ts
 * parseTime("1h", Date.now()); // an hour ago
 * parseTime("2025-01-02T03:04:05Z", Date.now()); // 1735787045000
 * ```
 */
export function parseTime(text: string, now: number): number | undefined {
  const t = text.trim();
  if (t === "now") return now;
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(t)) {
    const ms = parseDuration(t);
    return ms === undefined ? undefined : now - ms;
  }
  const m = ISO.exec(t);
  if (m === null) return undefined;
  const [, date, time, zone] = m;
  const ms = Date.parse(
    `${date}T${time ?? "00:00:00"}${zone === undefined ? "Z" : zone.replace(/^z$/, "Z")}`,
  );
  return Number.isFinite(ms) ? ms : undefined;
}

const ISO = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|z|[+-]\d{2}:\d{2})?)?$/;

/** Turns a stored row into the record: its event fields plus seq and the chain hashes. */
export function toRecord(row: RawRecord): AuditRecord {
  return { ...(JSON.parse(row.data) as AuditRecord), seq: row.seq, prevHash: row.prev_hash, hash: row.hash };
}

// ---- query building ------------------------------------------------------------------------

interface Part {
  where: string[];
  params: unknown[];
}

interface IndexedPart extends Part {
  /** FROM clause (with INDEXED BY, so a search never falls back to a scan silently). */
  from: string;
  index: string;
  seq: string;
  time: string;
  /** The driving index alone, and the conditions that bound its range: what {@link chooseDriver} counts. */
  probeFrom: string;
  probe: string[];
  probeParams: unknown[];
}

interface Query {
  indexed: IndexedPart;
  tail: Part;
}

/** The filters that can drive a search through their index, in the order ties are broken. */
type Driver = "key" | "actor" | "resource" | "type" | "action" | "decision" | "time";

const INDEX: Readonly<Record<Driver, string>> = {
  key: "audit_index_credential_time",
  actor: "audit_index_subject_time",
  resource: "audit_index_scope_time",
  type: "audit_index_type_time",
  action: "audit_index_actions_action_time",
  decision: "audit_index_decision_time",
  time: "audit_index_time",
};

/**
 * Index entries a probe counts at most: a first round tells a selective filter from a broad one;
 * when several are broad, a second, larger round tells which is the least broad.
 */
const PROBES = [1000, 100_000];

/**
 * Picks the index to drive a search: among the filters given, the one whose index range holds
 * the fewest entries, counted up to a bound (covering counts: the first round costs well under a
 * millisecond per candidate). Ties go to the first in {@link INDEX}'s order.
 */
function chooseDriver(db: Database, f: AuditFilter): Driver {
  let cands: Driver[] = [];
  if (f.key !== undefined) cands.push("key");
  if (f.actor !== undefined) cands.push("actor");
  if (f.resource !== undefined) cands.push("resource");
  if (f.type !== undefined) cands.push("type");
  if (f.action !== undefined) cands.push("action");
  if (f.decision !== undefined && f.decision !== "allow") cands.push("decision");
  if (f.from !== undefined || f.to !== undefined) cands.push("time");
  if (cands.length === 0) return "time";
  for (const bound of PROBES) {
    if (cands.length === 1) return cands[0];
    const counts = cands.map((d) => {
      const q = buildQuery(f, d).indexed;
      return read(db, () =>
        prepare<number>(
          db,
          `SELECT count(*) FROM (SELECT 1 FROM ${q.probeFrom} WHERE ${q.probe.join(" AND ")} LIMIT ${bound})`,
        )
          .pluck()
          .get(...q.probeParams),
      ) as number;
    });
    const least = Math.min(...counts);
    // Below the bound the counts are exact: the least wins. At the bound, probe those again, further.
    if (least < bound) return cands[counts.indexOf(least)];
    cands = cands.filter((_, i) => counts[i] === least);
  }
  return cands[0];
}

/**
 * Builds the two halves of a search driven by `driver`: over `audit_index` (aliased `i`, or
 * driven by `audit_index_actions` aliased `a`) and over the unindexed tail of `audit_events`.
 */
function buildQuery(f: AuditFilter, driver: Driver): Query {
  const resource = f.resource === undefined ? undefined : matchText(f.resource, "/");
  const type = f.type === undefined ? undefined : matchText(f.type, undefined);
  const index = INDEX[driver];
  const ix: IndexedPart = {
    from: `audit_index AS i INDEXED BY ${index}`,
    probeFrom: `audit_index AS i INDEXED BY ${index}`,
    index,
    seq: "i.seq",
    time: "i.time",
    where: [],
    params: [],
    probe: [],
    probeParams: [],
  };
  const tl: Part = { where: [], params: [] };
  /** A condition of both halves; `range`: it bounds the driving index's range (a probe counts it). */
  const both = (indexed: string, tail: string, params: unknown[], range = false) => {
    ix.where.push(indexed);
    ix.params.push(...params);
    tl.where.push(tail);
    tl.params.push(...params);
    if (range) {
      ix.probe.push(indexed);
      ix.probeParams.push(...params);
    }
  };
  /** A condition of the indexed half only. */
  const indexedOnly = (indexed: string, params: unknown[], range = false) => {
    ix.where.push(indexed);
    ix.params.push(...params);
    if (range) {
      ix.probe.push(indexed);
      ix.probeParams.push(...params);
    }
  };
  // Whether the driving index's range is one value of its first column (so it is in time order,
  // and a time window narrows it further).
  let equality = true;

  if (driver === "action") {
    ix.probeFrom = `audit_index_actions AS a INDEXED BY ${index}`;
    // Only the columns of audit_index_actions are needed unless another filter names audit_index's.
    const other =
      f.key !== undefined ||
      f.actor !== undefined ||
      resource !== undefined ||
      type !== undefined ||
      f.decision !== undefined;
    ix.from = `${ix.probeFrom}${other ? " CROSS JOIN audit_index AS i ON i.seq = a.seq" : ""}`;
    ix.seq = "a.seq";
    ix.time = "a.time";
  }

  if (f.key !== undefined) both("i.credential = ?", "credential = ?", [f.key], driver === "key");
  if (f.actor !== undefined) both("i.subject = ?", "subject = ?", [f.actor], driver === "actor");
  if (resource !== undefined) {
    if (driver === "resource") {
      // Through the scope index (scope, time, resource): the resource is checked inside the index.
      const scoped = resource.exact ?? resource.lo!;
      if (resource.exact !== undefined || scopeOf(scoped) !== scoped) {
        // An exact resource, or a prefix reaching below a scope: one scope, in time order.
        indexedOnly("i.scope = ?", [scopeOf(scoped)], true);
      } else {
        // A prefix above the scopes: every scope starting with it holds only matching resources.
        indexedOnly("i.scope >= ?", [resource.lo], true);
        if (resource.hi !== undefined) indexedOnly("i.scope < ?", [resource.hi], true);
        equality = false;
      }
    }
    addText(both, "resource", resource);
  }
  if (type !== undefined) {
    addText(both, "type", type, driver === "type");
    if (driver === "type" && type.exact === undefined) equality = false;
  }
  if (f.action !== undefined) {
    if (driver === "action") {
      indexedOnly("a.action = ?", [f.action], true);
      tl.where.push("EXISTS (SELECT 1 FROM json_each(audit_events.actions) AS j WHERE j.value = ?)");
      tl.params.push(f.action);
    } else {
      both(
        `EXISTS (SELECT 1 FROM audit_index_actions AS x WHERE x.seq = ${ix.seq} AND x.action = ?)`,
        "EXISTS (SELECT 1 FROM json_each(audit_events.actions) AS j WHERE j.value = ?)",
        [f.action],
      );
    }
  }
  if (f.decision !== undefined) {
    // The decision index is partial (deny and error only): the WHERE must say so for SQLite to use it.
    if (driver === "decision") indexedOnly("i.decision <> 'allow'", [], true);
    both("i.decision = ?", "decision = ?", [f.decision], driver === "decision");
  }
  if (f.from !== undefined) both(`${ix.time} >= ?`, "time >= ?", [f.from], equality);
  if (f.to !== undefined) both(`${ix.time} < ?`, "time < ?", [f.to], equality);
  if (ix.probe.length === 0) ix.probe.push("1");
  return { indexed: ix, tail: tl };
}

/** An exact value, or a prefix as a half-open range [lo, hi) (hi undefined: no upper bound). */
interface TextMatch {
  exact?: string;
  lo?: string;
  hi?: string;
}

/** `x*` is a prefix; so is `x/` when `slash` is "/" (resources); anything else is exact. */
function matchText(value: string, slash: string | undefined): TextMatch {
  if (value.endsWith("*")) {
    const prefix = value.slice(0, -1);
    return { lo: prefix, hi: prefixEnd(prefix) };
  }
  if (slash !== undefined && value.endsWith(slash)) return { lo: value, hi: prefixEnd(value) };
  return { exact: value };
}

function addText(
  both: (indexed: string, tail: string, params: unknown[], range?: boolean) => void,
  column: "resource" | "type",
  m: TextMatch,
  range = false,
): void {
  if (m.exact !== undefined) both(`i.${column} = ?`, `${column} = ?`, [m.exact], range);
  else {
    both(`i.${column} >= ?`, `${column} >= ?`, [m.lo], range);
    if (m.hi !== undefined) both(`i.${column} < ?`, `${column} < ?`, [m.hi], range);
  }
}

/**
 * The smallest string greater than every string that starts with `prefix`: the prefix with its
 * last code point incremented. SQLite compares TEXT as UTF-8 bytes, whose order is code point
 * order, so [prefix, prefixEnd(prefix)) is exactly the strings starting with `prefix`.
 * Undefined when there is no such string (empty prefix, or it ends in U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const chars = Array.from(prefix);
  while (chars.length > 0) {
    const last = chars.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // skip the surrogate block
      return chars.join("") + String.fromCodePoint(next);
    }
  }
  return undefined;
}

// ---- reading -------------------------------------------------------------------------------

interface Bounds {
  /** Highest seq of audit_index, capped at head: found through the index up to here. */
  hw: number;
  /** Highest seq of audit_events when the search started: records above it are not returned. */
  head: number;
}

function readBounds(db: Database): Bounds {
  return read(db, () => {
    const head = (prepare<number>(db, "SELECT coalesce(max(seq), 0) FROM audit_events").pluck().get() ??
      0) as number;
    const hw = (prepare<number>(db, "SELECT coalesce(max(seq), 0) FROM audit_index").pluck().get() ??
      0) as number;
    return { head, hw: Math.min(hw, head) };
  });
}

/** Prepared statements, cached per connection (a search prepares the same few shapes again and again). */
const statements = new WeakMap<Database, Map<string, Statement>>();

function prepare<R>(db: Database, sql: string): Statement<unknown[], R> {
  let cache = statements.get(db);
  if (cache === undefined) {
    cache = new Map();
    statements.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (stmt === undefined) {
    stmt = db.prepare(sql);
    if (cache.size >= 64) cache.clear();
    cache.set(sql, stmt);
  } else if (stmt.busy) {
    // Another search of the same shape is still iterating it: this one gets its own.
    stmt = db.prepare(sql);
  }
  // A cached statement may be left in pluck mode by another caller.
  return stmt.pluck(false) as unknown as Statement<unknown[], R>;
}

function* drain(db: Database, rows: IterableIterator<RawRecord>): Generator<RawRecord> {
  try {
    for (;;) {
      const next = read(db, () => rows.next());
      if (next.done) return;
      yield next.value;
    }
  } finally {
    rows.return?.();
  }
}

function read<T>(db: Database, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AuditError) throw err;
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the audit trail in "${db.name}": ${err instanceof Error ? err.message : String(err)}. ` +
        "Check that the file is a cosmosgate audit database and that this user may read it.",
      { cause: err },
    );
  }
}

function and(where: string[]): string {
  return where.length === 0 ? "" : ` AND ${where.join(" AND ")}`;
}

function argument(what: string): AuditError {
  return new AuditError("ERR_AUDIT_ARGUMENT", `audit search: ${what}.`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
