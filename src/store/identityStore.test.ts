import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StoreError } from "./errors.js";
import { openIdentityStore, type SqliteIdentityStore } from "./identityStore.js";
import type {
  ChallengeRecord,
  CredentialRecord,
  InviteRecord,
  RefreshTokenRecord,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from "./ports.js";

const T0 = 1_700_000_000_000;
const MIN = 60_000;

let dir: string;
let file: string;
const open: SqliteIdentityStore[] = [];

function store(opts?: Parameters<typeof openIdentityStore>[1]): SqliteIdentityStore {
  const s = openIdentityStore(file, opts);
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-identity-"));
  file = path.join(dir, "state.db");
});
afterEach(() => {
  for (const s of open.splice(0)) if (s.db.open) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function user(over: Partial<UserRecord> = {}): UserRecord {
  const id = over.id ?? "u-ada";
  return {
    id,
    name: `name-of-${id}`,
    groups: ["eng", "ops"],
    admin: false,
    disabled: false,
    createdAt: T0,
    webauthnUserId: `handle-of-${id}`,
    ...over,
  };
}

function invite(over: Partial<InviteRecord> = {}): InviteRecord {
  return {
    secretHash: "invite-hash-1",
    userName: "ada",
    groups: ["eng"],
    admin: false,
    createdAt: T0,
    expiresAt: T0 + 60 * MIN,
    ...over,
  };
}

function credential(over: Partial<CredentialRecord> = {}): CredentialRecord {
  return {
    id: "cred-1",
    userId: "u-ada",
    publicKey: new Uint8Array([0xa5, 1, 2, 3, 0, 255]),
    counter: 0,
    transports: ["usb", "nfc"],
    aaguid: "00000000-0000-0000-0000-000000000000",
    fmt: "packed",
    deviceBound: true,
    backedUp: false,
    nickname: "YubiKey",
    createdAt: T0,
    useCount: 0,
    ...over,
  };
}

function challenge(over: Partial<ChallengeRecord> = {}): ChallengeRecord {
  return { challenge: "chal-1", purpose: "login", expiresAt: T0 + 5 * MIN, ...over };
}

function session(over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: "sess-1",
    userId: "u-ada",
    credentialId: "cred-1",
    amr: ["hwk", "user"],
    authTime: T0,
    createdAt: T0,
    expiresAt: T0 + 12 * 60 * MIN,
    ...over,
  };
}

function refresh(over: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return { hash: "rt-hash-1", sessionId: "sess-1", createdAt: T0, expiresAt: T0 + 12 * 60 * MIN, ...over };
}

function key(kid: string, over: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    kid,
    alg: "ES256",
    publicJwk: JSON.stringify({ kty: "EC", crv: "P-256", kid }),
    privateKey: `encrypted:${kid}`,
    encrypted: true,
    createdAt: T0,
    activatesAt: T0 + MIN,
    retiresAt: T0 + 24 * 60 * MIN,
    expiresAt: T0 + 25 * 60 * MIN,
    ...over,
  };
}

/** Runs `fn` and returns the StoreError it throws. */
function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error("expected a StoreError, nothing was thrown");
}

describe("openIdentityStore", () => {
  it("creates state.db and its -wal/-shm files with mode 0600, schema version 1", () => {
    const s = store();
    s.createUser(user());
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
    }
    expect(s.db.pragma("user_version", { simple: true })).toBe(1);
  });

  it("keeps every kind of record across a close and reopen", () => {
    const a = store();
    a.createUser(user());
    a.createInvite(invite());
    a.addCredential(credential());
    a.putChallenge(challenge());
    a.createSession(session());
    a.putRefreshToken(refresh());
    a.replaceSigningKeys([], [key("k1")], []);
    a.suspendCredential("cred-1", "clone suspected", T0 + 1);
    const version = a.revocationVersion();
    a.close();

    const b = store();
    expect(b.getUserById("u-ada")).toEqual(user());
    expect(b.getInvite("invite-hash-1")).toEqual(invite());
    expect(b.getCredential("cred-1")?.suspendedReason).toBe("clone suspected");
    expect(b.consumeChallenge("chal-1", T0)).toEqual(challenge());
    expect(b.getSession("sess-1")).toEqual(session());
    expect(b.useRefreshToken("rt-hash-1", T0 + 1)).toEqual(refresh());
    expect(b.listSigningKeys()).toEqual([key("k1")]);
    expect(b.revocationVersion()).toBe(version);
    expect(b.revocations().credentials).toEqual(new Set(["cred-1"]));
  });

  it("refuses a negative revocationPollMs", () => {
    const err = storeError(() => openIdentityStore(file, { revocationPollMs: -1 }));
    expect(err.code).toBe("ERR_STORE_INVALID");
    expect(err.message).toMatch(/revocationPollMs/);
  });
});

