import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import type { IssuerConfig } from "./issuers.js";

/** A token issuer for tests: a fresh key pair, its JWKS file, and a `sign` that mints tokens. */
export interface TestIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly alg: "ES256" | "RS256";
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public JWKS written to `jwksFile`. */
  readonly jwks: JSONWebKeySet;
  readonly jwksFile: string;
  /** An {@link IssuerConfig} for this issuer with `jwks: {file}`; spread it to change fields. */
  readonly config: IssuerConfig;
  /**
   * Signs a token. Defaults: `iss`, `aud`, `sub: "user-1"`, `iat` = now, `exp` = now + 600 s (now from
   * the issuer's clock); `claims` override them, and a claim set to `undefined` is left out.
   */
  sign(claims?: Record<string, unknown>, header?: Partial<JWTHeaderParameters>): Promise<string>;
}

/** Options of {@link createTestIssuer}. */
export interface TestIssuerOptions {
  /** Directory for the JWKS file (e.g. from `mkdtemp`). */
  dir: string;
  alg?: "ES256" | "RS256";
  issuer?: string;
  audience?: string;
  kid?: string;
  /** Milliseconds since the epoch for default `iat`/`exp`. Default `Date.now`. */
  clock?: () => number;
}

/**
 * Creates a {@link TestIssuer}: generates a key pair with jose, writes its public JWKS to
 * `<dir>/<kid>-<random>.jwks.json`. For tests of anything that needs real tokens (verifier, proxy, CLI).
 *
 * @example
 * ```ts
 * const idp = await createTestIssuer({ dir: await mkdtemp(join(tmpdir(), "t-")) });
 * const verifier = createTokenVerifier({ issuers: [idp.config] });
 * const principal = await verifier.verify(await idp.sign({ roles: ["readers"] }));
 * ```
 */
export async function createTestIssuer(options: TestIssuerOptions): Promise<TestIssuer> {
  const alg = options.alg ?? "ES256";
  const kid = options.kid ?? `test-${alg.toLowerCase()}-${Math.random().toString(36).slice(2, 10)}`;
  const issuer = options.issuer ?? "https://issuer.test.invalid";
  const audience = options.audience ?? "https://localhost:8081";
  const clock = options.clock ?? Date.now;
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: "sig" }] };
  const jwksFile = join(options.dir, `${kid}-${Math.random().toString(36).slice(2, 10)}.jwks.json`);
  await writeFile(jwksFile, JSON.stringify(jwks));
  return {
    issuer,
    audience,
    alg,
    kid,
    privateKey,
    publicKey,
    jwks,
    jwksFile,
    config: { issuer, audience, jwks: { file: jwksFile }, algorithms: [alg] },
    async sign(claims = {}, header = {}) {
      const now = Math.floor(clock() / 1000);
      const payload: JWTPayload = { iss: issuer, aud: audience, sub: "user-1", iat: now, exp: now + 600 };
      for (const [name, value] of Object.entries(claims)) {
        if (value === undefined) delete payload[name];
        else payload[name] = value;
      }
      return new SignJWT(payload).setProtectedHeader({ alg, kid, ...header }).sign(privateKey);
    },
  };
}

/**
 * base64url(JSON) — for hand-built tokens in tests (a string is encoded as is).
 *
 * @example
 * ```ts
 * const algNone = `${encodeSegment({ alg: "none" })}.${encodeSegment({ sub: "admin" })}.`;
 * ```
 */
export function encodeSegment(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}
