import {
  generateAuthenticationOptions,
  type PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import type { ChallengeRecord, UserRecord } from "../../../store/ports.js";
import { issueChallenge } from "../challenges/issueChallenge.js";
import { WebAuthnError } from "../errors.js";
import { knownTransports } from "../transports.js";
import { CHALLENGE_TTL_MS, type WebAuthnContext } from "../types.js";

/** Input of {@link authenticationOptions}; all optional. */
export interface AuthenticationOptionsInput {
  /** Username-first sign-in: offer this user's keys. Omit for a discoverable ("passkey") sign-in. */
  username?: string;
  /** A signed-in user confirming something (step-up, approval): offer that user's keys. */
  userId?: string;
  /** Ceremony the challenge is for; default "login". {@link verifyAuthentication} must be told the same. */
  purpose?: Exclude<ChallengeRecord["purpose"], "register">;
  /** JSON the ceremony needs back after verification (e.g. the approval request); returned as `challengeData`. */
  data?: Record<string, unknown>;
  /**
   * A challenge the caller derives from what the tap confirms (base64url of 16 to 64 bytes, e.g.
   * SHA-256 of an approval's operation): used as is and not stored, so {@link verifyAuthentication}
   * must be given it as `expectedChallenge`; the caller owns its single use. Needs `userId`.
   */
  challenge?: string;
}

/**
 * Starts a sign-in: options for `navigator.credentials.get()` (or `startAuthentication`) and a stored
 * challenge.
 *
 * - No username: a discoverable sign-in; no `allowCredentials`, the authenticator picks the account.
 * - A known username: `allowCredentials` = the user's keys that are not suspended; the challenge is
 *   bound to the user, so only their keys can answer it.
 * - An unknown username: options with no `allowCredentials` (like a discoverable sign-in), so the
 *   answer alone does not say whether the user exists; the challenge remembers the name and
 *   {@link verifyAuthentication} refuses a key of anyone else. (A user with keys still gets a
 *   non-empty list, so this hides existence only from a casual look; the discoverable flow hides it.)
 * - A disabled user gets options as usual; the refusal (403) comes at verification, after the key
 *   proved possession, so the user's state is never told to someone without the key.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_MALFORMED` (400) for a malformed input,
 *   `ERR_WEBAUTHN_USER` (400) for an unknown `userId`.
 *
 * @example
 * ```ts
 * const options = await authenticationOptions(ctx, { username: "ada" });
 * // browser: startAuthentication({ optionsJSON: options }) → POST the result to verifyAuthentication
 * ```
 */
export async function authenticationOptions(
  ctx: WebAuthnContext,
  input: AuthenticationOptionsInput = {},
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const {
    username,
    userId,
    purpose = "login",
    data,
    challenge: bound,
  } = (input ?? {}) as AuthenticationOptionsInput;
  if (bound !== undefined && (!isBoundChallenge(bound) || userId === undefined)) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      "challenge must be base64url of 16 to 64 bytes, given with userId.",
    );
  }
  if (
    username !== undefined &&
    (typeof username !== "string" || username.length === 0 || username.length > 256)
  ) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      "username must be a non-empty text of at most 256 characters.",
    );
  }
  if (!["login", "grant", "approval"].includes(purpose)) {
    throw new WebAuthnError("ERR_WEBAUTHN_MALFORMED", 'purpose must be "login", "grant" or "approval".');
  }
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    throw new WebAuthnError("ERR_WEBAUTHN_MALFORMED", "data must be a JSON object.");
  }

  let user: UserRecord | undefined;
  if (userId !== undefined) {
    user = typeof userId === "string" ? ctx.store.getUserById(userId) : undefined;
    if (user === undefined) throw new WebAuthnError("ERR_WEBAUTHN_USER", "unknown user; sign in again.");
  } else if (username !== undefined) {
    user = ctx.store.getUserByName(username);
  }

  // The caller's data is kept apart from what this module remembers (the name asked for).
  const challengeData: Record<string, unknown> = {};
  if (user === undefined && username !== undefined) challengeData.username = username;
  if (data !== undefined) challengeData.data = data;
  const allow =
    user === undefined
      ? undefined
      : ctx.store
          .listCredentials(user.id)
          .filter((c) => c.suspendedAt === undefined)
          .map((c) => ({ id: c.id, transports: knownTransports(c.transports) }));

  const challenge =
    bound ??
    issueChallenge(ctx, purpose, {
      ...(user !== undefined ? { userId: user.id } : {}),
      data: challengeData,
    });
  return generateAuthenticationOptions({
    rpID: ctx.rp.id,
    challenge: new Uint8Array(Buffer.from(challenge, "base64url")),
    timeout: ctx.authenticators.timeout ?? CHALLENGE_TTL_MS,
    userVerification: ctx.authenticators.userVerification,
    ...(allow !== undefined && allow.length > 0 ? { allowCredentials: allow } : {}),
  });
}

/** A caller-derived challenge: base64url (no padding) of 16 to 64 bytes. */
export function isBoundChallenge(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9_-]{22,86}$/.test(value);
}
