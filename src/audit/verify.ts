import type { JWK } from "jose";
import type { Database } from "../store/index.js";
import { canonicalJson, hashCanonical } from "./chain.js";
import {
  type AuditCheckpoint,
  hasCheckpointTable,
  listCheckpoints,
  type VerifyCheckpointOptions,
  verifyCheckpoint,
} from "./checkpoints.js";
import { AuditError } from "./errors.js";
import { AUDIT_COLUMNS, type AuditColumns, auditColumns } from "./schema.js";
import type { AuditEvent } from "./types.js";

/**
 * How the trail is broken at {@link BrokenLink.seq}:
 *
 * - `changed`: a record's data, hash or a column was edited, or it is not the record a valid
 *   checkpoint signed (the chain was rewritten with recomputed hashes);
 * - `missing`: records deleted (a gap, deleted and renumbered, or the oldest ones removed without
 *   a retention prune that says so);
 * - `inserted`: records added in the middle and the rest renumbered;
 * - `reordered`: records moved to other seqs (for example two swapped);
 * - `bad-link`: a self-consistent record that does not link to the one before it;
 * - `truncated`: the newest records were removed: a valid checkpoint names a seq beyond the last
 *   record, or the newest checkpoint's record now has another hash (cut back and re-grown);
 * - `bad-checkpoint`: a checkpoint whose signature does not verify (forged or edited).
 */
export type BreakKind =
  | "changed"
  | "missing"
  | "inserted"
  | "reordered"
  | "bad-link"
  | "truncated"
  | "bad-checkpoint";

/** Where a checkpoint came from: the audit database, copies given from outside, or an export file. */
export type CheckpointSource = "stored" | "external" | "file";

/** A checkpoint as a verification result names it. */
export interface CheckpointRef {
  seq: number;
  time: number;
  kid: string;
  source: CheckpointSource;
}

/** The first place where the trail does not hold. */
export interface BrokenLink {
  /** The seq where the trail stops being trustworthy (for "missing", the first missing seq). */
  seq: number;
  kind: BreakKind;
  /** What was found, for a person. Names seqs, columns and checkpoints, never event values. */
  detail: string;
  /** The checkpoint that proves the break (truncated, bad-checkpoint, a record it contradicts). */
  checkpoint?: CheckpointRef;
}

/** The checkpoint a pruned trail starts from: its first kept record links to this hash. */
export interface RetentionAnchor {
  seq: number;
  hash: string;
  time: number;
  kid: string;
}

/** Result of {@link verifyChain}. */
export interface VerifyResult {
  ok: boolean;
  /** Records verified good: all of them when `ok`, else those before the first broken one. */
  count: number;
  firstBroken?: BrokenLink;
  /** Set only when the trail starts after a retention prune: the checkpoint it starts from. */
  anchor?: RetentionAnchor;
}

/** Options of {@link verifyChain}. */
export interface VerifyOptions {
  /** Called every few thousand records and at the end with (records read, records in the trail). */
  onProgress?: (done: number, total: number) => void;
}

/** What the checkpoints cover, in a {@link TrailResult}. */
export interface CheckpointCoverage {
  /** Checkpoints with a valid signature, from the database. */
  stored: number;
  /** Checkpoints with a valid signature, given from outside (or found in an export file). */
  external: number;
  /** Valid checkpoints whose record is present with exactly the signed hash (the anchor included). */
  matched: number;
  /** Valid checkpoints of records pruned before the anchor: their records cannot be compared. */
  beforeAnchor: number;
  /** The newest matched checkpoint. */
  newest?: CheckpointRef;
  /** Records after the newest matched checkpoint: a truncation of these would not show. */
  uncovered: number;
}

/** Result of {@link verifyTrail} (and of verifying an export). */
export interface TrailResult extends VerifyResult {
  /** The first and last seq present (0 when there are none). */
  firstSeq: number;
  lastSeq: number;
  checkpoints: CheckpointCoverage;
}

