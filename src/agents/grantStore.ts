import type BetterSqlite3 from "better-sqlite3";
import type { Action } from "../cosmos/types.js";
import { type Migration, migrate } from "../store/migrate.js";
import { type Database, openDatabase } from "../store/sqlite.js";
import type { JtiStore } from "./assertion.js";
import { LiveGrant, type Usage } from "./enforce.js";
import type { GrantRecord, GrantUsage, PublicKeyJwk } from "./grants.js";

/**
 * Schema of `stateDir/agents.db` (its own file: `PRAGMA user_version` counts these steps only).
 * Times are ms since the epoch; lists and the public key are JSON text.
 *
 * - `grants`: one row per grant; `status` is pending → active → revoked (expiry and spent budgets
 *   are computed, not stored); `used_*` are the counts written so far (in batches, see
 *   {@link GrantStore.flush}); `canonical` is exactly the text the confirming tap signed.
 * - `assertion_jtis`: the `jti` of every client assertion accepted, until it expires (single use).
 */
export const agentMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    sql: `
      CREATE TABLE grants (
        id              TEXT    PRIMARY KEY,
        user_id         TEXT    NOT NULL,
        person          TEXT    NOT NULL,
        agent           TEXT    NOT NULL,
        actions         TEXT    NOT NULL,
        scopes          TEXT    NOT NULL,
        partition_keys  TEXT,
        public_key      TEXT    NOT NULL,
        key_thumbprint  TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        budget_requests INTEGER,
        budget_charge   REAL,
        used_requests   INTEGER NOT NULL DEFAULT 0,
        used_charge     REAL    NOT NULL DEFAULT 0,
        status          TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
        confirmed_by    TEXT,
        confirmed_at    INTEGER,
        confirmed_amr   TEXT,
        revoked_at      INTEGER,
        revoked_reason  TEXT,
        canonical       TEXT    NOT NULL
      ) STRICT;
      CREATE INDEX grants_user ON grants (user_id, created_at);
      CREATE INDEX grants_expires_at ON grants (expires_at);

      CREATE TABLE assertion_jtis (
        grant_id   TEXT    NOT NULL,
        jti        TEXT    NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (grant_id, jti)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);
    `,
  },
]);

/** Options of {@link openGrantStore}. */
export interface GrantStoreOptions {
  /**
   * How the data path learns of changes other connections made (another gateway process, a CLI):
   * `0` (default) asks SQLite's `PRAGMA data_version` on each agent request (a few µs); above 0, a
   * background timer asks every that many ms and the data path reads a number. Changes made through
   * this store are seen at once either way.
   */
  pollMs?: number;
  /** How often counted usage is written to the file, in ms. Default 1000. */
  flushMs?: number;
  /** Live (unexpired) assertion jtis one grant may have; beyond, assertions are refused. Default 1000. */
  maxLiveJtis?: number;
  /** How long a grant stays in the data path's view after it expired or was revoked, in ms (for precise refusals). Default 24 h. */
  keepEndedMs?: number;
}

interface GrantRow {
  id: string;
  user_id: string;
  person: string;
  agent: string;
  actions: string;
  scopes: string;
  partition_keys: string | null;
  public_key: string;
  key_thumbprint: string;
  created_at: number;
  expires_at: number;
  budget_requests: number | null;
  budget_charge: number | null;
  used_requests: number;
  used_charge: number;
  status: GrantRecord["status"];
  confirmed_by: string | null;
  confirmed_at: number | null;
  confirmed_amr: string | null;
  revoked_at: number | null;
  revoked_reason: string | null;
  canonical: string;
}

/**
 * The agent grants of a gateway: `stateDir/agents.db` (WAL, mode 0600), with the data path's view
 * of it held in memory.
 *
 * The data path ({@link lookup}) reads no table per request: it checks whether the file changed
 * (`PRAGMA data_version`, or a polled copy of it, plus a counter of this store's own writes) and,
 * only when it did, reloads the grants that are live or recently ended into a Map of compiled
 * {@link LiveGrant}s. Usage (requests, request charge) is counted in memory per grant and written
 * in one transaction every `flushMs` (and on close): a crash loses at most that much counting, and
 * another gateway process sharing the file sees this one's usage within `flushMs` plus its own
 * change check. See enforce.ts for what the budget check guarantees.
 *
 * @example
 * ```ts
 * const grants = openGrantStore(join(stateDir, "agents.db"));
 * grants.create(record);
 * grants.lookup(record.id, Date.now())?.outside("read", segments, pk);
 * grants.close();
 * ```
 */
