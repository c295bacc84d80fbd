import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { IdentityStore, SessionRecord, UserRecord } from "../../store/ports.js";
import { SessionError } from "./errors.js";

const HOUR = 3_600_000;
/** 32 random bytes in base64url, unpadded. */
const REFRESH_TOKEN_LENGTH = 43;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** What the session module tells the audit trail. */
export type SessionEventType =
  | "session.started"
  | "session.refreshed"
  | "session.revoked"
  | "refresh_token.reused";

/** An audit event of the session module; `at` is the injected clock (ms). */
export interface SessionEvent {
  type: SessionEventType;
  reason: string;
  sessionId: string;
  userId?: string;
  at: number;
}

/** Options of {@link createSessions}. */
export interface SessionsOptions {
  store: Pick<
    IdentityStore,
    | "createSession"
    | "getSession"
    | "revokeSession"
    | "putRefreshToken"
    | "useRefreshToken"
    | "getUserById"
    | "getCredential"
  >;
  /** Milliseconds since the epoch. */
  clock: () => number;
  /** How long a sign-in lasts; after it a new tap is needed. Default 12 h. */
  maxAgeMs?: number;
  /** How long one refresh token may wait to be used (an idle timeout). Default = `maxAgeMs`. */
  refreshTtlMs?: number;
  /** Audit sink; an exception it throws is ignored. */
  events?: (event: SessionEvent) => void;
}

/** How the user signed in. */
export interface StartInput {
  user: UserRecord;
  /** The WebAuthn credential they signed in with. */
  credentialId: string;
  amr: string[];
  /** When they tapped the key, ms since the epoch. */
  authTime: number;
}

/** Sign-in sessions with rotating, single-use refresh tokens. */
export interface Sessions {
  /** Creates a session and its first refresh token. Throws `ERR_USER_DISABLED`. */
  start(input: StartInput): { session: SessionRecord; refreshToken: string };
  /**
   * Exchanges a refresh token for a new one (the old one becomes used). Throws {@link SessionError}:
   * `ERR_REFRESH_INVALID`, `ERR_REFRESH_REUSED` (and revokes the whole session),
   * `ERR_REFRESH_EXPIRED`, `ERR_SESSION_EXPIRED`, `ERR_SESSION_REVOKED`.
   */
  refresh(refreshToken: string): { session: SessionRecord; user: UserRecord; refreshToken: string };
  /**
   * Revokes a session, named by id or by one of its refresh tokens (RFC 7009: an unknown or
   * malformed token is not an error). Throws `ERR_SESSION_NOT_FOUND` for an unknown session id.
   * Returns the session the input named (revoked now or before; for the audit trail), or undefined
   * when a refresh token named none.
   */
  revoke(input: { refreshToken: string } | { sessionId: string }, reason: string): SessionRecord | undefined;
}

/**
 * SHA-256 of a refresh token, base64url: the only form in which refresh tokens are stored.
 *
 * @example
 * ```ts
 * hashRefreshToken(token).length; // 43
 * ```
 */
function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

/**
 * Creates the session module: a sign-in (a tap on a key) starts a session that lasts `maxAgeMs`;
 * the CLI and console keep it alive with refresh tokens — 32 random bytes, base64url, stored only as
 * their SHA-256 — that rotate on every use. A refresh token used twice means it was copied: the
 * whole session is revoked (`store.revokeSession(id, "refresh token reuse")`), so the thief's and
 * the legitimate holder's tokens both stop working, and `refresh_token.reused` is emitted.
 * A refresh also fails once the user is disabled or the key suspended or removed (and revokes the
 * session, so a later re-enable does not bring it back).
 *
 * @example
 * ```ts
 * const sessions = createSessions({ store, clock: Date.now, maxAgeMs: 12 * 3_600_000, events: audit.session });
 * const { session, refreshToken } = sessions.start({ user, credentialId, amr: ["hwk", "user"], authTime: now });
 * // later, at POST /oauth/token grant_type=refresh_token:
 * const next = sessions.refresh(refreshToken); // next.refreshToken replaces it
 * ```
 */
