import { randomUUID } from "node:crypto";
import { verifyRegistrationResponse } from "@simplewebauthn/server";
import type { CredentialRecord, UserRecord } from "../../../store/ports.js";
import { checkAttestationPolicy } from "../attestation/checkAttestationPolicy.js";
import { readAttestation } from "../attestation/readAttestation.js";
import { readClientData } from "../challenges/readClientData.js";
import { takeChallenge } from "../challenges/takeChallenge.js";
import { WebAuthnError } from "../errors.js";
import { parseResponse } from "../response/parseResponse.js";
import { toWebAuthnError } from "../toWebAuthnError.js";
import { knownTransports } from "../transports.js";
import type { WebAuthnContext } from "../types.js";

/** Input of {@link verifyRegistration}. */
export interface VerifyRegistrationInput {
  /** The `RegistrationResponseJSON` as posted by the browser (untrusted). */
  response: unknown;
  /** A name for the key; default "Key added YYYY-MM-DD". */
  nickname?: string;
  /**
   * The session the request is signed in with (the caller has checked its cookie), if any. A
   * registration whose options were asked for by a session finishes only when this is that same
   * session and it is still good.
   */
  sessionId?: string;
}

/** What a successful registration produced. */
export interface VerifyRegistrationResult {
  /** The new user (enrollment by invite) or the signed-in user who added a key. */
  user: UserRecord;
  credential: CredentialRecord;
}

/**
 * Finishes a registration started by {@link registrationOptions}: checks the response's shape,
 * consumes its challenge (single use), applies the attestation policy, verifies the response with
 * SimpleWebAuthn (challenge, origin, RP ID hash, user presence and verification, flags, attestation),
 * refuses a credential ID registered before, applies `requireDeviceBound`, then — for an invite —
 * redeems the invite and creates the user, and stores the credential.
 *
 * Emits `user.enrolled` and `credential.added` (allow), or `registration.failed` (deny) with the
 * reason.
 *
 * @throws {WebAuthnError} 400 for malformed or unverifiable responses, an unknown or used challenge
 *   or invite, a duplicate credential; 403 for policy refusals (disabled user, a registration started
 *   by a session finished without it or after it ended (`ERR_WEBAUTHN_SESSION`), synced passkey when
 *   device-bound keys are required, attestation or AAGUID not allowed). Never a raw error.
 *
 * @example
 * ```ts
 * const { user, credential } = await verifyRegistration(ctx, { response: request.body, nickname: "YubiKey 5C" });
 * ```
 */