describe("users", () => {
  it("creates, finds by id, name and WebAuthn handle, lists by name, counts", () => {
    const s = store();
    expect(s.countUsers()).toBe(0);
    expect(s.listUsers()).toEqual([]);
    const zed = user({ id: "u-zed", name: "zed", displayName: "Zed Z", admin: true });
    const ada = user({ id: "u-ada", name: "ada" });
    s.createUser(zed);
    s.createUser(ada);
    expect(s.countUsers()).toBe(2);
    expect(s.getUserById("u-zed")).toEqual(zed);
    expect(s.getUserByName("ada")).toEqual(ada);
    expect(s.getUserByName("ADA")).toBeUndefined(); // case-sensitive
    expect(s.getUserByWebauthnId("handle-of-u-zed")).toEqual(zed);
    expect(s.getUserById("nobody")).toBeUndefined();
    expect(s.getUserByWebauthnId("nobody")).toBeUndefined();
    expect(s.listUsers().map((u) => u.name)).toEqual(["ada", "zed"]);
    expect("displayName" in s.getUserById("u-ada")!).toBe(false);
  });

  it("refuses a duplicate name, id or WebAuthn handle with ERR_STORE_CONFLICT", () => {
    const s = store();
    s.createUser(user({ id: "u1", name: "ada", webauthnUserId: "h1" }));

    const byName = storeError(() => s.createUser(user({ id: "u2", name: "ada", webauthnUserId: "h2" })));
    expect(byName.code).toBe("ERR_STORE_CONFLICT");
    expect(byName.message).toMatch(/a user named "ada" already exists; choose another name/);

    const byId = storeError(() => s.createUser(user({ id: "u1", name: "bob", webauthnUserId: "h2" })));
    expect(byId.code).toBe("ERR_STORE_CONFLICT");
    expect(byId.message).toMatch(/id "u1" already exists/);

    const byHandle = storeError(() => s.createUser(user({ id: "u2", name: "bob", webauthnUserId: "h1" })));
    expect(byHandle.code).toBe("ERR_STORE_CONFLICT");
    expect(byHandle.message).toMatch(/WebAuthn user handle/);
    expect(byHandle.message).not.toContain("h1");
    expect(s.countUsers()).toBe(1);
  });

  it("disables and re-enables a user; the version moves only on a change", () => {
    const s = store();
    s.createUser(user({ name: "ada" }));
    const v0 = s.revocationVersion();
    s.setUserDisabled("u-ada", true);
    expect(s.getUserById("u-ada")?.disabled).toBe(true);
    expect(s.revocations().disabledSubjects).toEqual(new Set(["ada"]));
    const v1 = s.revocationVersion();
    expect(v1).not.toBe(v0);
    s.setUserDisabled("u-ada", true); // already so
    expect(s.revocationVersion()).toBe(v1);
    s.setUserDisabled("u-ada", false);
    expect(s.revocations().disabledSubjects.size).toBe(0);
    expect(s.revocationVersion()).not.toBe(v1);
  });

  it("refuses to disable an unknown user with ERR_STORE_NOT_FOUND", () => {
    const err = storeError(() => store().setUserDisabled("ghost", true));
    expect(err.code).toBe("ERR_STORE_NOT_FOUND");
    expect(err.message).toMatch(/the user "ghost" does not exist/);
  });

  it("refuses a value of the wrong type with ERR_STORE_INVALID", () => {
    const s = store();
    const err = storeError(() => s.createUser(user({ createdAt: "yesterday" as unknown as number })));
    expect(err.code).toBe("ERR_STORE_INVALID");
    const missing = storeError(() => s.createUser(user({ name: undefined as unknown as string })));
    expect(missing.code).toBe("ERR_STORE_INVALID");
    expect(missing.message).toMatch(/users\.name/);
  });
});

