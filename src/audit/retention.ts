import { type Database, migrate } from "../store/index.js";
import { openDatabase } from "../store/sqlite.js";
import {
  type AuditCheckpoint,
  hasCheckpointTable,
  listCheckpoints,
  verifyCheckpoint,
} from "./checkpoints.js";
import { AuditError } from "./errors.js";
import { auditMigrations } from "./schema.js";
import type { AuditEvent } from "./types.js";

const DAY = 86_400_000;

/** Options of {@link pruneAudit}. */
export interface PruneOptions {
  /** Records older than this (ms) may go; 0 or less keeps everything. */
  retentionMs: number;
  /** ms since the epoch; default Date.now. */
  clock?: () => number;
  /**
   * Appends the `audit.pruned` event through the normal writer; resolves once it is committed.
   * Not called with `dryRun`.
   */
  append?: (event: AuditEvent) => Promise<number>;
  /** Say what would be pruned; change nothing. */
  dryRun?: boolean;
  /** Who prunes, for the event: default the gateway (`cosmosgate`, kind `system`). */
  subject?: string;
  subjectKind?: string;
  instance?: string;
  /** Records deleted per transaction (each ends at a checkpoint). Default 10 000. */
  chunk?: number;
  /** Awaited between transactions so the data plane's writer gets the lock. Default setImmediate. */
  pause?: () => Promise<void>;
}

/** What {@link pruneAudit} did (or would do, with `dryRun`). */
export interface PruneResult {
  /** `pruned`: records deleted; `nothing`: nothing old enough; `refused`: the anchor did not verify. */
  status: "pruned" | "nothing" | "refused";
  /** Records deleted (with `dryRun`: that would be). */
  deleted: number;
  /** Records older than this (ms since the epoch) may go. */
  cutoff: number;
  /** The checkpoint the kept trail starts from: its record is the last one deleted. */
  anchor?: AuditCheckpoint;
  /** The first seq deleted. */
  fromSeq?: number;
  /** seq of the `audit.pruned` record. */
  eventSeq?: number;
  /** Why nothing was pruned (`nothing`, `refused`), for a person. */
  reason?: string;
  dryRun: boolean;
}

interface Range {
  lo: number | null;
  hi: number | null;
}

/**
 * Prunes the audit trail to its retention, keeping it verifiable.
 *
 * Records may go only up to (and including) the seq of a checkpoint: the newest checkpoint signed
 * before `now - retentionMs` (so every record it covers is older than the retention) that is not
 * the newest record (the chain head is never deleted, so the writer's next seq stays right).
 * That checkpoint stays as the anchor: the first kept record links to its hash, and
 * `verifyTrail` starts there. Before deleting, the anchor's signature and its record's hash are
 * checked (a forged or stale checkpoint is refused: nothing is deleted), and an `audit.pruned`
 * event is appended with `details.upTo` = the anchor's seq — the authorization `verify` requires
 * for a trail that does not start at 1. Then records, their `audit_index` rows (and, by trigger,
 * their action rows) and the older checkpoints are deleted in transactions of about `chunk`
 * records, each ending at a checkpoint, so the trail verifies at every step even if interrupted.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` / `ERR_AUDIT_WRITE` when the database fails;
 *   `ERR_AUDIT_ARGUMENT` when `append` is missing without `dryRun`.
 *
 * @example
 * ```ts
 * const r = await pruneAudit(db, { retentionMs: 400 * 86_400_000, append: (e) => audit.append(e) });
 * if (r.status === "pruned") log.info({ deleted: r.deleted, anchor: r.anchor?.seq }, "audit pruned");
 * ```
 */