export function createSessions(options: SessionsOptions): Sessions {
  const { store, clock } = options;
  const maxAgeMs = options.maxAgeMs ?? 12 * HOUR;
  const refreshTtlMs = options.refreshTtlMs ?? maxAgeMs;
  for (const [name, value] of [
    ["maxAgeMs", maxAgeMs],
    ["refreshTtlMs", refreshTtlMs],
  ] as const) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new TypeError(`${name} must be a positive number of milliseconds`);
    }
  }

  const emit = (
    type: SessionEventType,
    reason: string,
    sessionId: string,
    userId: string | undefined,
    at: number,
  ) => {
    try {
      options.events?.(
        userId === undefined ? { type, reason, sessionId, at } : { type, reason, sessionId, userId, at },
      );
    } catch {
      // The audit sink reports its own failures; a session operation does not depend on it.
    }
  };

  /** Stores a new refresh token of `session` and returns it (the only time it exists in clear). */
  const issueRefreshToken = (session: SessionRecord, now: number): string => {
    const token = randomBytes(32).toString("base64url");
    store.putRefreshToken({
      hash: hashRefreshToken(token),
      sessionId: session.id,
      createdAt: now,
      expiresAt: Math.min(now + refreshTtlMs, session.expiresAt),
    });
    return token;
  };

  const revokeNow = (session: SessionRecord, reason: string, now: number): void => {
    if (session.revokedAt !== undefined) return;
    store.revokeSession(session.id, reason, now);
    emit("session.revoked", reason, session.id, session.userId, now);
  };

  const refused = (code: "ERR_SESSION_REVOKED", why: string): SessionError =>
    new SessionError(code, `${why}. Sign in again with your key.`);

  return {
    start({ user, credentialId, amr, authTime }) {
      if (user.disabled) {
        throw new SessionError(
          "ERR_USER_DISABLED",
          `The user ${JSON.stringify(user.name)} is disabled; an administrator must enable it before it can sign in.`,
        );
      }
      if (typeof credentialId !== "string" || credentialId.length === 0) {
        throw new TypeError("credentialId is required");
      }
      const now = clock();
      const session: SessionRecord = {
        id: randomUUID(),
        userId: user.id,
        credentialId,
        amr: [...amr],
        authTime,
        createdAt: now,
        expiresAt: now + maxAgeMs,
      };
      store.createSession(session);
      const refreshToken = issueRefreshToken(session, now);
      emit("session.started", `signed in with key ${credentialId}`, session.id, user.id, now);
      return { session, refreshToken };
    },

    refresh(refreshToken) {
      if (
        typeof refreshToken !== "string" ||
        refreshToken.length !== REFRESH_TOKEN_LENGTH ||
        !BASE64URL.test(refreshToken)
      ) {
        throw new SessionError(
          "ERR_REFRESH_INVALID",
          "The refresh token is not one this gateway issues (43 base64url characters). Send the refresh_token from the last token response, or sign in again.",
        );
      }
      const now = clock();
      const token = store.useRefreshToken(hashRefreshToken(refreshToken), now);
      if (token === undefined) {
        throw new SessionError(
          "ERR_REFRESH_INVALID",
          "The refresh token is unknown (never issued, or expired and deleted). Sign in again with your key.",
        );
      }
      const session = store.getSession(token.sessionId);
      if (session === undefined) {
        throw new SessionError(
          "ERR_REFRESH_INVALID",
          "The refresh token's session no longer exists. Sign in again with your key.",
        );
      }
      if (token.usedAt !== undefined) {
        const reason = "refresh token reuse";
        emit(
          "refresh_token.reused",
          `a refresh token used at ${new Date(token.usedAt).toISOString()} was presented again`,
          session.id,
          session.userId,
          now,
        );
        revokeNow(session, reason, now);
        throw new SessionError(
          "ERR_REFRESH_REUSED",
          "This refresh token was already used, so it may have been copied: the whole session has been revoked. Sign in again with your key.",
        );
      }
      if (session.revokedAt !== undefined) {
        throw refused(
          "ERR_SESSION_REVOKED",
          `The session was revoked (${session.revokedReason ?? "no reason given"})`,
        );
      }
      if (now >= session.expiresAt) {
        throw new SessionError(
          "ERR_SESSION_EXPIRED",
          `The session reached its maximum age at ${new Date(session.expiresAt).toISOString()}; sign in again with your key.`,
        );
      }
      if (now >= token.expiresAt) {
        throw new SessionError(
          "ERR_REFRESH_EXPIRED",
          "The refresh token expired unused; sign in again with your key.",
        );
      }
      const user = store.getUserById(session.userId);
      if (user === undefined || user.disabled) {
        const why = user === undefined ? "user removed" : "user disabled";
        revokeNow(session, why, now);
        throw refused(
          "ERR_SESSION_REVOKED",
          `The session's user is ${user === undefined ? "removed" : "disabled"}`,
        );
      }
      const credential = store.getCredential(session.credentialId);
      if (credential === undefined || credential.suspendedAt !== undefined) {
        const why = credential === undefined ? "credential removed" : "credential suspended";
        revokeNow(session, why, now);
        throw refused(
          "ERR_SESSION_REVOKED",
          `The key this session signed in with was ${credential === undefined ? "removed" : `suspended (${credential.suspendedReason ?? "no reason given"})`}`,
        );
      }
      const next = issueRefreshToken(session, now);
      emit("session.refreshed", "refresh token rotated", session.id, session.userId, now);
      return { session, user, refreshToken: next };
    },

    revoke(input, reason) {
      const now = clock();
      if ("sessionId" in input) {
        const session = store.getSession(input.sessionId);
        if (session === undefined) {
          throw new SessionError(
            "ERR_SESSION_NOT_FOUND",
            `No session has id ${JSON.stringify(input.sessionId)}; it may have expired and been deleted.`,
          );
        }
        revokeNow(session, reason, now);
        return session;
      }
      const { refreshToken } = input;
      if (
        typeof refreshToken !== "string" ||
        refreshToken.length !== REFRESH_TOKEN_LENGTH ||
        !BASE64URL.test(refreshToken)
      ) {
        return undefined;
      }
      const token = store.useRefreshToken(hashRefreshToken(refreshToken), now);
      if (token === undefined) return undefined;
      const session = store.getSession(token.sessionId);
      if (session !== undefined) revokeNow(session, reason, now);
      return session;
    },
  };
}