describe("invites", () => {
  it("stores and reads an invite", () => {
    const s = store();
    const i = invite({ createdBy: "root", admin: true, groups: [] });
    s.createInvite(i);
    expect(s.getInvite("invite-hash-1")).toEqual(i);
    expect(s.getInvite("other")).toBeUndefined();
  });

  it("redeems once: marks it used, then refuses it", () => {
    const s = store();
    s.createInvite(invite());
    expect(s.redeemInvite("invite-hash-1", T0 + MIN)).toEqual({ ...invite(), usedAt: T0 + MIN });
    expect(s.redeemInvite("invite-hash-1", T0 + 2 * MIN)).toBeUndefined();
    expect(s.getInvite("invite-hash-1")?.usedAt).toBe(T0 + MIN);
  });

  it("refuses an expired or unknown invite", () => {
    const s = store();
    s.createInvite(invite());
    expect(s.redeemInvite("invite-hash-1", T0 + 60 * MIN)).toBeUndefined(); // expiresAt is exclusive
    expect(s.redeemInvite("unknown", T0)).toBeUndefined();
    expect(s.getInvite("invite-hash-1")?.usedAt).toBeUndefined();
    expect(s.redeemInvite("invite-hash-1", T0 + 60 * MIN - 1)?.usedAt).toBe(T0 + 60 * MIN - 1);
  });

  it("refuses a duplicate secret without quoting its hash", () => {
    const s = store();
    s.createInvite(invite());
    const err = storeError(() => s.createInvite(invite()));
    expect(err.code).toBe("ERR_STORE_CONFLICT");
    expect(err.message).toMatch(/same secret/);
    expect(err.message).not.toContain("invite-hash-1");
  });

  it("deletes expired invites, used or not, when a new one is created", () => {
    const s = store();
    s.createInvite(invite({ secretHash: "old-used", expiresAt: T0 + MIN }));
    s.createInvite(invite({ secretHash: "old-unused", expiresAt: T0 + MIN }));
    s.createInvite(invite({ secretHash: "live-used", expiresAt: T0 + 60 * MIN }));
    s.redeemInvite("old-used", T0);
    s.redeemInvite("live-used", T0);
    s.createInvite(invite({ secretHash: "new", createdAt: T0 + 2 * MIN, expiresAt: T0 + 90 * MIN }));
    expect(s.getInvite("old-used")).toBeUndefined();
    expect(s.getInvite("old-unused")).toBeUndefined();
    expect(s.getInvite("live-used")?.usedAt).toBe(T0); // kept until it expires: "already used"
    expect(s.getInvite("new")).toBeDefined();
  });
});

