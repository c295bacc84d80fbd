import type { ApprovalOperation, ApprovalView } from "../agents/contract.js";
import { type Database, type Migration, migrate, openDatabase } from "../store/index.js";

/** An approval's state, as stored. */
export type ApprovalStatus = ApprovalView["status"];

/** One approver's tap: who, with which key, when, and the assertion that proves it. */
export interface ApprovalVote {
  userId: string;
  /** The approver's user name. */
  by: string;
  /** The credential ID (base64url) of the key that signed. */
  credential: string;
  at: number;
  /** The assertion's parts, base64url, exactly as the authenticator sent them: the proof. */
  authenticatorData: string;
  clientDataJSON: string;
  signature: string;
}

/** An approval as stored in approvals.db. */
export interface ApprovalRecord {
  id: string;
  operation: ApprovalOperation;
  operationHash: string;
  status: ApprovalStatus;
  approvers: string;
  quorum: number;
  /** Index of the policy rule that asked for it. */
  rule: number;
  createdAt: number;
  expiresAt: number;
  /** When it was used, denied or expired. */
  endedAt: number | null;
  denial: { by: string; at: number; reason: string } | null;
  votes: ApprovalVote[];
}

/** What a new approval is made of. */
export interface NewApproval {
  id: string;
  operation: ApprovalOperation;
  operationHash: string;
  approvers: string;
  quorum: number;
  rule: number;
  createdAt: number;
  expiresAt: number;
}

/** Ended approvals (without their bodies) are kept this long, then deleted. */
export const ENDED_APPROVAL_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Schema of approvals.db. An approval's operation is stored without its body (`operation`, body
 * null) and the body apart (`body`, the JSON approvers are shown) — deleted (NULL) as soon as the
 * approval is used, denied or expires, so document bodies live only as long as they are needed.
 */
export const approvalMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    sql: `
      CREATE TABLE approvals (
        id             TEXT    PRIMARY KEY,
        operation_hash TEXT    NOT NULL,
        operation      TEXT    NOT NULL,
        body           TEXT,
        person         TEXT    NOT NULL,
        agent          TEXT,
        rule           INTEGER NOT NULL,
        approvers      TEXT    NOT NULL,
        quorum         INTEGER NOT NULL,
        status         TEXT    NOT NULL,
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        ended_at       INTEGER,
        denied_by      TEXT,
        denied_at      INTEGER,
        denial_reason  TEXT
      );
      CREATE INDEX approvals_hash ON approvals (operation_hash, status);
      CREATE INDEX approvals_status ON approvals (status, expires_at);
      CREATE INDEX approvals_person ON approvals (person, status);
      CREATE TABLE approval_votes (
        approval_id        TEXT    NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
        user_id            TEXT    NOT NULL,
        user_name          TEXT    NOT NULL,
        credential         TEXT    NOT NULL,
        at                 INTEGER NOT NULL,
        authenticator_data TEXT    NOT NULL,
        client_data_json   TEXT    NOT NULL,
        signature          TEXT    NOT NULL,
        PRIMARY KEY (approval_id, user_id)
      );
    `,
  },
]);

interface ApprovalRow {
  id: string;
  operation_hash: string;
  operation: string;
  body: string | null;
  rule: number;
  approvers: string;
  quorum: number;
  status: ApprovalStatus;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  denied_by: string | null;
  denied_at: number | null;
  denial_reason: string | null;
}

interface VoteRow {
  user_id: string;
  user_name: string;
  credential: string;
  at: number;
  authenticator_data: string;
  client_data_json: string;
  signature: string;
}

/** The result of {@link ApprovalStore.addVote}. */
export type VoteResult =
  | { ok: true; record: ApprovalRecord; complete: boolean }
  | { ok: false; why: "not_found" | "not_pending" | "expired" | "already_voted"; record?: ApprovalRecord };

/** The open statuses: the approval can still be decided or used. */
const OPEN = "('pending', 'approved')";

/**
 * The approvals database (stateDir/approvals.db, mode 0600, WAL): approvals, their operations and
 * the approvers' taps. Every state change is one statement or one IMMEDIATE transaction, so two
 * approvers, or two retries of the same request, cannot both win.
 *
 * @example
 * ```ts
 * const store = openApprovalStore(join(stateDir, "approvals.db"));
 * store.create({ id, operation, operationHash, approvers: "self", quorum: 1, rule: 0, createdAt, expiresAt });
 * store.consume(id, Date.now()); // true once
 * ```
 */
export class ApprovalStore {
  readonly #db: Database;
  readonly #s: ReturnType<typeof statements>;
  readonly #addVote: (id: string, vote: ApprovalVote, now: number) => VoteResult;

