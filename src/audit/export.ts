import type { Database } from "../store/index.js";
import { type AuditCheckpoint, listCheckpoints } from "./checkpoints.js";
import { AuditError } from "./errors.js";
import { type AuditFilter, checkFilter, countAudit, type RawRecord, seqOrdered } from "./search.js";

/** Formats of {@link exportAudit}: JSON lines (verifiable) or CSV (for people and spreadsheets). */
export type ExportFormat = "jsonl" | "csv";

/**
 * Reads the checkpoints with `fromSeq <= seq`, oldest first, at most `limit` of them (the export
 * pages through them). Default: `listCheckpoints` of `audit_checkpoints` (none before schema 4).
 */
export type CheckpointSource = (fromSeq: number, limit: number) => readonly AuditCheckpoint[];

/** Options of {@link exportAudit} and {@link exportChunks}. */
export interface ExportOptions extends AuditFilter {
  format: ExportFormat;
  /**
   * Called with the records written so far and the total to write, every `progressEvery` records
   * and once at the end. The total is counted through the index when the export starts.
   */
  onProgress?: (done: number, total: number) => void;
  /** Records between two progress calls; default 4096. */
  progressEvery?: number;
  /** Where the checkpoint lines of a JSONL export come from; `false`: none. */
  checkpoints?: CheckpointSource | false;
  /** Bytes (UTF-16 units) gathered before a chunk is handed out; default 64 KiB. */
  chunkSize?: number;
}

/** What an export wrote. */
export interface ExportResult {
  records: number;
  checkpoints: number;
  /** Seq of the first and last record written (0 when none). */
  firstSeq: number;
  lastSeq: number;
}

/**
 * The CSV columns, in order: every field of the event schema, flattened. `actions` are joined by
 * `;`, `details` is its JSON text, `time` is ISO 8601 (UTC).
 */
export const CSV_COLUMNS = [
  "seq",
  "time",
  "type",
  "instance",
  "subject",
  "subjectKind",
  "subjectName",
  "issuer",
  "credential",
  "credentialName",
  "aaguid",
  "deviceBound",
  "session",
  "actor",
  "grant",
  "jti",
  "operation",
  "method",
  "actions",
  "resource",
  "partitionKey",
  "decision",
  "reason",
  "rule",
  "status",
  "substatus",
  "requestCharge",
  "durationMs",
  "clientAddress",
  "userAgent",
  "activityId",
  "details",
  "prevHash",
  "hash",
] as const;

/**
 * Streams the records matching the filter as export text, in chunks of about `chunkSize`:
 *
 * - `jsonl`: one JSON object per line. A record line is the AuditRecord: the event's
 *   fields plus `seq`, `prevHash` and `hash`, so each line's hash (and, for a contiguous export,
 *   the chain) can be recomputed from the file alone. Checkpoints whose seq lies between the first
 *   and the last record written are lines `{"checkpoint": {...}}`, right after the record they
 *   cover (or, when that record is filtered out, after the last record before it); a checkpoint
 *   of the record just before the first one written (the retention anchor of a pruned trail)
 *   comes first.
 * - `csv`: RFC 4180 (CRLF line ends, fields with `"`, `,`, CR or LF quoted, quotes doubled), a
 *   header row of {@link CSV_COLUMNS}; text cells starting with `=`, `+`, `-`, `@`, tab or CR get
 *   a leading `'` so a spreadsheet shows them as text instead of running them as formulas. Not
 *   verifiable (use JSONL for that).
 *
 * Records are in seq order (the chain's). Memory stays constant whatever the size.
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` for a bad filter or format; `ERR_AUDIT_READ`.
 *
 * @example
 * ```ts
 * for (const chunk of exportChunks(db, { format: "jsonl", from: Date.parse("2025-01-01") }))
 *   fs.writeSync(fd, chunk);
 * ```
 */
