import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openIdentityStore, type SqliteIdentityStore } from "../../store/identityStore.js";
import type { SigningKeyRecord } from "../../store/ports.js";
import { SigningKeyError } from "./keyErrors.js";
import { createKeyring, type KeyringEvent, type KeyringOptions } from "./keyring.js";

const MIN = 60_000;
const T0 = Date.UTC(2030, 0, 1);
const R = 60 * MIN; // rotateEvery
const TTL = 10 * MIN;
const J = 10 * MIN; // jwksCache (publication lead)
const SKEW = 30_000;

let dir: string;
const opened: SqliteIdentityStore[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-keyring-"));
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
function storeFile(): string {
  return join(dir, `state-${++files}.db`);
}
function open(file: string): SqliteIdentityStore {
  const s = openIdentityStore(file);
  opened.push(s);
  return s;
}

function setup(overrides: Partial<KeyringOptions> = {}, file = storeFile()) {
  const clock = { now: T0 };
  const events: KeyringEvent[] = [];
  const store = open(file);
  const keyring = createKeyring({
    store,
    clock: () => clock.now,
    rotateEveryMs: R,
    tokenTtlMs: TTL,
    jwksCacheMs: J,
    skewMs: SKEW,
    events: (e) => events.push(e),
    ...overrides,
  });
  return { clock, events, store, keyring, file };
}

async function rejection(promise: Promise<unknown>): Promise<SigningKeyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SigningKeyError);
  return error as SigningKeyError;
}

/** Signing windows, oldest first; asserts they are contiguous and never overlap. */
function checkChain(rows: SigningKeyRecord[]): SigningKeyRecord[] {
  const sorted = [...rows].sort((a, b) => a.activatesAt - b.activatesAt);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i].activatesAt).toBe(sorted[i - 1].retiresAt);
  return sorted;
}

function currentRows(rows: SigningKeyRecord[], now: number): SigningKeyRecord[] {
  return rows.filter((r) => r.activatesAt <= now && now < r.retiresAt);
}

