/**
 * Stable codes of {@link GatewayCredentialError}:
 * - `ERR_NOT_SIGNED_IN`: no stored session for the gateway (run `cosmosgate login`);
 * - `ERR_GATEWAY_AMBIGUOUS`: several gateways are signed in and none was chosen;
 * - `ERR_SESSION_ENDED`: the gateway refused the refresh token (`invalid_grant`): the session
 *   expired, was revoked or the user was disabled; sign in again;
 * - `ERR_TOKEN_ENDPOINT`: the token, revocation or discovery endpoint could not be reached or
 *   answered something unexpected (usually transient);
 * - `ERR_CREDENTIALS_FILE`: the credentials file is unsafe (readable by others), unreadable or damaged;
 * - `ERR_LOGIN`: the browser sign-in did not complete (refused, state mismatch, timeout);
 * - `ERR_INSECURE_URL`: a gateway or endpoint URL uses plain HTTP to a host other than this machine;
 * - `ERR_AGENT_KEY`: an agent's key file is missing, unsafe (readable by others), or not a private
 *   ES256 JWK;
 * - `ERR_AGENT_REFUSED`: the gateway refused the agent's client assertion (`invalid_client`): the
 *   grant is unknown, pending, revoked, expired or spent, or the key is not the grant's.
 */
export type GatewayCredentialErrorCode =
  | "ERR_NOT_SIGNED_IN"
  | "ERR_GATEWAY_AMBIGUOUS"
  | "ERR_SESSION_ENDED"
  | "ERR_TOKEN_ENDPOINT"
  | "ERR_CREDENTIALS_FILE"
  | "ERR_LOGIN"
  | "ERR_INSECURE_URL"
  | "ERR_AGENT_KEY"
  | "ERR_AGENT_REFUSED";

/**
 * An error of `cosmosgate/client`. `message` says what was wrong and what to do; it never contains
 * a token.
 *
 * `name` follows the Azure Identity conventions so that `ChainedTokenCredential` moves on to the next
 * credential when this one cannot be used: `"CredentialUnavailableError"` for `ERR_NOT_SIGNED_IN`
 * and `ERR_GATEWAY_AMBIGUOUS`, `"AuthenticationRequiredError"` for `ERR_SESSION_ENDED`, otherwise
 * `"GatewayCredentialError"`.
 *
 * @example
 * ```ts
 * try {
 *   await credential.getToken("https://cosmos.azure.com/.default");
 * } catch (error) {
 *   if (error instanceof GatewayCredentialError && error.code === "ERR_SESSION_ENDED") console.error(error.message);
 * }
 * ```
 */
export class GatewayCredentialError extends Error {
  readonly code: GatewayCredentialErrorCode;
  /** The OAuth `error` value the gateway answered with, when there was one (e.g. `invalid_grant`). */
  readonly oauthError?: string;

  constructor(
    code: GatewayCredentialErrorCode,
    message: string,
    options?: { cause?: unknown; oauthError?: string },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.name =
      code === "ERR_NOT_SIGNED_IN" || code === "ERR_GATEWAY_AMBIGUOUS"
        ? "CredentialUnavailableError"
        : code === "ERR_SESSION_ENDED"
          ? "AuthenticationRequiredError"
          : "GatewayCredentialError";
    if (options?.oauthError !== undefined) this.oauthError = options.oauthError;
  }
}
