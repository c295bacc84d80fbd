import { randomBytes } from "node:crypto";
import type { ChallengeRecord } from "../../../store/ports.js";
import { CHALLENGE_TTL_MS, type WebAuthnContext } from "../types.js";

/**
 * Makes a fresh challenge (32 random bytes, base64url) and stores it server-side for
 * the ceremony time-out (`authenticators.timeout`, default {@link CHALLENGE_TTL_MS}, 5 minutes)
 * until a response consumes it.
 *
 * @example
 * ```ts
 * const challenge = issueChallenge(ctx, "login", { data: { username: "ada" } });
 * const options = await generateAuthenticationOptions({ rpID, challenge: Buffer.from(challenge, "base64url") });
 * ```
 */
export function issueChallenge(
  ctx: Pick<WebAuthnContext, "store" | "clock"> & {
    authenticators?: Pick<WebAuthnContext["authenticators"], "timeout">;
  },
  purpose: ChallengeRecord["purpose"],
  extra: { userId?: string; data?: Record<string, unknown> } = {},
): string {
  const challenge = randomBytes(32).toString("base64url");
  ctx.store.putChallenge({
    challenge,
    purpose,
    ...(extra.userId !== undefined ? { userId: extra.userId } : {}),
    ...(extra.data !== undefined ? { data: extra.data } : {}),
    expiresAt: ctx.clock() + (ctx.authenticators?.timeout ?? CHALLENGE_TTL_MS),
  });
  return challenge;
}
