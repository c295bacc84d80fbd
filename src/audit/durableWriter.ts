import { type FileHandle, open } from "node:fs/promises";
import { openDatabase } from "../store/sqlite.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { ChainAppender, type Outcome } from "./writer.js";

/** The audit trail as the data plane uses it. */
export interface AuditSink {
  /** Resolves with the record's seq once it is committed and on disk; rejects with AuditError otherwise. */
  append(event: AuditEvent): Promise<number>;
  /** Appends not yet durable, for metrics and back-pressure. */
  pending(): number;
  close(): Promise<void>;
}

/**
 * The data plane's audit writer. Group commit in this thread with `synchronous = NORMAL` (a COMMIT
 * is a WAL write, tens of microseconds, no fsync), then one asynchronous fsync of the WAL file on
 * libuv's thread pool covers every group committed before it; an append resolves only after that
 * fsync. Durability is the same as `synchronous = FULL` — an acknowledged record survives a crash
 * of the process or of the machine — but the event loop never waits for the disk.
 *
 * An fsync that fails rejects the appends it covered with ERR_AUDIT_WRITE (the data plane answers
 * 503: fail closed) and every later append too, since the file's state is then unknown.
 *
 * @example const audit = await createDurableAuditWriter(join(stateDir, "audit.db")); await audit.append(event)
 */
export async function createDurableAuditWriter(
  file: string,
  // Kept for callers; this writer keeps no commit statistics, so it reads no clock.
  _opts: { clock?: () => number } = {},
): Promise<AuditSink> {
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(file, { synchronous: "NORMAL" });
  } catch (err) {
    // StoreError's message names the file and what to do; keep it, with the audit's code.
    throw new AuditError("ERR_AUDIT_WRITE", (err as Error).message, { cause: err });
  }
  let wal: FileHandle;
  let chain: ChainAppender;
  try {
    chain = new ChainAppender(db);
    // The WAL exists while this connection is open (the schema migration wrote to it); SQLite
    // reuses the same file after checkpoints, so one handle serves for the writer's life.
    db.pragma("wal_checkpoint(PASSIVE)");
    // A checkpoint fsyncs the WAL and the database synchronously, inside a COMMIT, on this thread.
    // Make them rare (every ~40 MB of WAL instead of ~4 MB) so they seldom stall the data plane.
    db.pragma("wal_autocheckpoint = 10000");
    wal = await open(`${file}-wal`, "r");
  } catch (err) {
    db.close();
    throw err instanceof AuditError
      ? err
      : new AuditError("ERR_AUDIT_WRITE", `cannot open the audit trail "${file}": ${(err as Error).message}`);
  }

  // The appends not yet committed (they form the next group), and those committed and waiting for
  // the fsync in flight. This object drives the commits itself: one setImmediate and one fsync per
  // group, one promise per append, nothing per record in between.
  let queued: AuditEvent[] = [];
  let queuedResolves: ((seq: number) => void)[] = [];
  let queuedRejects: ((err: AuditError) => void)[] = [];
  let syncing: Promise<void> | undefined;
  let scheduled = false;
  let pending = 0;
  let failure: AuditError | undefined;

  // Records reach audit_index in batches as they are committed; at low traffic this timer copies
  // the rest within a second (searches scan the unindexed tail until then).
  const indexTimer = setInterval(() => {
    if (failure) return;
    try {
      chain.indexPending();
    } catch {
      // The index is derived data: the next tick (or the next batch) tries again.
    }
  }, 1000);
  indexTimer.unref();

  const schedule = () => {
    if (!scheduled && syncing === undefined && queued.length > 0) {
      scheduled = true;
      setImmediate(commitGroup);
    }
  };

  // Group commit on fsync boundaries: a record appended while an fsync runs would wait for the
  // next fsync anyway, so it waits uncommitted and joins one larger transaction when the fsync
  // ends — fewer, bigger commits for the same latency. Appends of one event-loop turn share a
  // group too (the commit runs after the turn, from setImmediate).
  const commitGroup = () => {
    scheduled = false;
    if (syncing !== undefined || queued.length === 0) return;
    const events = queued;
    const resolves = queuedResolves;
    const rejects = queuedRejects;
    queued = [];
    queuedResolves = [];
    queuedRejects = [];
    const n = events.length;
    const out: Outcome[] = new Array(n);
    try {
      chain.write(events, out);
    } catch (err) {
      pending -= n;
      for (let i = 0; i < n; i++) rejects[i](err as AuditError);
      schedule();
      return;
    }
    let committed = 0;
    for (let i = 0; i < n; i++) {
      const o = out[i];
      if (typeof o === "number") committed++;
      else {
        pending--;
        rejects[i](o);
      }
    }
    if (committed === 0) {
      schedule();
      return;
    }
    // One fdatasync of the WAL, started after the COMMIT returned, makes the whole group durable
    // (as SQLite's own synchronous=FULL does for the WAL: data and the size needed to read it).
    syncing = wal.datasync().then(
      () => {
        syncing = undefined;
        pending -= committed;
        for (let i = 0; i < n; i++) {
          const o = out[i];
          if (typeof o === "number") resolves[i](o);
        }
        schedule();
      },
      (err: unknown) => {
        syncing = undefined;
        failure ??= new AuditError(
          "ERR_AUDIT_WRITE",
          `the audit trail could not be flushed to disk: ${(err as Error).message}`,
        );
        pending -= committed;
        for (let i = 0; i < n; i++) if (typeof out[i] === "number") rejects[i](failure);
        // The file's state is unknown now: refuse what waits too.
        const waiting = queuedRejects;
        pending -= waiting.length;
        queued = [];
        queuedResolves = [];
        queuedRejects = [];
        for (const reject of waiting) reject(failure);
      },
    );
  };

  return {
    append(event) {
      if (failure) return Promise.reject(failure);
      pending++;
      return new Promise<number>((resolve, reject) => {
        queued.push(event);
        queuedResolves.push(resolve);
        queuedRejects.push(reject);
        schedule();
      });
    },
    pending: () => pending,
    async close() {
      // Let the fsync in flight finish, and the appends it held commit and sync.
      while (syncing !== undefined || scheduled || queued.length > 0) {
        await (syncing ?? new Promise((r) => setImmediate(r)));
      }
      clearInterval(indexTimer);
      try {
        chain.indexPending();
      } catch {
        // Derived data: the next start catches up.
      }
      await wal.sync().catch(() => {});
      await wal.close();
      db.close();
      failure ??= new AuditError("ERR_AUDIT_CLOSED", "the audit writer is closed");
    },
  };
}
