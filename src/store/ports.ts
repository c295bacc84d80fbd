/**
 * Persistence ports of the identity modules. identity/ codes against these interfaces; store/
 * implements them on SQLite (store/identityStore.ts). Times are milliseconds since the epoch from
 * the injected clock. IDs are strings (UUIDs, or base64url for WebAuthn credential IDs).
 */

export interface UserRecord {
  id: string;
  /** Unique, case-sensitive login name; also the token `sub`. */
  name: string;
  displayName?: string;
  groups: string[];
  /** Administrators may invite and disable users and re-enable keys. */
  admin: boolean;
  disabled: boolean;
  createdAt: number;
  /** WebAuthn user handle (random 32 bytes, base64url) — never the name. */
  webauthnUserId: string;
}

export interface InviteRecord {
  /** SHA-256 (base64url) of the invite secret that travels in the enrollment URL. */
  secretHash: string;
  /** The user the invite enrolls (created when the invite is redeemed) or adds a key for. */
  userName: string;
  groups: string[];
  admin: boolean;
  createdAt: number;
  expiresAt: number;
  usedAt?: number;
  createdBy?: string;
}

export interface CredentialRecord {
  /** WebAuthn credential ID, base64url. */
  id: string;
  userId: string;
  /** COSE public key bytes. */
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  aaguid: string;
  /** Attestation format ("none", "packed", ...). */
  fmt: string;
  /** True when not backup-eligible (singleDevice): a hardware-bound key. */
  deviceBound: boolean;
  backedUp: boolean;
  nickname: string;
  createdAt: number;
  lastUsedAt?: number;
  useCount: number;
  /** Set when suspended (e.g. clone suspected); a suspended key cannot sign in. */
  suspendedAt?: number;
  suspendedReason?: string;
}

export interface ChallengeRecord {
  /** The challenge, base64url (32 random bytes). */
  challenge: string;
  purpose: "register" | "login" | "grant" | "approval";
  /** The user the ceremony is for, when known. */
  userId?: string;
  /** Arbitrary JSON the ceremony needs back (e.g. the invite hash, the OAuth request). */
  data?: Record<string, unknown>;
  expiresAt: number;
}

export interface SessionRecord {
  id: string;
  userId: string;
  credentialId: string;
  amr: string[];
  authTime: number;
  createdAt: number;
  /** createdAt + sessions.maxAge: after it a new tap is needed. */
  expiresAt: number;
  revokedAt?: number;
  revokedReason?: string;
}

export interface RefreshTokenRecord {
  /** SHA-256 (base64url) of the opaque token. */
  hash: string;
  sessionId: string;
  createdAt: number;
  expiresAt: number;
  /** Set when it was exchanged; presenting it again is reuse, which revokes the session. */
  usedAt?: number;
}

export interface SigningKeyRecord {
  kid: string;
  alg: "ES256";
  /** Public JWK as JSON text. */
  publicJwk: string;
  /** Private JWK as JSON text, or its encryption (see tokens/keyEncryption.ts) when a KEK is configured. */
  privateKey: string;
  encrypted: boolean;
  createdAt: number;
  /** When it starts signing (published in the JWKS from createdAt on). */
  activatesAt: number;
  /** When it stops signing. */
  retiresAt: number;
  /** When it leaves the JWKS: retiresAt + the longest token lifetime + skew. */
  expiresAt: number;
}

export interface IdentityStore {
  // users
  createUser(u: UserRecord): void;
  getUserById(id: string): UserRecord | undefined;
  getUserByName(name: string): UserRecord | undefined;
  getUserByWebauthnId(webauthnUserId: string): UserRecord | undefined;
  listUsers(): UserRecord[];
  setUserDisabled(id: string, disabled: boolean): void;
  /** Replaces the user's groups (they reach tokens issued from now on); throws `ERR_STORE_NOT_FOUND` for an unknown id. */
  setUserGroups(id: string, groups: string[]): void;
  countUsers(): number;
  // invites
  createInvite(i: InviteRecord): void;
  /** Marks the invite used and returns it, atomically; undefined when unknown, used or expired at `now`. */
  redeemInvite(secretHash: string, now: number): InviteRecord | undefined;
  getInvite(secretHash: string): InviteRecord | undefined;
  /** Invites neither used nor expired at `now`, by user name (enrollments still awaited). */
  listPendingInvites(now: number): InviteRecord[];
  // credentials
  addCredential(c: CredentialRecord): void;
  getCredential(id: string): CredentialRecord | undefined;
  listCredentials(userId: string): CredentialRecord[];
  /**
   * After a successful sign-in: new counter, lastUsedAt, useCount + 1, backedUp — atomically, and
   * only when `counter` is greater than the stored counter (or both are 0). Returns false, changing
   * nothing, when the stored counter is already at or past `counter` (a concurrent sign-in with the
   * same key recorded first); throws `ERR_STORE_NOT_FOUND` when the credential does not exist.
   */
  recordCredentialUse(id: string, counter: number, backedUp: boolean, at: number): boolean;
  renameCredential(id: string, nickname: string): void;
  removeCredential(id: string): void;
  suspendCredential(id: string, reason: string, at: number): void;
  reenableCredential(id: string): void;
  // challenges
  putChallenge(c: ChallengeRecord): void;
  /** Deletes and returns the challenge in one statement (single use); undefined when unknown or expired at `now`. */
  consumeChallenge(challenge: string, now: number): ChallengeRecord | undefined;
  // sessions and refresh tokens
  createSession(s: SessionRecord): void;
  getSession(id: string): SessionRecord | undefined;
  revokeSession(id: string, reason: string, at: number): void;
  /** Revokes every session of a user (disable) or of a credential (remove/suspend); returns their ids. */
  revokeSessionsOf(filter: { userId?: string; credentialId?: string }, reason: string, at: number): string[];
  putRefreshToken(r: RefreshTokenRecord): void;
  /** Marks the token used and returns it as it was before, atomically; undefined when unknown. */
  useRefreshToken(hash: string, at: number): RefreshTokenRecord | undefined;
  // signing keys
  listSigningKeys(): SigningKeyRecord[];
  /** Applies the change only if the kids in the table still equal `expectedKids` (multi-process safety); returns false when another process changed them first. */
  replaceSigningKeys(expectedKids: string[], add: SigningKeyRecord[], removeKids: string[]): boolean;
  /**
   * A number that changes whenever anything that can revoke access changes (user disabled, session
   * revoked, credential removed or suspended), in this process or another one sharing the file.
   * Cheap enough to read on every data-plane request.
   */
  revocationVersion(): number;
  /** Ids of revoked sessions, disabled users' names, and removed or suspended credential ids. */
  revocations(): { sessions: Set<string>; disabledSubjects: Set<string>; credentials: Set<string> };
}