describe("createKeyring: first start", () => {
  it("creates a current key that signs at once and a next key published ahead", async () => {
    const { keyring, store, events } = setup();
    await keyring.ensure();
    const rows = checkChain(store.listSigningKeys());
    expect(rows).toHaveLength(2);
    const [current, next] = rows;
    expect(current).toMatchObject({ createdAt: T0, activatesAt: T0, retiresAt: T0 + R });
    expect(current.expiresAt).toBe(T0 + R + TTL + SKEW);
    expect(next).toMatchObject({
      createdAt: T0,
      activatesAt: T0 + R,
      retiresAt: T0 + 2 * R,
      encrypted: false,
    });
    expect((await keyring.signer()).kid).toBe(current.kid);
    expect(keyring.jwks().keys.map((k) => k.kid)).toEqual([current.kid, next.kid]);
    expect(keyring.list().map((k) => k.state)).toEqual(["current", "next"]);
    expect(events.map((e) => `${e.type} ${e.kid === current.kid ? "current" : "next"}`)).toEqual([
      "signing_key.created current",
      "signing_key.activated current",
      "signing_key.created next",
    ]);
    expect(events.every((e) => e.at === T0)).toBe(true);
  });

  it("uses the RFC 7638 thumbprint as kid and publishes public ES256 JWKs only", async () => {
    const { keyring } = setup();
    await keyring.ensure();
    for (const jwk of keyring.jwks().keys) {
      expect(Object.keys(jwk).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
      expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(jwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it("is idempotent and serves signer() and jwks() from memory", async () => {
    const { keyring, store } = setup();
    await keyring.ensure();
    const before = store.listSigningKeys();
    await keyring.ensure();
    expect(store.listSigningKeys()).toEqual(before);
    expect(keyring.jwks()).toBe(keyring.jwks());
    expect(await keyring.signer()).toEqual(await keyring.signer());
  });

  it("signer() on a fresh keyring runs ensure() itself", async () => {
    const { keyring, store } = setup();
    const { kid } = await keyring.signer();
    expect(currentRows(store.listSigningKeys(), T0).map((r) => r.kid)).toEqual([kid]);
  });

  it("refuses a schedule without room for the publication lead", () => {
    const store = open(storeFile());
    expect(() =>
      createKeyring({ store, clock: () => T0, rotateEveryMs: 15 * MIN, jwksCacheMs: 10 * MIN }),
    ).toThrow(/twice jwksCacheMs/);
    expect(() => createKeyring({ store, clock: () => T0, tokenTtlMs: 0 })).toThrow(/tokenTtlMs/);
    expect(() => createKeyring({ store, clock: () => T0, kek: new Uint8Array(16) })).toThrow(SigningKeyError);
  });
});

describe("createKeyring: scheduled rotation", () => {
  it("publishes every key at least jwksCacheMs before it signs, always with exactly one current key", async () => {
    const { keyring, clock, store, events } = setup();
    const firstSeen = new Map<string, number>();
    const firstSigned = new Map<string, number>();
    let step = 0;
    for (clock.now = T0; clock.now <= T0 + 6 * R; clock.now += MIN / 2, step++) {
      if (step % 3 === 0) await keyring.ensure(); // the periodic ensure, lagging a little
      const jwks = keyring.jwks();
      for (const k of jwks.keys)
        if (!firstSeen.has(k.kid as string)) firstSeen.set(k.kid as string, clock.now);
      const { kid } = await keyring.signer();
      if (!firstSigned.has(kid)) firstSigned.set(kid, clock.now);
      expect(jwks.keys.map((k) => k.kid)).toContain(kid);
      expect(keyring.list().filter((k) => k.state === "current")).toHaveLength(1);
      expect(currentRows(store.listSigningKeys(), clock.now)).toHaveLength(1);
      checkChain(store.listSigningKeys());
    }
    expect(firstSigned.size).toBe(7);
    const [first, ...later] = [...firstSigned];
    expect(first).toEqual([first[0], T0]); // the very first key signs immediately
    for (const [kid, signedAt] of later) {
      expect(signedAt - (firstSeen.get(kid) as number)).toBeGreaterThanOrEqual(J);
    }
    const rotations = events.filter((e) => e.type === "signing_key.activated");
    expect(rotations).toHaveLength(7);
    expect(events.filter((e) => e.type === "signing_key.retired")).toHaveLength(6);
    expect(events.filter((e) => e.type === "signing_key.removed").length).toBeGreaterThanOrEqual(5);
    expect(rotations.slice(1).every((e) => e.reason.startsWith("scheduled rotation"))).toBe(true);
  });

  it("keeps a retired key in the JWKS until retiresAt + tokenTtl + skew, then removes it", async () => {
    const { keyring, clock, store } = setup();
    await keyring.ensure();
    const first = (await keyring.signer()).kid;
    clock.now = T0 + R; // the next key takes over without a write
    expect((await keyring.signer()).kid).not.toBe(first);
    await keyring.ensure();
    expect(keyring.list().find((k) => k.kid === first)?.state).toBe("retired");
    clock.now = T0 + R + TTL + SKEW - 1;
    await keyring.ensure();
    expect(keyring.jwks().keys.map((k) => k.kid)).toContain(first);
    clock.now = T0 + R + TTL + SKEW;
    expect(keyring.jwks().keys.map((k) => k.kid)).not.toContain(first); // by the clock, before any write
    await keyring.ensure();
    expect(store.listSigningKeys().map((r) => r.kid)).not.toContain(first);
  });

  it("extends the current key when the next one is created late, so it is still published jwksCacheMs ahead", async () => {
    const { keyring, clock, store } = setup();
    await keyring.ensure();
    clock.now = T0 + R;
    await keyring.ensure(); // k2 current, k3 next
    const k2 = (await keyring.signer()).kid;
    // Nobody ran ensure() for a while: delete k3 as if it had never been created.
    const rows = store.listSigningKeys();
    const k3 = rows.find((r) => r.activatesAt === T0 + 2 * R) as SigningKeyRecord;
    expect(
      store.replaceSigningKeys(
        rows.map((r) => r.kid),
        [],
        [k3.kid],
      ),
    ).toBe(true);
    clock.now = T0 + 2 * R - 3 * MIN;
    await keyring.ensure();
    const after = checkChain(store.listSigningKeys());
    const extended = after.find((r) => r.kid === k2) as SigningKeyRecord;
    expect(extended.retiresAt).toBe(clock.now + J);
    expect(extended.expiresAt).toBe(clock.now + J + TTL + SKEW);
    const created = after[after.length - 1];
    expect(created.activatesAt - created.createdAt).toBe(J);
    clock.now = created.activatesAt - 1;
    expect((await keyring.signer()).kid).toBe(k2);
    clock.now = created.activatesAt;
    expect((await keyring.signer()).kid).toBe(created.kid);
  });

  it("after a long stop, replaces the retired keys with a key that signs at once", async () => {
    const { keyring, clock, store, events } = setup();
    await keyring.ensure();
    const old = store.listSigningKeys().map((r) => r.kid);
    clock.now = T0 + 10 * R;
    events.length = 0;
    const { kid } = await keyring.signer();
    const rows = checkChain(store.listSigningKeys());
    expect(rows.map((r) => r.kid).filter((k) => old.includes(k))).toEqual([]);
    expect(rows[0]).toMatchObject({ kid, activatesAt: clock.now, retiresAt: clock.now + R });
    expect(events.map((e) => e.type)).toEqual([
      "signing_key.removed",
      "signing_key.removed",
      "signing_key.created",
      "signing_key.activated",
      "signing_key.created",
    ]);
    expect(events[3].reason).toMatch(/stopped for longer than rotateEvery/);
  });
});

describe("createKeyring: forced rotation", () => {
  it("switches at once when the next key has been published for jwksCacheMs", async () => {
    const { keyring, clock, store, events } = setup();
    await keyring.ensure();
    const [k1, k2] = checkChain(store.listSigningKeys()).map((r) => r.kid);
    clock.now = T0 + J;
    events.length = 0;
    const result = await keyring.rotate();
    expect(result).toEqual({ previousKid: k1, kid: k2, activatesAt: clock.now, immediate: true });
    expect((await keyring.signer()).kid).toBe(k2);
    const rows = checkChain(store.listSigningKeys());
    expect(rows.map((r) => r.kid).slice(0, 2)).toEqual([k1, k2]);
    expect(rows[0].retiresAt).toBe(clock.now);
    // published jwksCacheMs longer than usual: other processes may sign with it until they re-read
    expect(rows[0].expiresAt).toBe(clock.now + TTL + SKEW + J);
    expect(rows[2]).toMatchObject({ createdAt: clock.now, activatesAt: clock.now + R });
    expect(keyring.jwks().keys).toHaveLength(3);
    expect(events.map((e) => [e.type, e.kid])).toEqual([
      ["signing_key.retired", k1],
      ["signing_key.activated", k2],
      ["signing_key.created", rows[2].kid],
    ]);
    expect(events.every((e) => e.reason.includes("forced rotation"))).toBe(true);
  });

  it("brings the switch forward to when the next key has been published long enough, and never stacks rotations", async () => {
    const { keyring, clock, store, events } = setup();
    await keyring.ensure();
    clock.now = T0 + 20 * MIN;
    await keyring.rotate(); // k2 signs now, k3 created now
    const k2 = (await keyring.signer()).kid;
    const k3 = checkChain(store.listSigningKeys())[2].kid;
    clock.now += 4 * MIN;
    events.length = 0;
    const second = await keyring.rotate();
    const switchAt = T0 + 20 * MIN + J;
    expect(second).toEqual({ previousKid: k2, kid: k3, activatesAt: switchAt, immediate: false });
    expect(events.map((e) => e.type)).toEqual(["signing_key.rotation_scheduled"]);
    const third = await keyring.rotate();
    expect(third).toEqual(second);
    expect(events).toHaveLength(1);
    checkChain(store.listSigningKeys());
    clock.now = switchAt - 1;
    expect((await keyring.signer()).kid).toBe(k2);
    clock.now = switchAt;
    expect((await keyring.signer()).kid).toBe(k3);
    await keyring.ensure();
    expect(events.slice(1).map((e) => [e.type, e.kid])).toEqual([
      ["signing_key.activated", k3],
      ["signing_key.retired", k2],
      ["signing_key.created", expect.any(String)],
    ]);
    checkChain(store.listSigningKeys());
  });
});

describe("createKeyring: several processes on one store", () => {
  it("never creates two current keys when two keyrings advance the clock concurrently", async () => {
    const file = storeFile();
    let conflicts = 0;
    /** A second connection to the file whose lost compare-and-sets are counted. */
    const counting = (): KeyringOptions["store"] => {
      const s = open(file);
      return {
        listSigningKeys: () => s.listSigningKeys(),
        replaceSigningKeys: (expected, add, remove) => {
          const ok = s.replaceSigningKeys(expected, add, remove);
          if (!ok) conflicts++;
          return ok;
        },
      };
    };
    const a = setup({ store: counting() }, file);
    const b = setup({ store: counting() }, file);
    const clock = { now: T0 };
    a.clock.now = b.clock.now = T0;
    const sync = () => {
      a.clock.now = clock.now;
      b.clock.now = clock.now;
    };
    for (let step = 0; clock.now <= T0 + 5 * R; step++, clock.now += 7 * MIN) {
      sync();
      if (step % 5 === 4) await Promise.all([a.keyring.rotate(), b.keyring.ensure()]);
      else await Promise.all([a.keyring.ensure(), b.keyring.ensure()]);
      const rows = a.store.listSigningKeys();
      expect(currentRows(rows, clock.now)).toHaveLength(1);
      checkChain(rows);
      await b.keyring.refresh();
      const [sa, sb] = await Promise.all([a.keyring.signer(), b.keyring.signer()]);
      expect(sa.kid).toBe(sb.kid);
    }
    expect(conflicts).toBeGreaterThan(0); // the two really raced
    // Every key was created exactly once, by whichever process won the write.
    const created = [...a.events, ...b.events]
      .filter((e) => e.type === "signing_key.created")
      .map((e) => e.kid);
    expect(new Set(created).size).toBe(created.length);
    const activated = [...a.events, ...b.events]
      .filter((e) => e.type === "signing_key.activated")
      .map((e) => e.kid);
    expect(new Set(activated).size).toBe(activated.length);
  });

  it("sees another process's forced rotation on refresh() and ensure()", async () => {
    const file = storeFile();
    const a = setup({}, file);
    const b = setup({}, file);
    await a.keyring.ensure();
    await b.keyring.ensure();
    a.clock.now = b.clock.now = T0 + J;
    const { kid } = await a.keyring.rotate();
    await b.keyring.ensure();
    expect((await b.keyring.signer()).kid).toBe(kid);
    expect(b.keyring.jwks().keys.map((k) => k.kid)).toEqual(a.keyring.jwks().keys.map((k) => k.kid));
  });
});

describe("createKeyring: keys at rest", () => {
  const kek = new Uint8Array(randomBytes(32));

  it("stores private keys encrypted under the KEK: no d parameter in the raw row", async () => {
    const { keyring, store } = setup({ kek });
    await keyring.ensure();
    const raw = store.db.prepare("SELECT * FROM signing_keys").all() as Array<Record<string, unknown>>;
    expect(raw).toHaveLength(2);
    for (const row of raw) {
      expect(row.encrypted).toBe(1);
      expect(String(row.private_key)).toMatch(
        /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
      );
      expect(String(row.private_key)).not.toContain('"d"');
      expect(String(row.public_jwk)).not.toContain('"d"');
      expect(JSON.stringify(row)).not.toMatch(/"d":/);
    }
    expect((await keyring.signer()).kid).toBe(raw.find((r) => r.activates_at === T0)?.kid);
  });

  it("without a KEK stores plaintext JWKs (encrypted false)", async () => {
    const { keyring, store } = setup();
    await keyring.ensure();
    for (const row of store.listSigningKeys()) {
      expect(row.encrypted).toBe(false);
      expect(JSON.parse(row.privateKey)).toHaveProperty("d");
    }
  });

  it("refuses to start without the KEK, with a wrong KEK, or with a tampered key", async () => {
    const file = storeFile();
    const { keyring, store } = setup({ kek }, file);
    await keyring.ensure();
    const noKek = setup({}, file).keyring;
    const error = await rejection(noKek.ensure());
    expect(error.code).toBe("ERR_KEK_REQUIRED");
    expect(error.message).toMatch(/no key encryption key/);
    expect((await rejection(noKek.signer())).code).toBe("ERR_KEK_REQUIRED");
    const wrong = setup({ kek: new Uint8Array(randomBytes(32)) }, file).keyring;
    expect((await rejection(wrong.ensure())).code).toBe("ERR_KEK_WRONG");

    const row = store.listSigningKeys()[0];
    const parts = row.privateKey.split(".");
    const bytes = Buffer.from(parts[4], "base64url");
    bytes[3] ^= 0x20;
    parts[4] = bytes.toString("base64url");
    store.db.prepare("UPDATE signing_keys SET private_key = ? WHERE kid = ?").run(parts.join("."), row.kid);
    const fresh = setup({ kek }, file).keyring;
    expect((await rejection(fresh.ensure())).code).toBe("ERR_KEY_TAMPERED");
  });

  it("refuses a private key that does not belong to its kid", async () => {
    const file = storeFile();
    const { keyring, store } = setup({}, file);
    await keyring.ensure();
    const [a, b] = store.listSigningKeys();
    store.db.prepare("UPDATE signing_keys SET private_key = ? WHERE kid = ?").run(b.privateKey, a.kid);
    const error = await rejection(setup({}, file).keyring.ensure());
    expect(error.code).toBe("ERR_KEY_FORMAT");
    expect(error.message).toMatch(/does not belong/);
  });
});

describe("createKeyring: start/stop", () => {
  it("runs ensure() on an unref'd timer until stopped", async () => {
    const { keyring, store } = setup({ rotateEveryMs: 20_000, jwksCacheMs: 4000, tokenTtlMs: 5000 });
    keyring.start();
    keyring.start(); // idempotent
    try {
      await expect.poll(() => store.listSigningKeys().length, { timeout: 3000, interval: 50 }).toBe(2);
    } finally {
      keyring.stop();
    }
  });

  it("reports a failed periodic ensure as an event instead of an unhandled rejection", async () => {
    const file = storeFile();
    await setup({ kek: new Uint8Array(randomBytes(32)) }, file).keyring.ensure();
    const { keyring, events } = setup({ rotateEveryMs: 20_000, jwksCacheMs: 4000, tokenTtlMs: 5000 }, file);
    keyring.start();
    try {
      await expect
        .poll(() => events.find((e) => e.type === "signing_key.ensure_failed")?.reason, {
          timeout: 3000,
          interval: 50,
        })
        .toMatch(/no key encryption key/);
    } finally {
      keyring.stop();
    }
  });
});
