import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { canonicalJson, hashCanonical } from "../../../audit/chain.js";
import { type AuditCheckpoint, listCheckpoints, verifyCheckpoint } from "../../../audit/checkpoints.js";
import { AuditError } from "../../../audit/errors.js";
import { type ExportFormat, exportChunks } from "../../../audit/export.js";
import { buildKeysReport, type KeyDirectoryEntry, type KeysReport } from "../../../audit/keysReport.js";
import { recordsAfter } from "../../../audit/query.js";
import {
  type AuditFilter,
  checkFilter,
  countAudit,
  parseTime,
  type RawRecord,
  searchAudit,
  toRecord,
} from "../../../audit/search.js";
import type { AuditRecord } from "../../../audit/types.js";
import { ALL_ACTIONS } from "../../../cosmos/types.js";
import type { Database } from "../../../store/index.js";
import type { IdentityStore, UserRecord } from "../../../store/ports.js";
import { openDatabase } from "../../../store/sqlite.js";
import type { AuditPage, AuditRecordDetail, TimelineView } from "../consoleApi.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { currentSignIn, type SignedIn } from "../session.js";
import { checkSession, notSignedIn } from "../signIn.js";

/** Tunables of {@link consoleAuditRoutes} (tests shorten them). */
export interface ConsoleAuditOptions {
  /** How often the live tail looks for new records; default 500 ms. */
  pollMs?: number;
  /** A comment line on every live stream this often (keeps proxies from closing it); default 15 s. */
  heartbeatMs?: number;
  /** Live streams one session may hold open at once; default 3. */
  maxStreamsPerSession?: number;
  /** Live streams open at once, everyone's; default 100. */
  maxStreams?: number;
  /** Exports one session may run at once; default 2. */
  maxExportsPerSession?: number;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 500;
const DEFAULT_BUCKETS = 48;
const MAX_BUCKETS = 200;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Records read per step of the live tail (it yields to the event loop between steps). */
const TAIL_PAGE = 500;
/** Steps per poll at most: a burst larger than this is delivered over the next polls. */
const TAIL_STEPS = 20;
/** A live stream whose client lets this much pile up unread is closed. */
const MAX_UNREAD_BYTES = 1 << 20;
/** Records of a stream's backlog (Last-Event-ID) looked at, at most. */
const RESUME_WINDOW = 1000;
/** Records the chain walk of a record detail reads per step (it yields between steps). */
const WALK_STEP = 1000;

const FILTER_PARAMS = ["actor", "key", "action", "resource", "decision", "type", "from", "to"] as const;
// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
/** An event type in dot.case, or a prefix of one ending in `*` (as `audit search --type` takes it). */
const EVENT_TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*|\*)?$|^\*$/;
/** "Nice" bucket widths of the timeline, the smallest that fits the window is used. */
const BUCKET_STEPS = [
  1000,
  5000,
  15_000,
  60_000,
  5 * 60_000,
  15 * 60_000,
  30 * 60_000,
  HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  7 * DAY,
  30 * DAY,
];

/**
 * The console's audit API (cookie session; JSON unless said; contract in consoleApi.ts). Every
 * route reads the audit database through one read-only connection, opened on first use
 * (`ctx.console.auditFile`), and through its indexes with bounded limits; long work (a timeline, a
 * chain walk, an export, the live tail) yields to the event loop between steps, since the data
 * plane shares the process.
 *
 * - `GET /api/audit/records?AuditQuery&limit=100&before=SEQ` → {@link AuditPage}, newest first
 *   (time, then seq); `next` is the `before` of the next, older page.
 * - `GET /api/audit/timeline?AuditQuery&buckets=48` → {@link TimelineView}: allowed vs refused per
 *   time bucket (at most 200), counted through the index one bucket at a time.
 * - `GET /api/audit/records/:seq` → {@link AuditRecordDetail}: the record, its hash recomputed
 *   (chain.ts), its link to the previous record, and the first signed checkpoint at or after it
 *   with its signature verified (checkpoints.ts) and whether the chain from the record to it holds.
 * - `GET /api/audit/keys?from&to` → the key-usage report (keysReport.ts) as JSON; default window
 *   the last 30 days.
 * - `GET /api/audit/export?format=jsonl|csv&AuditQuery` → a download (export.ts), streamed from a
 *   connection of its own (a long export must not pin the shared connection's snapshot).
 * - `GET /api/audit/stream?AuditQuery` → `text/event-stream`: an event `record` (id = seq, data =
 *   the AuditRecord JSON) for each new matching record; one shared poll of the trail for every
 *   subscriber, a comment line as heartbeat, resumable with `Last-Event-ID`.
 *
 * Authorization: administrators see every record; everyone else only records whose subject is
 * themselves — `actor` is forced to their name, asking for someone else is 403 `ERR_FORBIDDEN`,
 * another person's record detail is 404, and the key report lists only the keys the identity store
 * says are theirs (with totals of those keys only). Every query parameter is checked: an unknown
 * or malformed one is a 400 naming it.
 *
 * Without `ctx.console` the routes are not registered (404).
 */
