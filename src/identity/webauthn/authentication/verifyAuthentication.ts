import { type VerifiedAuthenticationResponse, verifyAuthenticationResponse } from "@simplewebauthn/server";
import type { ChallengeRecord, CredentialRecord, UserRecord } from "../../../store/ports.js";
import { readAuthenticatorData } from "../challenges/readAuthenticatorData.js";
import { readClientData } from "../challenges/readClientData.js";
import { takeChallenge } from "../challenges/takeChallenge.js";
import { WebAuthnError } from "../errors.js";
import { parseResponse } from "../response/parseResponse.js";
import { toWebAuthnError } from "../toWebAuthnError.js";
import { knownTransports } from "../transports.js";
import type { WebAuthnContext } from "../types.js";

/** Input of {@link verifyAuthentication}. */
export interface VerifyAuthenticationInput {
  /** The `AuthenticationResponseJSON` as posted by the browser (untrusted). */
  response: unknown;
  /** The purpose {@link authenticationOptions} was called with; default "login". */
  purpose?: Exclude<ChallengeRecord["purpose"], "register">;
  /**
   * For options made with a caller-derived `challenge`: the challenge the response must carry and
   * the user whose key must sign it. Nothing is consumed from the store: the caller makes the
   * confirmation single use (e.g. one approval per person).
   */
  expectedChallenge?: { challenge: string; userId: string };
}

/** A successful sign-in. */
export interface VerifyAuthenticationResult {
  user: UserRecord;
  /** The credential as it is now (counter, last use, use count updated). */
  credential: CredentialRecord;
  userVerified: boolean;
  /** RFC 8176 methods: "hwk" (device-bound key) or "swk" (synced passkey), "user" (presence), "pin" (user verified). */
  amr: string[];
  /** The `data` given to {@link authenticationOptions}, when any. */
  challengeData?: Record<string, unknown>;
}

const COUNTER_ERROR = /counter value/i;

/**
 * Finishes a sign-in started by {@link authenticationOptions}: checks the response's shape,
 * consumes its challenge (single use), finds the credential by `response.id`, checks it belongs to
 * the user the challenge was for and that `userHandle` (when present) is its owner's, verifies the
 * assertion with SimpleWebAuthn (type, challenge, origin, RP ID hash, presence, verification, flags,
 * signature, counter), checks backup eligibility did not change, and only then refuses a disabled
 * user or a suspended key (so nobody without the key learns their state). Records the use.
 *
 * A signature counter that did not increase (when either counter is non-zero) on an otherwise
 * valid assertion means two authenticators hold the key: the key is suspended, its sessions revoked,
 * `credential.clone_suspected` emitted, and the answer is 403. (SimpleWebAuthn checks the counter
 * before the signature; the signature is checked first here, so a forged response cannot suspend
 * someone's key.)
 *
 * The use is recorded with a compare-and-set (the stored counter must still be below the presented
 * one, or both 0). When a concurrent sign-in with the same key recorded first, so the stored counter
 * is now at or past the presented one, the sign-in is refused exactly as a sequential counter
 * regression would be: the key is suspended, its sessions revoked, 403 `ERR_WEBAUTHN_CLONE_SUSPECTED`.
 * The counter did go backwards against what is recorded — both assertions were verified genuine,
 * and one authenticator never signs the same non-zero counter twice — so this is the case clone
 * detection exists for; not suspending would let a clone escape detection by racing the owner
 * (at worst, a person who taps one key in two tabs at the same moment is suspended, and an
 * administrator re-enables it). Counterless keys (always 0) never lose this race.
 *
 * Emits `signin.succeeded` or `signin.failed` (with the reason).
 *
 * @throws {WebAuthnError} 400 for malformed or unverifiable responses, unknown credential, another
 *   user's credential; 403 for a disabled user, a suspended key, a suspected clone. Never a raw error
 *   from SimpleWebAuthn.
 *
 * @example
 * ```ts
 * const { user, credential, amr } = await verifyAuthentication(ctx, { response: request.body });
 * const session = sessions.start(user, credential, amr);
 * ```
 */