export async function pruneAudit(db: Database, opts: PruneOptions): Promise<PruneResult> {
  const clock = opts.clock ?? Date.now;
  const dryRun = opts.dryRun === true;
  const now = clock();
  const cutoff = now - opts.retentionMs;
  const nothing = (reason: string): PruneResult => ({
    status: "nothing",
    deleted: 0,
    cutoff,
    reason,
    dryRun,
  });
  if (!(opts.retentionMs > 0))
    return nothing("retention is off (audit.retention is 0): records are kept forever");
  if (!dryRun && opts.append === undefined) {
    throw new AuditError("ERR_AUDIT_ARGUMENT", "pruneAudit needs `append` to record the audit.pruned event.");
  }

  const found = read(db, () => {
    const range = db.prepare("SELECT min(seq) AS lo, max(seq) AS hi FROM audit_events").get() as Range;
    if (range.lo === null || range.hi === null || !hasCheckpointTable(db))
      return { range, anchor: undefined };
    const row = db
      .prepare<[number, number, number], { seq: number }>(
        "SELECT seq FROM audit_checkpoints WHERE time < ? AND seq >= ? AND seq < ? ORDER BY seq DESC LIMIT 1",
      )
      .get(cutoff, range.lo, range.hi);
    const anchor =
      row === undefined ? undefined : listCheckpoints(db, { fromSeq: row.seq, toSeq: row.seq })[0];
    const recordHash =
      anchor === undefined
        ? undefined
        : (
            db
              .prepare<[number], { hash: string }>("SELECT hash FROM audit_events WHERE seq = ?")
              .get(anchor.seq) ?? undefined
          )?.hash;
    return { range, anchor, recordHash };
  });
  const { range, anchor } = found;
  if (range.lo === null) return nothing("the trail is empty");
  if (anchor === undefined) {
    return nothing(
      `no checkpoint older than the retention (signed before ${iso(cutoff)}) covers records not pruned yet`,
    );
  }
  const fromSeq = range.lo;
  const deleted = anchor.seq - fromSeq + 1;

  const check = await verifyCheckpoint(anchor);
  const reason = !check.ok
    ? `the checkpoint at seq ${anchor.seq} does not verify: ${check.reason}`
    : found.recordHash !== anchor.hash
      ? `record ${anchor.seq} does not have the hash its checkpoint signed`
      : undefined;
  if (reason !== undefined) {
    return {
      status: "refused",
      deleted: 0,
      cutoff,
      anchor,
      fromSeq,
      dryRun,
      reason: `${reason}; nothing was pruned. Run \`cosmosgate audit verify\` and investigate before pruning.`,
    };
  }
  const result: PruneResult = { status: "pruned", deleted, cutoff, anchor, fromSeq, dryRun };
  if (dryRun) return result;

  // The authorization first: verify accepts a trail that starts after checkpoint X only when an
  // audit.pruned record of the kept trail says "up to X" (or further). Written before the
  // deletion, it survives an interrupted prune; it is newer than X, so it is always kept.
  const event: AuditEvent = {
    time: now,
    type: "audit.pruned",
    subject: opts.subject ?? "cosmosgate",
    subjectKind: opts.subjectKind ?? "system",
    actions: [],
    resource: "/audit",
    decision: "allow",
    reason: `retention ${formatDuration(opts.retentionMs)}: records ${fromSeq}–${anchor.seq} (older than ${iso(cutoff)}) pruned; the trail starts after the checkpoint at seq ${anchor.seq}`,
    status: 0,
    durationMs: 0,
    details: {
      upTo: anchor.seq,
      anchorHash: anchor.hash,
      anchorTime: anchor.time,
      fromSeq,
      records: deleted,
      cutoff,
      retentionMs: opts.retentionMs,
    },
  };
  if (opts.instance !== undefined) event.instance = opts.instance;
  result.eventSeq = await (opts.append as (e: AuditEvent) => Promise<number>)(event);

  const chunk = opts.chunk ?? 10_000;
  const pause = opts.pause ?? (() => new Promise<void>((r) => setImmediate(r)));
  const stepTo = db.prepare<[number, number, number, number], { seq: number }>(
    // The newest checkpoint within the chunk, else the first one after it (never past the anchor).
    "SELECT coalesce(" +
      "(SELECT max(seq) FROM audit_checkpoints WHERE seq >= ? AND seq <= ?), " +
      "(SELECT min(seq) FROM audit_checkpoints WHERE seq > ? AND seq <= ?)) AS seq",
  );
  const delEvents = db.prepare("DELETE FROM audit_events WHERE seq <= ?");
  const delIndex = db.prepare("DELETE FROM audit_index WHERE seq <= ?");
  const delCheckpoints = db.prepare("DELETE FROM audit_checkpoints WHERE seq < ?");
  const step = db.transaction((to: number) => {
    delEvents.run(to);
    delIndex.run(to); // its trigger (schema version 3) removes the audit_index_actions rows
    delCheckpoints.run(to);
  });
  let lo = fromSeq;
  while (lo <= anchor.seq) {
    const limit = Math.min(anchor.seq, lo + chunk - 1);
    const to = write(db, () => (stepTo.get(lo, limit, limit, anchor.seq) as { seq: number | null }).seq);
    if (to === null) break; // the anchor itself was deleted meanwhile (another prune): stop
    write(db, () => step.immediate(to));
    lo = to + 1;
    if (lo <= anchor.seq) await pause();
  }
  return result;
}