export function consoleAuditRoutes(
  app: FastifyInstance,
  ctx: ControlPlaneContext,
  opts: ConsoleAuditOptions = {},
): void {
  const deps = ctx.console;
  if (deps === undefined) return;
  const { store } = ctx.identity;
  const log = ctx.log.child({ component: "console-audit" });
  const trail = lazyTrail(deps.auditFile);
  const live = new LiveTail(trail, ctx, log, opts);
  const exports = new Map<string, number>();
  const maxExports = opts.maxExportsPerSession ?? 2;

  const me = (request: FastifyRequest, reply: FastifyReply): SignedIn => {
    const signedIn = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (signedIn === undefined) throw notSignedIn();
    return signedIn;
  };
  /** The filter of the query, scoped to what this person may see. */
  const filterFor = (q: Query, user: UserRecord): AuditFilter => scope(parseFilter(q, ctx.clock()), user);

  app.addHook("preClose", async () => {
    live.closeAll("the gateway is shutting down");
  });
  app.addHook("onClose", async () => {
    trail.close();
  });

  app.get("/api/audit/records", async (request, reply): Promise<AuditPage> => {
    const { user } = me(request, reply);
    const q = readQuery(request.query, [...FILTER_PARAMS, "limit", "before"]);
    const filter = filterFor(q, user);
    const limit = wholeNumber(q, "limit", 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
    const before = wholeNumber(q, "before", 1, Number.MAX_SAFE_INTEGER);
    return audit(() => recordsPage(trail.db(), filter, limit, before, user));
  });

  app.get("/api/audit/timeline", async (request, reply): Promise<TimelineView> => {
    const { user } = me(request, reply);
    const q = readQuery(request.query, [...FILTER_PARAMS, "buckets"]);
    const filter = filterFor(q, user);
    const buckets = wholeNumber(q, "buckets", 1, MAX_BUCKETS) ?? DEFAULT_BUCKETS;
    return audit(() => timeline(trail.db(), filter, buckets, ctx.clock()));
  });

  app.get<{ Params: { seq: string } }>("/api/audit/records/:seq", async (request, reply) => {
    const { user } = me(request, reply);
    readQuery(request.query, []);
    const seq = wholeNumber({ seq: request.params.seq }, "seq", 1, Number.MAX_SAFE_INTEGER)!;
    return audit(() => recordDetail(trail.db(), seq, user));
  });

  app.get("/api/audit/keys", async (request, reply): Promise<KeysReport> => {
    const { user } = me(request, reply);
    const q = readQuery(request.query, ["from", "to"]);
    const now = ctx.clock();
    const to = time(q, "to", now) ?? now + 1;
    const from = time(q, "from", now) ?? to - 30 * DAY;
    if (from >= to)
      throw badQuery(
        `from ${q.from ?? ""} is not before to ${q.to ?? "(now)"}; swap them or widen the window.`,
      );
    const directory = keyDirectory(store);
    const report = audit(() => buildKeysReport(trail.db(), { from, to, now: ctx.clock, directory }));
    return user.admin ? report : ownKeys(report, user, directory);
  });

  app.get("/api/audit/export", async (request, reply) => {
    const { user, session } = me(request, reply);
    const q = readQuery(request.query, [...FILTER_PARAMS, "format"]);
    const format = (q.format ?? "jsonl") as ExportFormat;
    if (format !== "jsonl" && format !== "csv")
      throw badQuery(`format ${JSON.stringify(q.format)} is not an export format; use jsonl or csv.`);
    const filter = filterFor(q, user);
    const running = exports.get(session.id) ?? 0;
    if (running >= maxExports)
      throw new ApiError(
        429,
        "ERR_TOO_MANY_EXPORTS",
        `this session already runs ${running} export(s); wait for one to finish, then export again.`,
      );
    const db = trail.openOwn();
    exports.set(session.id, running + 1);
    const chunks = exportChunks(db, { ...filter, format });
    const body = Readable.from(pace(chunks, log));
    // "close" comes once the stream is over — finished, failed or abandoned by the client — and
    // after the generator has stopped (or never started): then the connection can go.
    body.once("close", () => {
      try {
        chunks.return(undefined);
      } finally {
        db.close();
        const n = (exports.get(session.id) ?? 1) - 1;
        if (n <= 0) exports.delete(session.id);
        else exports.set(session.id, n);
      }
    });
    const stamp = new Date(ctx.clock()).toISOString().replace(/[:.]/g, "-");
    reply
      .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8")
      .header("content-disposition", `attachment; filename="cosmosgate-audit-${stamp}.${format}"`);
    return reply.send(body);
  });

  app.get("/api/audit/stream", async (request, reply) => {
    const { user, session } = me(request, reply);
    const q = readQuery(request.query, [...FILTER_PARAMS]);
    const filter = filterFor(q, user);
    const lastId = request.headers["last-event-id"];
    const resumeAfter =
      typeof lastId === "string" && /^\d{1,15}$/.test(lastId.trim()) ? Number(lastId.trim()) : undefined;
    live.admit(session.id); // 429 when over a limit
    const db = trail.db();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-accel-buffering": "no",
      connection: "keep-alive",
    });
    res.write(": cosmosgate audit stream\nretry: 3000\n\n");
    const sub = live.add(
      { filter, sessionId: session.id, admin: user.admin, res, after: 0, closed: false },
      db,
      resumeAfter,
    );
    const gone = () => live.remove(sub);
    request.raw.on("close", gone);
    res.on("close", gone);
    res.on("error", gone);
    return reply;
  });
}

