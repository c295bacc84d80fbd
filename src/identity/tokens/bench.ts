import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { parseAuthorization } from "./authorization.js";
import { createTokenVerifier } from "./verify.js";

/** What {@link benchTokenVerification} measured. */
export interface TokenBenchResult {
  /** Full ES256 verification of a token not seen before (cache miss), microseconds per token. */
  coldUsPerOp: number;
  /** `verifyCached` of a cached token, nanoseconds per call. */
  warmNsPerOp: number;
  /** `parseAuthorization` of the SDK's header plus `verifyCached`, nanoseconds per call. */
  headerNsPerOp: number;
  /** Length of the benchmarked tokens, characters. */
  tokenLength: number;
  coldIterations: number;
  warmIterations: number;
}

/** Options of {@link benchTokenVerification}. */
export interface TokenBenchOptions {
  /** Distinct tokens verified cold. Default 2000. */
  coldIterations?: number;
  /** Cached lookups timed. Default 1 000 000. */
  warmIterations?: number;
  /** Approximate token length in characters; Entra ID access tokens are 1–3 KiB. Default 1200. */
  tokenLength?: number;
}

/**
 * Measures the data path's token check: a cold ES256 verification (key set from a JWKS file, as in
 * production) and a warm cache hit. Writes a JWKS to a temporary directory and removes it after.
 * For `bench/`; not a test.
 *
 * @example
 * ```ts
 * import { benchTokenVerification } from "../src/identity/tokens/bench.js";
 * const { coldUsPerOp, warmNsPerOp } = await benchTokenVerification();
 * console.log(`token: cold ${coldUsPerOp.toFixed(1)} µs, warm ${warmNsPerOp.toFixed(0)} ns`);
 * ```
 */
export async function benchTokenVerification(options: TokenBenchOptions = {}): Promise<TokenBenchResult> {
  const coldIterations = options.coldIterations ?? 2000;
  const warmIterations = options.warmIterations ?? 1_000_000;
  const targetLength = options.tokenLength ?? 1200;
  const issuer = "https://bench.cosmosgate.invalid";
  const audience = "https://localhost:8081";
  const dir = await mkdtemp(join(tmpdir(), "cosmosgate-token-bench-"));
  try {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256", use: "sig" };
    const file = join(dir, "jwks.json");
    await writeFile(file, JSON.stringify({ keys: [jwk] }));
    const verifier = createTokenVerifier({
      issuers: [{ issuer, audience, jwks: { file }, algorithms: ["ES256"] }],
      cacheSize: coldIterations + 200,
    });
    await verifier.ready();

    const now = Math.floor(Date.now() / 1000);
    const sign = async (i: number, padding: string) =>
      new SignJWT({
        roles: ["Cosmos DB Built-in Data Reader"],
        name: "Bench User",
        amr: ["hwk", "user"],
        sid: "session-1",
        cred: "credential-1",
        pad: padding,
      })
        .setProtectedHeader({ alg: "ES256", kid: "bench", typ: "at+jwt" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("user-1")
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .setJti(`jti-${i}`)
        .sign(privateKey);
    const probe = await sign(0, "");
    const padding = "x".repeat(Math.max(0, Math.floor(((targetLength - probe.length) * 3) / 4)));

    const warmup = 200;
    const tokens: string[] = [];
    for (let i = 0; i < coldIterations + warmup; i++) tokens.push(await sign(i, padding));
    for (let i = 0; i < warmup; i++) await verifier.verify(tokens[i]);

    let start = process.hrtime.bigint();
    for (let i = warmup; i < tokens.length; i++) await verifier.verify(tokens[i]);
    const coldUsPerOp = Number(process.hrtime.bigint() - start) / 1000 / coldIterations;

    const token = tokens[0];
    const header = `type=aad&ver=1.0&sig=${token}`;
    let sink = 0;
    for (let i = 0; i < 100_000; i++) sink += verifier.verifyCached(token)?.exp ?? 0;
    start = process.hrtime.bigint();
    for (let i = 0; i < warmIterations; i++) sink += verifier.verifyCached(token)?.exp ?? 0;
    const warmNsPerOp = Number(process.hrtime.bigint() - start) / warmIterations;

    start = process.hrtime.bigint();
    for (let i = 0; i < warmIterations; i++)
      sink += verifier.verifyCached(parseAuthorization(header))?.exp ?? 0;
    const headerNsPerOp = Number(process.hrtime.bigint() - start) / warmIterations;
    if (sink === 0) throw new Error("benchmark lookups missed the cache");

    return {
      coldUsPerOp,
      warmNsPerOp,
      headerNsPerOp,
      tokenLength: token.length,
      coldIterations,
      warmIterations,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
