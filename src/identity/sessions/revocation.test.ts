import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openIdentityStore, type SqliteIdentityStore } from "../../store/identityStore.js";
import { createRevocationChecker } from "./revocation.js";
import { benchRevocationCheck } from "./revocationBench.js";
import { createSessions } from "./sessions.js";

const T0 = Date.UTC(2030, 0, 1, 8);
const ISSUER = "http://localhost:8080";

let dir: string;
const opened: SqliteIdentityStore[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-revocation-"));
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
/** The gateway's store and an admin CLI's store: two connections to one file. */
function setup() {
  const file = join(dir, `state-${++files}.db`);
  const gateway = openIdentityStore(file);
  const admin = openIdentityStore(file);
  opened.push(gateway, admin);
  for (const name of ["ada", "bob"]) {
    admin.createUser({
      id: `u-${name}`,
      name,
      groups: [],
      admin: false,
      disabled: false,
      createdAt: T0,
      webauthnUserId: `wa-${name}`,
    });
    admin.addCredential({
      id: `cred-${name}`,
      userId: `u-${name}`,
      publicKey: new Uint8Array([1]),
      counter: 0,
      transports: [],
      aaguid: "00000000-0000-0000-0000-000000000000",
      fmt: "none",
      deviceBound: false,
      backedUp: false,
      nickname: "key",
      createdAt: T0,
      useCount: 0,
    });
  }
  const sessions = createSessions({ store: gateway, clock: () => T0 });
  const user = gateway.getUserByName("ada")!;
  const { session } = sessions.start({ user, credentialId: "cred-ada", amr: ["hwk"], authTime: T0 });
  const principal = { sub: "ada", session: session.id, credential: "cred-ada", issuer: ISSUER };
  const bob = { sub: "bob", credential: "cred-bob", issuer: ISSUER };
  let reloads = 0;
  const checker = createRevocationChecker({
    revocationVersion: () => gateway.revocationVersion(),
    revocations: () => {
      reloads++;
      return gateway.revocations();
    },
  });
  return { gateway, admin, session, principal, bob, checker, reloads: () => reloads };
}

describe("createRevocationChecker", () => {
  it("reloads the revocation sets only when the version changes", () => {
    const { checker, principal, reloads } = setup();
    for (let i = 0; i < 100; i++) expect(checker.isRevoked(principal)).toBe(false);
    expect(reloads()).toBe(1);
  });

  it("sees a session revoked through another connection", () => {
    const { checker, principal, bob, admin, session } = setup();
    expect(checker.isRevoked(principal)).toBe(false);
    admin.revokeSession(session.id, "signed out", T0 + 1);
    expect(checker.isRevoked(principal)).toBe(true);
    expect(checker.revokedBy(principal)).toBe("session");
    expect(checker.isRevoked(bob)).toBe(false);
  });

  it("sees a user disabled (and enabled again) through another connection", () => {
    const { checker, principal, bob, admin, reloads } = setup();
    expect(checker.isRevoked(principal)).toBe(false);
    admin.setUserDisabled("u-ada", true);
    expect(checker.revokedBy(principal)).toBe("subject");
    expect(checker.revokedBy({ sub: "ada", issuer: ISSUER })).toBe("subject");
    expect(checker.isRevoked(bob)).toBe(false);
    admin.setUserDisabled("u-ada", false);
    expect(checker.isRevoked(principal)).toBe(false);
    expect(reloads()).toBe(3);
  });

  it("sees a credential suspended or removed through another connection", () => {
    const { checker, principal, bob, admin } = setup();
    admin.suspendCredential("cred-ada", "clone suspected", T0 + 1);
    expect(checker.revokedBy(principal)).toBe("credential");
    admin.reenableCredential("cred-ada");
    expect(checker.isRevoked(principal)).toBe(false);
    expect(checker.isRevoked(bob)).toBe(false);
    admin.removeCredential("cred-bob");
    expect(checker.revokedBy(bob)).toBe("credential");
  });

  it("can be limited to some issuers", () => {
    const { gateway, admin } = setup();
    const checker = createRevocationChecker(gateway, { issuers: [ISSUER] });
    admin.setUserDisabled("u-ada", true);
    expect(checker.isRevoked({ sub: "ada", issuer: ISSUER })).toBe(true);
    expect(checker.isRevoked({ sub: "ada", issuer: "https://login.microsoftonline.com/t/v2.0" })).toBe(false);
  });
});

// A smoke test of the benchmark's plumbing; it asserts no timings (benchmarks live in bench/).
describe("benchRevocationCheck", () => {
  it("runs and reports positive figures", async () => {
    const result = await benchRevocationCheck({ iterations: 1000, users: 2 });
    expect(result.exactNsPerOp).toBeGreaterThan(0);
    expect(result.polledNsPerOp).toBeGreaterThan(0);
  });
});