// ---- the database ----------------------------------------------------------------------------

interface Trail {
  /** The shared read-only connection, opened on first use. */
  db(): Database;
  /** A read-only connection of its own (the caller closes it). */
  openOwn(): Database;
  close(): void;
}

function lazyTrail(file: string): Trail {
  let shared: Database | undefined;
  const open = (): Database => {
    let db: Database;
    try {
      db = openDatabase(file, { readonly: true });
    } catch {
      throw unavailable();
    }
    // Checked before any statement iterates (a pragma needs an idle connection).
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version < 3) {
      db.close();
      throw unavailable();
    }
    return db;
  };
  return {
    db() {
      shared ??= open();
      return shared;
    },
    openOwn: open,
    close() {
      shared?.close();
      shared = undefined;
    },
  };
}

function unavailable(): ApiError {
  return new ApiError(
    503,
    "ERR_AUDIT_UNAVAILABLE",
    "the audit trail cannot be read right now; try again, and tell the operator if it persists.",
  );
}

/**
 * Runs an audit-module call (or an async one): a bad argument is a 400 naming it; anything else
 * propagates (a 500, logged).
 */
function audit<T>(fn: () => T): T {
  try {
    const v = fn();
    if (v instanceof Promise) return v.catch((err: unknown) => Promise.reject(auditRefusal(err))) as T;
    return v;
  } catch (err) {
    throw auditRefusal(err);
  }
}

function auditRefusal(err: unknown): unknown {
  if (err instanceof AuditError && err.code === "ERR_AUDIT_ARGUMENT") {
    return badQuery(err.message.replace(/^audit search: /, ""));
  }
  return err;
}

// ---- query parameters ------------------------------------------------------------------------

type Query = Record<string, string>;

/** The query parameters as single strings; an unknown or repeated one is a 400 naming it. */
function readQuery(raw: unknown, allowed: readonly string[]): Query {
  const out: Query = {};
  if (raw === undefined || raw === null || typeof raw !== "object") return out;
  for (const [name, value] of Object.entries(raw)) {
    if (!allowed.includes(name)) {
      throw badQuery(
        `${JSON.stringify(name.slice(0, 40))} is not a query parameter of this route` +
          (allowed.length > 0 ? `; it takes ${allowed.join(", ")}.` : "; it takes none."),
      );
    }
    if (typeof value !== "string") throw badQuery(`${name} is given more than once; give it once.`);
    out[name] = value;
  }
  return out;
}

