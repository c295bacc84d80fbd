import { StoreError } from "./errors.js";
import { identityMigrations } from "./identityMigrations.js";
import { migrate } from "./migrate.js";
import type {
  ChallengeRecord,
  CredentialRecord,
  IdentityStore,
  InviteRecord,
  RefreshTokenRecord,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from "./ports.js";
import { type Database, openDatabase } from "./sqlite.js";

/** Options of {@link openIdentityStore}. */
export interface IdentityStoreOptions {
  /**
   * How {@link IdentityStore.revocationVersion} learns of changes made by other connections
   * (another gateway process, the CLI) to the same file:
   * - `0` (default): every call asks SQLite (`PRAGMA data_version`), a few µs, always exact;
   * - `> 0`: a background timer (unref'd) asks every that many ms, and each call only reads a
   *   number (a few ns); another connection's change is then seen within that delay.
   *
   * Changes made through this store are seen at once either way.
   */
  revocationPollMs?: number;
  /** Stamps when a credential was removed (kept beside its tombstone); default `Date.now`. */
  clock?: () => number;
  /**
   * How long a **revoked** session's row is kept after its maximum age (`expiresAt`), in ms;
   * default {@link REVOKED_SESSION_RETENTION_MS} (24 h). Until then its id stays in
   * `revocations().sessions`, so an access token it issued is refused to the end of its life even
   * if that were to outlast the session (tokens live at most minutes, and are capped at the
   * session's `expiresAt` by the issuer). Sessions that were never revoked are deleted at expiry.
   */
  revokedSessionRetentionMs?: number;
}

/**
 * Default of {@link IdentityStoreOptions.revokedSessionRetentionMs}: 24 h, far beyond any access
 * token's life (at most the keyring's token TTL, 10 minutes by default).
 */
export const REVOKED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The SQLite {@link IdentityStore} returned by {@link openIdentityStore}. */
export type SqliteIdentityStore = IdentityStore & {
  /** Stops the revocation poll timer, if any, and closes the database. */
  close(): void;
  /** The underlying connection (for health checks and tests). */
  readonly db: Database;
};

/**
 * Opens (creating and migrating if needed) the identity state database: users, invites, WebAuthn
 * credentials, challenges, sessions, refresh tokens and signing keys. The file is 0600 in WAL
 * mode with `synchronous = FULL` (see {@link openDatabase}); every method is synchronous.
 *
 * Several processes may share one file: single-use operations (`redeemInvite`,
 * `consumeChallenge`, `useRefreshToken`) are atomic, `replaceSigningKeys` is compare-and-swap, and
 * `revocationVersion()` notices other processes' revocations.
 *
 * Secrets are never stored in plain text by this store: invites and refresh tokens arrive hashed,
 * private signing keys arrive as the caller chose to protect them.
 *
 * Expired rows are deleted opportunistically, with the caller's own time (never a clock of this
 * store): invites and refresh tokens when a new one is created (used ones stay until they expire,
 * so a second use can be told from an unknown one), sessions when a new one is created (their
 * refresh tokens go with them; a revoked session stays `revokedSessionRetentionMs` past its expiry,
 * so the revocation outlives every token it issued), challenges when one is consumed.
 *
 * @throws {StoreError} `ERR_STORE_OPEN` or `ERR_STORE_MIGRATE`.
 *
 * @example
 * ```ts
 * const store = openIdentityStore(path.join(config.stateDir, "state.db"));
 * store.createUser({ id, name: "ada", groups: [], admin: true, disabled: false, createdAt: now, webauthnUserId });
 * const invite = store.redeemInvite(sha256b64url(secret), now); // undefined: unknown, used or expired
 * store.close();
 * ```
 */
export function openIdentityStore(file: string, opts: IdentityStoreOptions = {}): SqliteIdentityStore {
  const db = openDatabase(file);
  try {
    migrate(db, identityMigrations);
    return new SqliteStore(db, opts);
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * A challenge whose expiry lies this far before a new challenge's expiry has certainly expired by
 * the caller's clock (challenges live minutes), so putChallenge may delete it.
 */
const CHALLENGE_HORIZON_MS = 24 * 60 * 60 * 1000;

// ---- rows ----------------------------------------------------------------------------------

interface UserRow {
  id: string;
  name: string;
  display_name: string | null;
  groups: string;
  admin: number;
  disabled: number;
  created_at: number;
  webauthn_user_id: string;
}

interface InviteRow {
  secret_hash: string;
  user_name: string;
  groups: string;
  admin: number;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  created_by: string | null;
}

interface CredentialRow {
  id: string;
  user_id: string;
  public_key: Buffer;
  counter: number;
  transports: string;
  aaguid: string;
  fmt: string;
  device_bound: number;
  backed_up: number;
  nickname: string;
  created_at: number;
  last_used_at: number | null;
  use_count: number;
  suspended_at: number | null;
  suspended_reason: string | null;
}

interface ChallengeRow {
  challenge: string;
  purpose: ChallengeRecord["purpose"];
  user_id: string | null;
  data: string | null;
  expires_at: number;
}

interface SessionRow {
  id: string;
  user_id: string;
  credential_id: string;
  amr: string;
  auth_time: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}

interface RefreshTokenRow {
  hash: string;
  session_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

interface SigningKeyRow {
  kid: string;
  alg: "ES256";
  public_jwk: string;
  private_key: string;
  encrypted: number;
  created_at: number;
  activates_at: number;
  retires_at: number;
  expires_at: number;
}

function toUser(r: UserRow): UserRecord {
  const u: UserRecord = {
    id: r.id,
    name: r.name,
    groups: JSON.parse(r.groups) as string[],
    admin: r.admin === 1,
    disabled: r.disabled === 1,
    createdAt: r.created_at,
    webauthnUserId: r.webauthn_user_id,
  };
  if (r.display_name !== null) u.displayName = r.display_name;
  return u;
}

function toInvite(r: InviteRow): InviteRecord {
  const i: InviteRecord = {
    secretHash: r.secret_hash,
    userName: r.user_name,
    groups: JSON.parse(r.groups) as string[],
    admin: r.admin === 1,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
  if (r.used_at !== null) i.usedAt = r.used_at;
  if (r.created_by !== null) i.createdBy = r.created_by;
  return i;
}

function toCredential(r: CredentialRow): CredentialRecord {
  const c: CredentialRecord = {
    id: r.id,
    userId: r.user_id,
    publicKey: new Uint8Array(r.public_key), // a copy, as a plain Uint8Array (not a Buffer)
    counter: r.counter,
    transports: JSON.parse(r.transports) as string[],
    aaguid: r.aaguid,
    fmt: r.fmt,
    deviceBound: r.device_bound === 1,
    backedUp: r.backed_up === 1,
    nickname: r.nickname,
    createdAt: r.created_at,
    useCount: r.use_count,
  };
  if (r.last_used_at !== null) c.lastUsedAt = r.last_used_at;
  if (r.suspended_at !== null) c.suspendedAt = r.suspended_at;
  if (r.suspended_reason !== null) c.suspendedReason = r.suspended_reason;
  return c;
}

function toChallenge(r: ChallengeRow): ChallengeRecord {
  const c: ChallengeRecord = { challenge: r.challenge, purpose: r.purpose, expiresAt: r.expires_at };
  if (r.user_id !== null) c.userId = r.user_id;
  if (r.data !== null) c.data = JSON.parse(r.data) as Record<string, unknown>;
  return c;
}

function toSession(r: SessionRow): SessionRecord {
  const s: SessionRecord = {
    id: r.id,
    userId: r.user_id,
    credentialId: r.credential_id,
    amr: JSON.parse(r.amr) as string[],
    authTime: r.auth_time,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
  if (r.revoked_at !== null) s.revokedAt = r.revoked_at;
  if (r.revoked_reason !== null) s.revokedReason = r.revoked_reason;
  return s;
}

function toRefreshToken(r: RefreshTokenRow): RefreshTokenRecord {
  const t: RefreshTokenRecord = {
    hash: r.hash,
    sessionId: r.session_id,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
  if (r.used_at !== null) t.usedAt = r.used_at;
  return t;
}

function toSigningKey(r: SigningKeyRow): SigningKeyRecord {
  return {
    kid: r.kid,
    alg: r.alg,
    publicJwk: r.public_jwk,
    privateKey: r.private_key,
    encrypted: r.encrypted === 1,
    createdAt: r.created_at,
    activatesAt: r.activates_at,
    retiresAt: r.retires_at,
    expiresAt: r.expires_at,
  };
}

const bit = (b: boolean): number => (b ? 1 : 0);
const opt = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

function userParams(u: UserRecord) {
  return {
    id: u.id,
    name: u.name,
    display_name: opt(u.displayName),
    groups: JSON.stringify(u.groups),
    admin: bit(u.admin),
    disabled: bit(u.disabled),
    created_at: u.createdAt,
    webauthn_user_id: u.webauthnUserId,
  };
}

function inviteParams(i: InviteRecord) {
  return {
    secret_hash: i.secretHash,
    user_name: i.userName,
    groups: JSON.stringify(i.groups),
    admin: bit(i.admin),
    created_at: i.createdAt,
    expires_at: i.expiresAt,
    used_at: opt(i.usedAt),
    created_by: opt(i.createdBy),
  };
}

function credentialParams(c: CredentialRecord) {
  if (!(c.publicKey instanceof Uint8Array)) {
    throw new StoreError(
      "ERR_STORE_INVALID",
      `cannot add the credential "${c.id}": publicKey must be a Uint8Array of COSE key bytes`,
    );
  }
  return {
    id: c.id,
    user_id: c.userId,
    // better-sqlite3 binds Buffers as BLOBs; this one shares the caller's memory, no copy.
    public_key: Buffer.from(c.publicKey.buffer, c.publicKey.byteOffset, c.publicKey.byteLength),
    counter: c.counter,
    transports: JSON.stringify(c.transports),
    aaguid: c.aaguid,
    fmt: c.fmt,
    device_bound: bit(c.deviceBound),
    backed_up: bit(c.backedUp),
    nickname: c.nickname,
    created_at: c.createdAt,
    last_used_at: opt(c.lastUsedAt),
    use_count: c.useCount,
    suspended_at: opt(c.suspendedAt),
    suspended_reason: opt(c.suspendedReason),
  };
}

function challengeParams(c: ChallengeRecord) {
  return {
    challenge: c.challenge,
    purpose: c.purpose,
    user_id: opt(c.userId),
    data: c.data === undefined ? null : JSON.stringify(c.data),
    expires_at: c.expiresAt,
  };
}

function sessionParams(s: SessionRecord) {
  return {
    id: s.id,
    user_id: s.userId,
    credential_id: s.credentialId,
    amr: JSON.stringify(s.amr),
    auth_time: s.authTime,
    created_at: s.createdAt,
    expires_at: s.expiresAt,
    revoked_at: opt(s.revokedAt),
    revoked_reason: opt(s.revokedReason),
  };
}

function refreshTokenParams(r: RefreshTokenRecord) {
  return {
    hash: r.hash,
    session_id: r.sessionId,
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    used_at: opt(r.usedAt),
  };
}

function signingKeyParams(k: SigningKeyRecord) {
  return {
    kid: k.kid,
    alg: k.alg,
    public_jwk: k.publicJwk,
    private_key: k.privateKey,
    encrypted: bit(k.encrypted),
    created_at: k.createdAt,
    activates_at: k.activatesAt,
    retires_at: k.retiresAt,
    expires_at: k.expiresAt,
  };
}

// ---- statements ----------------------------------------------------------------------------

type Params<T extends (...args: never[]) => unknown> = ReturnType<T>;

/** Every statement of the store, prepared once per connection. */
function prepare(db: Database) {
  const one = <R>(sql: string) => db.prepare<[string], R>(sql);
  return {
    // users
    insertUser: db.prepare<[Params<typeof userParams>]>(
      "INSERT INTO users (id, name, display_name, groups, admin, disabled, created_at, webauthn_user_id) " +
        "VALUES (@id, @name, @display_name, @groups, @admin, @disabled, @created_at, @webauthn_user_id)",
    ),
    userById: one<UserRow>("SELECT * FROM users WHERE id = ?"),
    userByName: one<UserRow>("SELECT * FROM users WHERE name = ?"),
    userByWebauthnId: one<UserRow>("SELECT * FROM users WHERE webauthn_user_id = ?"),
    listUsers: db.prepare<[], UserRow>("SELECT * FROM users ORDER BY name"),
    countUsers: db.prepare<[], number>("SELECT count(*) FROM users").pluck(),
    setUserDisabled: db.prepare<[number, string, number]>(
      "UPDATE users SET disabled = ? WHERE id = ? AND disabled <> ?",
    ),
    setUserGroups: db.prepare<[string, string]>("UPDATE users SET groups = ? WHERE id = ?"),
    userExists: one<number>("SELECT 1 FROM users WHERE id = ?").pluck(),
    disabledNames: db.prepare<[], string>("SELECT name FROM users WHERE disabled = 1").pluck(),
    // invites
    insertInvite: db.prepare<[Params<typeof inviteParams>]>(
      "INSERT INTO invites (secret_hash, user_name, groups, admin, created_at, expires_at, used_at, created_by) " +
        "VALUES (@secret_hash, @user_name, @groups, @admin, @created_at, @expires_at, @used_at, @created_by)",
    ),
    deleteExpiredInvites: db.prepare<[number]>("DELETE FROM invites WHERE expires_at <= ?"),
    redeemInvite: db.prepare<[number, string, number], InviteRow>(
      "UPDATE invites SET used_at = ? WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING *",
    ),
    invite: one<InviteRow>("SELECT * FROM invites WHERE secret_hash = ?"),
    pendingInvites: db.prepare<[number], InviteRow>(
      "SELECT * FROM invites WHERE used_at IS NULL AND expires_at > ? ORDER BY user_name, expires_at",
    ),
    // credentials
    insertCredential: db.prepare<[Params<typeof credentialParams>]>(
      "INSERT INTO credentials (id, user_id, public_key, counter, transports, aaguid, fmt, device_bound, " +
        "backed_up, nickname, created_at, last_used_at, use_count, suspended_at, suspended_reason) " +
        "VALUES (@id, @user_id, @public_key, @counter, @transports, @aaguid, @fmt, @device_bound, " +
        "@backed_up, @nickname, @created_at, @last_used_at, @use_count, @suspended_at, @suspended_reason)",
    ),
    credential: one<CredentialRow>("SELECT * FROM credentials WHERE id = ?"),
    credentialsOf: one<CredentialRow>("SELECT * FROM credentials WHERE user_id = ? ORDER BY created_at, id"),
    credentialExists: one<number>("SELECT 1 FROM credentials WHERE id = ?").pluck(),
    // Compare-and-set: only a counter that moves forward (or stays 0 on a counterless key) is
    // recorded, so of two concurrent sign-ins presenting the same counter only one wins.
    recordCredentialUse: db.prepare<[number, number, number, string, number, number]>(
      "UPDATE credentials SET counter = ?, backed_up = ?, last_used_at = ?, use_count = use_count + 1 " +
        "WHERE id = ? AND (counter < ? OR (counter = 0 AND ? = 0))",
    ),
    renameCredential: db.prepare<[string, string]>("UPDATE credentials SET nickname = ? WHERE id = ?"),
    deleteCredential: one<string>("DELETE FROM credentials WHERE id = ? RETURNING user_id").pluck(),
    suspendCredential: db.prepare<[number, string, string]>(
      "UPDATE credentials SET suspended_at = ?, suspended_reason = ? WHERE id = ? AND suspended_at IS NULL",
    ),
    reenableCredential: db.prepare<[string]>(
      "UPDATE credentials SET suspended_at = NULL, suspended_reason = NULL WHERE id = ? AND suspended_at IS NOT NULL",
    ),
    suspendedIds: db.prepare<[], string>("SELECT id FROM credentials WHERE suspended_at IS NOT NULL").pluck(),
    insertTombstone: db.prepare<[string, string, number]>(
      "INSERT INTO credential_tombstones (id, user_id, removed_at) VALUES (?, ?, ?)",
    ),
    tombstoneExists: one<number>("SELECT 1 FROM credential_tombstones WHERE id = ?").pluck(),
    tombstoneIds: db.prepare<[], string>("SELECT id FROM credential_tombstones").pluck(),
    // challenges
    insertChallenge: db.prepare<[Params<typeof challengeParams>]>(
      "INSERT INTO challenges (challenge, purpose, user_id, data, expires_at) " +
        "VALUES (@challenge, @purpose, @user_id, @data, @expires_at)",
    ),
    deleteChallenge: one<ChallengeRow>("DELETE FROM challenges WHERE challenge = ? RETURNING *"),
    deleteExpiredChallenges: db.prepare<[number]>("DELETE FROM challenges WHERE expires_at <= ?"),
    // sessions
    insertSession: db.prepare<[Params<typeof sessionParams>]>(
      "INSERT INTO sessions (id, user_id, credential_id, amr, auth_time, created_at, expires_at, revoked_at, revoked_reason) " +
        "VALUES (@id, @user_id, @credential_id, @amr, @auth_time, @created_at, @expires_at, @revoked_at, @revoked_reason)",
    ),
    // Never-revoked sessions go at expiry; revoked ones only once the retention margin has passed too.
    deleteExpiredSessions: db.prepare<[number, number]>(
      "DELETE FROM sessions WHERE expires_at <= ? AND (revoked_at IS NULL OR expires_at <= ?)",
    ),
    session: one<SessionRow>("SELECT * FROM sessions WHERE id = ?"),
    sessionExists: one<number>("SELECT 1 FROM sessions WHERE id = ?").pluck(),
    revokeSession: db.prepare<[number, string, string]>(
      "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
    ),
    revokeSessionsOfUser: db
      .prepare<[number, string, string], string>(
        "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
      )
      .pluck(),
    revokeSessionsOfCredential: db
      .prepare<[number, string, string], string>(
        "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE credential_id = ? AND revoked_at IS NULL RETURNING id",
      )
      .pluck(),
    revokeSessionsOfBoth: db
      .prepare<[number, string, string, string], string>(
        "UPDATE sessions SET revoked_at = ?, revoked_reason = ? " +
          "WHERE user_id = ? AND credential_id = ? AND revoked_at IS NULL RETURNING id",
      )
      .pluck(),
    revokedSessionIds: db.prepare<[], string>("SELECT id FROM sessions WHERE revoked_at IS NOT NULL").pluck(),
    // refresh tokens
    insertRefreshToken: db.prepare<[Params<typeof refreshTokenParams>]>(
      "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, used_at) " +
        "VALUES (@hash, @session_id, @created_at, @expires_at, @used_at)",
    ),
    deleteExpiredRefreshTokens: db.prepare<[number]>("DELETE FROM refresh_tokens WHERE expires_at <= ?"),
    refreshToken: one<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE hash = ?"),
    markRefreshTokenUsed: db.prepare<[number, string]>(
      "UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL",
    ),
    // signing keys
    listSigningKeys: db.prepare<[], SigningKeyRow>("SELECT * FROM signing_keys ORDER BY created_at, kid"),
    signingKids: db.prepare<[], string>("SELECT kid FROM signing_keys").pluck(),
    insertSigningKey: db.prepare<[Params<typeof signingKeyParams>]>(
      "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, encrypted, created_at, activates_at, retires_at, expires_at) " +
        "VALUES (@kid, @alg, @public_jwk, @private_key, @encrypted, @created_at, @activates_at, @retires_at, @expires_at)",
    ),
    deleteSigningKey: db.prepare<[string]>("DELETE FROM signing_keys WHERE kid = ?"),
    // revocation epoch
    bumpEpoch: db
      .prepare<[], number>("UPDATE revocation_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")
      .pluck(),
    epoch: db.prepare<[], number>("SELECT epoch FROM revocation_epoch WHERE id = 1").pluck(),
    dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
  };
}

// ---- errors --------------------------------------------------------------------------------

interface Explain {
  /** Message per violated unique column ("users.name") or "tombstone". */
  unique?: Record<string, string>;
  /** Message when a referenced row (user, session) is missing. */
  foreignKey?: string;
}

/**
 * Turns what SQLite or better-sqlite3 threw into a {@link StoreError} naming the action and what to
 * do. SQLite's own messages name columns, never values, so they are safe to quote.
 */
function writeError(err: unknown, action: string, explain: Explain = {}): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "SQLITE_CONSTRAINT_PRIMARYKEY":
    case "SQLITE_CONSTRAINT_UNIQUE": {
      const column = /constraint failed: ([\w.]+)/.exec(msg)?.[1] ?? "key";
      const text =
        explain.unique?.[column] ?? `a record with the same ${column} already exists; use a new value`;
      return new StoreError("ERR_STORE_CONFLICT", `cannot ${action}: ${text}`, { cause: err });
    }
    case "SQLITE_CONSTRAINT_FOREIGNKEY":
      return new StoreError(
        "ERR_STORE_NOT_FOUND",
        `cannot ${action}: ${explain.foreignKey ?? "a record it refers to does not exist"}`,
        { cause: err },
      );
    case "SQLITE_CONSTRAINT_NOTNULL":
      return new StoreError("ERR_STORE_INVALID", `cannot ${action}: a required field is missing (${msg})`, {
        cause: err,
      });
    case "SQLITE_CONSTRAINT_DATATYPE":
    case "SQLITE_CONSTRAINT_CHECK":
      return new StoreError(
        "ERR_STORE_INVALID",
        `cannot ${action}: a field has a value of the wrong type or out of range (${msg})`,
        { cause: err },
      );
  }
  if (err instanceof TypeError || err instanceof RangeError) {
    // better-sqlite3 refusing a bound value (a boolean, an object), or JSON.stringify refusing data.
    return new StoreError("ERR_STORE_INVALID", `cannot ${action}: a field cannot be stored (${msg})`, {
      cause: err,
    });
  }
  let hint = "check the disk and the permissions of the state directory, then retry";
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
    hint = "another process held the database lock too long; retry, or stop the process that holds it";
  } else if (code === "SQLITE_FULL") hint = "the disk is full; free some space";
  else if (code === "SQLITE_READONLY")
    hint = "the database file is read-only for this user; make it writable";
  return new StoreError("ERR_STORE_WRITE", `cannot ${action}: ${msg}; ${hint}`, { cause: err });
}

function notFound(what: string, id: string, todo: string): StoreError {
  return new StoreError("ERR_STORE_NOT_FOUND", `${what} "${id}" does not exist; ${todo}`);
}

// ---- the store -----------------------------------------------------------------------------

type Statements = ReturnType<typeof prepare>;

class SqliteStore implements IdentityStore {
  readonly db: Database;
  readonly #s: Statements;
  readonly #clock: () => number;
  readonly #pollMs: number;
  readonly #revokedRetentionMs: number;
  #poll: NodeJS.Timeout | undefined;
  /** The revocation epoch as this connection last saw it. */
  #epoch: number;
  /** `PRAGMA data_version` when {@link #epoch} was read: it changes when another connection commits. */
  #dataVersion: number;

  // Multi-statement operations, each one IMMEDIATE transaction (the write lock is taken first, so
  // what they read cannot change before they write). Each revoking one returns the new epoch, or
  // undefined when nothing changed.
  readonly #setUserDisabledTx: { immediate(id: string, disabled: boolean): number | undefined };
  readonly #removeCredentialTx: { immediate(id: string, at: number): number | undefined };
  readonly #suspendCredentialTx: { immediate(id: string, reason: string, at: number): number | undefined };
  readonly #reenableCredentialTx: { immediate(id: string): number | undefined };
  readonly #revokeSessionTx: { immediate(id: string, reason: string, at: number): number | undefined };
  readonly #revokeSessionsOfTx: {
    immediate(
      userId: string | undefined,
      credentialId: string | undefined,
      reason: string,
      at: number,
    ): { ids: string[]; epoch: number | undefined };
  };
  readonly #createInviteTx: { immediate(i: InviteRecord): void };
  readonly #putChallengeTx: { immediate(c: ChallengeRecord): void };
  readonly #consumeChallengeTx: { immediate(challenge: string, now: number): ChallengeRow | undefined };
  readonly #createSessionTx: { immediate(sess: SessionRecord): void };
  readonly #putRefreshTokenTx: { immediate(r: RefreshTokenRecord): void };
  readonly #useRefreshTokenTx: { immediate(hash: string, at: number): RefreshTokenRow | undefined };
  readonly #replaceSigningKeysTx: {
    immediate(expected: string[], add: SigningKeyRecord[], removeKids: string[]): boolean;
  };
  readonly #revocationsTx: {
    deferred(): { sessions: Set<string>; disabledSubjects: Set<string>; credentials: Set<string> };
  };

  constructor(db: Database, opts: IdentityStoreOptions) {
    this.db = db;
    const s = prepare(db);
    this.#s = s;
    this.#clock = opts.clock ?? Date.now;
    const pollMs = opts.revocationPollMs ?? 0;
    if (!Number.isFinite(pollMs) || pollMs < 0) {
      throw new StoreError(
        "ERR_STORE_INVALID",
        `revocationPollMs must be 0 or a positive number of milliseconds; got ${String(pollMs)}`,
      );
    }
    this.#pollMs = pollMs;
    const retention = opts.revokedSessionRetentionMs ?? REVOKED_SESSION_RETENTION_MS;
    if (!Number.isFinite(retention) || retention < 0) {
      throw new StoreError(
        "ERR_STORE_INVALID",
        `revokedSessionRetentionMs must be 0 or a positive number of milliseconds; got ${String(retention)}`,
      );
    }
    this.#revokedRetentionMs = retention;
    this.#dataVersion = s.dataVersion.get()!;
    this.#epoch = s.epoch.get()!;

    this.#setUserDisabledTx = db.transaction((id: string, disabled: boolean) => {
      const d = bit(disabled);
      if (s.setUserDisabled.run(d, id, d).changes === 0) {
        if (s.userExists.get(id) === undefined) {
          throw notFound("the user", id, "list users to find the right id");
        }
        return undefined; // already so
      }
      return s.bumpEpoch.get();
    });
    this.#removeCredentialTx = db.transaction((id: string, at: number) => {
      const userId = s.deleteCredential.get(id);
      if (userId === undefined) {
        if (s.tombstoneExists.get(id) !== undefined) return undefined; // removed before
        throw notFound("the credential", id, "list the user's keys to find the right id");
      }
      s.insertTombstone.run(id, userId, at);
      return s.bumpEpoch.get();
    });
    this.#suspendCredentialTx = db.transaction((id: string, reason: string, at: number) => {
      if (s.suspendCredential.run(at, reason, id).changes === 0) {
        if (s.credentialExists.get(id) === undefined) {
          throw notFound("the credential", id, "list the user's keys to find the right id");
        }
        return undefined; // already suspended: the first suspension's time and reason stay
      }
      return s.bumpEpoch.get();
    });
    this.#reenableCredentialTx = db.transaction((id: string) => {
      if (s.reenableCredential.run(id).changes === 0) {
        if (s.credentialExists.get(id) === undefined) {
          throw notFound(
            "the credential",
            id,
            "list the user's keys to find the right id (a removed key cannot be re-enabled; register a new one)",
          );
        }
        return undefined; // not suspended
      }
      return s.bumpEpoch.get();
    });
    this.#revokeSessionTx = db.transaction((id: string, reason: string, at: number) => {
      if (s.revokeSession.run(at, reason, id).changes === 0) {
        if (s.sessionExists.get(id) === undefined) {
          throw notFound("the session", id, "it may have expired and been deleted already");
        }
        return undefined; // revoked before: the first revocation's time and reason stay
      }
      return s.bumpEpoch.get();
    });
    this.#revokeSessionsOfTx = db.transaction(
      (userId: string | undefined, credentialId: string | undefined, reason: string, at: number) => {
        const ids =
          userId !== undefined && credentialId !== undefined
            ? s.revokeSessionsOfBoth.all(at, reason, userId, credentialId)
            : userId !== undefined
              ? s.revokeSessionsOfUser.all(at, reason, userId)
              : s.revokeSessionsOfCredential.all(at, reason, credentialId!);
        return { ids, epoch: ids.length > 0 ? s.bumpEpoch.get() : undefined };
      },
    );
    // Each creation first deletes what expired by the caller's time: one transaction, one fsync.
    this.#createInviteTx = db.transaction((i: InviteRecord) => {
      s.deleteExpiredInvites.run(i.createdAt);
      s.insertInvite.run(inviteParams(i));
    });
    this.#putChallengeTx = db.transaction((c: ChallengeRecord) => {
      s.deleteExpiredChallenges.run(c.expiresAt - CHALLENGE_HORIZON_MS);
      s.insertChallenge.run(challengeParams(c));
    });
    this.#consumeChallengeTx = db.transaction((challenge: string, now: number) => {
      const row = s.deleteChallenge.get(challenge); // single use: whoever deletes it owns it
      s.deleteExpiredChallenges.run(now);
      return row;
    });
    this.#createSessionTx = db.transaction((sess: SessionRecord) => {
      // Their refresh tokens go too (ON DELETE CASCADE). A revoked one stays past its expiry for the
      // retention margin: its id must stay in revocations() while a token it issued may be alive.
      s.deleteExpiredSessions.run(sess.createdAt, sess.createdAt - this.#revokedRetentionMs);
      s.insertSession.run(sessionParams(sess));
    });
    this.#putRefreshTokenTx = db.transaction((r: RefreshTokenRecord) => {
      s.deleteExpiredRefreshTokens.run(r.createdAt);
      s.insertRefreshToken.run(refreshTokenParams(r));
    });
    this.#useRefreshTokenTx = db.transaction((hash: string, at: number) => {
      const row = s.refreshToken.get(hash);
      if (row !== undefined && row.used_at === null) s.markRefreshTokenUsed.run(at, hash);
      return row;
    });
    this.#replaceSigningKeysTx = db.transaction(
      (expected: string[], add: SigningKeyRecord[], removeKids: string[]) => {
        const current = new Set(s.signingKids.all());
        const want = new Set(expected);
        if (current.size !== want.size) return false;
        for (const kid of want) if (!current.has(kid)) return false;
        for (const kid of removeKids) s.deleteSigningKey.run(kid);
        for (const k of add) s.insertSigningKey.run(signingKeyParams(k));
        return true;
      },
    );
    this.#revocationsTx = db.transaction(() => ({
      sessions: new Set(s.revokedSessionIds.all()),
      disabledSubjects: new Set(s.disabledNames.all()),
      credentials: new Set([...s.tombstoneIds.all(), ...s.suspendedIds.all()]),
    }));

    if (pollMs > 0) {
      this.#poll = setInterval(() => {
        try {
          this.#refreshEpoch();
        } catch {
          // A busy or closing database: the next tick tries again.
        }
      }, pollMs);
      this.#poll.unref();
    }
  }

  close(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    this.db.close();
  }

  // ---- users ----

  createUser(u: UserRecord): void {
    try {
      this.#s.insertUser.run(userParams(u));
    } catch (err) {
      throw writeError(err, `create the user "${u.name}"`, {
        unique: {
          "users.name": `a user named "${u.name}" already exists; choose another name or use the existing user`,
          "users.id": `a user with id "${u.id}" already exists; generate a new id`,
          "users.webauthn_user_id":
            "its WebAuthn user handle already belongs to another user; generate a new random handle",
        },
      });
    }
  }

  getUserById(id: string): UserRecord | undefined {
    const r = this.#s.userById.get(id);
    return r === undefined ? undefined : toUser(r);
  }

  getUserByName(name: string): UserRecord | undefined {
    const r = this.#s.userByName.get(name);
    return r === undefined ? undefined : toUser(r);
  }

  getUserByWebauthnId(webauthnUserId: string): UserRecord | undefined {
    const r = this.#s.userByWebauthnId.get(webauthnUserId);
    return r === undefined ? undefined : toUser(r);
  }

  listUsers(): UserRecord[] {
    return this.#s.listUsers.all().map(toUser);
  }

  setUserDisabled(id: string, disabled: boolean): void {
    let epoch: number | undefined;
    try {
      epoch = this.#setUserDisabledTx.immediate(id, disabled);
    } catch (err) {
      throw writeError(err, `${disabled ? "disable" : "enable"} the user "${id}"`);
    }
    this.#advance(epoch);
  }

  setUserGroups(id: string, groups: string[]): void {
    let changes: number;
    try {
      changes = this.#s.setUserGroups.run(JSON.stringify(groups), id).changes;
    } catch (err) {
      throw writeError(err, `set the groups of the user "${id}"`);
    }
    if (changes === 0) throw notFound("the user", id, "list users to find the right id");
  }

  countUsers(): number {
    return this.#s.countUsers.get()!;
  }

  // ---- invites ----

  createInvite(i: InviteRecord): void {
    try {
      this.#createInviteTx.immediate(i);
    } catch (err) {
      throw writeError(err, `create the invite for "${i.userName}"`, {
        unique: {
          "invites.secret_hash":
            "an invite with the same secret already exists; generate a new random secret",
        },
      });
    }
  }

  redeemInvite(secretHash: string, now: number): InviteRecord | undefined {
    let r: InviteRow | undefined;
    try {
      r = this.#s.redeemInvite.get(now, secretHash, now);
    } catch (err) {
      throw writeError(err, "redeem the invite");
    }
    return r === undefined ? undefined : toInvite(r);
  }

  getInvite(secretHash: string): InviteRecord | undefined {
    const r = this.#s.invite.get(secretHash);
    return r === undefined ? undefined : toInvite(r);
  }

  listPendingInvites(now: number): InviteRecord[] {
    return this.#s.pendingInvites.all(now).map(toInvite);
  }

  // ---- credentials ----

  addCredential(c: CredentialRecord): void {
    const action = `add the credential "${c.id}"`;
    try {
      if (this.#s.tombstoneExists.get(c.id) !== undefined) {
        throw new StoreError(
          "ERR_STORE_CONFLICT",
          `cannot ${action}: it was removed and a removed key cannot come back; register a new key`,
        );
      }
      this.#s.insertCredential.run(credentialParams(c));
    } catch (err) {
      throw writeError(err, action, {
        unique: {
          "credentials.id": "it is already registered; sign in with it, or remove it first",
        },
        foreignKey: `no user has id "${c.userId}"; create the user first`,
      });
    }
  }

  getCredential(id: string): CredentialRecord | undefined {
    const r = this.#s.credential.get(id);
    return r === undefined ? undefined : toCredential(r);
  }

  listCredentials(userId: string): CredentialRecord[] {
    return this.#s.credentialsOf.all(userId).map(toCredential);
  }

  recordCredentialUse(id: string, counter: number, backedUp: boolean, at: number): boolean {
    let changes: number;
    try {
      changes = this.#s.recordCredentialUse.run(counter, bit(backedUp), at, id, counter, counter).changes;
    } catch (err) {
      throw writeError(err, `record a use of the credential "${id}"`);
    }
    if (changes === 1) return true;
    if (this.#s.credentialExists.get(id) === undefined) {
      throw notFound("the credential", id, "it may have been removed; sign in again");
    }
    return false; // the stored counter is already at or past this one
  }

  renameCredential(id: string, nickname: string): void {
    let changes: number;
    try {
      changes = this.#s.renameCredential.run(nickname, id).changes;
    } catch (err) {
      throw writeError(err, `rename the credential "${id}"`);
    }
    if (changes === 0) throw notFound("the credential", id, "list the user's keys to find the right id");
  }

  removeCredential(id: string): void {
    let epoch: number | undefined;
    try {
      epoch = this.#removeCredentialTx.immediate(id, this.#clock());
    } catch (err) {
      throw writeError(err, `remove the credential "${id}"`);
    }
    this.#advance(epoch);
  }

  suspendCredential(id: string, reason: string, at: number): void {
    let epoch: number | undefined;
    try {
      epoch = this.#suspendCredentialTx.immediate(id, reason, at);
    } catch (err) {
      throw writeError(err, `suspend the credential "${id}"`);
    }
    this.#advance(epoch);
  }

  reenableCredential(id: string): void {
    let epoch: number | undefined;
    try {
      epoch = this.#reenableCredentialTx.immediate(id);
    } catch (err) {
      throw writeError(err, `re-enable the credential "${id}"`);
    }
    this.#advance(epoch);
  }

  // ---- challenges ----

  putChallenge(c: ChallengeRecord): void {
    try {
      this.#putChallengeTx.immediate(c);
    } catch (err) {
      throw writeError(err, `store a ${String(c.purpose)} challenge`, {
        unique: { "challenges.challenge": "the same challenge is already stored; generate a new random one" },
      });
    }
  }

  consumeChallenge(challenge: string, now: number): ChallengeRecord | undefined {
    let r: ChallengeRow | undefined;
    try {
      r = this.#consumeChallengeTx.immediate(challenge, now);
    } catch (err) {
      throw writeError(err, "consume the challenge");
    }
    return r === undefined || r.expires_at <= now ? undefined : toChallenge(r);
  }

  // ---- sessions and refresh tokens ----

  createSession(sess: SessionRecord): void {
    try {
      this.#createSessionTx.immediate(sess);
    } catch (err) {
      throw writeError(err, `create the session "${sess.id}"`, {
        unique: { "sessions.id": "a session with this id already exists; generate a new id" },
        foreignKey: `no user has id "${sess.userId}"; create the user first`,
      });
    }
  }

  getSession(id: string): SessionRecord | undefined {
    const r = this.#s.session.get(id);
    return r === undefined ? undefined : toSession(r);
  }

  revokeSession(id: string, reason: string, at: number): void {
    let epoch: number | undefined;
    try {
      epoch = this.#revokeSessionTx.immediate(id, reason, at);
    } catch (err) {
      throw writeError(err, `revoke the session "${id}"`);
    }
    this.#advance(epoch);
  }

  revokeSessionsOf(filter: { userId?: string; credentialId?: string }, reason: string, at: number): string[] {
    const { userId, credentialId } = filter;
    if (userId === undefined && credentialId === undefined) {
      throw new StoreError(
        "ERR_STORE_INVALID",
        "cannot revoke sessions: name a userId, a credentialId or both (revoking every session is not supported here)",
      );
    }
    let out: { ids: string[]; epoch: number | undefined };
    try {
      out = this.#revokeSessionsOfTx.immediate(userId, credentialId, reason, at);
    } catch (err) {
      throw writeError(err, "revoke sessions");
    }
    this.#advance(out.epoch);
    return out.ids;
  }

  putRefreshToken(r: RefreshTokenRecord): void {
    try {
      this.#putRefreshTokenTx.immediate(r);
    } catch (err) {
      throw writeError(err, `store a refresh token of the session "${r.sessionId}"`, {
        unique: { "refresh_tokens.hash": "a token with the same hash already exists; generate a new token" },
        foreignKey: `no session has id "${r.sessionId}"; create the session first, or sign in again`,
      });
    }
  }

  useRefreshToken(hash: string, at: number): RefreshTokenRecord | undefined {
    let r: RefreshTokenRow | undefined;
    try {
      r = this.#useRefreshTokenTx.immediate(hash, at);
    } catch (err) {
      throw writeError(err, "use the refresh token");
    }
    return r === undefined ? undefined : toRefreshToken(r);
  }

  // ---- signing keys ----

  listSigningKeys(): SigningKeyRecord[] {
    return this.#s.listSigningKeys.all().map(toSigningKey);
  }

  /**
   * Compare-and-swap over the whole table: applies `removeKids` then `add` only if the kids in the
   * table, as a set, equal `expectedKids` (normally the kids of the last `listSigningKeys()`).
   */
  replaceSigningKeys(expectedKids: string[], add: SigningKeyRecord[], removeKids: string[]): boolean {
    try {
      return this.#replaceSigningKeysTx.immediate(expectedKids, add, removeKids);
    } catch (err) {
      throw writeError(err, "replace the signing keys", {
        unique: { "signing_keys.kid": "a key with the same kid already exists; generate a new kid" },
      });
    }
  }

  // ---- revocation ----

  /**
   * The revocation epoch: a counter in the database that every revoking change increments in its
   * own transaction. Read it first, then {@link revocations}: a change between the two only makes
   * the next read differ again.
   */
  revocationVersion(): number {
    if (this.#pollMs === 0) this.#refreshEpoch();
    return this.#epoch;
  }

  /**
   * One consistent snapshot. `sessions` holds every revoked session still in the table; expired
   * sessions are deleted (by the caller's time) whenever a new session is created, a revoked one
   * only once `revokedSessionRetentionMs` (default 24 h) has passed since its expiry, so the set
   * holds every revoked session that expired less than that long ago (and perhaps a few older ones,
   * until the next sign-in). No clock of this store decides what has expired. `credentials` holds the removed (tombstoned) and the
   * currently suspended credential ids.
   */
  revocations(): { sessions: Set<string>; disabledSubjects: Set<string>; credentials: Set<string> } {
    return this.#revocationsTx.deferred(); // one read transaction: one consistent snapshot
  }

  /** Re-reads the epoch only when another connection committed since the last read. */
  #refreshEpoch(): void {
    const dv = this.#s.dataVersion.get()!;
    if (dv !== this.#dataVersion) {
      this.#dataVersion = dv;
      this.#epoch = this.#s.epoch.get()!;
    }
  }

  /** Adopts the epoch a committed transaction of this connection produced. */
  #advance(epoch: number | undefined): void {
    if (epoch !== undefined && epoch > this.#epoch) this.#epoch = epoch;
  }
}