/** Options of {@link startRetention}. */
export interface RetentionJobOptions extends Omit<PruneOptions, "dryRun" | "append"> {
  append: (event: AuditEvent) => Promise<number>;
  /** How often the job runs after the first run at start. Default one day. */
  everyMs?: number;
  /** Called after each run (also when nothing was pruned). */
  onResult?: (result: PruneResult) => void;
  onError?: (err: AuditError) => void;
}

/** The running retention job. */
export interface RetentionJob {
  /** Runs a prune now (one at a time). */
  run(): Promise<PruneResult | undefined>;
  /** Stops the timer, waits for a prune in flight, closes the connection. */
  close(): Promise<void>;
}

/**
 * Runs {@link pruneAudit} on `file` soon after start and then every `everyMs` (default daily), on
 * an unref'd timer, with its own connection; the deletions are done in small transactions so the
 * data plane's writer is not held up. A `retentionMs` of 0 starts nothing.
 *
 * @example
 * ```ts
 * const job = startRetention(join(stateDir, "audit.db"), {
 *   retentionMs: config.audit.retention, append: (e) => audit.append(e),
 *   onResult: (r) => r.status !== "nothing" && log.info(r, "audit retention"),
 * });
 * closers.push(() => job.close());
 * ```
 */
export function startRetention(file: string, opts: RetentionJobOptions): RetentionJob {
  if (!(opts.retentionMs > 0)) return { run: async () => undefined, close: async () => {} };
  let db: Database | undefined;
  let inFlight: Promise<PruneResult | undefined> | undefined;
  let closed = false;
  const run = (): Promise<PruneResult | undefined> => {
    if (closed) return Promise.resolve(undefined);
    if (inFlight !== undefined) return inFlight;
    inFlight = (async () => {
      try {
        if (db === undefined) {
          // NORMAL: this connection never fsyncs inside COMMIT on the event loop; deleting is not
          // urgent, and the data plane writer's fdatasync of the same WAL covers it.
          db = openDatabase(file, { synchronous: "NORMAL" });
          migrate(db, auditMigrations);
        }
        const result = await pruneAudit(db, opts);
        opts.onResult?.(result);
        return result;
      } catch (err) {
        opts.onError?.(
          err instanceof AuditError
            ? err
            : new AuditError("ERR_AUDIT_WRITE", `audit retention failed: ${messageOf(err)}`, { cause: err }),
        );
        return undefined;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  const first = setTimeout(run, 1000);
  first.unref();
  const timer = setInterval(run, opts.everyMs ?? DAY);
  timer.unref();
  return {
    run,
    async close() {
      closed = true;
      clearTimeout(first);
      clearInterval(timer);
      await inFlight;
      db?.close();
    },
  };
}

function read<T>(db: Database, f: () => T): T {
  try {
    return db.transaction(f)();
  } catch (err) {
    throw new AuditError("ERR_AUDIT_READ", `cannot read the audit trail in "${db.name}": ${messageOf(err)}`, {
      cause: err,
    });
  }
}

function write<T>(db: Database, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_WRITE",
      `pruning the audit trail in "${db.name}" failed: ${messageOf(err)}. What was deleted so far ends at a checkpoint; the trail still verifies. Run the prune again.`,
      { cause: err },
    );
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function formatDuration(ms: number): string {
  return ms % DAY === 0 ? `${ms / DAY}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms / 1000}s`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
