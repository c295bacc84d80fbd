import type { Migration } from "../store/migrate.js";
import type { Database } from "../store/sqlite.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";

/**
 * The SELECT that copies records of `audit_events` (those `where` picks) into `audit_index`, in
 * seq order, computing each one's scope: its resource cut before the fifth `/`, i.e. down to the
 * container (`/dbs/shop/colls/orders` for `/dbs/shop/colls/orders/docs/a1`), or the whole
 * resource when it is shorter (`/dbs/shop`, `/users/ada`). SQLite has no split function: p1..p4
 * are the positions of the first four slashes (a missing one repeats the previous position) and
 * p5 the fifth's position after the fourth (0 when there is none). {@link scopeOf} is the same
 * rule in TypeScript.
 */
export function indexCopySelect(where: string): string {
  return (
    "SELECT seq, time, type, subject, credential, resource, " +
    "CASE WHEN p5 > 0 THEN substr(resource, 1, p4 + p5 - 1) ELSE resource END, decision FROM (" +
    "SELECT *, instr(substr(resource, p4 + 1), '/') AS p5 FROM (" +
    "SELECT *, p3 + instr(substr(resource, p3 + 1), '/') AS p4 FROM (" +
    "SELECT *, p2 + instr(substr(resource, p2 + 1), '/') AS p3 FROM (" +
    "SELECT *, p1 + instr(substr(resource, p1 + 1), '/') AS p2 FROM (" +
    `SELECT seq, time, type, subject, credential, resource, decision, instr(resource, '/') AS p1 FROM audit_events ${where}` +
    "))))) ORDER BY seq"
  );
}

/**
 * The scope of a resource as `audit_index` stores it: cut before its fifth `/` (see
 * `indexCopySelect`).
 *
 * @example
 * ```ts
 * scopeOf("/dbs/shop/colls/orders/docs/a1"); // "/dbs/shop/colls/orders"
 * scopeOf("/users/ada"); // "/users/ada"
 * ```
 */
export function scopeOf(resource: string): string {
  let at = -1;
  for (let n = 0; n < 5; n++) {
    at = resource.indexOf("/", at + 1);
    if (at < 0) return resource;
  }
  return resource.slice(0, at);
}

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
  {
    // Version 3 (search): audit_index is rebuilt with the event type, the resource and its scope
    // (see INDEX_COPY_SELECT), and each action of a record gets a row of audit_index_actions,
    // added by a trigger as INDEX_TAIL_SQL copies the record (so the copy stays one statement) and
    // removed by a trigger when the record leaves audit_index (retention). Every index but the
    // scope's grows at a few points per batch (at its end, or per subject / key / type / action);
    // a resource index would take a random insertion per record (document ids), the costliest
    // part of a batch, so resources are indexed by scope, with the resource itself inside the index.
    version: 3,
    sql: `
      CREATE TABLE audit_index_v3 (
        seq        INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        type       TEXT    NOT NULL DEFAULT '',
        subject    TEXT    NOT NULL,
        credential TEXT,
        resource   TEXT    NOT NULL DEFAULT '',
        scope      TEXT    NOT NULL DEFAULT '',
        decision   TEXT    NOT NULL
      );
      INSERT INTO audit_index_v3 (seq, time, type, subject, credential, resource, scope, decision)
        ${indexCopySelect("WHERE seq <= (SELECT coalesce(max(seq), 0) FROM audit_index)")};
      DROP TABLE audit_index;
      ALTER TABLE audit_index_v3 RENAME TO audit_index;
      CREATE INDEX audit_index_time ON audit_index (time);
      CREATE INDEX audit_index_subject_time ON audit_index (subject, time);
      CREATE INDEX audit_index_credential_time ON audit_index (credential, time);
      CREATE INDEX audit_index_decision_time ON audit_index (decision, time) WHERE decision <> 'allow';
      CREATE INDEX audit_index_type_time ON audit_index (type, time);
      CREATE INDEX audit_index_scope_time ON audit_index (scope, time, resource);
      CREATE TABLE audit_index_actions (
        seq    INTEGER NOT NULL,
        action TEXT    NOT NULL,
        time   INTEGER NOT NULL,
        PRIMARY KEY (seq, action)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO audit_index_actions (seq, action, time)
        SELECT i.seq, j.value, i.time
        FROM audit_index AS i JOIN audit_events AS e ON e.seq = i.seq, json_each(e.actions) AS j
        WHERE j.type = 'text';
      CREATE INDEX audit_index_actions_action_time ON audit_index_actions (action, time);
      CREATE TRIGGER audit_index_actions_add AFTER INSERT ON audit_index BEGIN
        INSERT OR IGNORE INTO audit_index_actions (seq, action, time)
          SELECT NEW.seq, j.value, NEW.time
          FROM audit_events AS e, json_each(e.actions) AS j
          WHERE e.seq = NEW.seq AND j.type = 'text';
      END;
      CREATE TRIGGER audit_index_actions_remove AFTER DELETE ON audit_index BEGIN
        DELETE FROM audit_index_actions WHERE seq = OLD.seq;
      END;
    `,
  },
  {
    // Version 4 (checkpoints, src/audit/checkpoints.ts): signed statements "record seq has hash",
    // written on a timer, never per request. The signer's public JWK stays in the row, so a
    // checkpoint verifies after its key has left the JWKS. Retention keeps the oldest kept one as
    // the anchor the trail starts from.
    version: 4,
    sql: `
      CREATE TABLE audit_checkpoints (
        seq      INTEGER PRIMARY KEY,
        hash     TEXT    NOT NULL,
        time     INTEGER NOT NULL,
        instance TEXT,
        kid      TEXT    NOT NULL,
        alg      TEXT    NOT NULL,
        jws      TEXT    NOT NULL,
        jwk      TEXT    NOT NULL
      );
    `,
  },
]);

