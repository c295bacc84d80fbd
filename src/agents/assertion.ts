import {
  decodeProtectedHeader,
  errors,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  type ProtectedHeaderParameters,
} from "jose";
import type { PublicKeyJwk } from "./grants.js";

/** Longest an assertion may live (`exp - iat`), and how far ahead its `exp` may be: 5 minutes. */
export const MAX_ASSERTION_LIFETIME_S = 300;
/** Clock skew tolerated on `iat`, `exp` and `nbf`: 30 seconds. */
export const ASSERTION_CLOCK_SKEW_S = 30;
/** Longest assertion accepted, in characters. */
const MAX_ASSERTION_LENGTH = 8192;

/** Why an assertion was refused (the token endpoint answers all of them 401 `invalid_client`). */
export type AssertionErrorCode =
  | "ERR_ASSERTION_MALFORMED"
  | "ERR_ASSERTION_ALGORITHM"
  | "ERR_ASSERTION_KEY"
  | "ERR_ASSERTION_SIGNATURE"
  | "ERR_ASSERTION_CLAIMS"
  | "ERR_ASSERTION_EXPIRED"
  | "ERR_ASSERTION_LIFETIME"
  | "ERR_ASSERTION_REPLAYED";

/**
 * A refused client assertion: `code` says which check failed, `message` what to do. Never carries
 * the assertion itself.
 */
export class AssertionError extends Error {
  readonly code: AssertionErrorCode;

  constructor(code: AssertionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AssertionError";
    this.code = code;
  }
}

/** Single use of `jti`s: remembers each until it expires. */
export interface JtiStore {
  /**
   * Records `jti` for `grantId` until `expiresAt` (ms). False when it was already recorded (a
   * replay) or when the grant has too many live assertions (the store is bounded).
   */
  useJti(grantId: string, jti: string, expiresAt: number, now: number): "ok" | "replayed" | "full";
}

/** What an assertion is checked against. */
export interface AssertionExpectations {
  /** The grant (`client_id`): the assertion's `iss` and `sub`. */
  grantId: string;
  /** The grant's public key and its RFC 7638 thumbprint (the header's `kid`). */
  publicKey: PublicKeyJwk;
  keyThumbprint: string;
  /** The token endpoint URL: the assertion's `aud`. */
  audience: string;
  /** Milliseconds since the epoch. */
  now: number;
  jtis: JtiStore;
}

