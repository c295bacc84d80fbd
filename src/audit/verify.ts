import type { Database } from "../store/index.js";
import { canonicalJson, hashCanonical } from "./chain.js";
import { AuditError } from "./errors.js";
import { AUDIT_COLUMNS, type AuditColumns, auditColumns } from "./schema.js";
import type { AuditEvent } from "./types.js";

/** How the chain is broken at {@link BrokenLink.seq}. */
export type BreakKind = "changed" | "missing" | "inserted" | "reordered" | "bad-link";

/** The first place where the chain does not hold. */
export interface BrokenLink {
  /** The seq where the trail stops being trustworthy (for "missing", the first missing seq). */
  seq: number;
  kind: BreakKind;
  /** What was found, for a person. Names seqs and columns, never event values. */
  detail: string;
}

/** Result of {@link verifyChain}. */
export interface VerifyResult {
  ok: boolean;
  /** Records verified good: all of them when `ok`, else those before the first broken one. */
  count: number;
  firstBroken?: BrokenLink;
}

/** Options of {@link verifyChain}. */
export interface VerifyOptions {
  /** Called every few thousand records and at the end with (records read, records in the table). */
  onProgress?: (done: number, total: number) => void;
}

interface Row extends AuditColumns {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

const PROGRESS_EVERY = 4096;

/**
 * Verifies the audit hash chain, streaming the table in seq order inside one read transaction.
 * For each record it recomputes the hash from the stored `prev_hash` and `data`, checks that
 * `data` is canonical JSON whose seq is the row's seq, that the indexed columns agree with
 * `data`, that seqs are consecutive from 1, and that `prev_hash` is the previous record's hash.
 * It stops at the first broken record, naming it and the kind of break as best it can tell:
 *
 * - `changed`: the record's data, hash or a column was edited;
 * - `missing`: a gap in the seqs (records deleted), or records deleted and the rest renumbered;
 * - `inserted`: records added in the middle and the rest renumbered;
 * - `reordered`: records moved to other seqs (for example two swapped);
 * - `bad-link`: a self-consistent record that does not link to the one before it (the one before
 *   was rewritten with a recomputed hash, or this one was replaced).
 *
 * Deleting the newest records (truncating the tail) is not detectable from the chain alone; that
 * needs checkpoints of the head kept elsewhere.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the table cannot be read.
 *
 * @example
 * ```ts
 * const result = verifyChain(openDatabase(file, { readonly: true }), {
 *   onProgress: (done, total) => process.stderr.write(`\r${done}/${total}`),
 * });
 * if (!result.ok) console.log(`broken at #${result.firstBroken?.seq}: ${result.firstBroken?.detail}`);
 * ```
 */
export function verifyChain(db: Database, opts: VerifyOptions = {}): VerifyResult {
  try {
    return db.transaction(() => run(db, opts.onProgress))();
  } catch (err) {
    if (err instanceof AuditError) throw err;
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the audit trail in "${db.name}": ${err instanceof Error ? err.message : String(err)}. ` +
        "Check that this is the audit database and that it is readable.",
      { cause: err },
    );
  }
}

function run(db: Database, onProgress: VerifyOptions["onProgress"]): VerifyResult {
  const total = onProgress
    ? (db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n
    : 0;
  const rows = db
    .prepare<[], Row>(
      "SELECT seq, time, type, subject, credential, actions, resource, decision, status, data, prev_hash, hash " +
        "FROM audit_events ORDER BY seq",
    )
    .iterate();

  let done = 0;
  let prevSeq = 0;
  let prevHash = "";
  let prevPrevHash = "";
  for (const row of rows) {
    done += 1;
    if (onProgress && done % PROGRESS_EVERY === 0) onProgress(done, total);
    const broken = checkRow(row, prevSeq, prevHash, prevPrevHash, rows);
    if (broken !== undefined) {
      rows.return?.();
      return { ok: false, count: broken.seq - 1, firstBroken: broken };
    }
    prevSeq = row.seq;
    prevPrevHash = prevHash;
    prevHash = row.hash;
  }
  onProgress?.(done, total);
  return { ok: true, count: done };
}

function checkRow(
  row: Row,
  prevSeq: number,
  prevHash: string,
  prevPrevHash: string,
  rest: Iterator<Row>,
): BrokenLink | undefined {
  const { seq } = row;
  if (seq !== prevSeq + 1) {
    const first = prevSeq + 1;
    const range = seq - 1 === first ? `record ${first} is` : `records ${first}–${seq - 1} are`;
    return {
      seq: first,
      kind: "missing",
      detail: `${range} missing (seq ${prevSeq || "start"} is followed by ${seq})`,
    };
  }
  if (hashCanonical(row.prev_hash, row.data) !== row.hash) {
    return {
      seq,
      kind: "changed",
      detail: `record ${seq} does not match its hash (data, prev_hash or hash edited)`,
    };
  }

  let event: AuditEvent & { seq?: unknown };
  try {
    event = JSON.parse(row.data);
    if (canonicalJson(event) !== row.data) throw new Error("not canonical");
  } catch {
    return {
      seq,
      kind: "changed",
      detail: `record ${seq} data is not canonical JSON (rewritten with a new hash)`,
    };
  }

  if (event.seq !== seq) {
    return typeof event.seq === "number" && Number.isInteger(event.seq)
      ? classifyMoved(seq, event.seq, row.prev_hash, prevPrevHash, rest)
      : { seq, kind: "changed", detail: `record ${seq} data has no valid seq` };
  }

  let cols: AuditColumns;
  try {
    cols = auditColumns(event);
  } catch {
    return { seq, kind: "changed", detail: `record ${seq} data is not a valid audit event` };
  }
  for (const name of AUDIT_COLUMNS) {
    if (row[name] !== cols[name]) {
      return { seq, kind: "changed", detail: `record ${seq} column ${name} disagrees with its data` };
    }
  }

  if (row.prev_hash !== prevHash) {
    return {
      seq,
      kind: "bad-link",
      detail:
        `record ${seq} does not link to record ${prevSeq}: ` +
        (seq === 1
          ? "the first record must have an empty prev_hash"
          : `record ${prevSeq} was rewritten or ${seq} replaced`),
    };
  }
  return undefined;
}

/**
 * Row `seq` holds the record written as `written`. If the next row continues that shift (holds
 * `written + 1`), records were inserted (written < seq) or deleted (written > seq) and the rest
 * renumbered; if it does not, records were moved out of order (for example two swapped).
 */
function classifyMoved(
  seq: number,
  written: number,
  prevHashInRow: string,
  prevPrevHash: string,
  rest: Iterator<Row>,
): BrokenLink {
  const next = rest.next();
  if (!next.done && writtenSeq(next.value.data) !== written + 1) {
    return {
      seq,
      kind: "reordered",
      detail: `records out of order: seq ${seq} holds the record written as ${written}, seq ${next.value.seq} does not follow it`,
    };
  }
  if (written < seq) {
    const n = seq - written;
    const sure = n === 1 && prevHashInRow === prevPrevHash ? "" : " (probably)";
    return {
      seq: written,
      kind: "inserted",
      detail: `${n} record(s) inserted at seq ${written}${n > 1 ? `–${seq - 1}` : ""} and later records renumbered${sure}`,
    };
  }
  return {
    seq,
    kind: "missing",
    detail: `record(s) ${seq}–${written - 1} deleted and later records renumbered (seq ${seq} holds the record written as ${written})`,
  };
}

function writtenSeq(data: string): unknown {
  try {
    return (JSON.parse(data) as { seq?: unknown }).seq;
  } catch {
    return undefined;
  }
}