/** The audit filter of the query parameters, each checked (a 400 names the bad one). */
function parseFilter(q: Query, now: number): AuditFilter {
  const f: AuditFilter = {};
  for (const name of ["actor", "key", "resource"] as const) {
    const v = q[name];
    if (v === undefined) continue;
    if (v === "") throw badQuery(`${name} is empty; give a value or leave it out.`);
    if (v.length > 1024) throw badQuery(`${name} is longer than 1024 characters.`);
    if (CONTROL.test(v)) throw badQuery(`${name} holds a control character; remove it.`);
    f[name] = v;
  }
  if (q.action !== undefined) {
    if (!(ALL_ACTIONS as readonly string[]).includes(q.action))
      throw badQuery(
        `action ${JSON.stringify(q.action.slice(0, 80))} is not an action; use one of ${ALL_ACTIONS.join(", ")}.`,
      );
    f.action = q.action;
  }
  if (q.type !== undefined) {
    if (!EVENT_TYPE.test(q.type))
      throw badQuery(
        `type ${JSON.stringify(q.type.slice(0, 80))} is not an event type; give one in dot.case (signin.failed) or a prefix ending in * (credential.*).`,
      );
    f.type = q.type;
  }
  if (q.decision !== undefined) {
    if (q.decision !== "allow" && q.decision !== "deny" && q.decision !== "error")
      throw badQuery(
        `decision ${JSON.stringify(q.decision.slice(0, 80))} is not a decision; use allow, deny or error.`,
      );
    f.decision = q.decision;
  }
  const from = time(q, "from", now);
  const to = time(q, "to", now);
  if (from !== undefined) f.from = from;
  if (to !== undefined) f.to = to;
  return audit(() => checkFilter(f));
}

/** Non-administrators see their own records only: `actor` is forced to them. */
function scope(f: AuditFilter, user: UserRecord): AuditFilter {
  if (user.admin) return f;
  if (f.actor !== undefined && f.actor !== user.name) {
    throw new ApiError(
      403,
      "ERR_FORBIDDEN",
      "you may see only your own audit records; leave actor out (or give your own name).",
    );
  }
  return { ...f, actor: user.name };
}

function time(q: Query, name: "from" | "to", now: number): number | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  const t = parseTime(v, now);
  if (t === undefined)
    throw badQuery(
      `${name} ${JSON.stringify(v.slice(0, 80))} is not a time; use ISO 8601 (2025-01-02, 2025-01-02T03:04:05Z), "now", or a duration before now (15m, 1h, 7d).`,
    );
  return t;
}

function wholeNumber(q: Query, name: string, min: number, max: number): number | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max)
    throw badQuery(
      `${name} must be a whole number from ${min} to ${max}; got ${JSON.stringify(v.slice(0, 40))}.`,
    );
  return n;
}

function badQuery(message: string): ApiError {
  return new ApiError(400, "ERR_BAD_QUERY", message);
}

// ---- records ---------------------------------------------------------------------------------

/**
 * A page of records, newest first, through the index-using search. `before` names the last record
 * of the previous page: the page holds what comes after it in (time, seq) order, read as a search
 * up to its time that skips the records at that very time from it on (a bounded few).
 */