export class GrantStore implements JtiStore {
  readonly db: Database;
  readonly #s: ReturnType<typeof prepare>;
  readonly #pollMs: number;
  readonly #maxLiveJtis: number;
  readonly #keepEndedMs: number;
  readonly #timers: NodeJS.Timeout[] = [];
  /** Usage per grant id, kept across reloads of the view. */
  readonly #usage = new Map<string, Usage>();
  #dataVersion: number;
  /** Grows when this store writes, or when another connection's write is noticed. */
  #epoch = 0;
  #viewEpoch = -1;
  /** The view is reloaded at least this often, so grants ended long ago leave it. */
  #viewUntil = 0;
  #view = new Map<string, LiveGrant>();
  #closed = false;
  readonly #flushTx: BetterSqlite3.Transaction<() => void>;
  readonly #useJtiTx: BetterSqlite3.Transaction<
    (grantId: string, jti: string, expiresAt: number, now: number) => "ok" | "replayed" | "full"
  >;

  constructor(db: Database, opts: GrantStoreOptions = {}) {
    this.db = db;
    this.#s = prepare(db);
    const pollMs = opts.pollMs ?? 0;
    if (!Number.isFinite(pollMs) || pollMs < 0)
      throw new TypeError("pollMs must be 0 or a positive number of ms");
    this.#pollMs = pollMs;
    this.#maxLiveJtis = opts.maxLiveJtis ?? 1000;
    this.#keepEndedMs = opts.keepEndedMs ?? 24 * 60 * 60 * 1000;
    this.#dataVersion = this.#s.dataVersion.get() as number;
    if (pollMs > 0) {
      const t = setInterval(() => this.#noticeChanges(), pollMs);
      t.unref();
      this.#timers.push(t);
    }
    const flushMs = opts.flushMs ?? 1000;
    if (!Number.isFinite(flushMs) || flushMs <= 0)
      throw new TypeError("flushMs must be a positive number of ms");
    const f = setInterval(() => {
      try {
        this.flush();
      } catch {
        // Kept in memory; the next flush tries again.
      }
    }, flushMs);
    f.unref();
    this.#timers.push(f);
    this.#flushTx = db.transaction(() => {
      for (const [id, u] of this.#usage) {
        if (u.unflushedRequests === 0 && u.unflushedCharge === 0) continue;
        this.#s.addUsage.run(u.unflushedRequests, u.unflushedCharge, id);
      }
    });
    this.#useJtiTx = db.transaction((grantId: string, jti: string, expiresAt: number, now: number) => {
      this.#s.deleteExpiredJtis.run(now);
      if (this.#s.hasJti.get(grantId, jti) !== undefined) return "replayed" as const;
      if ((this.#s.countJtis.get(grantId) as number) >= this.#maxLiveJtis) return "full" as const;
      this.#s.insertJti.run(grantId, jti, expiresAt);
      return "ok" as const;
    });
  }

  // ---- the control plane -------------------------------------------------------------------

  /** Stores a new (pending) grant. */
  create(g: GrantRecord): void {
    this.#s.insert.run(toRow(g));
    this.#epoch++;
  }

  /** A grant by id (from the file), or undefined. */
  get(id: string): GrantRecord | undefined {
    const row = this.#s.get.get(id) as GrantRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** Grants, newest first: one person's (`userId`), or everyone's. */
  list(filter: { userId?: string } = {}): GrantRecord[] {
    const rows = (
      filter.userId !== undefined ? this.#s.listByUser.all(filter.userId) : this.#s.listAll.all()
    ) as GrantRow[];
    return rows.map(fromRow);
  }

  /** How many of a person's grants are pending or active and not expired (a person may hold a bounded number). */
  countLive(userId: string, now: number): number {
    return this.#s.countLive.get(userId, now) as number;
  }

  /**
   * Activates a pending grant with the key whose tap confirmed it. Returns the grant as it is now,
   * or undefined when it is not pending any more (confirmed, revoked) or does not exist.
   */
  confirm(
    id: string,
    by: { credentialId: string; amr: readonly string[]; at: number },
  ): GrantRecord | undefined {
    const changed = this.#s.confirm.run(by.credentialId, by.at, JSON.stringify(by.amr), id).changes;
    if (changed === 0) return undefined;
    this.#epoch++;
    return this.get(id);
  }

  /** Revokes a pending or active grant. Returns it as it is now, or undefined when it was already revoked or is unknown. */
  revoke(id: string, reason: string, at: number): GrantRecord | undefined {
    const changed = this.#s.revoke.run(at, reason, id).changes;
    if (changed === 0) return undefined;
    this.#epoch++;
    return this.get(id);
  }

  /** A grant's usage: what the file holds plus what this process counted and has not written yet. */
  usage(g: Pick<GrantRecord, "id">, stored?: GrantUsage): GrantUsage {
    const base = stored ?? this.#storedUsage(g.id);
    const u = this.#usage.get(g.id);
    return {
      requests: base.requests + (u?.unflushedRequests ?? 0),
      requestCharge: base.requestCharge + (u?.unflushedCharge ?? 0),
    };
  }

  #storedUsage(id: string): GrantUsage {
    const row = this.#s.getUsage.get(id) as { used_requests: number; used_charge: number } | undefined;
    return { requests: row?.used_requests ?? 0, requestCharge: row?.used_charge ?? 0 };
  }