describe("credentials", () => {
  it("adds, reads (publicKey as a plain Uint8Array) and lists by user", () => {
    const s = store();
    s.createUser(user());
    s.createUser(user({ id: "u-bob" }));
    const c1 = credential();
    const c2 = credential({ id: "cred-2", createdAt: T0 + 1, lastUsedAt: T0 + 2, deviceBound: false });
    s.addCredential(c2);
    s.addCredential(c1);
    s.addCredential(credential({ id: "cred-bob", userId: "u-bob" }));
    const got = s.getCredential("cred-1")!;
    expect(got).toEqual(c1);
    expect(got.publicKey).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(got.publicKey)).toBe(false);
    expect(Array.from(got.publicKey)).toEqual([0xa5, 1, 2, 3, 0, 255]);
    expect(s.listCredentials("u-ada").map((c) => c.id)).toEqual(["cred-1", "cred-2"]);
    expect(s.listCredentials("nobody")).toEqual([]);
    expect(s.getCredential("nope")).toBeUndefined();
  });

  it("stores a publicKey that is a view into a larger buffer", () => {
    const s = store();
    s.createUser(user());
    const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
    s.addCredential(credential({ publicKey: big.subarray(2, 5) }));
    expect(Array.from(s.getCredential("cred-1")!.publicKey)).toEqual([1, 2, 3]);
  });

  it("refuses a duplicate credential id with ERR_STORE_CONFLICT", () => {
    const s = store();
    s.createUser(user());
    s.addCredential(credential());
    const err = storeError(() => s.addCredential(credential({ nickname: "again" })));
    expect(err.code).toBe("ERR_STORE_CONFLICT");
    expect(err.message).toMatch(/"cred-1".*already registered/);
    expect(s.getCredential("cred-1")?.nickname).toBe("YubiKey");
  });

  it("refuses a credential of an unknown user with ERR_STORE_NOT_FOUND", () => {
    const err = storeError(() => store().addCredential(credential({ userId: "ghost" })));
    expect(err.code).toBe("ERR_STORE_NOT_FOUND");
    expect(err.message).toMatch(/no user has id "ghost"; create the user first/);
  });

  it("refuses a publicKey that is not a Uint8Array", () => {
    const s = store();
    s.createUser(user());
    const err = storeError(() => s.addCredential(credential({ publicKey: "AQID" as unknown as Uint8Array })));
    expect(err.code).toBe("ERR_STORE_INVALID");
  });

  it("records a use, renames", () => {
    const s = store();
    s.createUser(user());
    s.addCredential(credential());
    s.recordCredentialUse("cred-1", 7, true, T0 + 5);
    s.recordCredentialUse("cred-1", 8, true, T0 + 6);
    s.renameCredential("cred-1", "desk key");
    expect(s.getCredential("cred-1")).toEqual(
      credential({ counter: 8, backedUp: true, lastUsedAt: T0 + 6, useCount: 2, nickname: "desk key" }),
    );
    expect(storeError(() => s.recordCredentialUse("nope", 1, false, T0)).code).toBe("ERR_STORE_NOT_FOUND");
    expect(storeError(() => s.renameCredential("nope", "x")).code).toBe("ERR_STORE_NOT_FOUND");
  });

  it("records a use only when the counter moves forward (or stays 0): a concurrent loser gets false", () => {
    const s = store();
    s.createUser(user());
    s.addCredential(credential({ counter: 0 }));
    expect(s.recordCredentialUse("cred-1", 0, false, T0 + 1)).toBe(true); // counterless key
    expect(s.recordCredentialUse("cred-1", 0, false, T0 + 2)).toBe(true);
    expect(s.recordCredentialUse("cred-1", 5, true, T0 + 3)).toBe(true);
    // Two sign-ins that both read counter 5 and both present 6: the second write loses.
    expect(s.recordCredentialUse("cred-1", 6, true, T0 + 4)).toBe(true);
    expect(s.recordCredentialUse("cred-1", 6, false, T0 + 5)).toBe(false);
    // A lower counter, or 0 after a non-zero one, is not recorded either.
    expect(s.recordCredentialUse("cred-1", 4, false, T0 + 6)).toBe(false);
    expect(s.recordCredentialUse("cred-1", 0, false, T0 + 7)).toBe(false);
    expect(s.getCredential("cred-1")).toMatchObject({
      counter: 6,
      backedUp: true,
      lastUsedAt: T0 + 4,
      useCount: 4,
    });
  });

  it("suspends and re-enables: in the revoked set only while suspended", () => {
    const s = store();
    s.createUser(user());
    s.addCredential(credential());
    const v0 = s.revocationVersion();
    s.suspendCredential("cred-1", "counter went backwards", T0 + 9);
    expect(s.getCredential("cred-1")).toMatchObject({
      suspendedAt: T0 + 9,
      suspendedReason: "counter went backwards",
    });
    expect(s.revocations().credentials).toEqual(new Set(["cred-1"]));
    const v1 = s.revocationVersion();
    expect(v1).not.toBe(v0);

    s.suspendCredential("cred-1", "again", T0 + 10); // already suspended: the first reason stays
    expect(s.getCredential("cred-1")?.suspendedReason).toBe("counter went backwards");
    expect(s.revocationVersion()).toBe(v1);

    s.reenableCredential("cred-1");
    const c = s.getCredential("cred-1")!;
    expect(c.suspendedAt).toBeUndefined();
    expect(c.suspendedReason).toBeUndefined();
    expect(s.revocations().credentials.size).toBe(0);
    const v2 = s.revocationVersion();
    expect(v2).not.toBe(v1);
    s.reenableCredential("cred-1"); // not suspended: nothing changes
    expect(s.revocationVersion()).toBe(v2);

    expect(storeError(() => s.suspendCredential("nope", "x", T0)).code).toBe("ERR_STORE_NOT_FOUND");
    expect(storeError(() => s.reenableCredential("nope")).code).toBe("ERR_STORE_NOT_FOUND");
  });

  it("removes: gone from the user, kept as revoked, never registered again", () => {
    const s = store({ clock: () => T0 + 42 });
    s.createUser(user());
    s.addCredential(credential());
    s.addCredential(credential({ id: "cred-2" }));
    s.suspendCredential("cred-2", "lost", T0);
    const v0 = s.revocationVersion();
    s.removeCredential("cred-1");
    s.removeCredential("cred-2"); // a suspended key removed stays revoked
    expect(s.getCredential("cred-1")).toBeUndefined();
    expect(s.listCredentials("u-ada")).toEqual([]);
    expect(s.revocations().credentials).toEqual(new Set(["cred-1", "cred-2"]));
    const v1 = s.revocationVersion();
    expect(v1).not.toBe(v0);
    expect(
      s.db.prepare("SELECT removed_at FROM credential_tombstones WHERE id = 'cred-1'").pluck().get(),
    ).toBe(T0 + 42);

    s.removeCredential("cred-1"); // removed before: nothing to do
    expect(s.revocationVersion()).toBe(v1);

    const again = storeError(() => s.addCredential(credential()));
    expect(again.code).toBe("ERR_STORE_CONFLICT");
    expect(again.message).toMatch(/removed.*register a new key/);
    const reenable = storeError(() => s.reenableCredential("cred-1"));
    expect(reenable.code).toBe("ERR_STORE_NOT_FOUND");
    expect(reenable.message).toMatch(/a removed key cannot be re-enabled/);
    expect(storeError(() => s.removeCredential("never-existed")).code).toBe("ERR_STORE_NOT_FOUND");
  });
});