function recordsPage(
  db: Database,
  filter: AuditFilter,
  limit: number,
  before: number | undefined,
  user: UserRecord,
): AuditPage {
  let f = filter;
  let cursor: { time: number; seq: number } | undefined;
  let skip = 0;
  if (before !== undefined) {
    const row = db.prepare("SELECT time, subject FROM audit_events WHERE seq = ?").get(before) as
      | { time: number; subject: string }
      | undefined;
    if (row === undefined || (!user.admin && row.subject !== user.name)) {
      throw badQuery(
        `before names no record${user.admin ? "" : " of yours"} (${before}); start again from the first page, without before.`,
      );
    }
    cursor = { time: row.time, seq: before };
    const to = Math.min(f.to ?? Number.POSITIVE_INFINITY, row.time + 1);
    if (f.from !== undefined && f.from >= to) return { records: [], next: null };
    f = { ...f, to };
    // Records at the cursor's time from its seq on come first in the search: skip them.
    skip = db
      .prepare(
        "SELECT (SELECT count(*) FROM audit_index INDEXED BY audit_index_time WHERE time = ? AND seq >= ?) + " +
          "(SELECT count(*) FROM audit_events WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_index) AND time = ? AND seq >= ?)",
      )
      .pluck()
      .get(row.time, before, row.time, before) as number;
  }
  const records: AuditRecord[] = [];
  for (const r of searchAudit(db, { ...f, limit: limit + 1 + skip })) {
    if (cursor !== undefined && r.time === cursor.time && r.seq >= cursor.seq) continue;
    records.push(r);
    if (records.length > limit) break;
  }
  const more = records.length > limit;
  if (more) records.length = limit;
  return { records, next: more ? records[limit - 1].seq : null };
}

interface DetailRow extends RawRecord {
  type: string;
  subject: string;
  actions: string;
  resource: string;
  decision: string;
  status: number;
}

/** One record with its chain position and verification state. */
async function recordDetail(db: Database, seq: number, user: UserRecord): Promise<AuditRecordDetail> {
  const row = db
    .prepare(
      "SELECT seq, time, type, subject, actions, resource, decision, status, data, prev_hash, hash FROM audit_events WHERE seq = ?",
    )
    .get(seq) as DetailRow | undefined;
  // Someone else's record is "not found" to a non-administrator: its existence is not theirs to learn.
  if (row === undefined || (!user.admin && row.subject !== user.name)) {
    throw new ApiError(404, "ERR_AUDIT_RECORD_NOT_FOUND", `there is no audit record ${seq} you may see.`);
  }
  const record = recordOf(row);
  const hashOk = recordHolds(row);
  const bounds = db.prepare("SELECT min(seq) AS lo, max(seq) AS hi FROM audit_events").get() as {
    lo: number;
    hi: number;
  };
  const previous = db
    .prepare("SELECT hash FROM audit_events WHERE seq = ?")
    .pluck()
    .get(seq - 1) as string | undefined;
  let linkOk: boolean;
  if (previous !== undefined) linkOk = row.prev_hash === previous;
  else if (seq === 1) linkOk = row.prev_hash === "";
  else if (seq === bounds.lo) {
    // The first record kept after a retention prune links to the checkpoint it starts from.
    const anchor = listCheckpoints(db, { fromSeq: seq - 1, toSeq: seq - 1 })[0];
    linkOk = anchor === undefined || anchor.hash === row.prev_hash;
  } else linkOk = false; // records before it are missing

  const cp = listCheckpoints(db, { fromSeq: seq, limit: 1 })[0];
  const detail: AuditRecordDetail = {
    record,
    chain: {
      seq,
      hash: row.hash,
      prevHash: row.prev_hash,
      hashOk,
      linkOk,
      length: bounds.hi - bounds.lo + 1,
    },
    checkpoint: null,
  };
  if (cp !== undefined) {
    const check = await verifyCheckpoint(cp);
    detail.checkpoint = {
      seq: cp.seq,
      time: new Date(cp.time).toISOString(),
      kid: cp.kid,
      signatureOk: check.ok,
      coversRecord: hashOk && (await chainReaches(db, row, cp)),
    };
  }
  return detail;
}

/** The record's hash recomputes from its stored text, which is canonical JSON carrying its own seq. */
function recordHolds(row: RawRecord): boolean {
  if (hashCanonical(row.prev_hash, row.data) !== row.hash) return false;
  try {
    const parsed = JSON.parse(row.data) as { seq?: unknown };
    return parsed.seq === row.seq && canonicalJson(parsed) === row.data;
  } catch {
    return false;
  }
}

/** The record as stored, or — when its text no longer parses — what its columns say. */
function recordOf(row: DetailRow): AuditRecord {
  try {
    return toRecord(row);
  } catch {
    let actions: string[] = [];
    try {
      actions = JSON.parse(row.actions) as string[];
    } catch {
      // left empty
    }
    return {
      seq: row.seq,
      time: row.time,
      type: row.type,
      subject: row.subject,
      actions,
      resource: row.resource,
      decision: row.decision as AuditRecord["decision"],
      reason: "(the stored text of this record is not valid JSON: it was altered)",
      status: row.status,
      durationMs: 0,
      prevHash: row.prev_hash,
      hash: row.hash,
    };
  }
}

