import { SessionError } from "../../identity/sessions/index.js";
import { UserError } from "../../identity/users/index.js";
import { WebAuthnError } from "../../identity/webauthn/index.js";

/**
 * A refusal of the control plane's own (not a module's): `status` is the HTTP status, `code` the
 * stable `error` of the JSON body, `message` says what was wrong and what to do.
 *
 * @example
 * ```ts
 * throw new ApiError(409, "ERR_LAST_KEY", "this is your only key; add another key before removing it.");
 * ```
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * An OAuth 2.0 token or revocation endpoint error (RFC 6749 §5.2): answered as
 * `{error, error_description}`.
 *
 * @example
 * ```ts
 * throw new OAuthError(400, "invalid_grant", "the authorization code was already used; run `cosmosgate login` again.");
 * ```
 */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;

  constructor(status: number, error: string, description: string) {
    super(description);
    this.name = "OAuthError";
    this.status = status;
    this.error = error;
  }
}

/** Anything the error handler can answer: status, stable code, message, and the OAuth `error`. */
export interface ErrorReply {
  status: number;
  code: string;
  message: string;
  oauthError: string;
  /** True for faults of the gateway (logged with their stack); false for a refused request. */
  internal: boolean;
}

/** Fastify's own errors that mean "the client sent something wrong", with our wording. */
const FASTIFY_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: "ERR_BAD_JSON",
    message: "the request body is not valid JSON; send a JSON object with content-type: application/json.",
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: "ERR_BAD_JSON",
    message: "the request body is empty; send a JSON object with content-type: application/json.",
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 400,
    code: "ERR_BODY_TOO_LARGE",
    message: "the request body is larger than 64 KiB; the control plane's requests are small JSON objects.",
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: "ERR_BAD_REQUEST",
    message: "the request's content-length does not match its body.",
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: "ERR_UNSUPPORTED_MEDIA_TYPE",
    message: "unsupported content-type; send the request as JSON with content-type: application/json.",
  },
  FST_ERR_CTP_INVALID_TYPE: {
    status: 415,
    code: "ERR_UNSUPPORTED_MEDIA_TYPE",
    message: "unsupported content-type; send the request as JSON with content-type: application/json.",
  },
};

const OAUTH_BY_STATUS: Record<number, string> = { 401: "invalid_client", 403: "access_denied" };

/**
 * Maps any error thrown while handling a request to what the client is told. The module errors
 * (WebAuthn, sessions, users) carry their own status; fastify's body errors become 400 (415 for a
 * content type we do not take); anything else is a 500 whose message says nothing of the cause.
 *
 * @example
 * ```ts
 * const r = toErrorReply(new WebAuthnError("ERR_WEBAUTHN_CHALLENGE", "challenge expired..."));
 * r.status; // 400
 * ```
 */
export function toErrorReply(error: unknown): ErrorReply {
  const refused = (status: number, code: string, message: string, oauthError?: string): ErrorReply => ({
    status,
    code,
    message,
    oauthError: oauthError ?? OAUTH_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request"),
    internal: false,
  });
  if (error instanceof ApiError) return refused(error.status, error.code, error.message);
  if (error instanceof OAuthError) return refused(error.status, error.error, error.message, error.error);
  if (error instanceof WebAuthnError) {
    if (error.status >= 500) return internal();
    return refused(
      error.status,
      error.code,
      error.message,
      error.status === 403 ? "access_denied" : "invalid_grant",
    );
  }
  if (error instanceof SessionError)
    return refused(error.status, error.code, error.message, error.oauthError);
  if (error instanceof UserError) return refused(error.status, error.code, error.message);
  const e = error as { code?: unknown; statusCode?: unknown; validation?: unknown; message?: unknown };
  if (typeof e?.code === "string" && e.code in FASTIFY_ERRORS) {
    const known = FASTIFY_ERRORS[e.code];
    return refused(known.status, known.code, known.message);
  }
  if (e?.validation !== undefined && typeof e.message === "string") {
    return refused(400, "ERR_BAD_REQUEST", e.message);
  }
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return refused(
      e.statusCode,
      typeof e.code === "string" ? e.code : "ERR_BAD_REQUEST",
      typeof e.message === "string" ? e.message : "bad request",
    );
  }
  return internal();
}

function internal(): ErrorReply {
  return {
    status: 500,
    code: "ERR_INTERNAL",
    message: "the gateway failed to handle this request; try again, and tell the operator if it persists.",
    oauthError: "server_error",
    internal: true,
  };
}
