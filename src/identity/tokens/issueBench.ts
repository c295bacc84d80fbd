import { openIdentityStore } from "../../store/identityStore.js";
import { createTokenIssuer } from "./issue.js";
import { createKeyring } from "./keyring.js";

/** What {@link benchTokenIssue} measured. */
export interface IssueBenchResult {
  /** `issue()` calls completed per second (ES256 signature by the keyring's current key). */
  issuesPerSecond: number;
  /** Microseconds per `issue()`, one at a time. */
  usPerIssue: number;
  /** Issues per second with 32 in flight (WebCrypto signs on libuv's thread pool, so this scales with cores). */
  concurrentIssuesPerSecond: number;
  /** Length of an issued access token, characters. */
  tokenLength: number;
  iterations: number;
}

/**
 * Measures the token endpoint's signing cost: `issue()` with a realistic claim set, sequentially
 * and 32 at a time, after a warm-up, on a keyring over an in-memory store (the signer is cached, so no store reads).
 * For `bench/`; not a test.
 *
 * @example
 * ```ts
 * import { benchTokenIssue } from "../src/identity/tokens/issueBench.js";
 * const { issuesPerSecond } = await benchTokenIssue();
 * console.log(`issue: ${issuesPerSecond.toFixed(0)} tokens/s`);
 * ```
 */
export async function benchTokenIssue(options: { iterations?: number } = {}): Promise<IssueBenchResult> {
  const iterations = options.iterations ?? 5000;
  const store = openIdentityStore(":memory:");
  try {
    const keyring = createKeyring({ store, clock: Date.now, kek: new Uint8Array(32).fill(7) });
    await keyring.ensure();
    const tokens = createTokenIssuer({
      keyring,
      issuer: "http://localhost:8080",
      audience: "https://localhost:8081",
      ttlMs: 600_000,
      clock: Date.now,
    });
    const input = {
      sub: "ada",
      groups: ["cosmos-readers", "analytics"],
      sessionId: "0b7c3f4e-2d0a-4b8e-9d53-6f1d2f0c9a11",
      credentialId: "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE",
      amr: ["hwk", "user"],
      authTime: Date.now(),
    };
    let length = 0;
    for (let i = 0; i < Math.min(500, iterations); i++)
      length = (await tokens.issue(input)).access_token.length;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await tokens.issue(input);
    const ns = Number(process.hrtime.bigint() - start);
    const concurrentStart = process.hrtime.bigint();
    for (let i = 0; i < iterations; i += 32) {
      await Promise.all(Array.from({ length: Math.min(32, iterations - i) }, () => tokens.issue(input)));
    }
    const concurrentNs = Number(process.hrtime.bigint() - concurrentStart);
    return {
      issuesPerSecond: (iterations * 1e9) / ns,
      usPerIssue: ns / 1000 / iterations,
      concurrentIssuesPerSecond: (iterations * 1e9) / concurrentNs,
      tokenLength: length,
      iterations,
    };
  } finally {
    store.close();
  }
}