export async function verifyAuthentication(
  ctx: WebAuthnContext,
  input: VerifyAuthenticationInput,
): Promise<VerifyAuthenticationResult> {
  let subject: string | undefined;
  let credentialId: string | undefined;
  try {
    const purpose = input?.purpose ?? "login";
    const response = parseResponse("authentication", input?.response);
    credentialId = response.id;
    const { challenge } = readClientData(response.response.clientDataJSON);
    // Decoded before the challenge is consumed: a garbled response does not use it up.
    readAuthenticatorData(response.response.authenticatorData);
    const expected = input?.expectedChallenge;
    const record: ChallengeRecord =
      expected === undefined
        ? takeChallenge(ctx, challenge, purpose)
        : boundChallenge(ctx, challenge, purpose, expected);

    const stored = ctx.store.getCredential(response.id);
    const owner = stored !== undefined ? ctx.store.getUserById(stored.userId) : undefined;
    if (stored === undefined || owner === undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_UNKNOWN_CREDENTIAL",
        "unknown credential: this key is not registered with this gateway; use a key you enrolled, or enroll this one with an invite.",
      );
    }
    subject = owner.name;
    const requestedName = typeof record.data?.username === "string" ? record.data.username : undefined;
    if (
      (record.userId !== undefined && record.userId !== owner.id) ||
      (requestedName !== undefined && requestedName !== owner.name)
    ) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_WRONG_USER",
        "credential belongs to another user than the one signing in; choose your own key, or sign in without a username.",
      );
    }
    const userHandle = response.response.userHandle;
    if (userHandle !== undefined && userHandle !== owner.webauthnUserId) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_WRONG_USER",
        "the authenticator's user handle does not belong to this credential's owner; the response is inconsistent — remove the stale passkey from the authenticator and sign in with your own key.",
      );
    }

    const info = await verifyAssertion(ctx, response, challenge, stored, owner);

    const nowSingle = info.credentialDeviceType === "singleDevice";
    if (nowSingle !== stored.deviceBound) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_VERIFICATION",
        `the key's backup eligibility changed since it was registered (was ${stored.deviceBound ? "device-bound" : "synced"}); the response is inconsistent — remove the key and register it again.`,
      );
    }
    if (owner.disabled) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_USER_DISABLED",
        `user "${owner.name}" is disabled; ask an administrator to re-enable the account.`,
      );
    }
    if (stored.suspendedAt !== undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_KEY_SUSPENDED",
        "key suspended; ask an administrator to re-enable it (or sign in with another of your keys).",
      );
    }

    const now = ctx.clock();
    if (!ctx.store.recordCredentialUse(stored.id, info.newCounter, info.credentialBackedUp, now)) {
      // Lost a race: between our read and our write another sign-in with this key recorded a
      // counter at or past this one. Serialized, this assertion would have been a counter
      // regression, so it is treated as one (see the doc comment above).
      const current = ctx.store.getCredential(stored.id) ?? stored;
      suspectClone(ctx, current, owner, info.newCounter);
    }
    const credential: CredentialRecord = ctx.store.getCredential(stored.id) ?? {
      ...stored,
      counter: info.newCounter,
      backedUp: info.credentialBackedUp,
      lastUsedAt: now,
      useCount: stored.useCount + 1,
    };
    const amr = [stored.deviceBound ? "hwk" : "swk", "user", ...(info.userVerified ? ["pin"] : [])];
    ctx.emit({
      type: "signin.succeeded",
      subject: owner.name,
      credential: stored.id,
      credentialName: credential.nickname,
      aaguid: stored.aaguid,
      deviceBound: stored.deviceBound,
      reason: `signed in with ${stored.deviceBound ? "a device-bound key" : "a synced passkey"} (${amr.join(", ")})`,
      decision: "allow",
      details: { amr: amr.join(","), userVerified: info.userVerified, counter: info.newCounter, purpose },
    });
    return {
      user: owner,
      credential,
      userVerified: info.userVerified,
      amr,
      ...(isObject(record.data?.data) ? { challengeData: record.data.data } : {}),
    };
  } catch (error) {
    ctx.emit({
      type: "signin.failed",
      ...(subject !== undefined ? { subject } : {}),
      ...(credentialId !== undefined ? { credential: credentialId } : {}),
      reason: error instanceof WebAuthnError ? `${error.code}: ${error.message}` : "internal error",
      decision: "deny",
      details: { code: error instanceof WebAuthnError ? error.code : "ERR_INTERNAL" },
    });
    throw error;
  }
}