  constructor(db: Database) {
    this.#db = db;
    // Deleted bodies are overwritten with zeros in the file, not only unlinked from the b-tree.
    db.pragma("secure_delete = ON");
    migrate(db, approvalMigrations);
    const s = statements(db);
    this.#s = s;
    this.#addVote = (id, vote, now) =>
      db
        .transaction((): VoteResult => {
          const row = s.get.get(id);
          if (row === undefined) return { ok: false, why: "not_found" };
          if (row.status !== "pending") return { ok: false, why: "not_pending", record: this.#toRecord(row) };
          if (row.expires_at <= now) return { ok: false, why: "expired", record: this.#toRecord(row) };
          if (s.hasVote.get(id, vote.userId) !== undefined)
            return { ok: false, why: "already_voted", record: this.#toRecord(row) };
          s.insertVote.run({
            approval_id: id,
            user_id: vote.userId,
            user_name: vote.by,
            credential: vote.credential,
            at: vote.at,
            authenticator_data: vote.authenticatorData,
            client_data_json: vote.clientDataJSON,
            signature: vote.signature,
          });
          const count = (s.countVotes.get(id) as { n: number }).n;
          const complete = count >= row.quorum;
          if (complete) s.setApproved.run(id);
          return { ok: true, complete, record: this.#toRecord(s.get.get(id)!) };
        })
        .immediate();
  }

  /** Stores a new pending approval. */
  create(a: NewApproval): ApprovalRecord {
    const { body, ...withoutBody } = a.operation;
    this.#s.insert.run({
      id: a.id,
      operation_hash: a.operationHash,
      operation: JSON.stringify({ ...withoutBody, body: null }),
      body: body === null || body === undefined ? null : JSON.stringify(body),
      person: a.operation.person,
      agent: a.operation.agent,
      rule: a.rule,
      approvers: a.approvers,
      quorum: a.quorum,
      status: "pending",
      created_at: a.createdAt,
      expires_at: a.expiresAt,
    });
    return this.get(a.id)!;
  }

  get(id: string): ApprovalRecord | undefined {
    const row = this.#s.get.get(id);
    return row === undefined ? undefined : this.#toRecord(row);
  }

  /** The newest pending or approved, unexpired approval of this exact operation. */
  findOpen(operationHash: string, now: number): ApprovalRecord | undefined {
    const row = this.#s.findOpen.get(operationHash, now);
    return row === undefined ? undefined : this.#toRecord(row);
  }

  /** The newest denial of this exact operation that has not reached its approval's expiry. */
  findDenied(operationHash: string, now: number): ApprovalRecord | undefined {
    const row = this.#s.findDenied.get(operationHash, now);
    return row === undefined ? undefined : this.#toRecord(row);
  }

  /** Pending approvals a person has asked for (themselves or through agents), unexpired. */
  countPending(person: string, now: number): number {
    return (this.#s.countPending.get(person, now) as { n: number }).n;
  }

  /** Records one approver's tap; the approval becomes `approved` when the quorum is reached. */
  addVote(id: string, vote: ApprovalVote, now: number): VoteResult {
    return this.#addVote(id, vote, now);
  }

  /** Denies a pending (or approved, still unused) approval; its body is deleted. Undefined when it is not open. */
  deny(id: string, by: string, reason: string, now: number): ApprovalRecord | undefined {
    const changed = this.#s.deny.run({ id, by, reason, now }).changes;
    return changed === 1 ? this.get(id) : undefined;
  }

  /** Uses an approved, unexpired approval: true for exactly one caller; its body is deleted. */
  consume(id: string, now: number): boolean {
    return this.#s.consume.run(now, id, now).changes === 1;
  }

  /** Expires every open approval whose time is up (their bodies deleted) and returns them. */
  expireDue(now: number): ApprovalRecord[] {
    const rows = this.#s.expire.all(now, now);
    return rows.map((r) => this.#toRecord(r));
  }

  /** The earliest expiry among open approvals, when there is one. */
  nextExpiry(): number | undefined {
    const row = this.#s.nextExpiry.get() as { at: number | null };
    return row.at ?? undefined;
  }

  /** Open approvals, and those ended since `endedSince`, newest first (at most `limit`). */
  list(endedSince: number, limit: number): ApprovalRecord[] {
    return this.#s.list.all(endedSince, limit).map((r) => this.#toRecord(r));
  }

  /** Deletes approvals that ended before `before` (with their votes). */
  prune(before: number): number {
    return this.#s.prune.run(before).changes;
  }

  /**
   * Copies the WAL into the file and empties it, so deleted bodies (zeroed by secure_delete) leave
   * no copy in `approvals.db-wal` either. Called after an approval ends, off the request's path.
   */
  scrub(): void {
    this.#db.pragma("wal_checkpoint(TRUNCATE)");
  }

  close(): void {
    this.#db.close();
  }

  #toRecord(row: ApprovalRow): ApprovalRecord {
    const operation = JSON.parse(row.operation) as ApprovalOperation;
    operation.body = row.body === null ? null : (JSON.parse(row.body) as unknown);
    const votes = (this.#s.votes.all(row.id) as VoteRow[]).map(
      (v): ApprovalVote => ({
        userId: v.user_id,
        by: v.user_name,
        credential: v.credential,
        at: v.at,
        authenticatorData: v.authenticator_data,
        clientDataJSON: v.client_data_json,
        signature: v.signature,
      }),
    );
    return {
      id: row.id,
      operation,
      operationHash: row.operation_hash,
      status: row.status,
      approvers: row.approvers,
      quorum: row.quorum,
      rule: row.rule,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      endedAt: row.ended_at,
      denial:
        row.denied_by === null
          ? null
          : { by: row.denied_by, at: row.denied_at ?? 0, reason: row.denial_reason ?? "" },
      votes,
    };
  }
}

/**
 * Opens (creating and migrating) stateDir/approvals.db: mode 0600, WAL, synchronous FULL.
 *
 * @example const store = openApprovalStore(join(stateDir, "approvals.db"));
 */
export function openApprovalStore(file: string): ApprovalStore {
  const db = openDatabase(file);
  try {
    return new ApprovalStore(db);
  } catch (err) {
    db.close();
    throw err;
  }
}

function statements(db: Database) {
  const one = (sql: string) => db.prepare<unknown[], ApprovalRow>(sql);
  return {
    insert: db.prepare(
      "INSERT INTO approvals (id, operation_hash, operation, body, person, agent, rule, approvers, quorum, status, created_at, expires_at) " +
        "VALUES (@id, @operation_hash, @operation, @body, @person, @agent, @rule, @approvers, @quorum, @status, @created_at, @expires_at)",
    ),
    get: one("SELECT * FROM approvals WHERE id = ?"),
    findOpen: one(
      `SELECT * FROM approvals WHERE operation_hash = ? AND status IN ${OPEN} AND expires_at > ? ORDER BY created_at DESC LIMIT 1`,
    ),
    findDenied: one(
      "SELECT * FROM approvals WHERE operation_hash = ? AND status = 'denied' AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
    ),
    countPending: db.prepare(
      "SELECT count(*) AS n FROM approvals WHERE person = ? AND status = 'pending' AND expires_at > ?",
    ),
    hasVote: db.prepare("SELECT 1 FROM approval_votes WHERE approval_id = ? AND user_id = ?"),
    insertVote: db.prepare(
      "INSERT INTO approval_votes (approval_id, user_id, user_name, credential, at, authenticator_data, client_data_json, signature) " +
        "VALUES (@approval_id, @user_id, @user_name, @credential, @at, @authenticator_data, @client_data_json, @signature)",
    ),
    countVotes: db.prepare("SELECT count(*) AS n FROM approval_votes WHERE approval_id = ?"),
    votes: db.prepare("SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at, user_name"),
    setApproved: db.prepare("UPDATE approvals SET status = 'approved' WHERE id = ? AND status = 'pending'"),
    deny: db.prepare(
      "UPDATE approvals SET status = 'denied', body = NULL, ended_at = @now, denied_by = @by, denied_at = @now, denial_reason = @reason " +
        `WHERE id = @id AND status IN ${OPEN}`,
    ),
    consume: db.prepare(
      "UPDATE approvals SET status = 'used', body = NULL, ended_at = ? WHERE id = ? AND status = 'approved' AND expires_at > ?",
    ),
    expire: one(
      `UPDATE approvals SET status = 'expired', body = NULL, ended_at = ? WHERE status IN ${OPEN} AND expires_at <= ? RETURNING *`,
    ),
    nextExpiry: db.prepare(`SELECT min(expires_at) AS at FROM approvals WHERE status IN ${OPEN}`),
    list: one(
      `SELECT * FROM approvals WHERE status IN ${OPEN} OR ended_at >= ? ORDER BY created_at DESC, id LIMIT ?`,
    ),
    prune: db.prepare(`DELETE FROM approvals WHERE status NOT IN ${OPEN} AND ended_at < ?`),
  };
}
