import type { Database } from "../store/index.js";
import { AuditError } from "./errors.js";
import type { AuditRecord } from "./types.js";

interface TailRow {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

/**
 * The most recent `n` records, oldest first (as `tail -n` prints a log).
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` when `n` is not a non-negative integer;
 *   `ERR_AUDIT_READ` when the table cannot be read.
 *
 * @example
 * ```ts
 * for (const r of tail(db, 20)) console.log(formatRecord(r));
 * ```
 */
export function tail(db: Database, n: number): AuditRecord[] {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AuditError("ERR_AUDIT_ARGUMENT", `tail needs a non-negative integer count; got ${String(n)}.`);
  }
  if (n === 0) return [];
  let rows: TailRow[];
  try {
    rows = db
      .prepare<[number], TailRow>(
        "SELECT seq, data, prev_hash, hash FROM audit_events ORDER BY seq DESC LIMIT ?",
      )
      .all(n);
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the audit trail in "${db.name}": ${err instanceof Error ? err.message : String(err)}.`,
      { cause: err },
    );
  }
  const out: AuditRecord[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[rows.length - 1 - i];
    out[i] = {
      ...(JSON.parse(row.data) as AuditRecord),
      seq: row.seq,
      prevHash: row.prev_hash,
      hash: row.hash,
    };
  }
  return out;
}

/**
 * The records after `afterSeq`, oldest first, at most `limit` of them (a range of the primary key).
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` for a bad `afterSeq` or `limit`; `ERR_AUDIT_READ`.
 *
 * @example
 * ```ts
 * const next = recordsAfter(db, lastSeen, 1000);
 * ```
 */
export function recordsAfter(db: Database, afterSeq: number, limit: number): AuditRecord[] {
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0 || !Number.isSafeInteger(limit) || limit < 1) {
    throw new AuditError(
      "ERR_AUDIT_ARGUMENT",
      `recordsAfter needs a seq >= 0 and a limit >= 1; got ${String(afterSeq)} and ${String(limit)}.`,
    );
  }
  let rows: TailRow[];
  try {
    rows = db
      .prepare<[number, number], TailRow>(
        "SELECT seq, data, prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
      )
      .all(afterSeq, limit);
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the audit trail in "${db.name}": ${err instanceof Error ? err.message : String(err)}.`,
      { cause: err },
    );
  }
  return rows.map((row) => ({
    ...(JSON.parse(row.data) as AuditRecord),
    seq: row.seq,
    prevHash: row.prev_hash,
    hash: row.hash,
  }));
}

/** Options of {@link followTrail}. */
export interface FollowOptions {
  /** Yield the records after this seq (e.g. the last one `tail` printed). */
  afterSeq: number;
  /** Stops the follow; the iterator then ends. */
  signal: AbortSignal;
  /** Milliseconds between two looks at the trail when nothing new came; default 250. */
  intervalMs?: number;
  /** Waits `ms` or until `signal` aborts (injected for tests); default a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * Follows the trail like `tail -f`: yields each record committed after `afterSeq`, oldest first,
 * as it appears (polling every `intervalMs` while nothing is new), until `signal` aborts. Reads
 * in pages of 1000, so a burst does not wait for the next poll.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the trail cannot be read.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * for await (const r of followTrail(db, { afterSeq: last, signal: stop.signal })) console.log(formatRecord(r));
 * ```
 */
export async function* followTrail(db: Database, opts: FollowOptions): AsyncGenerator<AuditRecord> {
  const interval = opts.intervalMs ?? 250;
  const sleep = opts.sleep ?? wait;
  let after = opts.afterSeq;
  while (!opts.signal.aborted) {
    const page = recordsAfter(db, after, 1000);
    for (const r of page) {
      if (opts.signal.aborted) return;
      after = r.seq;
      yield r;
    }
    if (page.length < 1000) await sleep(interval, opts.signal);
  }
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * One human-readable line for a record: ISO time, decision, status[/substatus], subject,
 * actions, resource, partition key, reason (quoted), duration. Absent values print as `-`;
 * control characters are escaped so a record is always exactly one line.
 *
 * @example
 * ```ts
 * formatRecord(record);
 * // 2025-01-02T03:04:05.678Z deny 403/5301 alice@contoso key=Q2xh... delete /dbs/shop/colls/orders/docs/a1 pk=["a1"] "no rule allows delete" 3ms
 * // (records other than data-plane requests start with their type: "signin.succeeded allow 0 ...")
 * ```
 */
export function formatRecord(r: AuditRecord): string {
  const time = Number.isFinite(r.time) ? new Date(r.time).toISOString() : "-";
  const status = r.substatus === undefined ? `${r.status}` : `${r.status}/${r.substatus}`;
  const actions = r.actions.length > 0 ? r.actions.join(",") : "-";
  const pk = r.partitionKey === undefined ? "pk=-" : `pk=${clean(r.partitionKey)}`;
  const ms = `${Math.round(r.durationMs * 10) / 10}ms`;
  const type = r.type === "data.request" ? "" : `${word(r.type)} `;
  const key = r.credential ? ` key=${word(r.credential)}` : "";
  return `${time} ${type}${r.decision} ${status} ${word(r.subject)}${key} ${word(actions)} ${word(r.resource)} ${pk} ${JSON.stringify(r.reason)} ${ms}`;
}

// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/gu;

function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function word(s: string): string {
  return s === "" ? "-" : clean(s).replaceAll(" ", "%20");
}
