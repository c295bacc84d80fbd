import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditColumns } from "../audit/schema.js";
import { openIdentityStore, type SqliteIdentityStore } from "../store/identityStore.js";
import {
  createCredentialDirectory,
  describeIdentityEvent,
  identityAuditEvent,
  requestOrigin,
} from "./identity.js";

const ISSUER = "http://localhost:8080";
const now = Date.UTC(2026, 10, 28, 10, 0, 0);
let store: SqliteIdentityStore;

beforeEach(() => {
  store = openIdentityStore(":memory:");
  store.createUser({
    id: "u-ada",
    name: "ada",
    groups: [],
    admin: false,
    disabled: false,
    createdAt: now,
    webauthnUserId: Buffer.from("ada".padEnd(32, "x")).toString("base64url"),
  });
  store.addCredential({
    id: "k1",
    userId: "u-ada",
    publicKey: new Uint8Array([1, 2, 3]),
    counter: 0,
    transports: ["usb"],
    aaguid: "2fc0579f-8113-47ea-b116-bb5a8db9202a",
    fmt: "packed",
    deviceBound: true,
    backedUp: false,
    nickname: "desk key",
    createdAt: now,
    useCount: 0,
  });
  store.createSession({
    id: "s1",
    userId: "u-ada",
    credentialId: "k1",
    amr: ["hwk", "user"],
    authTime: now,
    createdAt: now,
    expiresAt: now + 3_600_000,
  });
});
afterEach(() => store.close());

/** A store whose credential reads are counted. */
function counted() {
  let reads = 0;
  return {
    reads: () => reads,
    store: {
      getCredential: (id: string) => {
        reads++;
        return store.getCredential(id);
      },
    },
  };
}

describe("createCredentialDirectory (the data plane's view of the keys)", () => {
  it("reads a key from the store once, then answers from memory with the same object", () => {
    const c = counted();
    const keys = createCredentialDirectory(c.store, { issuer: ISSUER });
    const first = keys.describe(ISSUER, "k1", now);
    expect(first).toEqual({
      nickname: "desk key",
      aaguid: "2fc0579f-8113-47ea-b116-bb5a8db9202a",
      deviceBound: true,
    });
    for (let i = 0; i < 1000; i++) expect(keys.describe(ISSUER, "k1", now + i)).toBe(first);
    expect(c.reads()).toBe(1);
  });

  it("describes no key of another issuer, and remembers an unknown key as unknown", () => {
    const c = counted();
    const keys = createCredentialDirectory(c.store, { issuer: ISSUER });
    expect(keys.describe("https://login.example/", "k1", now)).toBeUndefined();
    expect(c.reads()).toBe(0);
    expect(keys.describe(ISSUER, "nope", now)).toBeUndefined();
    expect(keys.describe(ISSUER, "nope", now + 1)).toBeUndefined();
    expect(c.reads()).toBe(1);
  });

  it("re-reads a key after ttlMs or after forget (a renamed key gets its new nickname)", () => {
    const c = counted();
    const keys = createCredentialDirectory(c.store, { issuer: ISSUER, ttlMs: 60_000 });
    keys.describe(ISSUER, "k1", now);
    store.renameCredential("k1", "travel key");
    expect(keys.describe(ISSUER, "k1", now + 59_999)?.nickname).toBe("desk key");
    expect(keys.describe(ISSUER, "k1", now + 60_000)?.nickname).toBe("travel key");
    store.renameCredential("k1", "old key");
    keys.forget("k1");
    expect(keys.describe(ISSUER, "k1", now + 60_001)?.nickname).toBe("old key");
    expect(c.reads()).toBe(3);
  });

  it("stays bounded: past maxEntries keys the memory starts over", () => {
    const c = counted();
    const keys = createCredentialDirectory(c.store, { issuer: ISSUER, maxEntries: 2 });
    keys.describe(ISSUER, "a", now);
    keys.describe(ISSUER, "b", now);
    keys.describe(ISSUER, "c", now); // clears, then remembers c
    keys.describe(ISSUER, "c", now);
    keys.describe(ISSUER, "a", now);
    expect(c.reads()).toBe(4);
  });

  it("a failing store read leaves the key undescribed instead of failing the request", () => {
    const keys = createCredentialDirectory(
      {
        getCredential: () => {
          throw new Error("database is closed");
        },
      },
      { issuer: ISSUER },
    );
    expect(keys.describe(ISSUER, "k1", now)).toBeUndefined();
  });
});

