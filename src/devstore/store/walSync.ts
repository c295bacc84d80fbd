import fs from "node:fs";

/**
 * Group commit for a SQLite database in WAL mode with `synchronous = NORMAL`: COMMIT writes the
 * WAL frames without syncing them, and {@link WalSync.flush} makes every commit made so far durable
 * with one `fdatasync` of the WAL, run off the event loop. Concurrent requests that commit while a
 * sync is running share the next one, so a busy store syncs once per batch of writes instead of
 * once per write, and never blocks the event loop on the disk. A write is acknowledged only after
 * its flush resolves (the same scheme as the audit writer).
 */
export class WalSync {
  private readonly walFile: string;
  private fd: number | undefined;
  private requested = 0;
  private syncing = false;
  private closed = false;
  private waiters: { seq: number; resolve: () => void; reject: (err: Error) => void }[] = [];

  /** @param dbFile the database file; its WAL is `${dbFile}-wal` */
  constructor(dbFile: string) {
    this.walFile = `${dbFile}-wal`;
  }

  /** Resolves once every transaction committed before the call is on disk. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const seq = ++this.requested;
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.syncing || this.waiters.length === 0) return;
    if (this.fd === undefined) {
      try {
        this.fd = fs.openSync(this.walFile, "r+");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          // No WAL yet: nothing was written through it, so nothing to sync.
          this.settle(this.requested);
          return;
        }
        this.fail(err as Error);
        return;
      }
    }
    this.syncing = true;
    const target = this.requested; // commits made before this point are in the WAL file
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      if (err) this.fail(err);
      else this.settle(target);
      this.kick();
    });
  }

  private settle(upTo: number): void {
    const rest: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.seq <= upTo) w.resolve();
      else rest.push(w);
    }
    this.waiters = rest;
  }

  private fail(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  /**
   * Releases the file. Call when no flush is pending (the server has finished its requests); the
   * database's own close checkpoints and syncs everything.
   */
  close(): void {
    this.closed = true;
    this.fail(new Error("the store is closing"));
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