/**
 * Whether the checkpoint vouches for the record: every record after it up to the checkpoint's
 * recomputes and links to the one before, and the last one has the signed hash. Read in steps,
 * yielding to the event loop between them.
 */
async function chainReaches(db: Database, row: RawRecord, cp: AuditCheckpoint): Promise<boolean> {
  if (cp.seq === row.seq) return cp.hash === row.hash;
  const step = db.prepare(
    "SELECT seq, time, data, prev_hash, hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
  );
  let prev = row;
  while (prev.seq < cp.seq) {
    const rows = step.all(prev.seq, cp.seq, WALK_STEP) as RawRecord[];
    if (rows.length === 0) return false;
    for (const r of rows) {
      if (r.seq !== prev.seq + 1 || r.prev_hash !== prev.hash || !recordHolds(r)) return false;
      prev = r;
    }
    if (prev.seq < cp.seq) await nextTurn();
  }
  return prev.hash === cp.hash;
}

// ---- timeline --------------------------------------------------------------------------------

/**
 * Allowed vs refused per bucket: each bucket is counted through the index (`countAudit`, which
 * picks the most selective index of the filter, time included), one bucket at a time with a turn
 * of the event loop in between. A window with no matching record at all costs one index probe.
 */
async function timeline(
  db: Database,
  filter: AuditFilter,
  wanted: number,
  now: number,
): Promise<TimelineView> {
  const to = filter.to ?? now;
  const from = filter.from ?? to - DAY;
  if (from >= to)
    throw badQuery("the time window is empty: from is not before to; swap them or widen the window.");
  const span = to - from;
  let bucketMs = 0;
  let start = from;
  // The smallest "nice" width that fits, its buckets on multiples of it when they still fit (clean
  // labels), else starting at `from`.
  for (const s of BUCKET_STEPS) {
    const aligned = Math.floor(from / s) * s;
    if (Math.ceil((to - aligned) / s) <= wanted) {
      bucketMs = s;
      start = aligned;
      break;
    }
    if (Math.ceil(span / s) <= wanted) {
      bucketMs = s;
      break;
    }
  }
  if (bucketMs === 0) bucketMs = Math.ceil(span / wanted);
  const count = Math.max(1, Math.ceil((to - start) / bucketMs));
  const view: TimelineView = {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucketMs,
    buckets: Array.from({ length: count }, (_, i) => ({
      start: new Date(start + i * bucketMs).toISOString(),
      allow: 0,
      deny: 0,
    })),
  };
  // A window without a single matching record (one index probe) needs no counting.
  const any = searchAudit(db, { ...filter, from, to, limit: 1 });
  const empty = any.next().done === true;
  any.return(undefined);
  if (empty) return view;
  for (let i = 0; i < count; i++) {
    const f = {
      ...filter,
      from: Math.max(from, start + i * bucketMs),
      to: Math.min(to, start + (i + 1) * bucketMs),
    };
    if (f.from >= f.to) continue;
    const b = view.buckets[i];
    if (filter.decision === "allow") b.allow = countAudit(db, f);
    else if (filter.decision !== undefined) b.deny = countAudit(db, f);
    else {
      const total = countAudit(db, f);
      if (total > 0) {
        // The refused ones through the (partial) decision index; the rest were allowed.
        b.deny = countAudit(db, { ...f, decision: "deny" }) + countAudit(db, { ...f, decision: "error" });
        b.allow = total - b.deny;
      }
    }
    await nextTurn();
  }
  return view;
}

// ---- keys ------------------------------------------------------------------------------------