type AuthenticationInfo = VerifiedAuthenticationResponse["authenticationInfo"];

/** SimpleWebAuthn's verification, with counter regressions turned into a clone suspicion. */
async function verifyAssertion(
  ctx: WebAuthnContext,
  response: Parameters<typeof verifyAuthenticationResponse>[0]["response"],
  challenge: string,
  stored: CredentialRecord,
  owner: UserRecord,
): Promise<AuthenticationInfo> {
  const verify = (counter: number) =>
    verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: ctx.rp.origins,
      expectedRPID: ctx.rp.id,
      requireUserVerification: ctx.authenticators.userVerification === "required",
      credential: {
        id: stored.id,
        publicKey: new Uint8Array(stored.publicKey),
        counter,
        transports: knownTransports(stored.transports),
      },
    });
  let result: VerifiedAuthenticationResponse;
  try {
    result = await verify(stored.counter);
  } catch (error) {
    if (!(error instanceof Error) || !COUNTER_ERROR.test(error.message)) {
      throw toWebAuthnError(error, "authentication", ctx);
    }
    // SimpleWebAuthn refuses the counter before it looks at the signature: check the signature
    // (with the counter check neutralized) before treating this as a cloned key.
    let genuine: VerifiedAuthenticationResponse;
    try {
      genuine = await verify(0);
    } catch (again) {
      throw toWebAuthnError(again, "authentication", ctx);
    }
    if (!genuine.verified) throw badSignature();
    suspectClone(ctx, stored, owner, genuine.authenticationInfo.newCounter);
  }
  if (!result.verified) throw badSignature();
  return result.authenticationInfo;
}

function suspectClone(
  ctx: WebAuthnContext,
  stored: CredentialRecord,
  owner: UserRecord,
  presented: number,
): never {
  const now = ctx.clock();
  const reason = "clone suspected: signature counter went backwards";
  const key = {
    subject: owner.name,
    credential: stored.id,
    credentialName: stored.nickname,
    aaguid: stored.aaguid,
    deviceBound: stored.deviceBound,
  };
  const counters = { storedCounter: stored.counter, presentedCounter: presented };
  ctx.emit({
    type: "credential.clone_suspected",
    ...key,
    reason: `${reason} (stored ${stored.counter}, presented ${presented}); key suspended`,
    decision: "deny",
    details: counters,
  });
  if (stored.suspendedAt === undefined) {
    ctx.store.suspendCredential(stored.id, reason, now);
    const revoked = ctx.store.revokeSessionsOf({ credentialId: stored.id }, reason, now);
    ctx.emit({
      type: "credential.suspended",
      ...key,
      reason: `${reason}; the key cannot sign in until an administrator re-enables it (cosmosgate users reenable-key); ${revoked.length} session(s) revoked`,
      decision: "deny",
      details: { ...counters, revokedSessions: revoked.length },
    });
  }
  throw new WebAuthnError(
    "ERR_WEBAUTHN_CLONE_SUSPECTED",
    "the key's signature counter went backwards — it may have been cloned; it is suspended until an administrator re-enables it.",
  );
}

/** The record of a caller-derived challenge: the response must carry exactly it. */
function boundChallenge(
  ctx: Pick<WebAuthnContext, "clock">,
  challenge: string,
  purpose: ChallengeRecord["purpose"],
  expected: { challenge: string; userId: string },
): ChallengeRecord {
  if (
    typeof expected.challenge !== "string" ||
    typeof expected.userId !== "string" ||
    challenge !== expected.challenge
  ) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_CHALLENGE",
      "the assertion was made for another challenge than the one this confirms (another operation or request); ask for new options and touch your key again.",
    );
  }
  return { challenge, purpose, userId: expected.userId, expiresAt: ctx.clock() + 1 };
}

function badSignature(): WebAuthnError {
  return new WebAuthnError(
    "ERR_WEBAUTHN_VERIFICATION",
    "the key's signature is invalid; sign in again with the same key.",
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
