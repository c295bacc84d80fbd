import type { CredentialRecord, SessionRecord, UserRecord } from "../../store/ports.js";
import type { ControlPlaneContext } from "./context.js";
import { ApiError, OAuthError } from "./errors.js";
import { REAUTH_MAX_AGE_MS } from "./session.js";

/** A finished sign-in: the verified key, and the session it started with its first refresh token. */
export interface SignInResult {
  user: UserRecord;
  credential: CredentialRecord;
  amr: string[];
  session: SessionRecord;
  refreshToken: string;
}

/**
 * Verifies a WebAuthn assertion (a "login" challenge) and starts a session for it. Refusals are the
 * WebAuthn module's {@link WebAuthnError}s (400/403) or the session module's `ERR_USER_DISABLED`.
 *
 * @example
 * ```ts
 * const { user, session, refreshToken } = await signInWithKey(ctx, body.response);
 * ```
 */
export async function signInWithKey(ctx: ControlPlaneContext, response: unknown): Promise<SignInResult> {
  const { webauthn, sessions } = ctx.identity;
  const verified = await webauthn.verifyAuthentication({ response });
  const authTime = ctx.clock();
  const { session, refreshToken } = sessions.start({
    user: verified.user,
    credentialId: verified.credential.id,
    amr: verified.amr,
    authTime,
  });
  return { user: verified.user, credential: verified.credential, amr: verified.amr, session, refreshToken };
}

/** An access token for a session, without a refresh token. */
export interface AccessTokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
}

/** The OAuth token response (RFC 6749 §5.1) for a session. */
export interface TokenResponse extends AccessTokenResponse {
  refresh_token: string;
}

/** The audit event of a token response: `token.issued` (a sign-in, a code exchange, the console) or `token.refreshed`. */
export interface TokenAudit {
  type: "token.issued" | "token.refreshed";
  reason: string;
  /** How the token was obtained: "webauthn", "authorization_code", "refresh_token", or "console" (`POST /api/me/token`). */
  grant: "webauthn" | "authorization_code" | "refresh_token" | "console";
}

/**
 * Issues an access token for a session (its user, key, `amr` and `auth_time`). The token expires
 * no later than the session (`exp` is capped at the session's `expiresAt`, and `expires_in`
 * follows); a session that has reached its maximum age gets no token (400 `invalid_grant`). Emits
 * `audit` with the token's `jti` (never the token).
 *
 * @example
 * ```ts
 * const token = await issueAccessToken(ctx, user, session, { type: "token.issued", reason, grant: "console" });
 * ```
 */
export async function issueAccessToken(
  ctx: ControlPlaneContext,
  user: UserRecord,
  session: SessionRecord,
  audit: TokenAudit,
): Promise<AccessTokenResponse> {
  if (Math.floor(session.expiresAt / 1000) <= Math.floor(ctx.clock() / 1000)) {
    throw new OAuthError(
      400,
      "invalid_grant",
      "the session has reached its maximum age; sign in again with your key.",
    );
  }
  const issued = await ctx.identity.issuer.issue({
    sub: user.name,
    groups: user.groups,
    sessionId: session.id,
    credentialId: session.credentialId,
    amr: session.amr,
    authTime: session.authTime,
    sessionExpiresAt: session.expiresAt,
  });
  ctx.emit({
    type: audit.type,
    subject: user.name,
    credential: session.credentialId,
    session: session.id,
    jti: issued.jti,
    reason: audit.reason,
    decision: "allow",
    details: { grant: audit.grant, expiresIn: issued.expires_in, amr: session.amr.join(",") },
  });
  return { access_token: issued.access_token, token_type: "Bearer", expires_in: issued.expires_in };
}

/**
 * {@link issueAccessToken} paired with the session's current refresh token: the OAuth token
 * response of a sign-in, a code exchange or a refresh.
 */
export async function tokensFor(
  ctx: ControlPlaneContext,
  user: UserRecord,
  session: SessionRecord,
  refreshToken: string,
  audit: TokenAudit,
): Promise<TokenResponse> {
  return { ...(await issueAccessToken(ctx, user, session, audit)), refresh_token: refreshToken };
}

/**
 * Whether a session may still be used: not revoked, not past its maximum age, its user enabled, its
 * key present and not suspended. Returns the session's user, or a reason.
 */
export function checkSession(
  ctx: ControlPlaneContext,
  sessionId: string,
): { ok: true; session: SessionRecord; user: UserRecord } | { ok: false; reason: string } {
  const { store } = ctx.identity;
  const session = store.getSession(sessionId);
  if (session === undefined) return { ok: false, reason: "the session no longer exists" };
  if (session.revokedAt !== undefined)
    return { ok: false, reason: `the session was revoked (${session.revokedReason ?? "no reason given"})` };
  if (session.expiresAt <= ctx.clock()) return { ok: false, reason: "the session reached its maximum age" };
  const user = store.getUserById(session.userId);
  if (user === undefined || user.disabled) return { ok: false, reason: "the user is disabled" };
  const credential = store.getCredential(session.credentialId);
  if (credential === undefined) return { ok: false, reason: "the key was removed" };
  if (credential.suspendedAt !== undefined) return { ok: false, reason: "the key is suspended" };
  return { ok: true, session, user };
}

/**
 * Refuses adding a key unless the session's key was tapped within {@link REAUTH_MAX_AGE_MS}: 403
 * `reauthentication_required` (the "my keys" page then sends the person to sign in again). Removing
 * a key needs no recent sign-in: it is confirmed by a tap of its own (routes/account.ts).
 */
export function requireRecentAuth(ctx: ControlPlaneContext, session: SessionRecord): void {
  if (ctx.clock() - session.authTime <= REAUTH_MAX_AGE_MS) return;
  throw new ApiError(403, "reauthentication_required", "sign in again with your key to add another key");
}

/** 401 for the JSON API when the request is not signed in. */
export function notSignedIn(): ApiError {
  return new ApiError(
    401,
    "ERR_NOT_SIGNED_IN",
    "you are not signed in (or your session ended); sign in with your key at /signin.",
  );
}
