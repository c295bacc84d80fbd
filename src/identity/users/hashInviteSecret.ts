import { createHash } from "node:crypto";

/**
 * The SHA-256 (base64url) of an invite secret: what the store keeps instead of the secret.
 *
 * @example
 * ```ts
 * const invite = store.getInvite(hashInviteSecret(secretFromUrl));
 * ```
 */
export function hashInviteSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("base64url");
}
