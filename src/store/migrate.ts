import { StoreError } from "./errors.js";
import type { Database } from "./sqlite.js";

/** One schema step: `sql` takes the database from `version - 1` to `version`. */
export interface Migration {
  /** Positive integer; the value `PRAGMA user_version` holds once `sql` has run. */
  version: number;
  sql: string;
}

/**
 * Brings a database's schema up to the newest of `migrations`, tracking the version in
 * `PRAGMA user_version`. Pending steps run in one `BEGIN IMMEDIATE` transaction (all or nothing;
 * a second process migrating at the same time waits, then finds the work done). Returns the
 * schema version afterwards.
 *
 * `user_version` is one number per database file, so one file holds one migration list (the audit
 * trail has its own file).
 *
 * @throws {StoreError} `ERR_STORE_MIGRATE` when the list is malformed, when the database is newer
 *   than the list, or when a step fails (nothing is applied then).
 *
 * @example
 * ```ts
 * const version = migrate(db, [
 *   { version: 1, sql: "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)" },
 *   { version: 2, sql: "ALTER TABLE kv ADD COLUMN expires INTEGER" },
 * ]);
 * ```
 */
export function migrate(db: Database, migrations: readonly Migration[]): number {
  const steps = [...migrations].sort((a, b) => a.version - b.version);
  steps.forEach((m, i) => {
    if (!Number.isInteger(m.version) || m.version < 1 || (i > 0 && m.version === steps[i - 1].version)) {
      throw new StoreError(
        "ERR_STORE_MIGRATE",
        `migration versions must be distinct positive integers; got ${String(m.version)}`,
      );
    }
  });
  const latest = steps.length > 0 ? steps[steps.length - 1].version : 0;

  const current = userVersion(db);
  checkNotNewer(db, current, latest);
  if (current === latest) return current; // nothing to write: works on read-only connections too

  const run = db.transaction(() => {
    const now = userVersion(db); // re-read under the write lock: another process may have migrated
    checkNotNewer(db, now, latest);
    for (const m of steps) {
      if (m.version <= now) continue;
      try {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      } catch (err) {
        throw new StoreError(
          "ERR_STORE_MIGRATE",
          `migration to schema version ${m.version} of "${db.name}" failed: ${err instanceof Error ? err.message : String(err)}. ` +
            "Nothing was changed; check the disk and the file's permissions, or restore the file from a backup.",
          { cause: err },
        );
      }
    }
    return latest;
  });
  return run.immediate();
}

function userVersion(db: Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

function checkNotNewer(db: Database, current: number, latest: number): void {
  if (current > latest) {
    throw new StoreError(
      "ERR_STORE_MIGRATE",
      `the database "${db.name}" has schema version ${current}, newer than this cosmosgate knows (${latest}): ` +
        "upgrade cosmosgate, or use a different state directory.",
    );
  }
}
