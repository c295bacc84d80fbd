import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { AuditError, type AuditErrorCode } from "./errors.js";
import type { AuditEvent } from "./types.js";
import type { Outcome } from "./writer.js";

/** What the writer thread is started with. */
export interface ChainWorkerData {
  file: string;
  /** fdatasync the WAL in the thread after each group (its reply then says the group is durable). */
  sync: boolean;
}

/** Messages to the writer thread. Replies come in the order of the requests that have one. */
export type ChainRequest =
  | { op: "write"; events: readonly AuditEvent[]; index: boolean }
  | { op: "close"; index: boolean };

/** Messages from the writer thread. */
export type ChainReply =
  | { type: "ready" }
  | { type: "failed"; message: string; code?: string }
  | { type: "written"; out: (number | { code: AuditErrorCode; message: string })[]; syncError?: string }
  | { type: "write-failed"; message: string; causeCode?: string }
  | { type: "closed" };

/** What became of a group: each event's outcome; with `sync`, whether the fdatasync after it failed. */
export interface Written {
  out: Outcome[];
  /** The thread's fdatasync of the WAL failed after the commit (the group may not be on disk). */
  syncError?: Error;
}

/** The audit database's write connection, in a thread of its own. Start with {@link startChainThread}. */
export interface ChainThread {
  /**
   * Writes `events` as one transaction in the writer thread, copying the records not indexed yet
   * to `audit_index` in it when `index` (`events` may then be empty); resolves with each event's outcome
   * (its seq, or an `ERR_AUDIT_EVENT` error for a malformed event, written without it).
   * Rejects with `ERR_AUDIT_WRITE` when the transaction failed (nothing of the group is stored;
   * `cause.code` is SQLite's code, e.g. `SQLITE_BUSY`) or when the thread stopped.
   * One write at a time: the caller waits for each before the next.
   */
  write(events: readonly AuditEvent[], index: boolean): Promise<Written>;
  /** Indexes what is pending (when `index`), closes the connection and ends the thread. */
  close(index: boolean): Promise<void>;
}

/** Options of {@link startChainThread}. */
export interface ChainThreadOptions {
  /** fdatasync the WAL in the thread after each group that stored a record. Default false. */
  sync?: boolean;
  /**
   * Called once if the thread stops unexpectedly (a crash of the thread, not {@link ChainThread.close}),
   * before the pending write rejects.
   */
  onDeath?: (err: AuditError) => void;
  /** Receives the thread's Worker once started (tests: watch its replies, or stop it). */
  onThread?: (worker: Worker) => void;
}

type Waiter = {
  resolve: (value: Written) => void;
  reject: (err: AuditError) => void;
};

/**
 * Starts the audit chain's writer thread on `file` (a connection of its own, with the WAL
 * settings of the data plane's writer) and resolves once it is ready.
 *
 * Why a thread: turning an event into a chained record (canonical JSON, SHA-256) and the
 * INSERT/COMMIT cost ~15 µs per record and copying records to the search index as much again, all
 * synchronous in better-sqlite3. The durable writer hands the thread its large groups and the
 * index copies (see durableWriter.ts), so a burst or a copy of hundreds of records never holds the
 * event loop for milliseconds; the event loop only posts the group (one `postMessage`). From the
 * TypeScript sources (tsx, tests, the bench) the thread loads its entry through tsx; the compiled
 * package loads `chainWorker.js` directly.
 *
 * The thread keeps the process alive only while a request to it is outstanding.
 *
 * @throws {AuditError} `ERR_AUDIT_WRITE` when the database cannot be opened, naming the file.
 *
 * @example
 * ```ts
 * const thread = await startChainThread(join(stateDir, "audit.db"), { sync: true, onDeath: (err) => refuseAll(err) });
 * const { out, syncError } = await thread.write(events, false); // committed, and fsync'd (sync)
 * await thread.close(false);
 * ```
 */