export async function verifyRegistration(
  ctx: WebAuthnContext,
  input: VerifyRegistrationInput,
): Promise<VerifyRegistrationResult> {
  let subject: string | undefined;
  let credentialId: string | undefined;
  try {
    const nickname = checkNickname(input?.nickname);
    const response = parseResponse("registration", input?.response);
    credentialId = response.id;
    const { challenge } = readClientData(response.response.clientDataJSON);
    // Decoded before the challenge is consumed: a garbled response does not use it up.
    const attestation = readAttestation(response.response.attestationObject);
    const record = takeChallenge(ctx, challenge, "register");
    const data = record.data ?? {};
    const webauthnUserId = typeof data.webauthnUserId === "string" ? data.webauthnUserId : undefined;
    const inviteHash = typeof data.inviteHash === "string" ? data.inviteHash : undefined;
    const startedBy = typeof data.sessionId === "string" ? data.sessionId : undefined;
    if (webauthnUserId === undefined || (inviteHash === undefined && record.userId === undefined)) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_CHALLENGE",
        "the challenge was not issued for a registration; start again.",
      );
    }

    // Who the key is for — checked again now: things may have changed since the options were issued.
    const existing = record.userId !== undefined ? ctx.store.getUserById(record.userId) : undefined;
    const invite = inviteHash !== undefined ? ctx.store.getInvite(inviteHash) : undefined;
    if (record.userId !== undefined) {
      if (existing === undefined)
        throw new WebAuthnError("ERR_WEBAUTHN_USER", "unknown user; sign in again and retry.");
      subject = existing.name;
      if (existing.disabled) {
        throw new WebAuthnError(
          "ERR_WEBAUTHN_USER_DISABLED",
          `user "${existing.name}" is disabled and cannot add keys; ask an administrator.`,
        );
      }
      if (startedBy !== undefined) checkStartingSession(ctx, startedBy, existing, input?.sessionId);
    } else {
      if (invite === undefined) {
        throw new WebAuthnError(
          "ERR_WEBAUTHN_INVITE",
          "unknown invite; ask an administrator for a new invite link.",
        );
      }
      subject = invite.userName;
    }

    checkAttestationPolicy(ctx, attestation);
    if (ctx.metadataReady !== undefined) await ctx.metadataReady();

    let result: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      result = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: ctx.rp.origins,
        expectedRPID: ctx.rp.id,
        requireUserPresence: true,
        requireUserVerification: ctx.authenticators.userVerification === "required",
      });
    } catch (error) {
      throw toWebAuthnError(error, "registration", ctx);
    }
    if (!result.verified) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_VERIFICATION",
        "the authenticator's attestation signature is invalid; register the key again or use another authenticator.",
      );
    }
    const info = result.registrationInfo;
    if (info.credential.id !== response.id) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_MALFORMED",
        "the response's id is not the credential ID in its authenticator data; send the credential exactly as the browser returned it.",
      );
    }

    if (ctx.store.getCredential(info.credential.id) !== undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_CREDENTIAL_EXISTS",
        "this credential is already registered; sign in with it, or create a new credential on the authenticator.",
      );
    }
    if (ctx.authenticators.requireDeviceBound && info.credentialDeviceType === "multiDevice") {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_DEVICE_BOUND_REQUIRED",
        "this is a synced passkey (backup-eligible), and this gateway only accepts device-bound keys; register a hardware security key instead.",
      );
    }
    // Verified data must agree with what the policy was applied to.
    checkAttestationPolicy(ctx, { ...attestation, fmt: info.fmt, aaguid: info.aaguid.toLowerCase() });

    const now = ctx.clock();
    let user: UserRecord;
    let enrolled = false;
    if (existing !== undefined) {
      user = existing;
    } else {
      const redeemed = ctx.store.redeemInvite(inviteHash as string, now);
      if (redeemed === undefined) {
        throw new WebAuthnError(
          "ERR_WEBAUTHN_INVITE",
          "this invite was used or expired while you were registering; ask an administrator for a new invite.",
        );
      }
      if (ctx.store.getUserByName(redeemed.userName) !== undefined) {
        throw new WebAuthnError(
          "ERR_WEBAUTHN_USER",
          `a user named "${redeemed.userName}" already exists; ask an administrator.`,
        );
      }
      user = {
        id: randomUUID(),
        name: redeemed.userName,
        groups: [...redeemed.groups],
        admin: redeemed.admin,
        disabled: false,
        createdAt: now,
        webauthnUserId,
      };
      storeOrExplain(
        () => ctx.store.createUser(user),
        () => ctx.store.getUserByName(user.name) !== undefined,
        new WebAuthnError(
          "ERR_WEBAUTHN_USER",
          `a user named "${user.name}" already exists; ask an administrator.`,
        ),
      );
      enrolled = true;
    }

    const credential: CredentialRecord = {
      id: info.credential.id,
      userId: user.id,
      publicKey: info.credential.publicKey,
      counter: info.credential.counter,
      transports: knownTransports(info.credential.transports ?? response.response.transports),
      aaguid: info.aaguid.toLowerCase(),
      fmt: info.fmt,
      deviceBound: info.credentialDeviceType === "singleDevice",
      backedUp: info.credentialBackedUp,
      nickname: nickname ?? `Key added ${new Date(now).toISOString().slice(0, 10)}`,
      createdAt: now,
      useCount: 0,
    };
    storeOrExplain(
      () => ctx.store.addCredential(credential),
      () => ctx.store.getCredential(credential.id) !== undefined,
      new WebAuthnError(
        "ERR_WEBAUTHN_CREDENTIAL_EXISTS",
        "this credential was registered at the same moment; sign in with it.",
      ),
    );

    const key = {
      credential: credential.id,
      credentialName: credential.nickname,
      aaguid: credential.aaguid,
      deviceBound: credential.deviceBound,
    };
    if (enrolled) {
      ctx.emit({
        type: "user.enrolled",
        subject: user.name,
        ...key,
        reason: `enrolled by invite${user.admin ? " as an administrator" : ""}`,
        decision: "allow",
        details: { admin: user.admin, groups: user.groups.join(",") },
      });
    }
    ctx.emit({
      type: "credential.added",
      subject: user.name,
      ...key,
      reason: `${credential.deviceBound ? "device-bound" : "synced"} key registered (fmt ${credential.fmt}, aaguid ${credential.aaguid})`,
      decision: "allow",
      details: {
        fmt: credential.fmt,
        backedUp: credential.backedUp,
        transports: credential.transports.join(","),
        enrollment: enrolled,
      },
    });
    return { user, credential };
  } catch (error) {
    ctx.emit({
      type: "registration.failed",
      ...(subject !== undefined ? { subject } : {}),
      ...(credentialId !== undefined ? { credential: credentialId } : {}),
      reason: error instanceof WebAuthnError ? `${error.code}: ${error.message}` : "internal error",
      decision: "deny",
      details: { code: error instanceof WebAuthnError ? error.code : "ERR_INTERNAL" },
    });
    // Only store faults are left unmapped here (a 500 upstream is right for them).
    throw error;
  }
}

/**
 * A key added by a signed-in user: the request finishing the registration must be signed in with the
 * session that asked for the options, and that session must still be good — not signed out or
 * revoked, not past its maximum age, of this (enabled) user, its key present and not suspended. So
 * signing out, an administrator's revocation or removing a stolen key also stops a registration the
 * session had started.
 */
function checkStartingSession(
  ctx: WebAuthnContext,
  startedBy: string,
  user: UserRecord,
  presented: string | undefined,
): void {
  if (presented !== startedBy) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_SESSION",
      "this key registration was started while signed in, and this request is not signed in with that session; sign in again with your key and add the key again.",
    );
  }
  const session = ctx.store.getSession(startedBy);
  const credential = session !== undefined ? ctx.store.getCredential(session.credentialId) : undefined;
  if (
    session === undefined ||
    session.revokedAt !== undefined ||
    session.expiresAt <= ctx.clock() ||
    session.userId !== user.id ||
    credential === undefined ||
    credential.userId !== user.id ||
    credential.suspendedAt !== undefined
  ) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_SESSION",
      "the session that started this key registration has ended (signed out, revoked, expired, or its key was removed or suspended); sign in again with your key and add the key again.",
    );
  }
}

/** Runs a store write; when it throws because of a race that `lost()` detects, throws `refusal` instead. */
function storeOrExplain(write: () => void, lost: () => boolean, refusal: WebAuthnError): void {
  try {
    write();
  } catch (error) {
    if (lost()) throw refusal;
    throw error;
  }
}

function checkNickname(nickname: unknown): string | undefined {
  if (nickname === undefined || nickname === null || nickname === "") return undefined;
  if (typeof nickname !== "string" || nickname.length > 64 || /\p{Cc}/u.test(nickname)) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      "the key's nickname must be text of at most 64 characters without control characters.",
    );
  }
  return nickname.trim();
}
