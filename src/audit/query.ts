import type { Database } from "../store/index.js";
import { AuditError } from "./errors.js";
import type { AuditRecord } from "./types.js";

interface TailRow {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

/**
 * The most recent `n` records, oldest first (as `tail -n` prints a log).
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` when `n` is not a non-negative integer;
 *   `ERR_AUDIT_READ` when the table cannot be read.
 *
 * @example
 * ```ts
 * for (const r of tail(db, 20)) console.log(formatRecord(r));
 * ```
 */
export function tail(db: Database, n: number): AuditRecord[] {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AuditError("ERR_AUDIT_ARGUMENT", `tail needs a non-negative integer count; got ${String(n)}.`);
  }
  if (n === 0) return [];
  let rows: TailRow[];
  try {
    rows = db
      .prepare<[number], TailRow>(
        "SELECT seq, data, prev_hash, hash FROM audit_events ORDER BY seq DESC LIMIT ?",
      )
      .all(n);
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the audit trail in "${db.name}": ${err instanceof Error ? err.message : String(err)}.`,
      { cause: err },
    );
  }
  const out: AuditRecord[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[rows.length - 1 - i];
    out[i] = {
      ...(JSON.parse(row.data) as AuditRecord),
      seq: row.seq,
      prevHash: row.prev_hash,
      hash: row.hash,
    };
  }
  return out;
}

/**
 * One human-readable line for a record: ISO time, decision, status[/substatus], subject,
 * actions, resource, partition key, reason (quoted), duration. Absent values print as `-`;
 * control characters are escaped so a record is always exactly one line.
 *
 * @example
 * ```ts
 * formatRecord(record);
 * // 2025-01-02T03:04:05.678Z deny 403/5301 alice@contoso key=Q2xh... delete /dbs/shop/colls/orders/docs/a1 pk=["a1"] "no rule allows delete" 3ms
 * // (records other than data-plane requests start with their type: "signin.succeeded allow 0 ...")
 * ```
 */
export function formatRecord(r: AuditRecord): string {
  const time = Number.isFinite(r.time) ? new Date(r.time).toISOString() : "-";
  const status = r.substatus === undefined ? `${r.status}` : `${r.status}/${r.substatus}`;
  const actions = r.actions.length > 0 ? r.actions.join(",") : "-";
  const pk = r.partitionKey === undefined ? "pk=-" : `pk=${clean(r.partitionKey)}`;
  const ms = `${Math.round(r.durationMs * 10) / 10}ms`;
  const type = r.type === "data.request" ? "" : `${word(r.type)} `;
  const key = r.credential ? ` key=${word(r.credential)}` : "";
  return `${time} ${type}${r.decision} ${status} ${word(r.subject)}${key} ${word(actions)} ${word(r.resource)} ${pk} ${JSON.stringify(r.reason)} ${ms}`;
}

// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/gu;

function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function word(s: string): string {
  return s === "" ? "-" : clean(s).replaceAll(" ", "%20");
}