/** What the identity store knows of every key, for the report's owners and states. */
function keyDirectory(store: IdentityStore): Map<string, KeyDirectoryEntry> {
  const out = new Map<string, KeyDirectoryEntry>();
  for (const u of store.listUsers()) {
    for (const c of store.listCredentials(u.id)) {
      const e: KeyDirectoryEntry = {
        id: c.id,
        owner: u.name,
        nickname: c.nickname,
        aaguid: c.aaguid,
        deviceBound: c.deviceBound,
        backedUp: c.backedUp,
        createdAt: c.createdAt,
      };
      if (c.suspendedAt !== undefined) e.suspendedAt = c.suspendedAt;
      if (c.suspendedReason !== undefined) e.suspendedReason = c.suspendedReason;
      out.set(c.id, e);
    }
  }
  return out;
}

/**
 * The report reduced to a person's own keys (those the identity store says are theirs), with the
 * chart and totals summed over those keys only: nothing of anyone else's activity.
 */
function ownKeys(
  report: KeysReport,
  user: UserRecord,
  directory: Map<string, KeyDirectoryEntry>,
): KeysReport {
  const keys = report.keys.filter((k) => directory.get(k.credential)?.owner === user.name);
  const overall = Array.from({ length: report.bucketCount }, () => ({ allowed: 0, denied: 0 }));
  const totals = { records: 0, allowed: 0, refused: 0, withKey: 0 };
  for (const k of keys) {
    k.buckets.forEach((b, i) => {
      overall[i].allowed += b.allowed;
      overall[i].denied += b.denied;
    });
    totals.records += k.uses;
    totals.withKey += k.uses;
    totals.allowed += k.allowed;
    totals.refused += k.denied + k.errors;
  }
  return { ...report, keys, overall, totals };
}

// ---- export ----------------------------------------------------------------------------------

/** The export's chunks (about 64 KiB, a few hundred records each), one per turn of the event loop. */
async function* pace(chunks: Generator<string>, log: Logger): AsyncGenerator<string> {
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = chunks.next();
    } catch (err) {
      log.error({ err }, "console: an audit export failed while streaming");
      throw err;
    }
    if (next.done) return;
    yield next.value;
    await nextTurn();
  }
}

// ---- live tail -------------------------------------------------------------------------------

interface Subscriber {
  filter: AuditFilter;
  sessionId: string;
  /** Subscribed as an administrator (an unscoped filter): ends when that is no longer so. */
  admin: boolean;
  res: ServerResponse;
  /** The highest seq this subscriber has been offered. */
  after: number;
  closed: boolean;
}

/**
 * The live tail behind `GET /api/audit/stream`: one timer for every subscriber reads the records
 * after the last seq it saw (a primary-key range, in pages, yielding between them) and writes each
 * to the subscribers whose filter it matches. Runs only while someone listens. Each subscriber's
 * session is checked again before records go out and at every heartbeat: a revoked session's
 * stream ends.
 */
class LiveTail {
  readonly #subs = new Set<Subscriber>();
  readonly #trail: Trail;
  readonly #ctx: ControlPlaneContext;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #heartbeatMs: number;
  readonly #perSession: number;
  readonly #max: number;
  #cursor = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #lastBeat = 0;

  constructor(trail: Trail, ctx: ControlPlaneContext, log: Logger, opts: ConsoleAuditOptions) {
    this.#trail = trail;
    this.#ctx = ctx;
    this.#log = log;
    this.#pollMs = opts.pollMs ?? 500;
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.#perSession = opts.maxStreamsPerSession ?? 3;
    this.#max = opts.maxStreams ?? 100;
  }

