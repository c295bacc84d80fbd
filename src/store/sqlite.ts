import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { StoreError } from "./errors.js";

/** An open SQLite connection (better-sqlite3). */
export type Database = BetterSqlite3.Database;

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** Open an existing file for reading only: no directory or file is created, no mode is changed. */
  readonly?: boolean;
  /** How long a statement waits for another connection's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * `FULL` (default): COMMIT returns after an fsync of the WAL. `NORMAL`: COMMIT returns after the
   * WAL write; the caller then makes the commit durable itself (the audit writer fsyncs the WAL
   * asynchronously, off the event loop, before it acknowledges a record).
   */
  synchronous?: "FULL" | "NORMAL";
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/**
 * Opens (creating if needed) a SQLite database file for cosmosgate state or audit.
 *
 * - creates the parent directory with mode 0700 when it is missing;
 * - creates the file with mode 0600 before SQLite opens it, so the `-wal` and `-shm` files SQLite
 *   makes beside it inherit 0600, and tightens all three to 0600 if they already exist;
 * - WAL journal, `synchronous = FULL` (a committed transaction is on disk before `COMMIT`
 *   returns), `busy_timeout`, `foreign_keys = ON`.
 *
 * `":memory:"` opens a private in-memory database (tests).
 *
 * @throws {StoreError} `ERR_STORE_OPEN`, naming the file and what to do (permissions, not a
 *   database, corrupt file).
 *
 * @example
 * ```ts
 * const db = openDatabase(path.join(config.stateDir, "audit.db"));
 * migrate(db, auditMigrations);
 * // ...
 * db.close();
 * ```
 */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Database {
  const readonly = opts.readonly === true;
  const inMemory = file === ":memory:" || file === "";
  if (!inMemory && !readonly) prepareFile(file);

  let db: Database | undefined;
  try {
    db = new BetterSqlite3(file, { readonly, fileMustExist: readonly });
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busyTimeoutMs ?? 5000))}`);
    if (readonly) {
      // Reading the schema now surfaces "not a database" here rather than at the first query.
      db.pragma("user_version");
    } else {
      db.pragma("journal_mode = WAL");
      db.pragma(opts.synchronous === "NORMAL" ? "synchronous = NORMAL" : "synchronous = FULL");
      db.pragma("foreign_keys = ON");
    }
  } catch (err) {
    db?.close();
    throw openError(file, err, readonly);
  }
  if (!inMemory && !readonly) {
    try {
      tightenModes(file);
    } catch (err) {
      db.close();
      throw openError(file, err, readonly);
    }
  }
  return db;
}

/** Creates the parent directory (0700) and the file itself (0600) when missing. */
function prepareFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw new StoreError(
      "ERR_STORE_OPEN",
      `cannot create the directory "${dir}" for the database "${file}": ${describe(err)}. ` +
        "Create it (mode 0700) or choose a state directory this user can write.",
      { cause: err },
    );
  }
  try {
    // O_CREAT without O_TRUNC: an existing file is left as it is.
    fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE));
  } catch (err) {
    throw openError(file, err, false);
  }
}

function tightenModes(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    let mode: number;
    try {
      mode = fs.statSync(f).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if (mode !== FILE_MODE) fs.chmodSync(f, FILE_MODE);
  }
}

function openError(file: string, err: unknown, readonly: boolean): StoreError {
  const code = (err as { code?: unknown } | null)?.code;
  let hint: string;
  switch (code) {
    case "EACCES":
    case "EPERM":
    case "SQLITE_CANTOPEN":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      hint = readonly
        ? "Check that the file exists and that this user may read it and its directory."
        : "Check that this user owns the file and may write to it and to its directory (SQLite creates -wal and -shm files beside it).";
      break;
    case "SQLITE_READONLY":
      hint =
        "The file or its directory is read-only for this user; make them writable or open the database read-only.";
      break;
    case "SQLITE_NOTADB":
    case "SQLITE_CORRUPT":
      hint =
        "It is not a SQLite database or it is corrupt: move it aside and restore it from a backup, or point the state directory elsewhere.";
      break;
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      hint = "Another process holds a lock on it; stop that process or try again.";
      break;
    case "ENOSPC":
    case "SQLITE_FULL":
      hint = "The disk is full; free some space.";
      break;
    default:
      hint = "Check the path, the permissions of the file and its directory, and the free disk space.";
  }
  return new StoreError("ERR_STORE_OPEN", `cannot open the database "${file}": ${describe(err)}. ${hint}`, {
    cause: err,
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
