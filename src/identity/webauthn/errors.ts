/**
 * Stable codes of {@link WebAuthnError}, with the HTTP status the edge answers with. 400: the
 * response is malformed or failed verification (start the ceremony again); 403: the response is
 * genuine but policy refuses it (a disabled user, a suspended key, an authenticator the policy does
 * not allow); 500: the gateway's own WebAuthn configuration is wrong (raised at start-up only).
 *
 * @example
 * ```ts
 * for (const code of Object.keys(WEBAUTHN_ERROR_STATUS)) refusals.labels(code).inc(0);
 * ```
 */
export const WEBAUTHN_ERROR_STATUS = {
  /** The response (or an options input) does not have the expected shape, types or encoding. */
  ERR_WEBAUTHN_MALFORMED: 400,
  /** The challenge is unknown, already used, expired, or belongs to another ceremony. */
  ERR_WEBAUTHN_CHALLENGE: 400,
  /** The invite is unknown, already used or expired. */
  ERR_WEBAUTHN_INVITE: 400,
  /** The user an options request names does not exist, or its name is taken. */
  ERR_WEBAUTHN_USER: 400,
  /** The authenticator's response failed a check of the WebAuthn ceremony (origin, RP ID, flags, signature). */
  ERR_WEBAUTHN_VERIFICATION: 400,
  /** The credential is not registered here. */
  ERR_WEBAUTHN_UNKNOWN_CREDENTIAL: 400,
  /** The credential or user handle does not belong to the user the ceremony is for. */
  ERR_WEBAUTHN_WRONG_USER: 400,
  /** The credential ID is already registered (to this or another user). */
  ERR_WEBAUTHN_CREDENTIAL_EXISTS: 400,
  /** The user is disabled. */
  ERR_WEBAUTHN_USER_DISABLED: 403,
  /**
   * A key registration was started by a signed-in session, and is not finished by that same
   * session while it is still good (not signed out, revoked, expired; its user and key usable).
   */
  ERR_WEBAUTHN_SESSION: 403,
  /** The key is suspended (for example after a suspected clone). */
  ERR_WEBAUTHN_KEY_SUSPENDED: 403,
  /** The key's signature counter went backwards: the key is now suspended. */
  ERR_WEBAUTHN_CLONE_SUSPECTED: 403,
  /** Policy requires device-bound keys and this one is a synced (backup-eligible) passkey. */
  ERR_WEBAUTHN_DEVICE_BOUND_REQUIRED: 403,
  /** Policy requires verifiable attestation and the response has none (or only self attestation). */
  ERR_WEBAUTHN_ATTESTATION_REQUIRED: 403,
  /** The authenticator model (AAGUID) is not on the allow-list or its attestation does not chain to its metadata. */
  ERR_WEBAUTHN_AAGUID_NOT_ALLOWED: 403,
  /** The gateway's WebAuthn configuration is invalid (start-up only). */
  ERR_WEBAUTHN_CONFIG: 500,
} as const;

/** One of the keys of {@link WEBAUTHN_ERROR_STATUS}. */
export type WebAuthnErrorCode = keyof typeof WEBAUTHN_ERROR_STATUS;

/**
 * A refused WebAuthn ceremony step. `code` is stable, `status` is the HTTP status to answer with, and
 * `message` says what was wrong and what to do. `cause`, when set, is the underlying library error,
 * for logs only (its message may quote response values).
 *
 * @example
 * ```ts
 * try {
 *   const { user } = await webauthn.verifyAuthentication({ response: body });
 * } catch (error) {
 *   if (error instanceof WebAuthnError) return reply.code(error.status).send({ code: error.code, message: error.message });
 *   throw error;
 * }
 * ```
 */
export class WebAuthnError extends Error {
  readonly code: WebAuthnErrorCode;
  readonly status: 400 | 403 | 500;

  constructor(code: WebAuthnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WebAuthnError";
    this.code = code;
    this.status = WEBAUTHN_ERROR_STATUS[code];
  }
}

/**
 * Whether `value` is a {@link WebAuthnError}, optionally with the given code.
 *
 * @example
 * ```ts
 * if (isWebAuthnError(error, "ERR_WEBAUTHN_CLONE_SUSPECTED")) alertSecurityTeam(error);
 * ```
 */
export function isWebAuthnError(value: unknown, code?: WebAuthnErrorCode): value is WebAuthnError {
  return value instanceof WebAuthnError && (code === undefined || value.code === code);
}
