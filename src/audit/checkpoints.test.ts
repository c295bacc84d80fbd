import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactVerify, decodeProtectedHeader, importJWK } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import {
  CHECKPOINT_TYP,
  createCheckpointer,
  listCheckpoints,
  parseCheckpoints,
  signCheckpoint,
  startCheckpointer,
  verifyCheckpoint,
} from "./checkpoints.js";
import { createTestCheckpointKeys } from "./checkpointTesting.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number): AuditEvent {
  return {
    time: 1_700_000_000_000 + i,
    type: "data.request",
    subject: `user${i}`,
    actions: ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: "allow",
    reason: "allowed",
    status: 200,
    durationMs: 1,
  };
}

const dbs: Database[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
});

async function trail(n: number) {
  const db = openDatabase(":memory:");
  dbs.push(db);
  const writer = createAuditWriter(db);
  const add = (k: number) => Promise.all(Array.from({ length: k }, (_, i) => writer.append(ev(i))));
  await add(n);
  return { db, add };
}

const H = "a".repeat(64);

describe("signCheckpoint / verifyCheckpoint", () => {
  it("signs {seq, hash, time, instance} as an ES256 compact JWS that verifies with the key it carries", async () => {
    const keys = await createTestCheckpointKeys();
    const { kid, key } = await keys.signer();
    const cp = await signCheckpoint(
      { seq: 7, hash: H, time: 1000, instance: "i-1" },
      { kid, key, jwk: keys.jwk },
    );
    expect(cp).toMatchObject({ seq: 7, hash: H, time: 1000, instance: "i-1", kid, alg: "ES256" });
    expect(cp.jwk).toEqual({ ...keys.jwk });
    expect(cp.jwk).not.toHaveProperty("d");
    expect(decodeProtectedHeader(cp.jws)).toEqual({ alg: "ES256", kid, typ: CHECKPOINT_TYP });
    const { payload } = await compactVerify(cp.jws, await importJWK(keys.jwk, "ES256"));
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({
      seq: 7,
      hash: H,
      time: 1000,
      instance: "i-1",
    });
    expect(await verifyCheckpoint(cp)).toEqual({ ok: true });
    expect(await verifyCheckpoint(cp, { jwks: keys.jwks() })).toEqual({ ok: true });
  });

  it("refuses an edited field, a forged signature, a swapped key and a key outside the trusted set", async () => {
    const keys = await createTestCheckpointKeys();
    const other = await createTestCheckpointKeys();
    const s = await keys.signer();
    const cp = await signCheckpoint({ seq: 7, hash: H, time: 1000 }, { ...s, jwk: keys.jwk });

    const edited = await verifyCheckpoint({ ...cp, hash: "b".repeat(64) });
    expect(edited).toMatchObject({
      ok: false,
      reason: expect.stringContaining("differ from what was signed"),
    });
    expect(await verifyCheckpoint({ ...cp, seq: 8 })).toMatchObject({ ok: false });

    // Signed by another key but claiming this one.
    const os = await other.signer();
    const forged = await signCheckpoint(
      { seq: 7, hash: H, time: 1000 },
      { kid: s.kid, key: os.key, jwk: keys.jwk },
    );
    expect(await verifyCheckpoint(forged)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("signature"),
    });

    // The other key's JWK put in with this kid: the kid is not its thumbprint.
    expect(await verifyCheckpoint({ ...forged, jwk: other.jwk })).toMatchObject({
      ok: false,
      reason: expect.stringContaining("thumbprint"),
    });

    // Self-consistent, but not by a trusted key.
    const self = await signCheckpoint({ seq: 7, hash: H, time: 1000 }, { ...os, jwk: other.jwk });
    expect(await verifyCheckpoint(self)).toEqual({ ok: true });
    expect(await verifyCheckpoint(self, { jwks: keys.jwks() })).toMatchObject({
      ok: false,
      reason: expect.stringContaining("not in the trusted key set"),
    });

    // A JWS of another type (e.g. a token) is not a checkpoint.
    const garbage = { ...cp, jws: `${cp.jws.split(".")[0]}.e30.${cp.jws.split(".")[2]}` };
    expect(await verifyCheckpoint(garbage)).toMatchObject({ ok: false });
    expect(await verifyCheckpoint({ ...cp, alg: "none" as "ES256" })).toMatchObject({ ok: false });
  });

  it("parses the JSON of GET /audit/checkpoints, a bare array and export lines, oldest first", async () => {
    const keys = await createTestCheckpointKeys();
    const s = await keys.signer();
    const a = await signCheckpoint({ seq: 2, hash: H, time: 1 }, { ...s, jwk: keys.jwk });
    const b = await signCheckpoint({ seq: 5, hash: H, time: 2 }, { ...s, jwk: keys.jwk });
    expect(parseCheckpoints(JSON.stringify({ checkpoints: [b, a] })).map((c) => c.seq)).toEqual([2, 5]);
    expect(parseCheckpoints(JSON.stringify([b, a])).map((c) => c.seq)).toEqual([2, 5]);
    const lines = [
      JSON.stringify({ seq: 1, checkpoint: "no" }),
      JSON.stringify({ checkpoint: a }),
      "{}",
      JSON.stringify({ checkpoint: b }),
    ];
    expect(parseCheckpoints(lines.join("\n")).map((c) => c.seq)).toEqual([2, 5]);
    expect(() => parseCheckpoints('{"nothing": 1}')).toThrow(/GET \/audit\/checkpoints/);
    expect(() => parseCheckpoints('[{"hash": "x"}]')).toThrow(/integer seq/);
  });
});

