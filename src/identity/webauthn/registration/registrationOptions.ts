import { randomBytes } from "node:crypto";
import {
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
} from "@simplewebauthn/server";
import { hashInviteSecret } from "../../users/hashInviteSecret.js";
import { issueChallenge } from "../challenges/issueChallenge.js";
import { WebAuthnError } from "../errors.js";
import { knownTransports } from "../transports.js";
import { CHALLENGE_TTL_MS, type WebAuthnContext } from "../types.js";

/**
 * Who a registration is for: a new user holding an invite, or a signed-in user adding a key. For
 * the latter, `sessionId` is the session the request is signed in with: it is stored with the
 * challenge, and {@link verifyRegistration} then finishes the registration only for a request signed
 * in with that same session while it is still good (not signed out, revoked or expired).
 */
export type RegistrationOptionsInput = { inviteSecret: string } | { userId: string; sessionId?: string };

/** What a registration challenge remembers (`ChallengeRecord.data`). @internal */
export interface RegistrationChallengeData {
  [key: string]: unknown;
  /** The new user's (or the existing user's) WebAuthn user handle, base64url. */
  webauthnUserId: string;
  /** SHA-256 of the invite secret, for an enrollment. */
  inviteHash?: string;
  /** The session that asked for the options, when a signed-in user adds a key. */
  sessionId?: string;
}

const SECRET = /^[A-Za-z0-9_-]{16,256}$/;

/**
 * Starts a registration: options for `navigator.credentials.create()` (or `startRegistration`) and a
 * stored challenge. With `inviteSecret`, for a new user — the invite must exist, be unused and
 * unexpired; it is redeemed only when {@link verifyRegistration} succeeds. With `userId`, for a
 * signed-in user adding a key — their keys are excluded so an authenticator is not registered twice.
 *
 * Asks for a discoverable credential (`residentKey: "required"`), user verification per policy, and
 * direct attestation only when an AAGUID allow-list is configured.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_INVITE`, `ERR_WEBAUTHN_USER`, `ERR_WEBAUTHN_MALFORMED` (400),
 *   `ERR_WEBAUTHN_USER_DISABLED` (403).
 *
 * @example
 * ```ts
 * const options = await registrationOptions(ctx, { inviteSecret: query.invite });
 * reply.send(options); // the page calls startRegistration({ optionsJSON: options })
 * ```
 */
export async function registrationOptions(
  ctx: WebAuthnContext,
  input: RegistrationOptionsInput,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const now = ctx.clock();
  let userName: string;
  let displayName: string;
  let webauthnUserId: string;
  let userId: string | undefined;
  let inviteHash: string | undefined;
  let sessionId: string | undefined;
  let exclude: { id: string; transports: ReturnType<typeof knownTransports> }[] = [];

  const given = (input ?? {}) as Partial<Record<"inviteSecret" | "userId" | "sessionId", unknown>>;
  if (typeof given.inviteSecret === "string") {
    if (!SECRET.test(given.inviteSecret)) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_INVITE",
        "the invite code is malformed; open the enrollment link exactly as the administrator sent it.",
      );
    }
    inviteHash = hashInviteSecret(given.inviteSecret);
    const invite = ctx.store.getInvite(inviteHash);
    if (invite === undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_INVITE",
        "unknown invite; ask an administrator for a new invite link.",
      );
    }
    if (invite.usedAt !== undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_INVITE",
        "this invite was already used; sign in with the key you enrolled, or ask an administrator for a new invite.",
      );
    }
    if (invite.expiresAt <= now) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_INVITE",
        "this invite has expired; ask an administrator for a new invite.",
      );
    }
    if (ctx.store.getUserByName(invite.userName) !== undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_USER",
        `a user named "${invite.userName}" already exists; sign in and add a key from your account, or ask an administrator.`,
      );
    }
    userName = invite.userName;
    displayName = invite.userName;
    webauthnUserId = randomBytes(32).toString("base64url");
  } else if (typeof given.userId === "string" && given.userId.length > 0 && given.userId.length <= 256) {
    const user = ctx.store.getUserById(given.userId);
    if (user === undefined) {
      throw new WebAuthnError("ERR_WEBAUTHN_USER", "unknown user; sign in again before adding a key.");
    }
    if (user.disabled) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_USER_DISABLED",
        `user "${user.name}" is disabled and cannot add keys; ask an administrator.`,
      );
    }
    userName = user.name;
    displayName = user.displayName ?? user.name;
    webauthnUserId = user.webauthnUserId;
    userId = user.id;
    if (given.sessionId !== undefined) {
      if (
        typeof given.sessionId !== "string" ||
        given.sessionId.length === 0 ||
        given.sessionId.length > 128
      ) {
        throw new WebAuthnError("ERR_WEBAUTHN_MALFORMED", "sessionId must be a session id; sign in again.");
      }
      sessionId = given.sessionId;
    }
    exclude = ctx.store
      .listCredentials(user.id)
      .map((c) => ({ id: c.id, transports: knownTransports(c.transports) }));
  } else {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      "registration needs either an invite secret (new user) or the signed-in user's id (adding a key).",
    );
  }

  const data: RegistrationChallengeData = { webauthnUserId };
  if (inviteHash !== undefined) data.inviteHash = inviteHash;
  if (sessionId !== undefined) data.sessionId = sessionId;
  const challenge = issueChallenge(ctx, "register", { ...(userId !== undefined ? { userId } : {}), data });

  return generateRegistrationOptions({
    rpName: ctx.rp.name,
    rpID: ctx.rp.id,
    userName,
    userDisplayName: displayName,
    userID: new Uint8Array(Buffer.from(webauthnUserId, "base64url")),
    challenge: new Uint8Array(Buffer.from(challenge, "base64url")),
    timeout: ctx.authenticators.timeout ?? CHALLENGE_TTL_MS,
    attestationType: ctx.allowAaguids !== undefined ? "direct" : "none",
    excludeCredentials: exclude,
    authenticatorSelection: {
      residentKey: "required",
      requireResidentKey: true,
      userVerification: ctx.authenticators.userVerification,
    },
  });
}
