import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** A token issuer for tests: its JWKS is a file the gateway trusts; it signs tokens on demand. */
export interface TestIssuer {
  issuer: string;
  kid: string;
  jwksFile: string;
  publicJwk: JWK;
  privateKey: CryptoKey;
  /** Signs an access token; `claims` override or remove (undefined) defaults. */
  sign(opts?: {
    sub?: string;
    groups?: string[];
    audience?: string;
    expiresIn?: number;
    claims?: Record<string, unknown>;
    header?: Record<string, unknown>;
    now?: number;
    kid?: string;
  }): Promise<string>;
}

/** Creates an ES256 issuer whose JWKS is written to `dir`. */
export async function createTestIssuer(dir: string, issuer: string, audience: string): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const jwksFile = join(dir, `jwks-${kid}.json`);
  writeFileSync(jwksFile, JSON.stringify({ keys: [publicJwk] }));
  return {
    issuer,
    kid,
    jwksFile,
    publicJwk,
    privateKey: privateKey as CryptoKey,
    async sign(o = {}) {
      const now = Math.floor((o.now ?? Date.now()) / 1000);
      const payload: Record<string, unknown> = {
        iss: issuer,
        sub: o.sub ?? "alice",
        aud: o.audience ?? audience,
        iat: now,
        exp: now + (o.expiresIn ?? 600),
        jti: randomUUID(),
        roles: o.groups ?? [],
        ...o.claims,
      };
      for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: "ES256", kid: o.kid ?? kid, typ: "at+jwt", ...o.header })
        .sign(privateKey);
    },
  };
}

/** base64url of a JSON value. */
export function b64url(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}
