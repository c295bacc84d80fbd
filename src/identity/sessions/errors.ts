/**
 * Stable codes of {@link SessionError}, each with the HTTP status and OAuth `error` the token
 * endpoint answers with (RFC 6749 §5.2: a bad refresh token is `invalid_grant`, status 400).
 *
 * @example
 * ```ts
 * SESSION_ERRORS.ERR_REFRESH_REUSED; // { status: 400, oauthError: "invalid_grant" }
 * ```
 */
export const SESSION_ERRORS = Object.freeze({
  /** Not a refresh token of this gateway (malformed or unknown). */
  ERR_REFRESH_INVALID: { status: 400, oauthError: "invalid_grant" },
  /** A refresh token presented a second time: the session has been revoked. */
  ERR_REFRESH_REUSED: { status: 400, oauthError: "invalid_grant" },
  /** The refresh token outlived `refreshTtl`. */
  ERR_REFRESH_EXPIRED: { status: 400, oauthError: "invalid_grant" },
  /** The session reached `sessions.maxAge`: a new tap on the key is needed. */
  ERR_SESSION_EXPIRED: { status: 400, oauthError: "invalid_grant" },
  /** The session was revoked, its user disabled, or its key suspended or removed. */
  ERR_SESSION_REVOKED: { status: 400, oauthError: "invalid_grant" },
  /** `revoke({ sessionId })` named a session that does not exist. */
  ERR_SESSION_NOT_FOUND: { status: 404, oauthError: "invalid_request" },
  /** `start()` for a disabled user. */
  ERR_USER_DISABLED: { status: 403, oauthError: "access_denied" },
} as const);

/** One of the keys of {@link SESSION_ERRORS}. */
export type SessionErrorCode = keyof typeof SESSION_ERRORS;

/**
 * A refused session operation. `code` is stable; `status` and `oauthError` are what the HTTP edge
 * answers; `message` says what happened and what to do, and never contains a token.
 *
 * @example
 * ```ts
 * try {
 *   const { refreshToken } = sessions.refresh(body.refresh_token);
 * } catch (error) {
 *   if (error instanceof SessionError) {
 *     return reply.code(error.status).send({ error: error.oauthError, error_description: error.message });
 *   }
 *   throw error;
 * }
 * ```
 */
export class SessionError extends Error {
  override readonly name = "SessionError";
  readonly code: SessionErrorCode;
  readonly status: number;
  readonly oauthError: string;

  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = SESSION_ERRORS[code].status;
    this.oauthError = SESSION_ERRORS[code].oauthError;
  }
}
