import type { Statement } from "better-sqlite3";
import { migrate } from "../store/migrate.js";
import type { Database } from "../store/sqlite.js";
import { canonicalRecord, hashCanonical } from "./chain.js";
import { AuditError } from "./errors.js";
import {
  auditColumns,
  auditMigrations,
  INDEX_BATCH,
  INDEX_TAIL_SQL,
  registerScopeFunction,
} from "./schema.js";
import type { AuditEvent } from "./types.js";

/** The last committed record of the chain; `{ seq: 0, hash: "" }` for an empty trail. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** Counters of a writer since it was created (for `/metrics` and `/healthz`). */
export interface AuditWriterStats {
  /** Records committed. */
  committed: number;
  /** Appends rejected (a failed commit, a malformed event, a closed writer). */
  rejected: number;
  /** Transactions committed (each holds one group). */
  commits: number;
  /** Largest group committed in one transaction. */
  maxGroup: number;
  /** Clock time of the last successful commit, or undefined before the first. */
  lastCommitAt?: number;
}

/** Appends audit records to a hash chain with group commit. Create with {@link createAuditWriter}. */
export interface AuditWriter {
  /**
   * Queues an event; resolves with its seq once the record is committed (on disk, with
   * `synchronous = FULL`). Rejects with `ERR_AUDIT_WRITE` when the commit fails, `ERR_AUDIT_EVENT`
   * when the event is malformed, `ERR_AUDIT_CLOSED` after {@link AuditWriter.close}.
   * The event is read when its group is written, later in the same event-loop turn: do not
   * change it after appending.
   */
  append(event: AuditEvent): Promise<number>;
  /** Commits what is queued now; rejects with `ERR_AUDIT_WRITE` if that commit fails. */
  flush(): Promise<void>;
  /** Commits what is queued and refuses further appends. Does not close the database. */
  close(): Promise<void>;
  /** The last committed record as this writer knows it. */
  head(): ChainHead;
  stats(): AuditWriterStats;
}

/** Options of {@link createAuditWriter}. */
export interface AuditWriterOptions {
  /** Milliseconds since the epoch; default `Date.now`. Stamps `stats().lastCommitAt`. */
  clock?: () => number;
}

/** What became of one event of a group: its seq, or why it was refused. */
export type Outcome = number | AuditError;

/**
 * Creates the writer of the audit trail in `db` (migrating its schema first).
 *
 * Group commit: appends made in one event-loop turn are written in one `BEGIN IMMEDIATE`
 * transaction after that turn (`setImmediate`), so one fsync covers them all. better-sqlite3
 * commits synchronously, so the appends that arrive while a commit holds the thread form the
 * next group; the group size grows with the load. Inside each transaction (under the write lock)
 * the writer checks `PRAGMA data_version` and re-reads the chain head from the table when another
 * connection committed since its last transaction, so the chain stays correct across restarts and
 * even if another process appends to the same file (one writer process per file is the supported
 * setup).
 *
 * The writer never logs. If a commit fails, every append of that group rejects with
 * `ERR_AUDIT_WRITE` and nothing of the group is stored.
 *
 * @example
 * ```ts
 * const db = openDatabase(path.join(stateDir, "audit.db"));
 * const audit = createAuditWriter(db, { clock: () => Date.now() });
 * const seq = await audit.append(event); // committed
 * await audit.close();
 * db.close();
 * ```
 */
export function createAuditWriter(db: Database, opts: AuditWriterOptions = {}): AuditWriter {
  return new SqliteAuditWriter(db, opts.clock ?? Date.now);
}

interface HeadRow {
  seq: number;
  hash: string;
}

/**
 * Writes groups of events to the chain, one `BEGIN IMMEDIATE` transaction per group, synchronously.
 * The core of both writers ({@link createAuditWriter} and the data plane's durable writer); not
 * part of the module's API.
 *
 * The head is the table's last row, read under the write lock. To spare that query on every
 * commit it is cached, and re-read only when `PRAGMA data_version` (read inside the transaction,
 * so under the lock) shows that another connection committed since this one's last transaction,
 * or when a transaction of this one failed.
 */