export function* exportChunks(db: Database, opts: ExportOptions, result?: ExportResult): Generator<string> {
  const format = opts.format;
  if (format !== "jsonl" && format !== "csv")
    throw new AuditError(
      "ERR_AUDIT_ARGUMENT",
      `export format must be "jsonl" or "csv"; got ${JSON.stringify(format)}.`,
    );
  const filter = checkFilter(filterOf(opts));
  const every = Math.max(1, Math.trunc(opts.progressEvery ?? 4096));
  const chunkSize = Math.max(1, Math.trunc(opts.chunkSize ?? 65_536));
  const onProgress = opts.onProgress;
  const total = onProgress === undefined ? 0 : countAudit(db, filter);
  const out: ExportResult = result ?? { records: 0, checkpoints: 0, firstSeq: 0, lastSeq: 0 };
  const cps =
    format === "jsonl" && opts.checkpoints !== false
      ? new CheckpointCursor(opts.checkpoints ?? defaultCheckpoints(db))
      : undefined;

  let chunk = format === "csv" ? `${CSV_COLUMNS.join(",")}\r\n` : "";
  onProgress?.(0, total);
  for (const row of seqOrdered(db, filter)) {
    if (out.records > 0 && cps !== undefined) {
      // Checkpoints of records filtered out between the previous record and this one.
      for (let cp = cps.peek(); cp !== undefined && cp.seq < row.seq; cp = cps.peek()) {
        chunk += checkpointLine(cps.take());
        out.checkpoints += 1;
      }
    } else if (cps !== undefined) {
      // A checkpoint of the record just before the first one is its anchor (the first record
      // links to its hash, e.g. after retention): it goes first, so the file verifies alone.
      cps.skipBelow(row.seq - 1);
      for (let cp = cps.peek(); cp !== undefined && cp.seq < row.seq; cp = cps.peek()) {
        chunk += checkpointLine(cps.take());
        out.checkpoints += 1;
      }
    }
    chunk += format === "jsonl" ? jsonLine(row) : csvLine(row);
    if (cps !== undefined) {
      for (let cp = cps.peek(); cp !== undefined && cp.seq === row.seq; cp = cps.peek()) {
        chunk += checkpointLine(cps.take());
        out.checkpoints += 1;
      }
    }
    if (out.records === 0) out.firstSeq = row.seq;
    out.lastSeq = row.seq;
    out.records += 1;
    if (onProgress !== undefined && out.records % every === 0) onProgress(out.records, total);
    if (chunk.length >= chunkSize) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk.length > 0) yield chunk;
  onProgress?.(out.records, Math.max(total, out.records));
}

/**
 * Writes the export to `write`, awaiting it when it returns a promise (back-pressure from a file
 * or a pipe), and resolves with what was written.
 *
 * @throws {AuditError} as {@link exportChunks}; whatever `write` throws.
 *
 * @example
 * ```ts
 * const file = fs.createWriteStream("audit.jsonl");
 * const result = await exportAudit(db, (c) => new Promise((ok, ko) => file.write(c, (e) => (e ? ko(e) : ok()))), {
 *   format: "jsonl",
 *   onProgress: (done, total) => bar.update(done, total),
 * });
 * ```
 */
export async function exportAudit(
  db: Database,
  write: (chunk: string) => void | Promise<void>,
  opts: ExportOptions,
): Promise<ExportResult> {
  const result: ExportResult = { records: 0, checkpoints: 0, firstSeq: 0, lastSeq: 0 };
  for (const chunk of exportChunks(db, opts, result)) {
    const pending = write(chunk);
    if (pending !== undefined) await pending;
  }
  return result;
}

/**
 * The JSONL line of a stored record: its canonical text with `prevHash` and `hash` added (the
 * hashes are hex, so no escaping is needed).
 */
export function jsonLine(row: Pick<RawRecord, "data" | "prev_hash" | "hash">): string {
  return `${row.data.slice(0, -1)},"prevHash":"${row.prev_hash}","hash":"${row.hash}"}\n`;
}

/** The JSONL line of a checkpoint. */
export function checkpointLine(cp: AuditCheckpoint): string {
  return `${JSON.stringify({ checkpoint: cp })}\n`;
}

