import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openIdentityStore } from "../../store/identityStore.js";
import { createRevocationChecker } from "./revocation.js";

/** What {@link benchRevocationCheck} measured: ns per `isRevoked` on the unchanged-version path. */
export interface RevocationBenchResult {
  /** SQLite store with `revocationPollMs: 0` (the default: `PRAGMA data_version` on every call). */
  exactNsPerOp: number;
  /** SQLite store with `revocationPollMs: 1000` (the version is a number in memory). */
  polledNsPerOp: number;
  iterations: number;
}

/**
 * Measures the revocation check every data-plane request pays, when nothing was revoked since the
 * last call: a file-backed SQLite store holding, for each of `users` (default 100) disabled users,
 * 10 revoked sessions and a suspended key, and a principal that is none of them. For `bench/`; not a test.
 *
 * @example
 * ```ts
 * import { benchRevocationCheck } from "../src/identity/sessions/revocationBench.js";
 * const { exactNsPerOp, polledNsPerOp } = await benchRevocationCheck();
 * ```
 */
export async function benchRevocationCheck(
  options: { iterations?: number; users?: number } = {},
): Promise<RevocationBenchResult> {
  const iterations = options.iterations ?? 1_000_000;
  const users = options.users ?? 100;
  const dir = await mkdtemp(join(tmpdir(), "cosmosgate-revocation-bench-"));
  const file = join(dir, "state.db");
  try {
    const seed = openIdentityStore(file);
    const now = Date.now();
    for (let u = 0; u < users; u++) {
      const id = `user-${u}`;
      seed.createUser({
        id,
        name: `name-${u}`,
        groups: [],
        admin: false,
        disabled: false,
        createdAt: now,
        webauthnUserId: `wa-${u}`,
      });
      seed.addCredential({
        id: `cred-${u}`,
        userId: id,
        publicKey: new Uint8Array(77),
        counter: 0,
        transports: [],
        aaguid: "00000000-0000-0000-0000-000000000000",
        fmt: "none",
        deviceBound: false,
        backedUp: false,
        nickname: "key",
        createdAt: now,
        useCount: 0,
      });
      for (let s = 0; s < 10; s++) {
        const sid = `session-${u}-${s}`;
        seed.createSession({
          id: sid,
          userId: id,
          credentialId: `cred-${u}`,
          amr: ["hwk"],
          authTime: now,
          createdAt: now,
          expiresAt: now + 3_600_000,
        });
        seed.revokeSession(sid, "bench", now);
      }
      seed.suspendCredential(`cred-${u}`, "bench", now);
      seed.setUserDisabled(id, true);
    }
    seed.close();

    const principal = {
      sub: "ada",
      session: "live-session",
      credential: "live-cred",
      issuer: "http://localhost:8080",
    };
    const measure = (pollMs: number): number => {
      const store = openIdentityStore(file, { revocationPollMs: pollMs });
      try {
        const checker = createRevocationChecker(store);
        let revoked = 0;
        for (let i = 0; i < 10_000; i++) if (checker.isRevoked(principal)) revoked++;
        const start = process.hrtime.bigint();
        for (let i = 0; i < iterations; i++) if (checker.isRevoked(principal)) revoked++;
        const ns = Number(process.hrtime.bigint() - start) / iterations;
        if (revoked !== 0) throw new Error("benchmark principal was revoked");
        return ns;
      } finally {
        store.close();
      }
    };
    return { exactNsPerOp: measure(0), polledNsPerOp: measure(1000), iterations };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