describe("createCheckpointer", () => {
  it("writes a checkpoint after `every` new records, not before, and only when there are new records", async () => {
    const { db, add } = await trail(0);
    let now = 1_000_000;
    const keys = await createTestCheckpointKeys();
    const cps = createCheckpointer({
      db,
      keys,
      every: 5,
      intervalMs: 60_000,
      clock: () => now,
      instance: "gw-1",
    });
    expect(await cps.tick()).toBeUndefined(); // empty trail
    await add(4);
    expect(await cps.tick()).toBeUndefined(); // 4 < 5, and not 60 s yet
    await add(1);
    const first = await cps.tick();
    expect(first).toMatchObject({ seq: 5, time: now, instance: "gw-1", kid: keys.kid });
    const head = db.prepare("SELECT hash FROM audit_events WHERE seq = 5").get() as { hash: string };
    expect(first?.hash).toBe(head.hash);
    expect(await cps.tick()).toBeUndefined(); // nothing new
    now += 120_000;
    expect(await cps.tick()).toBeUndefined(); // T passed, but still nothing new
    await add(1);
    expect(await cps.tick()).toMatchObject({ seq: 6 }); // T passed and one new record
    expect(cps.recent().map((c) => c.seq)).toEqual([6, 5]);
    expect(cps.recent(1).map((c) => c.seq)).toEqual([6]);
    for (const cp of cps.recent()) expect(await verifyCheckpoint(cp)).toEqual({ ok: true });
  });

  it("writes a checkpoint after `intervalMs` even with fewer records; close() checkpoints what is left", async () => {
    const { db, add } = await trail(2);
    let now = 0;
    const cps = createCheckpointer({
      db,
      keys: await createTestCheckpointKeys(),
      every: 1000,
      intervalMs: 10_000,
      clock: () => now,
    });
    expect(await cps.tick()).toBeUndefined();
    now = 10_000;
    expect(await cps.tick()).toMatchObject({ seq: 2 });
    await add(3);
    await cps.close();
    expect(listCheckpoints(db).map((c) => c.seq)).toEqual([2, 5]);
  });

  it("makes the head durable before signing, and one checkpoint at a time", async () => {
    const { db, add } = await trail(3);
    const order: string[] = [];
    let release = () => {};
    const cps = createCheckpointer({
      db,
      keys: await createTestCheckpointKeys(),
      every: 1,
      durable: () => {
        order.push("durable");
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    const a = cps.tick();
    const b = cps.tick(); // while one is in flight: nothing more
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["durable"]);
    expect(listCheckpoints(db)).toHaveLength(0); // not stored before the records are durable
    release();
    expect(await a).toMatchObject({ seq: 3 });
    expect(await b).toBeUndefined();
    await add(1);
    const c = cps.checkpoint();
    await new Promise((r) => setImmediate(r));
    release();
    expect(await c).toMatchObject({ seq: 4 });
  });

  it("reports a signing failure and retries at the next tick", async () => {
    const { db } = await trail(3);
    const keys = await createTestCheckpointKeys();
    let fail = true;
    const cps = createCheckpointer({
      db,
      every: 1,
      keys: {
        signer: () => (fail ? Promise.reject(new Error("keyring busy")) : keys.signer()),
        jwks: keys.jwks,
      },
    });
    await expect(cps.tick()).rejects.toMatchObject({
      code: "ERR_AUDIT_WRITE",
      message: expect.stringContaining("keyring busy"),
    });
    fail = false;
    expect(await cps.tick()).toMatchObject({ seq: 3 });
  });

  it("startCheckpointer runs on its own connection to the file, on a timer, and fsyncs the WAL first", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cosmosgate-cp-"));
    try {
      const file = join(dir, "audit.db");
      const db = openDatabase(file);
      const writer = createAuditWriter(db);
      for (let i = 0; i < 3; i++) await writer.append(ev(i));
      const cps = await startCheckpointer(file, {
        keys: await createTestCheckpointKeys(),
        every: 2,
        intervalMs: 50,
      });
      const deadline = Date.now() + 5000;
      while (cps.recent().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(cps.recent()[0]).toMatchObject({ seq: 3 });
      await writer.append(ev(9));
      await cps.close();
      expect(listCheckpoints(db).map((c) => c.seq)).toEqual([3, 4]);
      await writer.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