  /**
   * Records a client assertion's `jti` for a grant until `expiresAt` (single use). Expired jtis are
   * deleted first; a grant may have at most `maxLiveJtis` live ones (`"full"` beyond), so the table
   * stays bounded even for an agent asking for tokens in a loop.
   */
  useJti(grantId: string, jti: string, expiresAt: number, now: number): "ok" | "replayed" | "full" {
    return this.#useJtiTx.immediate(grantId, jti, expiresAt, now);
  }

  // ---- the data path -----------------------------------------------------------------------

  /**
   * The data path's view of a grant, from memory. Reloaded (every live or recently ended grant,
   * compiled) only when the file changed or once a minute; otherwise a Map lookup after the change
   * check. Undefined for an unknown grant or one that ended more than `keepEndedMs` ago.
   */
  lookup(id: string, now: number): LiveGrant | undefined {
    if (this.#pollMs === 0) this.#noticeChanges();
    if (this.#epoch !== this.#viewEpoch || now >= this.#viewUntil) this.#reload(now);
    return this.#view.get(id);
  }

  #noticeChanges(): void {
    if (this.#closed) return;
    const v = this.#s.dataVersion.get() as number;
    if (v !== this.#dataVersion) {
      this.#dataVersion = v;
      this.#epoch++;
    }
  }

  #reload(now: number): void {
    const epoch = this.#epoch;
    const rows = this.#s.listViewable.all(now - this.#keepEndedMs, now - this.#keepEndedMs) as GrantRow[];
    const view = new Map<string, LiveGrant>();
    for (const row of rows) {
      let u = this.#usage.get(row.id);
      if (u === undefined) {
        u = { baseRequests: 0, baseCharge: 0, unflushedRequests: 0, unflushedCharge: 0 };
        this.#usage.set(row.id, u);
      }
      // The file's counts include every flush (this process's and others'); unflushed ones are ours.
      u.baseRequests = row.used_requests;
      u.baseCharge = row.used_charge;
      view.set(row.id, new LiveGrant(fromRow(row), u));
    }
    // Usage of grants that left the view is dropped once written.
    for (const [id, u] of this.#usage) {
      if (!view.has(id) && u.unflushedRequests === 0 && u.unflushedCharge === 0) this.#usage.delete(id);
    }
    this.#view = view;
    this.#viewEpoch = epoch;
    this.#viewUntil = now + 60_000;
  }

  /**
   * Writes the usage counted since the last flush, in one transaction (`used = used + delta`, so
   * several processes add up). Called by a timer every `flushMs` and on close.
   */
  flush(): void {
    if (this.#closed) return;
    this.#flushTx.immediate();
    for (const u of this.#usage.values()) {
      u.baseRequests += u.unflushedRequests;
      u.baseCharge += u.unflushedCharge;
      u.unflushedRequests = 0;
      u.unflushedCharge = 0;
    }
  }

  /** Writes pending usage, stops the timers and closes the file. */
  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
    } finally {
      this.#closed = true;
      for (const t of this.#timers) clearInterval(t);
      this.db.close();
    }
  }
}

/**
 * Opens (creating if needed) `agents.db` and brings its schema up to date.
 *
 * @throws {StoreError} `ERR_STORE_OPEN` or `ERR_STORE_MIGRATE`.
 * @example const grants = openGrantStore(join(stateDir, "agents.db"));
 */
export function openGrantStore(file: string, opts: GrantStoreOptions = {}): GrantStore {
  const db = openDatabase(file);
  try {
    migrate(db, agentMigrations);
    return new GrantStore(db, opts);
  } catch (err) {
    db.close();
    throw err;
  }
}

const COLUMNS =
  "id, user_id, person, agent, actions, scopes, partition_keys, public_key, key_thumbprint, created_at, " +
  "expires_at, budget_requests, budget_charge, used_requests, used_charge, status, confirmed_by, " +
  "confirmed_at, confirmed_amr, revoked_at, revoked_reason, canonical";

function prepare(db: Database) {
  return {
    insert: db.prepare(
      `INSERT INTO grants (${COLUMNS}) VALUES (@id, @user_id, @person, @agent, @actions, @scopes, @partition_keys, ` +
        "@public_key, @key_thumbprint, @created_at, @expires_at, @budget_requests, @budget_charge, @used_requests, " +
        "@used_charge, @status, @confirmed_by, @confirmed_at, @confirmed_amr, @revoked_at, @revoked_reason, @canonical)",
    ),
    get: db.prepare(`SELECT ${COLUMNS} FROM grants WHERE id = ?`),
    getUsage: db.prepare("SELECT used_requests, used_charge FROM grants WHERE id = ?"),
    listByUser: db.prepare(`SELECT ${COLUMNS} FROM grants WHERE user_id = ? ORDER BY created_at DESC, id`),
    listAll: db.prepare(`SELECT ${COLUMNS} FROM grants ORDER BY created_at DESC, id`),
    countLive: db
      .prepare(
        "SELECT count(*) FROM grants WHERE user_id = ? AND status IN ('pending', 'active') AND expires_at > ?",
      )
      .pluck(),
    // Live grants, and those that ended (expired or revoked) recently, for precise refusals.
    listViewable: db.prepare(
      `SELECT ${COLUMNS} FROM grants WHERE status != 'pending' AND expires_at > ? AND (revoked_at IS NULL OR revoked_at > ?)`,
    ),
    confirm: db.prepare(
      "UPDATE grants SET status = 'active', confirmed_by = ?, confirmed_at = ?, confirmed_amr = ? WHERE id = ? AND status = 'pending'",
    ),
    revoke: db.prepare(
      "UPDATE grants SET status = 'revoked', revoked_at = ?, revoked_reason = ? WHERE id = ? AND status != 'revoked'",
    ),
    addUsage: db.prepare(
      "UPDATE grants SET used_requests = used_requests + ?, used_charge = used_charge + ? WHERE id = ?",
    ),
    deleteExpiredJtis: db.prepare("DELETE FROM assertion_jtis WHERE expires_at <= ?"),
    hasJti: db.prepare("SELECT 1 FROM assertion_jtis WHERE grant_id = ? AND jti = ?"),
    countJtis: db.prepare("SELECT count(*) FROM assertion_jtis WHERE grant_id = ?").pluck(),
    insertJti: db.prepare("INSERT INTO assertion_jtis (grant_id, jti, expires_at) VALUES (?, ?, ?)"),
    dataVersion: db.prepare("PRAGMA data_version").pluck(),
  };
}

function toRow(g: GrantRecord): GrantRow {
  return {
    id: g.id,
    user_id: g.userId,
    person: g.person,
    agent: g.agent,
    actions: JSON.stringify(g.actions),
    scopes: JSON.stringify(g.scopes),
    partition_keys: g.partitionKeys === null ? null : JSON.stringify(g.partitionKeys),
    public_key: JSON.stringify(g.publicKey),
    key_thumbprint: g.keyThumbprint,
    created_at: g.createdAt,
    expires_at: g.expiresAt,
    budget_requests: g.budget.requests,
    budget_charge: g.budget.requestCharge,
    used_requests: 0,
    used_charge: 0,
    status: g.status,
    confirmed_by: g.confirmedBy,
    confirmed_at: g.confirmedAt,
    confirmed_amr: g.confirmedAmr === null ? null : JSON.stringify(g.confirmedAmr),
    revoked_at: g.revokedAt,
    revoked_reason: g.revokedReason,
    canonical: g.canonical,
  };
}

function fromRow(r: GrantRow): GrantRecord {
  return {
    id: r.id,
    userId: r.user_id,
    person: r.person,
    agent: r.agent,
    actions: JSON.parse(r.actions) as Action[],
    scopes: JSON.parse(r.scopes) as string[],
    partitionKeys: r.partition_keys === null ? null : (JSON.parse(r.partition_keys) as string[]),
    publicKey: JSON.parse(r.public_key) as PublicKeyJwk,
    keyThumbprint: r.key_thumbprint,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    budget: { requests: r.budget_requests, requestCharge: r.budget_charge },
    status: r.status,
    confirmedBy: r.confirmed_by,
    confirmedAt: r.confirmed_at,
    confirmedAmr: r.confirmed_amr === null ? null : (JSON.parse(r.confirmed_amr) as string[]),
    revokedAt: r.revoked_at,
    revokedReason: r.revoked_reason,
    canonical: r.canonical,
  };
}
