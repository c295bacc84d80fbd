import { randomUUID } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";

/** The issuer name of development tokens. The gateway trusts it only in `cosmosgate dev`. */
export const DEV_ISSUER = "urn:cosmosgate:dev";

export interface DevIssuer {
  issuer: string;
  /** A JWKS file with the public key, for the token verifier. */
  jwksFile: string;
  /** Signs a development token for `sub` with `groups` (matched by `group:` members in policy). */
  mint(opts: {
    sub: string;
    groups: string[];
    audience: string;
    ttlSeconds: number;
    now?: number;
  }): Promise<string>;
}

/**
 * A local token issuer for development on the embedded store, until passkey sign-in exists: its
 * ES256 key lives in `<stateDir>/dev-issuer/` (private key mode 0600). Tokens it signs pass the
 * same verification as any trusted issuer's.
 *
 * @example const dev = await openDevIssuer(".cosmosgate"); const t = await dev.mint({ sub: "alice", groups: ["cosmos-admins"], audience, ttlSeconds: 600 })
 */
export async function openDevIssuer(stateDir: string): Promise<DevIssuer> {
  const dir = join(stateDir, "dev-issuer");
  const privateFile = join(dir, "private.jwk.json");
  const jwksFile = join(dir, "jwks.json");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await readFile(privateFile, "utf8")) as JWK;
  } catch {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    privateJwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "ES256" };
    const publicJwk = { ...(await exportJWK(publicKey)), kid: privateJwk.kid, alg: "ES256", use: "sig" };
    await writeFile(privateFile, JSON.stringify(privateJwk), { mode: 0o600 });
    await chmod(privateFile, 0o600);
    await writeFile(jwksFile, JSON.stringify({ keys: [publicJwk] }, null, 2), { mode: 0o644 });
  }
  const key = await importJWK(privateJwk, "ES256");
  return {
    issuer: DEV_ISSUER,
    jwksFile,
    async mint({ sub, groups, audience, ttlSeconds, now = Date.now() }) {
      const iat = Math.floor(now / 1000);
      return new SignJWT({ groups })
        .setProtectedHeader({ alg: "ES256", kid: privateJwk.kid, typ: "at+jwt" })
        .setIssuer(DEV_ISSUER)
        .setSubject(sub)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlSeconds)
        .setJti(randomUUID())
        .sign(key);
    },
  };
}