/** A verified assertion. */
export interface VerifiedAssertion {
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

/**
 * Verifies an RFC 7523 client assertion (`private_key_jwt`) of an agent: a compact JWS whose header
 * has `alg: "ES256"` (nothing else: not `none`, not HS256 with the public key as a secret) and `kid`
 * = the grant key's thumbprint; signed by that key; claims `iss` = `sub` = the grant id, `aud` = the
 * token endpoint (exactly, or a list containing it), `iat` not in the future, `exp` after now and at
 * most 5 minutes after `iat` and after now (30 s of clock skew), `nbf` (when present) passed, and a
 * `jti` never seen for this grant — recorded until the assertion expires, so a replay is refused.
 * The jti is recorded last, only for an otherwise valid assertion (so nobody without the key can
 * fill the store).
 *
 * @throws {AssertionError} naming the failed check.
 * @example
 * ```ts
 * const { jti } = await verifyClientAssertion(params.client_assertion, {
 *   grantId: grant.id, publicKey: grant.publicKey, keyThumbprint: grant.keyThumbprint,
 *   audience: `${publicUrl}/oauth/token`, now: Date.now(), jtis: grantStore,
 * });
 * ```
 */
export async function verifyClientAssertion(
  assertion: string,
  expected: AssertionExpectations,
): Promise<VerifiedAssertion> {
  if (
    typeof assertion !== "string" ||
    assertion.length > MAX_ASSERTION_LENGTH ||
    !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(assertion)
  ) {
    throw new AssertionError(
      "ERR_ASSERTION_MALFORMED",
      "client_assertion is not a compact JWS (three base64url parts separated by dots).",
    );
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(assertion);
  } catch (cause) {
    throw new AssertionError(
      "ERR_ASSERTION_MALFORMED",
      "client_assertion's header is not base64url-encoded JSON.",
      { cause },
    );
  }
  if (header.alg !== "ES256") {
    throw new AssertionError(
      "ERR_ASSERTION_ALGORITHM",
      `client_assertion must be signed ES256 with the agent's key; ${JSON.stringify(String(header.alg).slice(0, 16))} is refused.`,
    );
  }
  if (header.kid !== expected.keyThumbprint) {
    throw new AssertionError(
      "ERR_ASSERTION_KEY",
      `client_assertion's kid is not the thumbprint of grant ${expected.grantId}'s key (${expected.keyThumbprint}); sign with the key the grant names.`,
    );
  }
  if (
    header.crit !== undefined ||
    header.jku !== undefined ||
    header.jwk !== undefined ||
    header.x5u !== undefined
  ) {
    throw new AssertionError(
      "ERR_ASSERTION_MALFORMED",
      "client_assertion's header may not carry crit, jku, jwk or x5u: the key is the one the grant names.",
    );
  }
  const nowS = Math.floor(expected.now / 1000);
  let payload: JWTPayload;
  try {
    const key = await importJWK(expected.publicKey as JWK, "ES256");
    ({ payload } = await jwtVerify(assertion, key, {
      algorithms: ["ES256"],
      issuer: expected.grantId,
      subject: expected.grantId,
      audience: expected.audience,
      clockTolerance: ASSERTION_CLOCK_SKEW_S,
      currentDate: new Date(expected.now),
      requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti"],
    }));
  } catch (error) {
    throw fromJose(error, expected);
  }
  const iat = payload.iat as number;
  const exp = payload.exp as number;
  if (iat > nowS + ASSERTION_CLOCK_SKEW_S) {
    throw new AssertionError(
      "ERR_ASSERTION_CLAIMS",
      `client_assertion's iat is in the future by more than ${ASSERTION_CLOCK_SKEW_S} s; check the agent's clock.`,
    );
  }
  if (
    exp - iat > MAX_ASSERTION_LIFETIME_S ||
    exp > nowS + MAX_ASSERTION_LIFETIME_S + ASSERTION_CLOCK_SKEW_S
  ) {
    throw new AssertionError(
      "ERR_ASSERTION_LIFETIME",
      `client_assertion lives too long: exp must be at most ${MAX_ASSERTION_LIFETIME_S} s after iat and after now.`,
    );
  }
  const jti = payload.jti;
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256) {
    throw new AssertionError(
      "ERR_ASSERTION_CLAIMS",
      "client_assertion's jti must be a text of 1–256 characters.",
    );
  }
  // Remembered until it can no longer be accepted (exp plus the skew).
  const used = expected.jtis.useJti(
    expected.grantId,
    jti,
    (exp + ASSERTION_CLOCK_SKEW_S) * 1000,
    expected.now,
  );
  if (used === "replayed") {
    throw new AssertionError(
      "ERR_ASSERTION_REPLAYED",
      "client_assertion was already used (its jti was seen before): make a new assertion, with a new jti, for each token request.",
    );
  }
  if (used === "full") {
    throw new AssertionError(
      "ERR_ASSERTION_REPLAYED",
      `grant ${expected.grantId} has too many live assertions; request tokens less often (reuse a token until it nears expiry).`,
    );
  }
  return { jti, iat, exp };
}

function fromJose(error: unknown, expected: AssertionExpectations): AssertionError {
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AssertionError(
      "ERR_ASSERTION_SIGNATURE",
      `client_assertion's signature does not verify with grant ${expected.grantId}'s key; sign with the agent's private key.`,
      { cause: error },
    );
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new AssertionError("ERR_ASSERTION_ALGORITHM", "client_assertion must be signed ES256.", {
      cause: error,
    });
  }
  if (error instanceof errors.JWTExpired) {
    return new AssertionError(
      "ERR_ASSERTION_EXPIRED",
      `client_assertion has expired (${ASSERTION_CLOCK_SKEW_S} s of clock skew allowed); make a new one for each token request.`,
      { cause: error },
    );
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    const what =
      claim === "aud"
        ? `aud must be the token endpoint, ${expected.audience}`
        : claim === "iss" || claim === "sub"
          ? `${claim} must be the grant id, ${expected.grantId}`
          : claim === "nbf"
            ? "nbf is in the future"
            : `${claim} is ${error.reason === "missing" ? "missing" : "not acceptable"}`;
    return new AssertionError("ERR_ASSERTION_CLAIMS", `client_assertion refused: ${what}.`, { cause: error });
  }
  return new AssertionError("ERR_ASSERTION_MALFORMED", "client_assertion is not a well-formed signed JWT.", {
    cause: error,
  });
}
