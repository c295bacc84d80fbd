import { type FileHandle, open } from "node:fs/promises";
import { openDatabase } from "../store/sqlite.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

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
  opts: { clock?: () => number } = {},
): Promise<AuditSink> {
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(file, { synchronous: "NORMAL" });
  } catch (err) {
    // StoreError's message names the file and what to do; keep it, with the audit's code.
    throw new AuditError("ERR_AUDIT_WRITE", (err as Error).message, { cause: err });
  }
  let wal: FileHandle;
  let writer: ReturnType<typeof createAuditWriter>;
  try {
    writer = createAuditWriter(db, { clock: opts.clock });
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

  let failure: AuditError | undefined;
  let pending = 0;
  /** The fsync in flight, and the highest seq committed when it started (what it makes durable). */
  let inflight: { done: Promise<void>; covers: number } | undefined;
  let next: Promise<void> | undefined;
  /** Appends that arrived while an fsync was in flight: committed together when it ends. */
  let held: { event: AuditEvent; resolve: (seq: number) => void; reject: (err: unknown) => void }[] = [];

  const startSync = (): Promise<void> => {
    const covers = writer.head().seq;
    const done = wal.sync().finally(() => {
      inflight = undefined;
      release();
    });
    inflight = { done, covers };
    return done;
  };

  /** Resolves once an fsync that covers `seq` (committed already) has finished. */
  const durable = (seq: number): Promise<void> => {
    if (inflight && inflight.covers >= seq) return inflight.done;
    if (!inflight) return startSync();
    next ??= inflight.done.then(
      () => {
        next = undefined;
        return startSync();
      },
      () => {
        next = undefined;
        return startSync();
      },
    );
    return next;
  };

  const commitAndSync = async (event: AuditEvent): Promise<number> => {
    const seq = await writer.append(event);
    try {
      await durable(seq);
    } catch (err) {
      failure ??= new AuditError(
        "ERR_AUDIT_WRITE",
        `the audit trail could not be flushed to disk: ${(err as Error).message}`,
      );
      throw failure;
    }
    return seq;
  };

  // Group commit on fsync boundaries: a record committed while an fsync runs would wait for the
  // next fsync anyway, so it waits uncommitted and joins one larger transaction when the fsync
  // ends — fewer, bigger commits for the same latency.
  const release = () => {
    if (held.length === 0) return;
    const batch = held;
    held = [];
    for (const h of batch) commitAndSync(h.event).then(h.resolve, h.reject);
  };

  return {
    async append(event) {
      if (failure) throw failure;
      pending++;
      try {
        if (inflight)
          return await new Promise<number>((resolve, reject) => held.push({ event, resolve, reject }));
        return await commitAndSync(event);
      } finally {
        pending--;
      }
    },
    pending: () => pending,
    async close() {
      // Let the fsync in flight finish, and the appends it held commit and sync.
      while (inflight || held.length > 0 || pending > 0) {
        await (inflight?.done ?? new Promise((r) => setImmediate(r))).catch(() => {});
      }
      await writer.close();
      await wal.sync().catch(() => {});
      await wal.close();
      db.close();
      failure ??= new AuditError("ERR_AUDIT_CLOSED", "the audit writer is closed");
    },
  };
}