/** One CSV row (with its CRLF) of a stored record. */
export function csvLine(row: RawRecord): string {
  const r = JSON.parse(row.data) as Record<string, unknown>;
  let line = "";
  for (let i = 0; i < CSV_COLUMNS.length; i++) {
    const col = CSV_COLUMNS[i];
    let cell: string;
    switch (col) {
      case "seq":
        cell = String(row.seq);
        break;
      case "time":
        cell = typeof r.time === "number" && Number.isFinite(r.time) ? new Date(r.time).toISOString() : "";
        break;
      case "actions":
        cell = Array.isArray(r.actions) ? csvText(r.actions.map(String).join(";")) : "";
        break;
      case "details":
        cell = r.details === undefined ? "" : csvText(JSON.stringify(r.details));
        break;
      case "prevHash":
        cell = row.prev_hash;
        break;
      case "hash":
        cell = row.hash;
        break;
      default:
        cell = csvValue(r[col]);
    }
    line += i === 0 ? cell : `,${cell}`;
  }
  return `${line}\r\n`;
}

/** A CSV cell: numbers and booleans as they are, text through {@link csvText}, absent as empty. */
export function csvValue(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return csvText(v);
  return csvText(JSON.stringify(v));
}

/**
 * A text CSV cell: neutralized against formula injection (a leading `=`, `+`, `-`, `@`, tab or CR
 * gets a `'` in front, as OWASP advises), then quoted per RFC 4180 when it holds `"`, `,`, CR or LF.
 *
 * @example
 * ```ts
 * csvText('=HYPERLINK("http://x")'); // '"\'=HYPERLINK(""http://x"")"'
 * ```
 */
export function csvText(s: string): string {
  let v = s;
  if (v.length > 0 && FORMULA_START.has(v[0])) v = `'${v}`;
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

const FORMULA_START: ReadonlySet<string> = new Set(["=", "+", "-", "@", "\t", "\r"]);

function filterOf(o: ExportOptions): AuditFilter {
  const { actor, key, action, type, resource, decision, from, to } = o;
  const f: AuditFilter = {};
  if (actor !== undefined) f.actor = actor;
  if (key !== undefined) f.key = key;
  if (action !== undefined) f.action = action;
  if (type !== undefined) f.type = type;
  if (resource !== undefined) f.resource = resource;
  if (decision !== undefined) f.decision = decision;
  if (from !== undefined) f.from = from;
  if (to !== undefined) f.to = to;
  return f;
}

function defaultCheckpoints(db: Database): CheckpointSource {
  return (fromSeq, limit) => {
    try {
      return listCheckpoints(db, { fromSeq, limit });
    } catch (err) {
      throw new AuditError(
        "ERR_AUDIT_READ",
        `cannot read the audit checkpoints in "${db.name}": ${err instanceof Error ? err.message : String(err)}.`,
        { cause: err },
      );
    }
  };
}

/** Pages through the checkpoints in seq order, a few hundred at a time. */
class CheckpointCursor {
  readonly #source: CheckpointSource;
  #page: readonly AuditCheckpoint[] = [];
  #i = 0;
  #next = 0;
  #done = false;

  constructor(source: CheckpointSource) {
    this.#source = source;
  }

  peek(): AuditCheckpoint | undefined {
    if (this.#i < this.#page.length) return this.#page[this.#i];
    if (this.#done) return undefined;
    this.#page = this.#source(this.#next, PAGE);
    this.#i = 0;
    if (this.#page.length < PAGE) this.#done = true;
    if (this.#page.length === 0) return undefined;
    this.#next = this.#page[this.#page.length - 1].seq + 1;
    return this.#page[0];
  }

  take(): AuditCheckpoint {
    return this.#page[this.#i++];
  }

  /** Starts the cursor at `seq` (the first record written). */
  skipBelow(seq: number): void {
    if (this.#i >= this.#page.length && !this.#done && this.#next < seq) this.#next = seq;
    for (let cp = this.peek(); cp !== undefined && cp.seq < seq; cp = this.peek()) this.#i++;
  }
}

const PAGE = 256;