  /** Refuses a new stream over the limits (429). */
  admit(sessionId: string): void {
    let mine = 0;
    for (const s of this.#subs) if (s.sessionId === sessionId) mine += 1;
    if (mine >= this.#perSession)
      throw new ApiError(
        429,
        "ERR_TOO_MANY_STREAMS",
        `this session already has ${mine} live audit streams open (at most ${this.#perSession}); close one first.`,
      );
    if (this.#subs.size >= this.#max)
      throw new ApiError(
        429,
        "ERR_TOO_MANY_STREAMS",
        "too many live audit streams are open; try again later.",
      );
  }

  /** Starts delivering to `sub` the records after now (or after `resumeAfter`, within a bounded window). */
  add(sub: Subscriber, db: Database, resumeAfter: number | undefined): Subscriber {
    const head = db.prepare("SELECT coalesce(max(seq), 0) FROM audit_events").pluck().get() as number;
    if (this.#subs.size === 0) {
      this.#cursor = head;
      this.#lastBeat = Date.now();
      this.#timer = setInterval(() => void this.#poll(), this.#pollMs);
      this.#timer.unref();
    }
    sub.after = this.#cursor;
    if (resumeAfter !== undefined && resumeAfter < this.#cursor) {
      // Reconnected (EventSource sends Last-Event-ID): what was missed, up to a bounded window.
      const from = Math.max(resumeAfter, this.#cursor - RESUME_WINDOW);
      for (const r of recordsAfter(db, from, this.#cursor - from)) {
        if (matches(sub.filter, r)) this.#send(sub, r);
      }
    }
    this.#subs.add(sub);
    return sub;
  }

  remove(sub: Subscriber): void {
    sub.closed = true;
    if (!this.#subs.delete(sub)) return;
    if (this.#subs.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  closeAll(reason: string): void {
    for (const sub of [...this.#subs]) this.#end(sub, reason);
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      if (Date.now() - this.#lastBeat >= this.#heartbeatMs) {
        this.#lastBeat = Date.now();
        for (const sub of [...this.#subs]) {
          const why = this.#revoked(sub);
          if (why !== undefined) this.#end(sub, why);
          else this.#write(sub, ": heartbeat\n\n");
        }
      }
      const db = this.#trail.db();
      for (let step = 0; step < TAIL_STEPS && this.#subs.size > 0; step++) {
        const page = recordsAfter(db, this.#cursor, TAIL_PAGE);
        if (page.length === 0) break;
        const checked = new Map<string, string | undefined>();
        for (const r of page) {
          for (const sub of this.#subs) {
            if (sub.closed || r.seq <= sub.after || !matches(sub.filter, r)) continue;
            const key = `${sub.admin ? "admin" : "self"} ${sub.sessionId}`;
            if (!checked.has(key)) checked.set(key, this.#revoked(sub));
            const why = checked.get(key);
            if (why !== undefined) this.#end(sub, why);
            else this.#send(sub, r);
          }
        }
        this.#cursor = page[page.length - 1].seq;
        if (page.length < TAIL_PAGE) break;
        await nextTurn();
      }
    } catch (err) {
      this.#log.error({ err }, "console: the live audit tail could not read the trail");
    } finally {
      this.#polling = false;
    }
  }

  /** Why the subscriber's session may no longer see its stream, or undefined while it may. */
  #revoked(sub: Subscriber): string | undefined {
    const state = checkSession(this.#ctx, sub.sessionId);
    if (!state.ok) return state.reason;
    if (sub.admin && !state.user.admin) return "you are no longer an administrator";
    return undefined;
  }

  #send(sub: Subscriber, r: AuditRecord): void {
    sub.after = Math.max(sub.after, r.seq);
    this.#write(sub, `id: ${r.seq}\nevent: record\ndata: ${JSON.stringify(r)}\n\n`);
  }

  #write(sub: Subscriber, text: string): void {
    if (sub.closed) return;
    if (sub.res.writableLength > MAX_UNREAD_BYTES) {
      this.#end(sub, "the client does not read the stream fast enough");
      return;
    }
    sub.res.write(text);
  }

  #end(sub: Subscriber, reason: string): void {
    if (!sub.closed) {
      sub.res.write(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
      sub.res.end();
    }
    this.remove(sub);
  }
}

/** Whether a record matches a (checked) filter, as searchAudit would find it. */
export function matches(f: AuditFilter, r: AuditRecord): boolean {
  if (f.actor !== undefined && r.subject !== f.actor) return false;
  if (f.key !== undefined && r.credential !== f.key) return false;
  if (f.action !== undefined && !r.actions.includes(f.action)) return false;
  if (f.decision !== undefined && r.decision !== f.decision) return false;
  if (f.type !== undefined && !textMatches(r.type, f.type, false)) return false;
  if (f.resource !== undefined && !textMatches(r.resource, f.resource, true)) return false;
  if (f.from !== undefined && r.time < f.from) return false;
  if (f.to !== undefined && r.time >= f.to) return false;
  return true;
}

/** `x*` is a prefix, so is `x/` for resources; anything else is exact (search.ts's rule). */
function textMatches(value: string, pattern: string, slash: boolean): boolean {
  if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  if (slash && pattern.endsWith("/")) return value.startsWith(pattern);
  return value === pattern;
}
