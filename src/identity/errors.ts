/**
 * Stable codes of {@link TokenError}. The HTTP edge maps every one of them to 401 with a Cosmos-shaped
 * body `{code, message}`; none of them is a server fault.
 *
 * @example
 * ```ts
 * for (const code of TOKEN_ERROR_CODES) refusals.labels(code).inc(0); // pre-create metric series
 * ```
 */
export const TOKEN_ERROR_CODES = [
  "ERR_TOKEN_MISSING",
  "ERR_TOKEN_MALFORMED",
  "ERR_TOKEN_UNSUPPORTED_TYPE",
  "ERR_TOKEN_ALGORITHM",
  "ERR_TOKEN_SIGNATURE",
  "ERR_TOKEN_UNKNOWN_KEY",
  "ERR_TOKEN_EXPIRED",
  "ERR_TOKEN_NOT_YET_VALID",
  "ERR_TOKEN_AUDIENCE",
  "ERR_TOKEN_ISSUER",
  "ERR_TOKEN_CLAIMS",
  "ERR_TOKEN_REQUIREMENT",
  "ERR_TOKEN_KEYS_UNAVAILABLE",
  "ERR_TOKEN_REVOKED",
] as const;

/** One of {@link TOKEN_ERROR_CODES}. */
export type TokenErrorCode = (typeof TOKEN_ERROR_CODES)[number];

/**
 * A refused data-plane credential. `code` is stable; `message` says what was wrong and what to do,
 * and never contains the token (nor any part of it beyond short, quoted claim values such as an
 * issuer or an audience). `cause`, when set, is the underlying library error, for logs.
 *
 * @example
 * ```ts
 * try {
 *   principal = verifier.verifyCached(jwt) ?? (await verifier.verify(jwt));
 * } catch (error) {
 *   if (error instanceof TokenError) return reply401(error.code, error.message);
 *   throw error;
 * }
 * ```
 */
export class TokenError extends Error {
  readonly code: TokenErrorCode;

  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TokenError";
    this.code = code;
  }
}

/**
 * Whether `value` is a {@link TokenError}, optionally with the given code.
 *
 * @example
 * ```ts
 * if (isTokenError(error, "ERR_TOKEN_EXPIRED")) metrics.expired.inc();
 * ```
 */
export function isTokenError(value: unknown, code?: TokenErrorCode): value is TokenError {
  return value instanceof TokenError && (code === undefined || value.code === code);
}
