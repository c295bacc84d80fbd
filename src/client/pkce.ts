import { createHash, randomBytes } from "node:crypto";

/** A PKCE pair (RFC 7636): the verifier stays here, the challenge goes in the authorization URL. */
export interface Pkce {
  /** 32 random bytes, base64url (43 characters). */
  verifier: string;
  /** BASE64URL(SHA-256(verifier)). */
  challenge: string;
  method: "S256";
}

/**
 * A fresh PKCE verifier and its S256 challenge.
 *
 * @example const { verifier, challenge } = createPkce();
 */
export function createPkce(): Pkce {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: pkceChallenge(verifier), method: "S256" };
}

/**
 * The S256 challenge of a verifier.
 *
 * @example pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") // "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
 */
export function pkceChallenge(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/**
 * A random `state` value (32 bytes, base64url) binding the browser's answer to this login.
 *
 * @example const state = randomState();
 */
export function randomState(): string {
  return randomBytes(32).toString("base64url");
}