describe("challenges", () => {
  it("consumes once and returns what was put", () => {
    const s = store();
    const c = challenge({ purpose: "register", userId: "u-ada", data: { invite: "h", nested: { n: [1] } } });
    s.putChallenge(c);
    expect(s.consumeChallenge("chal-1", T0)).toEqual(c);
    expect(s.consumeChallenge("chal-1", T0)).toBeUndefined();
    expect(s.consumeChallenge("unknown", T0)).toBeUndefined();
  });

  it("refuses an expired challenge and deletes it (and other expired ones) anyway", () => {
    const s = store();
    s.putChallenge(challenge());
    s.putChallenge(challenge({ challenge: "chal-2" }));
    s.putChallenge(challenge({ challenge: "chal-3", expiresAt: T0 + 10 * MIN }));
    expect(s.consumeChallenge("chal-1", T0 + 5 * MIN)).toBeUndefined(); // expiresAt is exclusive
    const left = s.db.prepare("SELECT challenge FROM challenges").pluck().all();
    expect(left).toEqual(["chal-3"]);
    expect(s.consumeChallenge("chal-3", T0 + 5 * MIN)?.challenge).toBe("chal-3");
  });

  it("putting a challenge deletes ones that expired a day before it expires", () => {
    const s = store();
    s.putChallenge(challenge({ challenge: "ancient", expiresAt: T0 - 25 * 60 * MIN }));
    s.putChallenge(challenge({ challenge: "recent", expiresAt: T0 - MIN }));
    s.putChallenge(challenge({ challenge: "new" }));
    const left = s.db.prepare("SELECT challenge FROM challenges ORDER BY challenge").pluck().all();
    expect(left).toEqual(["new", "recent"]);
  });

  it("refuses a duplicate challenge and a bad purpose", () => {
    const s = store();
    s.putChallenge(challenge());
    expect(storeError(() => s.putChallenge(challenge())).code).toBe("ERR_STORE_CONFLICT");
    const bad = storeError(() =>
      s.putChallenge(challenge({ challenge: "x", purpose: "other" as ChallengeRecord["purpose"] })),
    );
    expect(bad.code).toBe("ERR_STORE_INVALID");
  });
});