/** Options of {@link verifyTrail}. */
export interface TrailOptions extends VerifyOptions {
  /** Checkpoints kept elsewhere (the JSON of GET /audit/checkpoints), checked as well as the stored ones. */
  external?: readonly AuditCheckpoint[];
  /** Trusted keys: when given, every checkpoint must be signed by one of them. */
  jwks?: { keys: readonly JWK[] };
}

interface Row extends AuditColumns {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

/** A checkpoint whose signature verified, reduced to what the walk compares. */
interface KnownCheckpoint extends CheckpointRef {
  hash: string;
}

const PROGRESS_EVERY = 4096;

/**
 * Verifies the audit hash chain, streaming the table in seq order inside one read transaction.
 * For each record it recomputes the hash from the stored `prev_hash` and `data`, checks that
 * `data` is canonical JSON whose seq is the row's seq, that the indexed columns agree with
 * `data`, that seqs are consecutive, and that `prev_hash` is the previous record's hash. It stops
 * at the first broken record, naming it and the kind of break (see {@link BreakKind}).
 *
 * The chain starts at seq 1, or — after a retention prune — at a stored checkpoint whose hash
 * the first kept record links to (the anchor), provided an `audit.pruned` record of the kept
 * trail authorizes pruning up to it. This function does not check signatures and cannot see a
 * truncated tail; {@link verifyTrail} does both.
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
  const r = readGuard(db, () =>
    db.transaction(() => walk(db, opts.onProgress, [], storedAnchorLookup(db)))(),
  );
  const result: VerifyResult = { ok: r.ok, count: r.count };
  if (r.firstBroken) result.firstBroken = r.firstBroken;
  if (r.anchor) result.anchor = r.anchor;
  return result;
}

/**
 * Verifies the whole trail: every stored checkpoint's signature (with the public key it carries,
 * and against `opts.jwks` when given) and those of `opts.external`; then the chain as
 * {@link verifyChain} does, and that each record a valid checkpoint names has exactly the signed
 * hash; then that no valid checkpoint lies beyond the last record (`truncated`). Reports the first
 * problem in seq order.
 *
 * What it cannot see: records removed after the newest checkpoint (`checkpoints.uncovered` says
 * how many are not covered yet), and a trail rewritten together with its checkpoints by someone who
 * can also sign (a key of their own in the stored rows): compare with checkpoints kept elsewhere
 * (`external`) or with the gateway's keys (`jwks`) to rule that out.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the tables cannot be read.
 *
 * @example
 * ```ts
 * const external = parseCheckpoints(await readFile("kept-elsewhere.json", "utf8"));
 * const r = await verifyTrail(db, { external });
 * if (!r.ok) console.log(`BROKEN at record ${r.firstBroken!.seq} (${r.firstBroken!.kind})`);
 * ```
 */
export async function verifyTrail(db: Database, opts: TrailOptions = {}): Promise<TrailResult> {
  const stored = readGuard(db, () => listCheckpoints(db));
  const checked = await checkSignatures(
    [
      ...stored.map((cp) => ({ cp, source: "stored" as const })),
      ...(opts.external ?? []).map((cp) => ({ cp, source: "external" as const })),
    ],
    opts,
  );
  const anchors = checked.valid;
  const walked = readGuard(db, () =>
    db.transaction(() =>
      walk(db, opts.onProgress, checked.valid, (seq, prevHash) =>
        anchors.find((c) => c.seq === seq && c.hash === prevHash),
      ),
    )(),
  );
  return finish(walked, checked);
}

/** The outcome of checking the signatures of a set of checkpoints. */
export interface CheckedCheckpoints {
  /** Valid ones, sorted by seq. */
  valid: KnownCheckpoint[];
  /** The invalid one with the lowest seq. */
  firstInvalid?: BrokenLink;
  stored: number;
  external: number;
}

/** Verifies signatures; keeps the valid checkpoints, sorted by seq, and the first bad one. @internal */
export async function checkSignatures(
  list: readonly { cp: AuditCheckpoint; source: CheckpointSource }[],
  opts: { jwks?: VerifyCheckpointOptions["jwks"] } = {},
): Promise<CheckedCheckpoints> {
  const cache: VerifyCheckpointOptions["cache"] = new Map();
  const out: CheckedCheckpoints = { valid: [], stored: 0, external: 0 };
  for (const { cp, source } of list) {
    const check = await verifyCheckpoint(cp, { jwks: opts.jwks, cache });
    const ref = { seq: Number(cp.seq), time: Number(cp.time), kid: String(cp.kid), source };
    if (check.ok) {
      out.valid.push({ ...ref, hash: cp.hash });
      if (source === "stored") out.stored += 1;
      else out.external += 1;
    } else if (out.firstInvalid === undefined || ref.seq < out.firstInvalid.seq) {
      out.firstInvalid = {
        seq: ref.seq,
        kind: "bad-checkpoint",
        detail: `the ${sourceName(source)} checkpoint at seq ${ref.seq} does not verify: ${check.reason}`,
        checkpoint: ref,
      };
    }
  }
  out.valid.sort((a, b) => a.seq - b.seq);
  return out;
}

/** What {@link walk} found; {@link finish} turns it into a {@link TrailResult}. @internal */
export interface Walked {
  ok: boolean;
  count: number;
  firstBroken?: BrokenLink;
  anchor?: RetentionAnchor;
  firstSeq: number;
  lastSeq: number;
  matched: number;
  beforeAnchor: number;
  newest?: CheckpointRef;
}

/** Merges a walk with the signature checks: the first problem in seq order wins. @internal */
export function finish(walked: Walked, checked: CheckedCheckpoints): TrailResult {
  const offset = walked.anchor?.seq ?? (walked.firstSeq > 0 ? walked.firstSeq - 1 : 0);
  let firstBroken = walked.firstBroken;
  if (checked.firstInvalid && (firstBroken === undefined || checked.firstInvalid.seq < firstBroken.seq)) {
    firstBroken = checked.firstInvalid;
  }
  const result: TrailResult = {
    ok: firstBroken === undefined,
    count:
      firstBroken === undefined
        ? walked.count
        : Math.max(0, Math.min(walked.count, firstBroken.seq - 1 - offset)),
    firstSeq: walked.firstSeq,
    lastSeq: walked.lastSeq,
    checkpoints: {
      stored: checked.stored,
      external: checked.external,
      matched: walked.matched,
      beforeAnchor: walked.beforeAnchor,
      uncovered: walked.lastSeq - (walked.newest?.seq ?? walked.firstSeq - 1),
    },
  };
  if (walked.newest) result.checkpoints.newest = walked.newest;
  if (firstBroken) result.firstBroken = firstBroken;
  if (walked.anchor) result.anchor = walked.anchor;
  return result;
}

function readGuard<T>(db: Database, read: () => T): T {
  try {
    return read();
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

/** The stored checkpoint at `seq` with hash `prevHash` (unverified: verifyChain checks no signatures). */
function storedAnchorLookup(db: Database): (seq: number, prevHash: string) => KnownCheckpoint | undefined {
  return (seq, prevHash) => {
    if (!hasCheckpointTable(db)) return undefined; // a trail written before checkpoints existed
    const cp = listCheckpoints(db, { fromSeq: seq, toSeq: seq })[0];
    return cp !== undefined && cp.hash === prevHash
      ? { seq: cp.seq, hash: cp.hash, time: cp.time, kid: cp.kid, source: "stored" }
      : undefined;
  };
}

/**
 * Follows the pruning authorizations and the checkpoints along a stream of records in seq order;
 * shared by the database walk and the export verifier. @internal
 */
export class CheckpointCursor {
  readonly #cps: readonly KnownCheckpoint[];
  #i = 0;
  matched = 0;
  beforeAnchor = 0;
  newest: CheckpointRef | undefined;
  /** The highest seq an `audit.pruned` record of the trail authorizes pruning up to. */
  authorizedUpTo = 0;

  /** `cps`: valid checkpoints sorted by seq. */
  constructor(cps: readonly KnownCheckpoint[]) {
    this.#cps = cps;
  }

  /** The trail starts after `anchor`: checkpoints before it cover pruned records. */
  startAt(anchor: KnownCheckpoint): void {
    const cps = this.#cps;
    while (this.#i < cps.length && cps[this.#i].seq < anchor.seq) {
      this.beforeAnchor += 1;
      this.#i += 1;
    }
    while (this.#i < cps.length && cps[this.#i].seq === anchor.seq) {
      if (cps[this.#i].hash === anchor.hash) this.#match(cps[this.#i]);
      this.#i += 1;
    }
  }

  /** Record `seq` with `hash` is next; returns the break when a checkpoint signed another hash for it. */
  record(seq: number, hash: string): BrokenLink | undefined {
    const cps = this.#cps;
    while (this.#i < cps.length && cps[this.#i].seq < seq) {
      // Only before the first record of an unanchored trail (seqs are consecutive after it).
      this.beforeAnchor += 1;
      this.#i += 1;
    }
    while (this.#i < cps.length && cps[this.#i].seq === seq) {
      const cp = cps[this.#i];
      if (cp.hash !== hash) return this.#contradicted(cp);
      this.#match(cp);
      this.#i += 1;
    }
    return undefined;
  }

  /** An `audit.pruned` record with these details was read. */
  pruned(details: unknown): void {
    const upTo = (details as { upTo?: unknown } | undefined)?.upTo;
    if (typeof upTo === "number" && upTo > this.authorizedUpTo) this.authorizedUpTo = upTo;
  }

  /**
   * The end of the records (the last one `lastSeq`): an anchor no `audit.pruned` record
   * authorizes (the oldest records deleted outside a prune), or a valid checkpoint beyond the end
   * (a truncated tail).
   */
  end(lastSeq: number, anchor: RetentionAnchor | undefined): BrokenLink | undefined {
    return (anchor && this.unauthorizedAnchor(anchor)) ?? this.beyond(lastSeq);
  }

  /** The break when no `audit.pruned` record read so far authorizes a trail starting after `anchor`. */
  unauthorizedAnchor(anchor: RetentionAnchor): BrokenLink | undefined {
    if (this.authorizedUpTo >= anchor.seq) return undefined;
    return {
      seq: anchor.seq,
      kind: "missing",
      detail:
        `records up to ${anchor.seq} are gone: the trail starts after the checkpoint at seq ${anchor.seq}, ` +
        `but no audit.pruned record of the kept trail authorizes pruning that far (${
          this.authorizedUpTo === 0 ? "there is none" : `the newest authorizes up to ${this.authorizedUpTo}`
        }); they were deleted outside a retention prune`,
      checkpoint: refOf({ ...anchor, source: "stored" }),
    };
  }

  /** The break when a valid checkpoint names a record after `lastSeq` (the newest one is the proof). */
  beyond(lastSeq: number): BrokenLink | undefined {
    const cps = this.#cps;
    if (this.#i >= cps.length) return undefined;
    const proof = cps[cps.length - 1];
    if (proof.seq <= lastSeq) return undefined;
    const first = lastSeq + 1;
    const range = proof.seq === first ? `record ${first} is` : `records ${first}–${proof.seq} are`;
    return {
      seq: first,
      kind: "truncated",
      detail: `the tail was truncated: ${range} gone (the trail ends at ${lastSeq || "nothing"}), but ${describe(proof)} proves record ${proof.seq} existed`,
      checkpoint: refOf(proof),
    };
  }

  #match(cp: KnownCheckpoint): void {
    this.matched += 1;
    if (this.newest === undefined || cp.seq >= this.newest.seq) this.newest = refOf(cp);
  }

  #contradicted(cp: KnownCheckpoint): BrokenLink {
    const after = this.newest ? `checkpoint ${this.newest.seq}` : "the start";
    const newestOverall = this.#cps[this.#cps.length - 1].seq === cp.seq;
    return newestOverall
      ? {
          seq: cp.seq,
          kind: "truncated",
          detail: `record ${cp.seq} is not the record ${describe(cp)} signed: the trail was cut back after ${after} and re-written with other records`,
          checkpoint: refOf(cp),
        }
      : {
          seq: cp.seq,
          kind: "changed",
          detail: `record ${cp.seq} is not the record ${describe(cp)} signed: records after ${after} up to ${cp.seq} were rewritten with recomputed hashes`,
          checkpoint: refOf(cp),
        };
  }
}

function refOf(cp: CheckpointRef): CheckpointRef {
  return { seq: cp.seq, time: cp.time, kid: cp.kid, source: cp.source };
}

function sourceName(source: CheckpointSource): string {
  return source === "stored" ? "stored" : source === "external" ? "external" : "file's";
}

function describe(cp: CheckpointRef): string {
  const when = Number.isFinite(cp.time) ? new Date(cp.time).toISOString() : "an unknown time";
  return `the ${sourceName(cp.source)} checkpoint at seq ${cp.seq} (signed ${when} by key ${cp.kid})`;
}

function walk(
  db: Database,
  onProgress: VerifyOptions["onProgress"],
  cps: readonly KnownCheckpoint[],
  anchorFor: (seq: number, prevHash: string) => KnownCheckpoint | undefined,
): Walked {
  let total = 0;
  if (onProgress) {
    // max - min + 1 is the count of an intact trail, read from the primary key without a scan.
    const r = db.prepare("SELECT min(seq) AS lo, max(seq) AS hi FROM audit_events").get() as {
      lo: number | null;
      hi: number | null;
    };
    total = r.lo === null || r.hi === null ? 0 : r.hi - r.lo + 1;
  }
  const cursor = new CheckpointCursor(cps);
  let anchor: RetentionAnchor | undefined;
  let prevSeq = 0;
  let prevHash = "";
  let prevPrevHash = "";
  // A trail that does not start at 1 may start at a retention anchor (looked up before iterating:
  // the connection is busy while it iterates).
  const start = db.prepare("SELECT seq, prev_hash FROM audit_events ORDER BY seq LIMIT 1").get() as
    | { seq: number; prev_hash: string }
    | undefined;
  const firstSeq = start?.seq ?? 0;
  if (start !== undefined && start.seq > 1) {
    const a = anchorFor(start.seq - 1, start.prev_hash);
    if (a !== undefined) {
      anchor = { seq: a.seq, hash: a.hash, time: a.time, kid: a.kid };
      cursor.startAt(a);
      prevSeq = a.seq;
      prevHash = a.hash;
    }
  }

  const rows = db
    .prepare<[], Row>(
      "SELECT seq, time, type, subject, credential, actions, resource, decision, status, data, prev_hash, hash " +
        "FROM audit_events ORDER BY seq",
    )
    .iterate();
  let done = 0;
  const stop = (broken: BrokenLink): Walked => {
    rows.return?.();
    const offset = anchor?.seq ?? 0;
    return {
      ok: false,
      count: Math.max(0, broken.seq - 1 - offset),
      firstBroken: broken,
      anchor,
      firstSeq,
      lastSeq: prevSeq,
      matched: cursor.matched,
      beforeAnchor: cursor.beforeAnchor,
      newest: cursor.newest,
    };
  };
  for (const row of rows) {
    done += 1;
    if (onProgress && done % PROGRESS_EVERY === 0) onProgress(done, total);
    const broken = checkRow(row, prevSeq, prevHash, prevPrevHash, rows) ?? cursor.record(row.seq, row.hash);
    if (broken !== undefined) return stop(broken);
    if (row.type === "audit.pruned") cursor.pruned((JSON.parse(row.data) as AuditEvent).details);
    prevSeq = row.seq;
    prevPrevHash = prevHash;
    prevHash = row.hash;
  }
  onProgress?.(done, total);
  const broken = cursor.end(prevSeq, anchor);
  if (broken !== undefined) return stop(broken);
  return {
    ok: true,
    count: done,
    anchor,
    firstSeq,
    lastSeq: prevSeq,
    matched: cursor.matched,
    beforeAnchor: cursor.beforeAnchor,
    newest: cursor.newest,
  };
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
      detail:
        prevSeq === 0
          ? `${range} missing: the trail starts at ${seq}, and no checkpoint at seq ${seq - 1} anchors it as a retention prune would`
          : `${range} missing (seq ${prevSeq} is followed by ${seq})`,
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