/** Records written to `audit_events` before the writer copies them to `audit_index` in one go. */
export const INDEX_BATCH = 256;

/**
 * The SQL function INDEX_TAIL_SQL computes each record's scope with: {@link scopeOf}. Register
 * it with {@link registerScopeFunction} on the connection that prepares INDEX_TAIL_SQL.
 */
export const SCOPE_FUNCTION = "cosmosgate_scope";

/**
 * Registers {@link SCOPE_FUNCTION} on `db`. The same rule in SQL alone (`indexCopySelect`, which
 * migration 3 uses) cost more than half of a copy: SQLite flattens its nested subqueries and
 * evaluates each slash position again in every expression that uses it (callgrind: ~43,000
 * instructions a record, against ~2,000 for this call).
 */
export function registerScopeFunction(db: Database): void {
  db.function(SCOPE_FUNCTION, { deterministic: true, varargs: false }, (resource: unknown) =>
    typeof resource === "string" ? scopeOf(resource) : resource,
  );
}

/**
 * Copies the records not yet indexed from `audit_events` to `audit_index` (one statement; the
 * caller decides the transaction; the trigger of version 3 adds their actions to
 * `audit_index_actions` in the same statement). Idempotent: it starts after the highest indexed seq.
 * Needs {@link registerScopeFunction} on the connection.
 */
export const INDEX_TAIL_SQL =
  "INSERT INTO audit_index (seq, time, type, subject, credential, resource, scope, decision) " +
  `SELECT seq, time, type, subject, credential, resource, ${SCOPE_FUNCTION}(resource), decision FROM audit_events ` +
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
  // The optional fields of the documented schema (docs/audit.md): a few typeof checks, no allocation.
  for (const name of OPTIONAL_STRINGS) {
    const v = event[name];
    if (v !== undefined && typeof v !== "string") throw badField(name, "a string or absent");
  }
  if (event.deviceBound !== undefined && typeof event.deviceBound !== "boolean")
    throw badField("deviceBound", "true, false or absent");
  if (event.details !== undefined) checkDetails(event.details);
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

/** Optional string fields of an event (the required ones and `credential` are checked above). */
const OPTIONAL_STRINGS = [
  "instance",
  "subjectKind",
  "subjectName",
  "issuer",
  "credentialName",
  "aaguid",
  "session",
  "actor",
  "grant",
  "jti",
] as const satisfies readonly (keyof AuditEvent)[];

/** `details`: a plain object of strings, finite numbers and booleans (flat: no objects or arrays). */
function checkDetails(details: unknown): void {
  const expected = "a plain object whose values are strings, finite numbers or booleans";
  if (typeof details !== "object" || details === null || Array.isArray(details))
    throw badField("details", expected);
  const proto = Object.getPrototypeOf(details);
  if (proto !== Object.prototype && proto !== null) throw badField("details", expected);
  for (const [key, v] of Object.entries(details)) {
    // An undefined member is left out of the record, as everywhere in canonical JSON.
    if (v === undefined || typeof v === "string" || typeof v === "boolean") continue;
    if (typeof v === "number" && Number.isFinite(v)) continue;
    throw badField(`details.${key}`, "a string, a finite number or a boolean");
  }
}

function badField(field: string, expected: string): AuditError {
  return new AuditError("ERR_AUDIT_EVENT", `audit event field ${field} must be ${expected}.`);
}