describe("sessions", () => {
  function withUsers(s: SqliteIdentityStore): void {
    s.createUser(user());
    s.createUser(user({ id: "u-bob" }));
  }

  it("creates and reads a session", () => {
    const s = store();
    withUsers(s);
    s.createSession(session());
    expect(s.getSession("sess-1")).toEqual(session());
    expect(s.getSession("nope")).toBeUndefined();
    expect(storeError(() => s.createSession(session())).code).toBe("ERR_STORE_CONFLICT");
    const orphan = storeError(() => s.createSession(session({ id: "sess-x", userId: "ghost" })));
    expect(orphan.code).toBe("ERR_STORE_NOT_FOUND");
  });

  it("revokes one session; a second revocation keeps the first reason", () => {
    const s = store();
    withUsers(s);
    s.createSession(session());
    const v0 = s.revocationVersion();
    s.revokeSession("sess-1", "signed out", T0 + 1);
    expect(s.getSession("sess-1")).toEqual(session({ revokedAt: T0 + 1, revokedReason: "signed out" }));
    expect(s.revocations().sessions).toEqual(new Set(["sess-1"]));
    const v1 = s.revocationVersion();
    expect(v1).not.toBe(v0);
    s.revokeSession("sess-1", "again", T0 + 2);
    expect(s.getSession("sess-1")?.revokedReason).toBe("signed out");
    expect(s.revocationVersion()).toBe(v1);
    expect(storeError(() => s.revokeSession("nope", "x", T0)).code).toBe("ERR_STORE_NOT_FOUND");
  });

  it("revokes every session of a user, of a credential, or of both", () => {
    const s = store();
    withUsers(s);
    s.createSession(session({ id: "a1", credentialId: "ka" }));
    s.createSession(session({ id: "a2", credentialId: "kb" }));
    s.createSession(session({ id: "a3", credentialId: "kb" }));
    s.createSession(session({ id: "b1", userId: "u-bob", credentialId: "kc" }));
    s.createSession(session({ id: "b2", userId: "u-bob", credentialId: "kd" }));

    expect(s.revokeSessionsOf({ credentialId: "kb" }, "key removed", T0 + 1).sort()).toEqual(["a2", "a3"]);
    expect(s.revokeSessionsOf({ userId: "u-ada" }, "disabled", T0 + 2)).toEqual(["a1"]); // others already
    expect(s.getSession("a2")?.revokedReason).toBe("key removed");
    expect(s.revokeSessionsOf({ userId: "u-bob", credentialId: "kc" }, "both", T0 + 3)).toEqual(["b1"]);
    expect(s.getSession("b2")?.revokedAt).toBeUndefined();

    const v = s.revocationVersion();
    expect(s.revokeSessionsOf({ userId: "u-ada" }, "again", T0 + 4)).toEqual([]);
    expect(s.revocationVersion()).toBe(v); // nothing changed
    expect(s.revocations().sessions).toEqual(new Set(["a1", "a2", "a3", "b1"]));

    const none = storeError(() => s.revokeSessionsOf({}, "x", T0));
    expect(none.code).toBe("ERR_STORE_INVALID");
  });

  it("deletes expired sessions and their refresh tokens when a new session is created", () => {
    const s = store();
    withUsers(s);
    s.createSession(session({ id: "old", expiresAt: T0 + MIN }));
    s.putRefreshToken(refresh({ hash: "old-rt", sessionId: "old", expiresAt: T0 + MIN }));
    s.createSession(session({ id: "new", createdAt: T0 + MIN }));
    expect(s.getSession("old")).toBeUndefined();
    expect(s.useRefreshToken("old-rt", T0 + MIN)).toBeUndefined();
  });

  it("keeps a revoked session (in revocations().sessions) until the retention margin past its expiry", () => {
    const DAY = 24 * 60 * MIN;
    const s = store();
    withUsers(s);
    s.createSession(session({ id: "old", expiresAt: T0 + MIN }));
    s.putRefreshToken(refresh({ hash: "old-rt", sessionId: "old", expiresAt: T0 + MIN }));
    s.revokeSession("old", "x", T0);
    expect(s.revocations().sessions).toEqual(new Set(["old"]));
    // Past its expiry, a sign-in purges expired sessions: the revoked one stays (default 24 h).
    s.createSession(session({ id: "new", createdAt: T0 + 2 * MIN }));
    expect(s.getSession("old")?.revokedReason).toBe("x");
    expect(s.revocations().sessions).toEqual(new Set(["old"]));
    s.createSession(session({ id: "later", createdAt: T0 + MIN + DAY - 1 }));
    expect(s.revocations().sessions).toEqual(new Set(["old"]));
    // Once the margin has passed, it goes, with its refresh tokens.
    s.createSession(session({ id: "latest", createdAt: T0 + MIN + DAY }));
    expect(s.getSession("old")).toBeUndefined();
    expect(s.useRefreshToken("old-rt", T0 + MIN + DAY)).toBeUndefined();
    expect(s.revocations().sessions.size).toBe(0);
  });

  it("takes the retention margin as an option, and refuses a bad one", () => {
    const s = store({ revokedSessionRetentionMs: 10 * MIN });
    withUsers(s);
    s.createSession(session({ id: "old", expiresAt: T0 + MIN }));
    s.revokeSession("old", "x", T0);
    s.createSession(session({ id: "new", createdAt: T0 + 11 * MIN - 1 }));
    expect(s.revocations().sessions).toEqual(new Set(["old"]));
    s.createSession(session({ id: "newer", createdAt: T0 + 11 * MIN }));
    expect(s.revocations().sessions.size).toBe(0);
    expect(storeError(() => store({ revokedSessionRetentionMs: -1 })).code).toBe("ERR_STORE_INVALID");
  });
});

describe("refresh tokens", () => {
  function withSession(s: SqliteIdentityStore): void {
    s.createUser(user());
    s.createSession(session());
  }

  it("returns the record as it was: unused the first time, used (first time) after", () => {
    const s = store();
    withSession(s);
    s.putRefreshToken(refresh());
    expect(s.useRefreshToken("rt-hash-1", T0 + 10)).toEqual(refresh());
    expect(s.useRefreshToken("rt-hash-1", T0 + 20)).toEqual(refresh({ usedAt: T0 + 10 }));
    expect(s.useRefreshToken("rt-hash-1", T0 + 30)?.usedAt).toBe(T0 + 10);
    expect(s.useRefreshToken("unknown", T0)).toBeUndefined();
  });

  it("refuses a duplicate hash and an unknown session without quoting the hash", () => {
    const s = store();
    withSession(s);
    s.putRefreshToken(refresh());
    const dup = storeError(() => s.putRefreshToken(refresh()));
    expect(dup.code).toBe("ERR_STORE_CONFLICT");
    expect(dup.message).not.toContain("rt-hash-1");
    const orphan = storeError(() => s.putRefreshToken(refresh({ hash: "rt-2", sessionId: "ghost" })));
    expect(orphan.code).toBe("ERR_STORE_NOT_FOUND");
    expect(orphan.message).toMatch(/no session has id "ghost"/);
    expect(orphan.message).not.toContain("rt-2");
  });

  it("deletes expired tokens, used or not, when a new one is stored", () => {
    const s = store();
    withSession(s);
    s.putRefreshToken(refresh({ hash: "expired", expiresAt: T0 + MIN }));
    s.putRefreshToken(refresh({ hash: "used-live" }));
    s.useRefreshToken("used-live", T0);
    s.putRefreshToken(refresh({ hash: "new", createdAt: T0 + MIN }));
    expect(s.useRefreshToken("expired", T0 + MIN)).toBeUndefined();
    expect(s.useRefreshToken("used-live", T0 + MIN)?.usedAt).toBe(T0); // kept: reuse is detected
  });
});

