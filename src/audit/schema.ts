import type { Migration } from "../store/index.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";

/**
 * Schema of the audit database (its own file: `PRAGMA user_version` counts these steps only).
 * `data` is the canonical JSON of the event with its seq, the text the hash covers; the other
 * columns copy fields of it for indexed queries, and `verifyChain` checks they agree.
 *
 * Secondary indexes do not sit on `audit_events`: each would cost a WAL page on every commit of
 * the data plane's hot path. Since version 2 they are on `audit_index`, a copy of the searchable
 * columns that the writer fills in batches ({@link INDEX_BATCH} records, or on a timer), so one
 * batch's index pages are written once for hundreds of records. A search reads `audit_index` for
 * `seq <= (SELECT max(seq) FROM audit_index)` and scans the few newer rows of `audit_events`
 * directly. The decision index is partial: it holds the `deny` and `error` records only; a query
 * uses it only when its WHERE clause says so too: `WHERE decision <> 'allow' AND decision = ?`.
 *
 * @example
 * ```ts
 * migrate(db, auditMigrations);
 * ```
 */
export const auditMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    sql: `
      CREATE TABLE audit_events (
        seq        INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        type       TEXT    NOT NULL,
        subject    TEXT    NOT NULL,
        credential TEXT,
        actions    TEXT    NOT NULL,
        resource   TEXT    NOT NULL,
        decision   TEXT    NOT NULL,
        status     INTEGER NOT NULL,
        data       TEXT    NOT NULL,
        prev_hash  TEXT    NOT NULL,
        hash       TEXT    NOT NULL
      );
      CREATE INDEX audit_events_time ON audit_events (time);
      CREATE INDEX audit_events_subject_time ON audit_events (subject, time);
      CREATE INDEX audit_events_credential_time ON audit_events (credential, time);
      CREATE INDEX audit_events_decision_time ON audit_events (decision, time) WHERE decision <> 'allow';
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE audit_index (
        seq        INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        subject    TEXT    NOT NULL,
        credential TEXT,
        decision   TEXT    NOT NULL
      );
      INSERT INTO audit_index (seq, time, subject, credential, decision)
        SELECT seq, time, subject, credential, decision FROM audit_events;
      DROP INDEX audit_events_time;
      DROP INDEX audit_events_subject_time;
      DROP INDEX audit_events_credential_time;
      DROP INDEX audit_events_decision_time;
      CREATE INDEX audit_index_time ON audit_index (time);
      CREATE INDEX audit_index_subject_time ON audit_index (subject, time);
      CREATE INDEX audit_index_credential_time ON audit_index (credential, time);
      CREATE INDEX audit_index_decision_time ON audit_index (decision, time) WHERE decision <> 'allow';
    `,
  },
]);

/** Records written to `audit_events` before the writer copies them to `audit_index` in one go. */
export const INDEX_BATCH = 256;

/**
 * Copies the records not yet indexed from `audit_events` to `audit_index` (one statement; the
 * caller decides the transaction). Idempotent: it starts after the highest indexed seq.
 */
export const INDEX_TAIL_SQL =
  "INSERT INTO audit_index (seq, time, subject, credential, decision) " +
  "SELECT seq, time, subject, credential, decision FROM audit_events " +
  "WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_index) ORDER BY seq";

/** The indexed columns of a record, in table order (`actions` is a JSON array text). */
export interface AuditColumns {
  time: number;
  type: string;
  subject: string;
  credential: string | null;
  actions: string;
  resource: string;
  decision: string;
  status: number;
}

/**
 * Names of {@link AuditColumns}, in table order.
 *
 * @example
 * ```ts
 * const cols = auditColumns(event);
 * for (const name of AUDIT_COLUMNS) console.log(name, cols[name]);
 * ```
 */
export const AUDIT_COLUMNS = [
  "time",
  "type",
  "subject",
  "credential",
  "actions",
  "resource",
  "decision",
  "status",
] as const satisfies readonly (keyof AuditColumns)[];

const DECISIONS: ReadonlySet<string> = new Set(["allow", "deny", "error"]);

/**
 * Checks the required fields of an event and returns its indexed column values.
 *
 * @throws {AuditError} `ERR_AUDIT_EVENT` naming the first bad field.
 *
 * @example
 * ```ts
 * const cols = auditColumns(event); // { time: 1700000000000, type: "data.request", ... }
 * ```
 */
export function auditColumns(event: AuditEvent): AuditColumns {
  if (typeof event !== "object" || event === null) throw badField("the event", "an object");
  const { time, type, subject, credential, actions, resource, decision, status } = event;
  if (typeof time !== "number" || !Number.isFinite(time)) throw badField("time", "a finite number");
  if (typeof type !== "string") throw badField("type", "a string");
  if (typeof subject !== "string") throw badField("subject", "a string");
  if (credential !== undefined && typeof credential !== "string")
    throw badField("credential", "a string or absent");
  if (!Array.isArray(actions) || !actions.every((a) => typeof a === "string"))
    throw badField("actions", "an array of strings");
  if (typeof resource !== "string") throw badField("resource", "a string");
  if (!DECISIONS.has(decision)) throw badField("decision", '"allow", "deny" or "error"');
  if (!Number.isInteger(status)) throw badField("status", "an integer");
  return {
    time,
    type,
    subject,
    credential: credential ?? null,
    actions: JSON.stringify(actions),
    resource,
    decision,
    status,
  };
}

function badField(field: string, expected: string): AuditError {
  return new AuditError("ERR_AUDIT_EVENT", `audit event field ${field} must be ${expected}.`);
}