export class ChainAppender {
  readonly #db: Database;
  readonly #begin: Statement;
  readonly #commit: Statement;
  readonly #rollback: Statement;
  readonly #dataVersion: Statement<[], number>;
  readonly #selectHead: Statement<[], HeadRow>;
  readonly #insert: Statement;
  readonly #indexTail: Statement;
  /** Records this connection committed that `audit_index` does not hold yet (an estimate). */
  #unindexed = 0;
  /** The head as of this connection's last transaction, valid while data_version is `#seenVersion`. */
  #head: ChainHead;
  #seenVersion: number | undefined;

  /** @throws {AuditError} `ERR_AUDIT_WRITE` when the schema cannot be migrated or read. */
  constructor(db: Database) {
    try {
      migrate(db, auditMigrations);
    } catch (err) {
      throw new AuditError(
        "ERR_AUDIT_WRITE",
        `cannot prepare the audit table in "${db.name}": ${message(err)}`,
        { cause: err },
      );
    }
    this.#db = db;
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    this.#rollback = db.prepare("ROLLBACK");
    this.#dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.#selectHead = db.prepare<[], HeadRow>(
      "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
    );
    this.#insert = db.prepare(
      "INSERT INTO audit_events (seq, time, type, subject, credential, actions, resource, decision, status, data, prev_hash, hash) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    registerScopeFunction(db);
    this.#indexTail = db.prepare(INDEX_TAIL_SQL);
    this.#head = readHead(this.#selectHead.get());
    this.#unindexed = INDEX_BATCH; // unknown: let the first commit (or indexPending) catch up
  }

  /**
   * Copies the records not indexed yet to `audit_index`, in a transaction of its own. The
   * durable writer calls it on close; searches scan the unindexed tail meanwhile. `force`: copy
   * even if this connection wrote nothing since its last copy (another connection may have).
   *
   * @throws {AuditError} `ERR_AUDIT_WRITE` when the copy fails (nothing of the chain is affected).
   */
  indexPending(force = false): void {
    if (this.#unindexed === 0 && !force) return;
    try {
      this.#indexTail.run();
      this.#unindexed = 0;
    } catch (err) {
      throw new AuditError("ERR_AUDIT_WRITE", `the audit index could not be updated: ${message(err)}`, {
        cause: err,
      });
    }
  }

  /** The last committed record as this connection knows it. */
  head(): ChainHead {
    return this.#head;
  }

  /**
   * Writes `events` in one transaction. Sets `out[i]` to the seq of `events[i]`, or to an
   * `ERR_AUDIT_EVENT` error for a malformed event (written without it, using no seq).
   * `index`: whether the transaction also copies the unindexed records to `audit_index`; by
   * default once this connection has written {@link INDEX_BATCH} records since its last copy.
   *
   * @throws {AuditError} `ERR_AUDIT_WRITE` when the transaction fails; then nothing is stored.
   */
  write(events: readonly AuditEvent[], out: Outcome[], index?: boolean): ChainHead {
    const insert = this.#insert;
    let version: number;
    let seq: number;
    let prev: string;
    try {
      this.#begin.run();
      try {
        version = this.#dataVersion.get() as number;
        // Another connection committed (or our last transaction failed): the table is the truth.
        if (version !== this.#seenVersion) this.#head = readHead(this.#selectHead.get());
        seq = this.#head.seq;
        prev = this.#head.hash;
        for (let i = 0; i < events.length; i++) {
          const event = events[i];
          let data: string;
          let c: ReturnType<typeof auditColumns>;
          try {
            c = auditColumns(event);
            data = canonicalRecord(seq + 1, event);
          } catch (err) {
            out[i] = err instanceof AuditError ? err : new AuditError("ERR_AUDIT_EVENT", message(err));
            continue;
          }
          const hash = hashCanonical(prev, data);
          seq += 1;
          insert.run(
            seq,
            c.time,
            c.type,
            c.subject,
            c.credential,
            c.actions,
            c.resource,
            c.decision,
            c.status,
            data,
            prev,
            hash,
          );
          prev = hash;
          out[i] = seq;
        }
        // Index in batches: hundreds of records share one write of each index's pages.
        const unindexed = this.#unindexed + (seq - this.#head.seq);
        const copy = index ?? unindexed >= INDEX_BATCH;
        if (copy) this.#indexTail.run();
        this.#commit.run();
        this.#unindexed = copy ? 0 : unindexed;
      } catch (err) {
        if (this.#db.inTransaction) this.#rollback.run();
        throw err;
      }
    } catch (err) {
      this.#seenVersion = undefined;
      throw new AuditError(
        "ERR_AUDIT_WRITE",
        `the audit trail could not commit ${events.length} record(s): ${message(err)}. ` +
          "Check the disk and the audit database file.",
        { cause: err },
      );
    }
    this.#seenVersion = version;
    this.#head = { seq, hash: prev };
    return this.#head;
  }
}

class SqliteAuditWriter implements AuditWriter {
  readonly #clock: () => number;
  readonly #chain: ChainAppender;
  #events: AuditEvent[] = [];
  #resolves: ((seq: number) => void)[] = [];
  #rejects: ((err: AuditError) => void)[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  readonly #stats: AuditWriterStats = { committed: 0, rejected: 0, commits: 0, maxGroup: 0 };
  readonly #onImmediate = (): void => {
    this.#scheduled = undefined;
    this.#commit();
  };

  constructor(db: Database, clock: () => number) {
    this.#clock = clock;
    this.#chain = new ChainAppender(db);
  }

  append(event: AuditEvent): Promise<number> {
    if (this.#closed) {
      this.#stats.rejected += 1;
      return Promise.reject(
        new AuditError("ERR_AUDIT_CLOSED", "the audit writer is closed; the record was not written."),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.#events.push(event);
      this.#resolves.push(resolve);
      this.#rejects.push(reject);
      if (this.#scheduled === undefined) this.#scheduled = setImmediate(this.#onImmediate);
    });
  }

  flush(): Promise<void> {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    const failure = this.#commit();
    return failure === undefined ? Promise.resolve() : Promise.reject(failure);
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.flush().then(() => this.#chain.indexPending());
  }

  head(): ChainHead {
    return { ...this.#chain.head() };
  }

  stats(): AuditWriterStats {
    return { ...this.#stats };
  }

  /** Writes the queued group; settles its promises. Returns the commit error, if any. */
  #commit(): AuditError | undefined {
    const events = this.#events;
    if (events.length === 0) return undefined;
    const resolves = this.#resolves;
    const rejects = this.#rejects;
    this.#events = [];
    this.#resolves = [];
    this.#rejects = [];

    const out: Outcome[] = new Array(events.length);
    let failure: AuditError | undefined;
    try {
      this.#chain.write(events, out);
    } catch (err) {
      failure = err as AuditError;
    }
    const stats = this.#stats;
    if (failure === undefined) {
      let committed = 0;
      for (let i = 0; i < events.length; i++) {
        const o = out[i];
        if (typeof o === "number") {
          committed += 1;
          resolves[i](o);
        } else {
          stats.rejected += 1;
          rejects[i](o);
        }
      }
      stats.committed += committed;
      stats.commits += 1;
      if (committed > stats.maxGroup) stats.maxGroup = committed;
      stats.lastCommitAt = this.#clock();
    } else {
      stats.rejected += events.length;
      for (let i = 0; i < events.length; i++) rejects[i](failure);
    }
    return failure;
  }
}

function readHead(row: HeadRow | undefined): ChainHead {
  return row === undefined ? { seq: 0, hash: "" } : { seq: row.seq, hash: row.hash };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
