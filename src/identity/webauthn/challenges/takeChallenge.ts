import type { ChallengeRecord } from "../../../store/ports.js";
import { WebAuthnError } from "../errors.js";
import type { WebAuthnContext } from "../types.js";

/**
 * Consumes a stored challenge atomically (single use) and checks it was issued for `purpose`. A
 * challenge of another purpose is consumed too: a response that names it was not meant for it.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_CHALLENGE` (400) when the challenge is unknown, used,
 *   expired, or of another purpose.
 *
 * @example
 * ```ts
 * const record = takeChallenge(ctx, readClientData(response.response.clientDataJSON).challenge, "register");
 * ```
 */
export function takeChallenge(
  ctx: Pick<WebAuthnContext, "store" | "clock">,
  challenge: string,
  purpose: ChallengeRecord["purpose"],
): ChallengeRecord {
  const record = ctx.store.consumeChallenge(challenge, ctx.clock());
  if (record === undefined) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_CHALLENGE",
      "challenge expired or already used; start again (each challenge is valid once, for 5 minutes).",
    );
  }
  if (record.purpose !== purpose) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_CHALLENGE",
      `the challenge was issued for a "${record.purpose}" ceremony, not "${purpose}"; start again.`,
    );
  }
  return record;
}