describe("describeIdentityEvent", () => {
  it("fills a session's key and user, the key's nickname, AAGUID and kind, and subjectKind", () => {
    expect(describeIdentityEvent(store, { type: "token.revoked", session: "s1", reason: "r" })).toEqual({
      type: "token.revoked",
      session: "s1",
      subject: "ada",
      subjectKind: "user",
      credential: "k1",
      credentialName: "desk key",
      aaguid: "2fc0579f-8113-47ea-b116-bb5a8db9202a",
      deviceBound: true,
      reason: "r",
    });
  });

  it("keeps fields already set (a removed key described by the route) and the caller's object", () => {
    const e = {
      type: "credential.removed",
      subject: "ada",
      credential: "gone",
      credentialName: "old phone",
      aaguid: "x",
      deviceBound: false,
      reason: "r",
    };
    const out = describeIdentityEvent(store, e);
    expect(out).toMatchObject({ credentialName: "old phone", aaguid: "x", deviceBound: false });
    expect(out).not.toBe(e);
    expect(e).not.toHaveProperty("subjectKind");
  });

  it("takes the client address and user agent from the control-plane request it runs in", () => {
    const e = { type: "signin.failed", reason: "ERR_X: no" };
    expect(describeIdentityEvent(store, e).clientAddress).toBeUndefined();
    const inRequest = requestOrigin.run({ clientAddress: "192.0.2.7", userAgent: "Firefox" }, () =>
      Promise.resolve().then(() => describeIdentityEvent(store, e)),
    );
    return expect(inRequest).resolves.toMatchObject({ clientAddress: "192.0.2.7", userAgent: "Firefox" });
  });

  it("forgets a changed key in the data plane's directory", () => {
    const keys = createCredentialDirectory(store, { issuer: ISSUER });
    keys.describe(ISSUER, "k1", now);
    store.renameCredential("k1", "renamed");
    describeIdentityEvent(store, { type: "credential.renamed", credential: "k1", reason: "r" }, keys);
    expect(keys.describe(ISSUER, "k1", now)?.nickname).toBe("renamed");
  });

  it("never throws: a failing store leaves the event as it was", () => {
    const broken = {
      getSession: () => {
        throw new Error("closed");
      },
      getUserById: () => undefined,
      getCredential: () => undefined,
    };
    expect(describeIdentityEvent(broken, { type: "token.revoked", session: "s1", reason: "r" })).toEqual({
      type: "token.revoked",
      session: "s1",
      reason: "r",
    });
  });
});

describe("identityAuditEvent", () => {
  it("makes a valid record: resource from kid or subject, kid in details, status 0, the instance", () => {
    const key = identityAuditEvent(
      { type: "signing_key.created", subject: "cosmosgate", subjectKind: "system", kid: "K1", reason: "r" },
      now,
      "inst-1",
    );
    expect(key).toMatchObject({
      time: now,
      instance: "inst-1",
      resource: "/keys/K1",
      details: { kid: "K1" },
      actions: [],
      status: 0,
      decision: "allow",
    });
    expect(() => auditColumns(key)).not.toThrow();
    const user = identityAuditEvent(
      { type: "user.disabled", subject: "ada", reason: "r", decision: "deny" },
      now,
    );
    expect(user).toMatchObject({
      subject: "ada",
      subjectKind: "user",
      resource: "/users/ada",
      decision: "deny",
    });
    const anonymous = identityAuditEvent({ type: "signin.failed", reason: "r" }, now);
    expect(anonymous).toMatchObject({ subject: "", resource: "" });
    expect(anonymous.subjectKind).toBeUndefined();
  });

  it("gives every record the same keys, so one key order serves them all", () => {
    const a = identityAuditEvent({ type: "a", reason: "r" }, now);
    const b = identityAuditEvent(
      { type: "b", subject: "ada", credential: "k1", deviceBound: true, details: { x: 1 }, reason: "r" },
      now,
      "i",
    );
    expect(Object.keys(a)).toEqual(Object.keys(b));
  });
});