export function startChainThread(file: string, opts: ChainThreadOptions = {}): Promise<ChainThread> {
  const worker = spawnWorker({ file, sync: opts.sync === true });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  opts.onThread?.(worker);
  const waiters: Waiter[] = [];
  let closeWaiter: (() => void) | undefined;
  let dead: AuditError | undefined;
  let closed = false;
  let onDeath = opts.onDeath;

  const hold = () => {
    if (waiters.length === 1 || closeWaiter !== undefined) worker.ref();
  };
  const release = () => {
    if (waiters.length === 0 && closeWaiter === undefined) worker.unref();
  };

  return new Promise<ChainThread>((resolveStart, rejectStart) => {
    let started = false;
    const die = (err: AuditError) => {
      if (dead !== undefined) return;
      dead = err;
      if (!started) {
        rejectStart(err);
        return;
      }
      const notify = onDeath;
      onDeath = undefined;
      notify?.(err);
      for (const w of waiters.splice(0)) w.reject(err);
      closeWaiter?.();
      closeWaiter = undefined;
    };

    worker.on("message", (m: ChainReply) => {
      switch (m.type) {
        case "ready":
          started = true;
          worker.unref();
          resolveStart(thread);
          return;
        case "failed":
          closed = true;
          rejectStart(new AuditError("ERR_AUDIT_WRITE", m.message));
          return;
        case "written": {
          const w = waiters.shift();
          release();
          w?.resolve({
            out: m.out.map((o) => (typeof o === "number" ? o : new AuditError(o.code, o.message))),
            syncError: m.syncError === undefined ? undefined : new Error(m.syncError),
          });
          return;
        }
        case "write-failed": {
          const w = waiters.shift();
          release();
          w?.reject(
            new AuditError("ERR_AUDIT_WRITE", m.message, {
              cause: Object.assign(new Error(m.causeCode ?? m.message), { code: m.causeCode }),
            }),
          );
          return;
        }
        case "closed":
          closed = true;
          closeWaiter?.();
          closeWaiter = undefined;
          return;
      }
    });
    worker.on("error", (err) =>
      die(
        new AuditError(
          "ERR_AUDIT_WRITE",
          started
            ? `the audit writer thread failed: ${err.message}`
            : `cannot open the audit trail "${file}": ${err.message}`,
          { cause: err },
        ),
      ),
    );
    worker.on("exit", (code) => {
      if (closed) return;
      die(new AuditError("ERR_AUDIT_WRITE", `the audit writer thread exited (code ${code})`));
    });

    const thread: ChainThread = {
      write(events, index) {
        if (dead !== undefined) return Promise.reject(dead);
        try {
          worker.postMessage({ op: "write", events, index } satisfies ChainRequest);
        } catch (err) {
          return writeCloneable(thread, events, index, err as Error);
        }
        return new Promise<Written>((resolve, reject) => {
          waiters.push({ resolve: resolve as Waiter["resolve"], reject });
          hold();
        });
      },
      close(index) {
        if (dead !== undefined || closed) return worker.terminate().then(() => exited);
        return new Promise<void>((resolve) => {
          closeWaiter = resolve;
          hold();
          worker.postMessage({ op: "close", index } satisfies ChainRequest);
        }).then(() => exited);
      },
    };
  });
}

/**
 * A group that `postMessage` cannot copy (an event holding a function, say): the events that can
 * be copied are written, the others are malformed (`ERR_AUDIT_EVENT`), as they would be if the
 * writer met them.
 */
async function writeCloneable(
  thread: ChainThread,
  events: readonly AuditEvent[],
  index: boolean,
  err: Error,
): Promise<Written> {
  const out: Outcome[] = new Array(events.length);
  const ok: AuditEvent[] = [];
  const at: number[] = [];
  for (let i = 0; i < events.length; i++) {
    try {
      structuredClone(events[i]);
      ok.push(events[i]);
      at.push(i);
    } catch (e) {
      out[i] = new AuditError("ERR_AUDIT_EVENT", `the audit event cannot be stored: ${(e as Error).message}`);
    }
  }
  // Nothing to blame on one event: the group itself could not be handed over.
  if (ok.length === events.length) throw new AuditError("ERR_AUDIT_WRITE", err.message, { cause: err });
  if (ok.length === 0 && !index) return { out };
  const written = await thread.write(ok, index);
  for (let j = 0; j < at.length; j++) out[at[j]] = written.out[j];
  return { out, syncError: written.syncError };
}

/**
 * The writer thread. From compiled JavaScript, `chainWorker.js` beside this file. From the
 * TypeScript sources, a bootstrap that registers tsx in the thread first (module hooks registered
 * in the main thread do not reach a worker on Node 20).
 */
function spawnWorker(workerData: ChainWorkerData): Worker {
  const here = fileURLToPath(import.meta.url);
  const entry = new URL(`./chainWorker${extname(here)}`, import.meta.url);
  if (extname(here) !== ".ts") return new Worker(entry, { workerData });
  // The ESM entry (tsx's CommonJS register cannot load its hooks from an eval'd thread).
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
