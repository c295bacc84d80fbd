import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { canonicalJson, hashCanonical } from "./chain.js";
import { type AuditCheckpoint, type VerifyCheckpointOptions, verifyCheckpoint } from "./checkpoints.js";
import { AuditError } from "./errors.js";
import { auditColumns } from "./schema.js";
import type { AuditEvent } from "./types.js";
import {
  type BrokenLink,
  CheckpointCursor,
  type CheckpointRef,
  checkSignatures,
  type RetentionAnchor,
  type TrailOptions,
  type TrailResult,
} from "./verify.js";

/** Options of {@link verifyExport}. */
export interface ExportVerifyOptions extends Omit<TrailOptions, "onProgress"> {
  /** Called every few thousand lines and at the end with (bytes read, file size). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /**
   * The file must hold the whole trail: start at seq 1, or at a retention anchor (a checkpoint line
   * before the first record whose hash the first record links to). Without it, an export that
   * starts later is accepted as partial.
   */
  complete?: boolean;
}

/** Result of {@link verifyExport}. */
export interface ExportVerifyResult extends TrailResult {
  /**
   * The export starts after seq 1 with no anchor: its first record's `prevHash` is taken as given
   * (the record it links to is not in the file), so only the records from there on are verified.
   */
  partial: boolean;
  /** Lines read. */
  lines: number;
}

/** A record line as `audit export --format jsonl` writes it: the event plus seq, prevHash, hash. */
interface RecordLine {
  line: number;
  seq: number;
  prevHash: string;
  hash: string;
  event: AuditEvent & { seq: number };
}

type Parsed =
  | { type: "record"; rec: RecordLine }
  | { type: "checkpoint"; line: number; cp: AuditCheckpoint }
  | { type: "broken"; broken: BrokenLink };

const PROGRESS_EVERY = 4096;
/** Hashes of the newest records, for checkpoint lines written a little after their record. */
const RECENT = 1024;

/**
 * Verifies an exported JSONL file (`cosmosgate audit export --format jsonl`) as the live store is
 * verified, streaming it line by line: each record line's hash is recomputed from the line alone
 * (`canonicalRecord(seq, event)` over its fields without `prevHash` and `hash`), records must
 * follow each other (seq + 1, `prevHash` = the previous `hash`), each `{"checkpoint": ...}` line
 * must verify (signature, key thumbprint) and match the hash of the record it names, and no
 * checkpoint may name a record beyond the last one (`truncated`). `opts.external` checkpoints are
 * compared as well. Breaks are named as {@link verifyTrail} names them, with the line number.
 *
 * The first record of a partial export (one that starts after seq 1, e.g. with `--from`) links to
 * whatever hash it carries: that link cannot be checked from the file, and the result says
 * `partial`. With `complete`, such a start is a break (`missing`) unless a checkpoint line before
 * the first record is its retention anchor.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the file cannot be read.
 *
 * @example
 * ```ts
 * const r = await verifyExport("export.jsonl", { complete: true });
 * if (!r.ok) console.log(`BROKEN at record ${r.firstBroken!.seq} (${r.firstBroken!.kind}): ${r.firstBroken!.detail}`);
 * ```
 */
export async function verifyExport(
  file: string,
  opts: ExportVerifyOptions = {},
): Promise<ExportVerifyResult> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw readError(file, err);
  }
  const stream = createReadStream(file, { encoding: "utf8" });
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    return await verifyExportLines(lines, {
      ...opts,
      totalBytes: size,
      bytesRead: () => stream.bytesRead,
    });
  } catch (err) {
    throw err instanceof AuditError ? err : readError(file, err);
  } finally {
    lines.close();
    stream.destroy();
  }
}

/**
 * {@link verifyExport} over lines from any source (`bytesRead`/`totalBytes` feed the progress).
 * @internal
 */
