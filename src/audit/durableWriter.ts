import { type FileHandle, open } from "node:fs/promises";
import type { Worker } from "node:worker_threads";
import { preallocateWal, walBytes } from "../store/preallocateWal.js";
import { type Database, openDatabase } from "../store/sqlite.js";
import { type ChainThread, startChainThread } from "./chainThread.js";
import { AuditError } from "./errors.js";
import { INDEX_BATCH } from "./schema.js";
import type { AuditEvent } from "./types.js";
import { ChainAppender, type Outcome } from "./writer.js";

/** `strict`: an append settles once its record is committed and fsync'd. `buffered`: once queued. */
export type AuditDurability = "strict" | "buffered";

/**
 * What the writer is doing, for metrics and the refusal message:
 * - `ok`: storing records as they come.
 * - `retrying`: commits fail (the store is locked, the disk is full, an I/O error); the records
 *   wait and are retried with backoff.
 * - `overloaded`: more than `maxQueue` records wait: the audit cannot keep up.
 * - `failed`: an fsync failed; the writer refuses everything for good (restart the gateway).
 * - `closed`: {@link AuditSink.close} was called.
 */
export type AuditSinkState = "ok" | "retrying" | "overloaded" | "failed" | "closed";

/** The audit trail as the data plane uses it. */
export interface AuditSink {
  /**
   * Strict: resolves with the record's seq once it is committed and on disk. Buffered: resolves
   * with 0 once it is queued (it is on disk within the buffered delay). Rejects with an AuditError
   * when the record will not be stored; the record then went to the `onLost` sink.
   */
  append(event: AuditEvent): Promise<number>;
  /**
   * Whether a new data-plane request may be forwarded: false while the writer is retrying failed
   * commits, after a fatal failure, when closed, or with more than `maxQueue` records waiting.
   * A few field reads: call it before forwarding every request.
   */
  accepting(): boolean;
  /** Why the writer is (not) accepting; see {@link AuditSinkState}. */
  state(): AuditSinkState;
  /** Records appended and not yet stored (nor given up), for metrics and back-pressure. */
  pending(): number;
  /** Resolves once nothing waits: every record appended so far is stored or was given up. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link createDurableAuditWriter}. */
export interface DurableAuditWriterOptions {
  /** Milliseconds since the epoch; default `Date.now`. Times how long records wait while commits fail. */
  clock?: () => number;
  /** Default `strict`. */
  durability?: AuditDurability;
  /** Buffered: the bound, in ms, within which a queued record is committed and fsync'd. Default 200. */
  bufferedDelayMs?: number;
  /** Records waiting beyond which {@link AuditSink.accepting} is false. Default 10 000. */
  maxQueue?: number;
  /**
   * How long, in ms, a record may wait while commits keep failing before it is given up: sent to
   * `onLost` and its append rejected. Default 10 000.
   */
  storeTimeoutMs?: number;
  /**
   * The last-resort sink: called once for each record the writer accepted but will not store
   * (commits failed for `storeTimeoutMs`, an fsync failed, the writer was closed or overloaded,
   * the event was malformed). The gateway writes it to its log. Records hold no tokens or bodies.
   */
  onLost?: (event: AuditEvent, err: AuditError) => void;
  /** After each group is durable: its size and the seconds from the start of its commit to the end of its fsync. */
  onCommit?: (records: number, seconds: number) => void;
  /** When commits start failing (`retrying`), succeed again (`recovered`) or an fsync fails (`failed`). */
  onStateChange?: (change: "retrying" | "recovered" | "failed", err?: AuditError) => void;
  /** Fault injection for tests: replaces the WAL's fdatasync (of every group, inline or not). */
  datasync?: (wal: FileHandle) => Promise<void>;
  /**
   * Groups of fewer records than this are written on the event loop; larger ones, and the copies
   * to the search index, in the writer thread. Default {@link INLINE_GROUP}; 0 sends every group
   * to the thread, `Infinity` none (tests of each path).
   */
  inlineBelow?: number;
  /** Receives the writer thread's Worker (tests: watch what it is given, or stop it). */
  onThread?: (worker: Worker) => void;
}

// Retry backoff while commits fail: 2 ms doubling to 200 ms (a released lock is noticed quickly).
const FIRST_RETRY_MS = 2;
const MAX_RETRY_MS = 200;
// SQLITE_BUSY (another connection holds the write lock: a CLI command, a checkpoint, a backup) is
// usually over in milliseconds; the writer keeps accepting for this long before it refuses.
const BUSY_GRACE_MS = 100;
// Buffered mode commits at the latest a quarter of the delay after a record is queued (the rest is
// left for the commit and the fsync), or at once when this many records wait, which bounds how long
// one commit holds the event loop.
const BUFFERED_GROUP = 1024;

const RESOLVED_QUEUED: Promise<number> = Promise.resolve(0);

/**
 * Groups smaller than this are written on the event loop (see {@link createDurableAuditWriter}).
 * Measured on 2 cores (`npm run bench`): a small group costs the event loop ~15 µs a record
 * inline, and handing it to the thread costs more in latency than it saves (the thread must be
 * scheduled, then the event loop again); from about this size on, the thread wins.
 */
export const INLINE_GROUP = 16;

// At low traffic the timer copies at most this many records to the index on the event loop
// (well under a millisecond); more go to the writer thread.
const INLINE_INDEX = 32;

// After the writer thread failed to start, groups are written on the event loop for this long
// before it is tried again.
const THREAD_RETRY_MS = 5000;

/**
 * The data plane's audit writer: group commit with `synchronous = NORMAL` (a COMMIT is a WAL
 * write, no fsync), then one fdatasync of the WAL covers every group committed before it. Strict
 * mode settles an append only after that fsync: durability is that of `synchronous = FULL` (an
 * acknowledged record survives a crash of the process or of the machine) while the event loop
 * never waits for the disk. Buffered mode settles an append at once and commits within
 * `bufferedDelayMs`.
 *
 * Where the work runs: a group of fewer than `inlineBelow` records (the usual case at moderate
 * load) is written on the event loop, ~15 µs a record, and its fdatasync runs on libuv's thread
 * pool. A larger group, and every copy of records to the search index (`audit_index`, each
 * {@link INDEX_BATCH} records or after a second), goes to the writer thread (chainThread.ts),
 * which writes, copies and fsyncs while the event loop goes on, so a burst or an index copy never
 * holds the event loop for milliseconds. One group is in flight at a time, whichever way it goes,
 * so the two connections never contend for the write lock.
 *
 * Failures: a commit that fails (SQLITE_BUSY from a lock held elsewhere, SQLITE_FULL, an I/O
 * error) stores nothing of its group; the records stay queued, in order, and are retried with
 * backoff while {@link AuditSink.accepting} is false (after a short grace for SQLITE_BUSY), so the
 * records of requests already forwarded are not dropped. A record that cannot be stored within
 * `storeTimeoutMs` goes to `onLost` and its append rejects with ERR_AUDIT_WRITE. The connection
 * never waits for a lock (busy_timeout 0): a held lock must not freeze the data plane.
 *
 * An fsync that fails is fatal ("fsyncgate": after a failed fsync the kernel may have dropped the
 * dirty pages, and a retry can report success over lost data): the records it covered and every
 * record waiting go to `onLost`, their appends reject, and every later append too.
 *
 * @example
 * ```ts
 * const audit = await createDurableAuditWriter(join(stateDir, "audit.db"), {
 *   onLost: (event, err) => log.error({ record: event, problem: err.message }, "audit record could not be stored"),
 * });
 * if (audit.accepting()) await audit.append(event);
 * ```
 */
export async function createDurableAuditWriter(
  file: string,
  opts: DurableAuditWriterOptions = {},
): Promise<AuditSink> {
  const clock = opts.clock ?? Date.now;
  const strict = (opts.durability ?? "strict") === "strict";
  const bufferedWindow = Math.max(1, Math.floor((opts.bufferedDelayMs ?? 200) / 4));
  const maxQueue = opts.maxQueue ?? 10_000;
  // Past twice maxQueue a record is not even queued: memory stays bounded when failing open.
  const hardLimit = 2 * maxQueue;
  const storeTimeout = opts.storeTimeoutMs ?? 10_000;
  const onLost = opts.onLost;
  const onCommit = opts.onCommit;
  const onStateChange = opts.onStateChange;

  const inlineBelow = opts.inlineBelow ?? INLINE_GROUP;
  let db: Database;
  try {
    db = openDatabase(file, { synchronous: "NORMAL" });
  } catch (err) {
    // StoreError's message names the file and what to do; keep it, with the audit's code.
    throw new AuditError("ERR_AUDIT_WRITE", (err as Error).message, { cause: err });
  }
  let wal: FileHandle;
  let inline: ChainAppender;
  let unindexed: number;
  try {
    // The event loop's own connection, for small groups; it migrates the schema.
    inline = new ChainAppender(db);
    // The WAL exists while this connection is open (the schema migration wrote to it); SQLite
    // reuses the same file after checkpoints, so one handle serves for the writer's life
    // (fdatasync is per file: it covers what the thread's connection wrote too).
    db.pragma("wal_checkpoint(PASSIVE)");
    // A checkpoint fsyncs the WAL and the database synchronously, inside a COMMIT. Make them rare
    // (every ~40 MB of WAL instead of ~4 MB) so they seldom stall the data plane.
    db.pragma("wal_autocheckpoint = 10000");
    // Start-up may wait for a lock (above); from now on a lock held elsewhere fails the commit at
    // once and the writer retries from a timer, instead of blocking the event loop.
    db.pragma("busy_timeout = 0");
    // Records committed and not yet copied to audit_index (by an earlier run).
    unindexed = db
      .prepare(
        "SELECT (SELECT coalesce(max(seq), 0) FROM audit_events) - (SELECT coalesce(max(seq), 0) FROM audit_index)",
      )
      .pluck()
      .get() as number;
    wal = await open(`${file}-wal`, "r");
    // Grow the WAL to its checkpoint size now, so fsyncs do not also journal its growth.
    await preallocateWal(file, walBytes(10_000, db.pragma("page_size", { simple: true }) as number));
  } catch (err) {
    db.close();
    throw err instanceof AuditError
      ? err
      : new AuditError("ERR_AUDIT_WRITE", `cannot open the audit trail "${file}": ${(err as Error).message}`);
  }
  const conn = db;

  // The writer thread starts the first time a group needs it (a large group, an index batch), so
  // a gateway at low traffic never starts it; until it is ready, groups are written here. Its
  // death is as fatal as a failed fsync (below).
  let onDeath: (err: AuditError) => void = () => {};
  let starting = false;
  let thread: ChainThread | undefined;
  let threadRetryAt = 0;
  const readyThread = (): ChainThread | undefined => {
    if (thread !== undefined || starting || fatal || refusal !== undefined || clock() < threadRetryAt)
      return thread;
    starting = true;
    startChainThread(file, {
      onDeath: (err) => onDeath(err),
      onThread: opts.onThread,
      sync: opts.datasync === undefined,
    }).then(
      (t) => {
        starting = false;
        if (refusal !== undefined) void t.close(false);
        else thread = t;
      },
      () => {
        // Could not start (the store is locked, say): groups stay here; try again in a while.
        starting = false;
        threadRetryAt = clock() + THREAD_RETRY_MS;
      },
    );
    return undefined;
  };

  // The appends not yet committed (they form the next group); strict mode also keeps their
  // promises' settlers. This object drives the commits itself: one timer or setImmediate and one
  // fsync per group, one promise per strict append, nothing per record in between.
  let queued: AuditEvent[] = [];
  let queuedResolves: ((seq: number) => void)[] = [];
  let queuedRejects: ((err: AuditError) => void)[] = [];
  let pending = 0;
  let syncing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let immediate = false;
  // Buffered: clock time at which the oldest queued record arrived.
  let oldestAt = 0;
  // Set for good by a failed fsync (`fatal`) or by close(); every append is refused.
  let refusal: AuditError | undefined;
  let fatal = false;
  // While commits fail: the last error, the backoff, whether new requests are refused yet, and
  // marks of how many records (counted from the head of the queue) were waiting at which time.
  let retryError: AuditError | undefined;
  let retryDelay = FIRST_RETRY_MS;
  let degraded = false;
  let graceTimer: NodeJS.Timeout | undefined;
  let marks: { at: number; count: number }[] = [];
  let idleWaiters: (() => void)[] = [];
  // Whether the next group copies the unindexed records to audit_index (in the thread).
  let indexWanted = false;

  // Records reach audit_index in batches (with the group that completes INDEX_BATCH, in the
  // thread); at low traffic this timer has the rest copied within a second (searches scan the
  // unindexed tail until then): a few records here, more by the next group or by the thread.
  const indexTimer = setInterval(() => {
    if (refusal !== undefined || retryError !== undefined || unindexed === 0) return;
    const idle = syncing === undefined && queued.length === 0;
    if (idle && unindexed <= INLINE_INDEX) {
      try {
        inline.indexPending(true);
        unindexed = 0;
      } catch {
        // The index is derived data: the next tick tries again.
      }
      return;
    }
    indexWanted = true;
    const chain = idle ? readyThread() : undefined;
    if (chain !== undefined) copyIndex(chain);
  }, 1000);
  indexTimer.unref();

  const copyIndex = (chain: ChainThread) => {
    syncing = chain.write([], true).then(
      () => {
        syncing = undefined;
        unindexed = 0;
        indexWanted = false;
        schedule();
        wakeIfIdle();
      },
      () => {
        // Derived data: the next tick tries again.
        syncing = undefined;
        schedule();
        wakeIfIdle();
      },
    );
  };

  const runImmediate = () => {
    immediate = false;
    commitGroup();
  };
  const runTimer = () => {
    timer = undefined;
    commitGroup();
  };

  const schedule = () => {
    if (immediate || timer !== undefined || syncing !== undefined || queued.length === 0) return;
    if (retryError !== undefined) {
      timer = setTimeout(runTimer, retryDelay);
    } else if (strict || refusal !== undefined || idleWaiters.length > 0 || queued.length >= BUFFERED_GROUP) {
      immediate = true;
      setImmediate(runImmediate);
    } else {
      timer = setTimeout(runTimer, Math.max(0, oldestAt + bufferedWindow - clock()));
    }
  };

  const wakeIfIdle = () => {
    if (queued.length > 0 || syncing !== undefined || idleWaiters.length === 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  /** Gives up the first `n` queued records: to the last-resort sink, their appends rejected. */
  const giveUp = (n: number, err: AuditError) => {
    const events = queued.splice(0, n);
    const rejects = queuedRejects.splice(0, strict ? n : 0);
    if (strict) queuedResolves.splice(0, n);
    pending -= events.length;
    for (let i = 0; i < events.length; i++) lost(events[i], err);
    for (const reject of rejects) reject(err);
  };

  const lost = (event: AuditEvent, err: AuditError) => {
    if (onLost === undefined) return;
    try {
      onLost(event, err);
    } catch {
      // The sink of last resort failed too; nothing further can be done for this record.
    }
  };

  const commitFailed = (
    err: AuditError,
    events: AuditEvent[],
    resolves: typeof queuedResolves,
    rejects: typeof queuedRejects,
  ) => {
    // Nothing of the group was stored: put it back at the head of the queue, in order.
    queued = events.concat(queued);
    if (strict) {
      queuedResolves = resolves.concat(queuedResolves);
      queuedRejects = rejects.concat(queuedRejects);
    }
    const now = clock();
    if (retryError === undefined) {
      retryDelay = FIRST_RETRY_MS;
      marks = [{ at: now, count: queued.length }];
      if (isBusy(err)) {
        graceTimer = setTimeout(() => {
          graceTimer = undefined;
          if (retryError !== undefined) degraded = true;
        }, BUSY_GRACE_MS);
        graceTimer.unref();
      } else {
        degraded = true;
      }
      retryError = err;
      onStateChange?.("retrying", err);
    } else {
      retryError = err;
      if (!isBusy(err)) degraded = true;
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
      marks.push({ at: now, count: queued.length });
      // The records that have waited storeTimeout while every commit failed are given up.
      let expired = -1;
      for (let i = 0; i < marks.length && marks[i].at <= now - storeTimeout; i++) expired = i;
      if (expired >= 0) {
        const n = marks[expired].count;
        marks = marks.slice(expired + 1);
        for (const m of marks) m.count = Math.max(0, m.count - n);
        giveUp(
          n,
          new AuditError(
            "ERR_AUDIT_WRITE",
            `the audit record could not be stored within ${storeTimeout} ms: ${err.message}`,
            { cause: err.cause },
          ),
        );
      }
    }
    schedule();
    wakeIfIdle();
  };

  const recovered = () => {
    retryError = undefined;
    degraded = false;
    marks = [];
    if (graceTimer !== undefined) {
      clearTimeout(graceTimer);
      graceTimer = undefined;
    }
    onStateChange?.("recovered");
  };

  // Group commit on fsync boundaries: a record appended while an fsync runs would wait for the
  // next fsync anyway, so it waits uncommitted and joins one larger transaction when the fsync
  // ends — fewer, bigger commits for the same latency. Appends of one event-loop turn share a
  // group too (the commit runs after the turn, from setImmediate).
  const commitGroup = () => {
    if (syncing !== undefined || queued.length === 0) return;
    const events = queued;
    const resolves = queuedResolves;
    const rejects = queuedRejects;
    queued = [];
    if (strict) {
      queuedResolves = [];
      queuedRejects = [];
    }
    const started = performance.now();
    const n = events.length;
    const index = indexWanted || unindexed + n >= INDEX_BATCH;
    // The thread is started the first time a group needs it; until it is ready, here.
    const chain = n < inlineBelow && !index ? undefined : readyThread();
    if (chain === undefined) {
      // A small group: written here, synchronously; its fsync on libuv's thread pool.
      const out: Outcome[] = new Array(n);
      try {
        inline.write(events, out, index);
      } catch (err) {
        commitFailed(err as AuditError, events, resolves, rejects);
        return;
      }
      const sync = written(events, resolves, rejects, out, started, () =>
        (opts.datasync ?? defaultDatasync)(wal),
      );
      if (index) {
        unindexed = 0;
        indexWanted = false;
      }
      if (sync !== undefined) syncing = sync;
      return;
    }
    // A large group, or the index is due: in the writer thread (which also fsyncs, unless a test
    // replaces the fsync). `syncing` holds until the group is durable, so the appends of that
    // time form the next group.
    syncing = chain.write(events, index).then(
      (w) => {
        const sync = written(events, resolves, rejects, w.out, started, () =>
          opts.datasync !== undefined
            ? opts.datasync(wal)
            : w.syncError === undefined
              ? Promise.resolve()
              : Promise.reject(w.syncError),
        );
        if (index) {
          // The copy in the same transaction covered every record up to this group's last.
          unindexed = 0;
          indexWanted = false;
        }
        return sync;
      },
      (err: AuditError) => {
        syncing = undefined;
        if (fatal) {
          // The writer thread stopped: whether this group was stored is unknown; the sink has it.
          pending -= events.length;
          for (let i = 0; i < events.length; i++) {
            lost(events[i], refusal ?? err);
            if (strict) rejects[i](refusal ?? err);
          }
          wakeIfIdle();
          return;
        }
        commitFailed(err, events, resolves, rejects);
      },
    );
  };

  /**
   * After a group's COMMIT: settles its malformed events, then, once `durable` (the fsync of the
   * WAL) resolves, the others. Returns that wait, or undefined when nothing was stored.
   */
  const written = (
    events: AuditEvent[],
    resolves: typeof queuedResolves,
    rejects: typeof queuedRejects,
    out: Outcome[],
    started: number,
    durable: () => Promise<void>,
  ): Promise<void> | undefined => {
    if (retryError !== undefined) recovered();
    const n = events.length;
    let committed = 0;
    for (let i = 0; i < n; i++) {
      const o = out[i];
      if (typeof o === "number") committed++;
      else {
        // Malformed: never storable. The sink keeps what the event holds.
        pending--;
        lost(events[i], o);
        if (strict) rejects[i](o);
      }
    }
    unindexed += committed;
    if (committed === 0) {
      syncing = undefined;
      schedule();
      wakeIfIdle();
      return undefined;
    }
    // One fdatasync of the WAL, started after the COMMIT returned, makes the whole group durable
    // (as SQLite's own synchronous=FULL does for the WAL: data and the size needed to read it).
    return durable().then(
      () => {
        syncing = undefined;
        pending -= committed;
        if (strict) {
          for (let i = 0; i < n; i++) {
            const o = out[i];
            if (typeof o === "number") resolves[i](o);
          }
        }
        if (onCommit !== undefined) onCommit(committed, (performance.now() - started) / 1000);
        schedule();
        wakeIfIdle();
      },
      (err: unknown) => {
        syncing = undefined;
        const error = new AuditError(
          "ERR_AUDIT_WRITE",
          `the audit trail could not be flushed to disk (${(err as Error).message}); the gateway refuses ` +
            "to record more until it is restarted: check the disk that holds the audit database",
          { cause: err },
        );
        refusal = error;
        fatal = true;
        // The records it covered are committed but maybe not on disk: they go to the sink too.
        pending -= committed;
        for (let i = 0; i < n; i++) {
          if (typeof out[i] === "number") {
            lost(events[i], error);
            if (strict) rejects[i](error);
          }
        }
        // The file's state is unknown now: give up what waits too.
        giveUp(queued.length, error);
        onStateChange?.("failed", error);
        wakeIfIdle();
      },
    );
  };

  // The writer thread stopped (it crashed): like a failed fsync, nothing more can be stored.
  onDeath = (err) => {
    const error = new AuditError(
      "ERR_AUDIT_WRITE",
      `${err.message}; the gateway refuses to record more until it is restarted`,
      { cause: err },
    );
    refusal = error;
    fatal = true;
    giveUp(queued.length, error);
    onStateChange?.("failed", error);
    wakeIfIdle();
  };

  const flush = (): Promise<void> => {
    if (queued.length === 0 && syncing === undefined) return Promise.resolve();
    if (timer !== undefined && retryError === undefined) {
      // Buffered: do not wait for the window.
      clearTimeout(timer);
      timer = undefined;
      immediate = true;
      setImmediate(runImmediate);
    }
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  };

  return {
    append(event) {
      if (refusal !== undefined || pending >= hardLimit) {
        const err =
          refusal ??
          new AuditError(
            "ERR_AUDIT_WRITE",
            `the audit trail cannot keep up: ${pending} records are waiting to be stored`,
          );
        lost(event, err);
        return Promise.reject(err);
      }
      pending++;
      if (strict) {
        return new Promise<number>((resolve, reject) => {
          queued.push(event);
          queuedResolves.push(resolve);
          queuedRejects.push(reject);
          schedule();
        });
      }
      if (queued.length === 0) oldestAt = clock();
      queued.push(event);
      if (queued.length === BUFFERED_GROUP && timer !== undefined && retryError === undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      schedule();
      return RESOLVED_QUEUED;
    },
    accepting: () => !degraded && refusal === undefined && pending <= maxQueue,
    state: () =>
      fatal
        ? "failed"
        : refusal !== undefined
          ? "closed"
          : retryError !== undefined
            ? "retrying"
            : pending > maxQueue
              ? "overloaded"
              : "ok",
    pending: () => pending,
    flush,
    async close() {
      refusal ??= new AuditError(
        "ERR_AUDIT_CLOSED",
        "the audit writer is closed; the record was not written",
      );
      // Store what waits (retrying failed commits for up to storeTimeout), then close.
      await flush();
      clearInterval(indexTimer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      if (!fatal) {
        try {
          inline.indexPending(true);
        } catch {
          // Derived data: the next start catches up.
        }
      }
      if (conn.open) conn.close();
      if (thread !== undefined) await thread.close(false);
      await wal.sync().catch(() => {});
      await wal.close().catch(() => {});
    },
  };
}

const defaultDatasync = (wal: FileHandle): Promise<void> => wal.datasync();

/** SQLITE_BUSY: another connection holds the write lock (usually for milliseconds). */
function isBusy(err: AuditError): boolean {
  return (err.cause as { code?: string } | undefined)?.code === "SQLITE_BUSY";
}
