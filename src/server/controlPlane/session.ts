import type { FastifyReply, FastifyRequest } from "fastify";
import type { CredentialRecord, IdentityStore, SessionRecord, UserRecord } from "../../store/ports.js";

/** Name of the console session cookie; its value is the session id, signed with the cookie secret. */
export const SESSION_COOKIE = "cg_session";

/** A request's console sign-in: the session, its user, and the key it signed in with. */
export interface SignedIn {
  session: SessionRecord;
  user: UserRecord;
  credential: CredentialRecord;
}

/**
 * How recently the key must have been tapped (the session's `authTime`) to add a key: 5 minutes. A
 * session lives up to 12 h; without this, a stolen session cookie alone could enroll the thief's
 * key and keep the account. Signing in again restarts the clock. (Removing a key is confirmed by a
 * tap of its own, so it does not depend on this.)
 */
export const REAUTH_MAX_AGE_MS = 5 * 60_000;

/** What {@link readSignedIn} found. */
export interface CookieState {
  /** Set when the cookie names a session that is still good. */
  signedIn?: SignedIn;
  /** A cookie was sent that is forged, or names a session that is over: clear it. */
  stale: boolean;
}

/**
 * Whether the request is signed in: its `cg_session` cookie carries a valid signature and names a
 * session that exists, is not revoked, has not reached its maximum age, whose user is not disabled
 * and whose key is neither suspended nor removed. Checked in the store on every request, so a
 * revocation (logout, disable, key removal) takes effect at once.
 *
 * @example
 * ```ts
 * const { signedIn } = readSignedIn(request, store, clock());
 * if (!signedIn) return reply.redirect("/signin");
 * ```
 */
export function readSignedIn(request: FastifyRequest, store: IdentityStore, now: number): CookieState {
  const raw = request.cookies?.[SESSION_COOKIE];
  if (raw === undefined || raw === "") return { stale: false };
  const unsigned = request.unsignCookie(raw);
  if (!unsigned.valid || unsigned.value === null) return { stale: true };
  const sessionId = unsigned.value;
  if (sessionId.length === 0 || sessionId.length > 128) return { stale: true };
  const session = store.getSession(sessionId);
  if (session === undefined || session.revokedAt !== undefined || session.expiresAt <= now)
    return { stale: true };
  const user = store.getUserById(session.userId);
  if (user === undefined || user.disabled) return { stale: true };
  const credential = store.getCredential(session.credentialId);
  if (credential === undefined || credential.suspendedAt !== undefined || credential.userId !== user.id) {
    return { stale: true };
  }
  return { signedIn: { session, user, credential }, stale: false };
}

/** Cookie attributes shared by setting and clearing (they must match for the browser to clear it). */
function attributes(secure: boolean) {
  return { path: "/", httpOnly: true, sameSite: "strict" as const, secure };
}

/**
 * Sets the console session cookie: the session id signed with the cookie secret (HMAC-SHA256, by
 * @fastify/cookie), HttpOnly, SameSite=Strict, Path=/, Secure on HTTPS, Max-Age = the session's
 * remaining life.
 */
export function setSessionCookie(
  reply: FastifyReply,
  session: SessionRecord,
  now: number,
  secure: boolean,
): void {
  const maxAge = Math.max(0, Math.floor((session.expiresAt - now) / 1000));
  reply.setCookie(SESSION_COOKIE, session.id, { ...attributes(secure), signed: true, maxAge });
}

/** Clears the console session cookie. */
export function clearSessionCookie(reply: FastifyReply, secure: boolean): void {
  reply.clearCookie(SESSION_COOKIE, attributes(secure));
}

/**
 * {@link readSignedIn}, clearing a stale cookie on the reply.
 *
 * @example
 * ```ts
 * const me = currentSignIn(request, reply, store, clock(), secure);
 * ```
 */
export function currentSignIn(
  request: FastifyRequest,
  reply: FastifyReply,
  store: IdentityStore,
  now: number,
  secure: boolean,
): SignedIn | undefined {
  const state = readSignedIn(request, store, now);
  if (state.stale) clearSessionCookie(reply, secure);
  return state.signedIn;
}