export async function verifyExportLines(
  source: AsyncIterable<string> | Iterable<string>,
  opts: ExportVerifyOptions & { totalBytes?: number; bytesRead?: () => number } = {},
): Promise<ExportVerifyResult> {
  const externalChecked = await checkSignatures(
    (opts.external ?? []).map((cp) => ({ cp, source: "external" as const })),
    opts,
  );
  const external = new CheckpointCursor(externalChecked.valid);
  const cache: VerifyCheckpointOptions["cache"] = new Map();
  const progress = () => opts.onProgress?.(opts.bytesRead?.() ?? 0, opts.totalBytes ?? 0);

  let lineNo = 0;
  let count = 0;
  let firstSeq = 0;
  let lastSeq = 0;
  let lastHash = "";
  let partial = false;
  let anchor: RetentionAnchor | undefined;
  let fileValid = 0;
  let fileMatched = 0;
  let fileNewest: CheckpointRef | undefined;
  let firstInvalid: BrokenLink | undefined = externalChecked.firstInvalid;
  let broken: BrokenLink | undefined;
  const recent = new Map<number, string>();
  /** Valid checkpoint lines naming records not read yet, by seq. */
  const ahead = new Map<number, CheckpointRef & { hash: string }>();
  /** Valid checkpoint lines before the first record (anchor candidates). */
  const before: (CheckpointRef & { hash: string })[] = [];

  const fileMatch = (ref: CheckpointRef) => {
    fileMatched += 1;
    if (fileNewest === undefined || ref.seq >= fileNewest.seq) fileNewest = ref;
  };

  /** A checkpoint line: checked now; compared with its record now or when that record comes. */
  const onCheckpoint = async (line: number, cp: AuditCheckpoint): Promise<BrokenLink | undefined> => {
    const check = await verifyCheckpoint(cp, { jwks: opts.jwks, cache });
    const ref = { seq: Number(cp.seq), time: Number(cp.time), kid: String(cp.kid), source: "file" as const };
    if (!check.ok) {
      if (firstInvalid === undefined || ref.seq < firstInvalid.seq) {
        firstInvalid = {
          seq: ref.seq,
          kind: "bad-checkpoint",
          detail: `the checkpoint on line ${line} (seq ${ref.seq}) does not verify: ${check.reason}`,
          checkpoint: ref,
        };
      }
      return undefined;
    }
    fileValid += 1;
    const known = { ...ref, hash: cp.hash };
    if (count === 0) {
      before.push(known);
      return undefined;
    }
    if (ref.seq > lastSeq) {
      ahead.set(ref.seq, known);
      return undefined;
    }
    const hash = recent.get(ref.seq);
    if (hash === undefined) {
      if (ref.seq < firstSeq) return undefined; // before this (partial) export's range
      return {
        seq: ref.seq,
        kind: "reordered",
        detail: `the checkpoint on line ${line} names record ${ref.seq}, far from where it belongs (after record ${ref.seq}); lines were moved`,
        checkpoint: ref,
      };
    }
    if (hash !== cp.hash) return contradicted(known, line);
    fileMatch(ref);
    return undefined;
  };

  const contradicted = (cp: CheckpointRef & { hash: string }, line: number): BrokenLink => ({
    seq: cp.seq,
    kind: "changed",
    detail: `record ${cp.seq} is not the record the checkpoint on line ${line} signed (at ${new Date(cp.time).toISOString()} by key ${cp.kid}): it was rewritten with recomputed hashes`,
    checkpoint: cp,
  });

  /** Checks one record line against the one before it; `next` is the following record (lookahead). */
  const onRecord = (rec: RecordLine, next: RecordLine | undefined): BrokenLink | undefined => {
    const { seq, line } = rec;
    if (count === 0) {
      firstSeq = seq;
      if (seq === 1) {
        if (rec.prevHash !== "") {
          return { seq, kind: "bad-link", detail: `record 1 (line ${line}) must have an empty prevHash` };
        }
      } else {
        const a =
          before.find((c) => c.seq === seq - 1 && c.hash === rec.prevHash) ??
          externalChecked.valid.find((c) => c.seq === seq - 1 && c.hash === rec.prevHash);
        if (a !== undefined) {
          anchor = { seq: a.seq, hash: a.hash, time: a.time, kid: a.kid };
          if (a.source === "file") fileMatch(a);
          external.startAt(a);
        } else if (opts.complete) {
          return {
            seq: 1,
            kind: "missing",
            detail: `the export starts at record ${seq} (line ${line}), not at 1, and no checkpoint line before it anchors it as a retention prune would: records 1–${seq - 1} are missing`,
          };
        } else {
          partial = true;
        }
      }
    } else if (seq !== lastSeq + 1) {
      const expected = lastSeq + 1;
      if (seq < expected) {
        return {
          seq,
          kind: "inserted",
          detail: `line ${line} holds a second record ${seq} (after record ${lastSeq}): a record was inserted`,
        };
      }
      // The next line goes on where this one should have: this record is out of place, not a gap.
      if (next !== undefined && (next.seq === expected || next.seq === expected + 1)) {
        return {
          seq: expected,
          kind: "reordered",
          detail: `records out of order: line ${line} holds record ${seq} where record ${expected} belongs (line ${next.line} holds ${next.seq})`,
        };
      }
      const range = seq - 1 === expected ? `record ${expected} is` : `records ${expected}–${seq - 1} are`;
      return {
        seq: expected,
        kind: "missing",
        detail: `${range} missing: line ${line} holds record ${seq} after record ${lastSeq}`,
      };
    } else if (rec.prevHash !== lastHash) {
      return {
        seq,
        kind: "bad-link",
        detail: `record ${seq} (line ${line}) does not link to record ${lastSeq}: record ${lastSeq} was rewritten or ${seq} replaced`,
      };
    }
    const viaExternal = external.record(seq, rec.hash);
    if (viaExternal !== undefined) return viaExternal;
    const pending = ahead.get(seq);
    if (pending !== undefined) {
      ahead.delete(seq);
      if (pending.hash !== rec.hash) return contradicted(pending, line);
      fileMatch(pending);
    }
    if (rec.event.type === "audit.pruned") external.pruned(rec.event.details);
    count += 1;
    lastSeq = seq;
    lastHash = rec.hash;
    recent.set(seq, rec.hash);
    if (recent.size > RECENT) recent.delete(seq - RECENT);
    return undefined;
  };

  // One record of lookahead (to tell a moved record from a missing one); the checkpoint lines after
  // a record are handled after it.
  let held: RecordLine | undefined;
  let heldCheckpoints: { line: number; cp: AuditCheckpoint }[] = [];
  const release = async (next: RecordLine | undefined): Promise<BrokenLink | undefined> => {
    if (held !== undefined) {
      const b = onRecord(held, next);
      if (b !== undefined) return b;
    }
    for (const c of heldCheckpoints) {
      const b = await onCheckpoint(c.line, c.cp);
      if (b !== undefined) return b;
    }
    heldCheckpoints = [];
    return undefined;
  };

  for await (const text of source) {
    lineNo += 1;
    if (lineNo % PROGRESS_EVERY === 0) progress();
    if (text.trim() === "") continue;
    const parsed = parseLine(text, lineNo, lastSeq + 1);
    if (parsed.type === "checkpoint") {
      if (held === undefined) {
        const b = await onCheckpoint(parsed.line, parsed.cp);
        if (b !== undefined) {
          broken = b;
          break;
        }
      } else heldCheckpoints.push({ line: parsed.line, cp: parsed.cp });
      continue;
    }
    if (parsed.type === "broken") {
      // The record before it (held for lookahead) is checked first: the earlier break wins.
      broken = (await release(undefined)) ?? parsed.broken;
      held = undefined;
      break;
    }
    broken = await release(parsed.rec);
    if (broken !== undefined) break;
    held = parsed.rec;
  }
  if (broken === undefined) {
    broken = await release(undefined);
    held = undefined;
  }
  progress();

  if (broken === undefined) {
    // An export of a pruned trail from its anchor: an audit.pruned record must authorize it.
    if (anchor !== undefined) broken = external.unauthorizedAnchor(anchor);
    // Checkpoints kept elsewhere beyond the file's last record prove a truncation only when the
    // file claims to hold the whole trail (an export with --to ends early on purpose).
    if (broken === undefined && opts.complete) broken = external.beyond(lastSeq);
    if (broken === undefined && ahead.size > 0) {
      const proof = [...ahead.values()].sort((a, b) => b.seq - a.seq)[0];
      const first = lastSeq + 1;
      const range = proof.seq === first ? `record ${first} is` : `records ${first}–${proof.seq} are`;
      broken = {
        seq: first,
        kind: "truncated",
        detail: `the file was truncated: ${range} gone (it ends at record ${lastSeq || "none"}), but its checkpoint for seq ${proof.seq} (signed ${new Date(proof.time).toISOString()} by key ${proof.kid}) proves record ${proof.seq} existed`,
        checkpoint: { seq: proof.seq, time: proof.time, kid: proof.kid, source: "file" },
      };
    }
  }
  if (firstInvalid !== undefined && (broken === undefined || firstInvalid.seq < broken.seq))
    broken = firstInvalid;

  const newest =
    external.newest === undefined || (fileNewest !== undefined && fileNewest.seq >= external.newest.seq)
      ? fileNewest
      : external.newest;
  const offset = anchor?.seq ?? (firstSeq > 0 ? firstSeq - 1 : 0);
  const result: ExportVerifyResult = {
    ok: broken === undefined,
    count: broken === undefined ? count : Math.max(0, Math.min(count, broken.seq - 1 - offset)),
    firstSeq,
    lastSeq,
    partial,
    lines: lineNo,
    checkpoints: {
      stored: fileValid,
      external: externalChecked.external,
      matched: fileMatched + external.matched,
      beforeAnchor: external.beforeAnchor,
      uncovered: lastSeq - (newest?.seq ?? firstSeq - 1),
    },
  };
  if (newest) result.checkpoints.newest = newest;
  if (broken) result.firstBroken = broken;
  if (anchor) result.anchor = anchor;
  return result;
}