describe("signing keys", () => {
  it("adds, lists by creation time, rotates with compare-and-swap", () => {
    const s = store();
    expect(s.listSigningKeys()).toEqual([]);
    expect(s.replaceSigningKeys([], [key("k2", { createdAt: T0 + 1 }), key("k1")], [])).toBe(true);
    expect(s.listSigningKeys().map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(s.listSigningKeys()[0]).toEqual(key("k1"));

    // stale view: refused, nothing changes
    expect(s.replaceSigningKeys(["k1"], [key("k3")], ["k1"])).toBe(false);
    expect(s.replaceSigningKeys(["k1", "k2", "k9"], [key("k3")], [])).toBe(false);
    expect(s.listSigningKeys().map((k) => k.kid)).toEqual(["k1", "k2"]);

    // order and duplicates of expectedKids do not matter
    expect(s.replaceSigningKeys(["k2", "k1", "k2"], [key("k3", { createdAt: T0 + 2 })], ["k1"])).toBe(true);
    expect(s.listSigningKeys().map((k) => k.kid)).toEqual(["k2", "k3"]);
  });

  it("refuses a duplicate kid and changes nothing", () => {
    const s = store();
    s.replaceSigningKeys([], [key("k1")], []);
    const err = storeError(() => s.replaceSigningKeys(["k1"], [key("k2"), key("k1")], []));
    expect(err.code).toBe("ERR_STORE_CONFLICT");
    expect(err.message).toMatch(/kid/);
    expect(s.listSigningKeys().map((k) => k.kid)).toEqual(["k1"]);
  });

  it("only one of two processes that saw the same keys can rotate", () => {
    const a = store();
    const b = store();
    a.replaceSigningKeys([], [key("k1")], []);
    const seenA = a.listSigningKeys().map((k) => k.kid);
    const seenB = b.listSigningKeys().map((k) => k.kid);
    expect(a.replaceSigningKeys(seenA, [key("ka")], [])).toBe(true);
    expect(b.replaceSigningKeys(seenB, [key("kb")], [])).toBe(false);
    expect(b.listSigningKeys().map((k) => k.kid)).toEqual(["k1", "ka"]);
  });
});

describe("revocations across connections", () => {
  function seed(s: SqliteIdentityStore): void {
    s.createUser(user({ name: "ada" }));
    s.addCredential(credential());
    s.addCredential(credential({ id: "cred-2" }));
    s.createSession(session());
  }

  it("a second instance's changes move the version and show in the sets", () => {
    const a = store();
    const b = store();
    seed(a);
    const empty = { sessions: new Set(), disabledSubjects: new Set(), credentials: new Set() };
    expect(b.revocations()).toEqual(empty);

    const steps: [string, () => void, (r: ReturnType<typeof a.revocations>) => void][] = [
      ["disable", () => a.setUserDisabled("u-ada", true), (r) => expect(r.disabledSubjects).toContain("ada")],
      [
        "revoke",
        () => a.revokeSessionsOf({ userId: "u-ada" }, "x", T0),
        (r) => expect(r.sessions).toContain("sess-1"),
      ],
      [
        "suspend",
        () => a.suspendCredential("cred-2", "x", T0),
        (r) => expect(r.credentials).toContain("cred-2"),
      ],
      ["remove", () => a.removeCredential("cred-1"), (r) => expect(r.credentials).toContain("cred-1")],
      [
        "re-enable",
        () => a.reenableCredential("cred-2"),
        (r) => expect(r.credentials).not.toContain("cred-2"),
      ],
      ["enable", () => a.setUserDisabled("u-ada", false), (r) => expect(r.disabledSubjects.size).toBe(0)],
    ];
    for (const [name, change, check] of steps) {
      const before = b.revocationVersion();
      change();
      expect(b.revocationVersion(), name).not.toBe(before);
      expect(a.revocationVersion(), name).toBe(b.revocationVersion());
      check(b.revocations());
    }
    expect(b.revocations().credentials).toEqual(new Set(["cred-1"]));
  });

  it("other writes do not move the version", () => {
    const a = store();
    const b = store();
    seed(a);
    const v = b.revocationVersion();
    a.createUser(user({ id: "u-2" }));
    a.putChallenge(challenge());
    a.recordCredentialUse("cred-1", 3, false, T0);
    a.replaceSigningKeys([], [key("k1")], []);
    expect(b.revocationVersion()).toBe(v);
  });

  it("with revocationPollMs, another connection's change shows within the poll delay", async () => {
    const a = store();
    const b = store({ revocationPollMs: 10 });
    seed(a);
    const v = b.revocationVersion();
    a.setUserDisabled("u-ada", true);
    await vi.waitFor(() => expect(b.revocationVersion()).not.toBe(v), { timeout: 2000, interval: 5 });
    b.setUserDisabled("u-ada", false); // its own change: seen at once
    expect(b.revocationVersion()).toBe(a.revocationVersion());
    b.close(); // stops the timer
  });
});

describe("single use across connections", () => {
  it("two instances on one file: only one redeems, consumes, or first-uses", () => {
    const a = store();
    const b = store();
    a.createUser(user());
    a.createSession(session());
    a.createInvite(invite());
    a.putChallenge(challenge());
    a.putRefreshToken(refresh());

    expect(b.redeemInvite("invite-hash-1", T0)).toBeDefined();
    expect(a.redeemInvite("invite-hash-1", T0)).toBeUndefined();
    expect(a.consumeChallenge("chal-1", T0)).toBeDefined();
    expect(b.consumeChallenge("chal-1", T0)).toBeUndefined();
    expect(b.useRefreshToken("rt-hash-1", T0)?.usedAt).toBeUndefined();
    expect(a.useRefreshToken("rt-hash-1", T0 + 1)?.usedAt).toBe(T0);
  });

  it("two processes racing over the same invites, challenges and refresh tokens: each has one winner", async () => {
    const n = 200;
    const seedStore = store();
    seedStore.createUser(user());
    seedStore.createSession(session());
    seedStore.db.transaction(() => {
      for (let i = 0; i < n; i++) {
        seedStore.createInvite(invite({ secretHash: `inv-${i}` }));
        seedStore.putChallenge(challenge({ challenge: `ch-${i}` }));
        seedStore.putRefreshToken(refresh({ hash: `rt-${i}` }));
      }
    })();
    seedStore.close();

    const moduleUrl = new URL("./identityStore.ts", import.meta.url).href;
    const script = `
      const { openIdentityStore } = await import(${JSON.stringify(moduleUrl)});
      const [file, n, reverse] = process.argv.slice(-3);
      const s = openIdentityStore(file);
      process.stdout.write("ready\\n");
      await new Promise((r) => process.stdin.once("data", r)); // both start together
      const won = { invites: [], challenges: [], tokens: [] };
      for (let k = 0; k < Number(n); k++) {
        const i = reverse === "1" ? Number(n) - 1 - k : k; // the two meet in the middle
        if (s.redeemInvite("inv-" + i, ${T0})) won.invites.push(i);
        if (s.consumeChallenge("ch-" + i, ${T0})) won.challenges.push(i);
        const r = s.useRefreshToken("rt-" + i, ${T0});
        if (r && r.usedAt === undefined) won.tokens.push(i);
        // Pause ~1 ms as a real gateway would between requests: a process that never lets go of
        // the write lock starves the other (SQLite's busy handler sleeps) and the race is no race.
        await new Promise((r) => setTimeout(r, 0));
      }
      s.close();
      process.stdout.write(JSON.stringify(won));
      process.exit(0);
    `;
    const cwd = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    type Won = { invites: number[]; challenges: number[]; tokens: number[] };
    const racers = [false, true].map((reverse) => {
      const args = ["--import", "tsx", "--input-type=module", "-e", script, "--", file, String(n)];
      const child = spawn(process.execPath, [...args, reverse ? "1" : "0"], { cwd });
      let out = "";
      let err = "";
      let onReady: () => void = () => {};
      const ready = new Promise<void>((r) => {
        onReady = r;
      });
      child.stdout.on("data", (d) => {
        out += d;
        if (out.startsWith("ready\n")) onReady();
      });
      child.stderr.on("data", (d) => {
        err += d;
      });
      const done = new Promise<Won>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => {
          if (code === 0) resolve(JSON.parse(out.slice("ready\n".length)) as Won);
          else reject(new Error(`racer exited with ${code}: ${err}`));
        });
      });
      return { child, ready, done };
    });
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.child.stdin.end("go\n");
    const [x, y] = await Promise.all(racers.map((r) => r.done));
    for (const kind of ["invites", "challenges", "tokens"] as const) {
      const all = [...x[kind], ...y[kind]].sort((p, q) => p - q);
      expect(all, kind).toEqual(Array.from({ length: n }, (_, i) => i)); // every one won exactly once
    }
    // Both processes won some: the race was real (not one finishing before the other began).
    expect(x.invites.length + x.challenges.length + x.tokens.length).toBeGreaterThan(0);
    expect(y.invites.length + y.challenges.length + y.tokens.length).toBeGreaterThan(0);
  }, 30_000);
});