/** Parses one line: a record, a checkpoint, or the break it is (named at `expectedSeq`). */
function parseLine(text: string, line: number, expectedSeq: number): Parsed {
  const bad = (seq: number, detail: string): Parsed => ({
    type: "broken",
    broken: { seq, kind: "changed", detail },
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad(expectedSeq, `line ${line} is not JSON (edited or damaged)`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return bad(expectedSeq, `line ${line} is not a JSON object`);
  }
  const obj = value as Record<string, unknown>;
  if ("checkpoint" in obj && !("seq" in obj)) {
    return { type: "checkpoint", line, cp: obj.checkpoint as AuditCheckpoint };
  }
  const { prevHash, hash, ...event } = obj;
  const seq = obj.seq;
  if (!Number.isSafeInteger(seq) || typeof prevHash !== "string" || typeof hash !== "string") {
    return bad(expectedSeq, `line ${line} is not a record line (it needs an integer seq, prevHash and hash)`);
  }
  const s = seq as number;
  let data: string;
  try {
    auditColumns(event as unknown as AuditEvent);
    data = canonicalJson(event);
  } catch {
    return bad(s, `record ${s} (line ${line}) is not a valid audit event`);
  }
  if (hashCanonical(prevHash, data) !== hash) {
    return bad(s, `record ${s} (line ${line}) does not match its hash (a field, prevHash or hash edited)`);
  }
  return {
    type: "record",
    rec: { line, seq: s, prevHash, hash, event: event as unknown as AuditEvent & { seq: number } },
  };
}

function readError(file: string, err: unknown): AuditError {
  return new AuditError(
    "ERR_AUDIT_READ",
    `cannot read the export "${file}": ${err instanceof Error ? err.message : String(err)}. Check the path.`,
    { cause: err },
  );
}
