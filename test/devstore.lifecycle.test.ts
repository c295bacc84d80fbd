// The embedded store over time, through the real @azure/cosmos 4.9.3 SDK: TTL expiry (on the
// store's injected clock), data surviving close + restart on the same file, and HTTPS with the
// dev CA as `cosmosgate devstore` serves it.

import { mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Container, CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevStore } from "../src/devstore/server.js";
import { ensureDevTls } from "../src/server/devCa.js";
import { EMULATOR_KEY, type StoreHarness, startStoreHarness } from "./helpers/devstore.js";

/** Polls `check` until it returns true or `ms` pass. */
async function eventually(check: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe("embedded store: TTL", () => {
  let h: StoreHarness;
  let perItem: Container;
  let byDefault: Container;
  let off: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "ttl" });
    // defaultTtl -1: TTL on, items live until their own ttl says otherwise; absent: TTL off and an
    // item's ttl is ignored (learn.microsoft.com/azure/cosmos-db/nosql/time-to-live).
    perItem = (
      await database.containers.create({ id: "perItem", partitionKey: { paths: ["/p"] }, defaultTtl: -1 })
    ).container;
    byDefault = (
      await database.containers.create({ id: "byDefault", partitionKey: { paths: ["/p"] }, defaultTtl: 5 })
    ).container;
    off = (await database.containers.create({ id: "off", partitionKey: { paths: ["/p"] } })).container;
  });
  afterAll(async () => {
    await h?.close();
  });

  it("removes an item when its ttl passes, from reads and queries, and keeps the others", async () => {
    await perItem.items.create({ id: "short", p: "a", ttl: 5 });
    await perItem.items.create({ id: "forever", p: "a" });
    await byDefault.items.create({ id: "defaulted", p: "a" });
    await byDefault.items.create({ id: "pinned", p: "a", ttl: -1 });
    await byDefault.items.create({ id: "longer", p: "a", ttl: 60 });
    await off.items.create({ id: "ignored", p: "a", ttl: 5 });
    // Nothing has expired yet.
    expect((await perItem.item("short", "a").read()).statusCode).toBe(200);
    expect((await byDefault.item("defaulted", "a").read()).statusCode).toBe(200);

    h.advance(10_000);
    expect(await eventually(async () => (await perItem.item("short", "a").read()).statusCode === 404)).toBe(
      true,
    );
    expect(
      await eventually(async () => (await byDefault.item("defaulted", "a").read()).statusCode === 404),
    ).toBe(true);
    const { resources } = await perItem.items.query("SELECT VALUE c.id FROM c").fetchAll();
    expect(resources).toEqual(["forever"]);
    const rest = await byDefault.items.query("SELECT VALUE c.id FROM c").fetchAll();
    expect(rest.resources.sort()).toEqual(["longer", "pinned"]);
    expect((await off.item("ignored", "a").read()).statusCode).toBe(200);

    h.advance(60_000);
    expect(
      await eventually(async () => (await byDefault.item("longer", "a").read()).statusCode === 404),
    ).toBe(true);
    expect((await byDefault.item("pinned", "a").read()).statusCode).toBe(200);
  });

  it("a write restarts an item's ttl (it counts from _ts)", async () => {
    await perItem.items.create({ id: "touched", p: "b", ttl: 5 });
    h.advance(4_000);
    await perItem.item("touched", "b").replace({ id: "touched", p: "b", ttl: 5, v: 2 });
    h.advance(4_000);
    await new Promise((r) => setTimeout(r, 300)); // several sweeps
    expect((await perItem.item("touched", "b").read()).resource?.v).toBe(2);
    h.advance(2_000);
    expect(await eventually(async () => (await perItem.item("touched", "b").read()).statusCode === 404)).toBe(
      true,
    );
  });
});

describe("embedded store: data survives close and restart on the same file", () => {
  let h: StoreHarness;

  beforeAll(async () => {
    h = await startStoreHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("keeps databases, containers (with their definition), items with their system properties, and scripts", async () => {
    const before = h.client();
    const { database } = await before.databases.create({ id: "keep" });
    const { container, resource: coll } = await database.containers.create({
      id: "things",
      partitionKey: { paths: ["/p"] },
      defaultTtl: 3600,
    });
    const items = [];
    for (let i = 0; i < 20; i++)
      items.push((await container.items.create({ id: `k${i}`, p: `p${i % 3}`, i })).resource);
    await container.item("k0", "p0").replace({ id: "k0", p: "p0", i: 100 });
    await container.item("k1", "p1").delete();
    await container.scripts.userDefinedFunctions.create({
      id: "double",
      body: "function (x) { return x * 2; }",
    });
    await container.scripts.storedProcedures.create({ id: "sp", body: "function () {}" });
    const k5 = (await container.item("k5", "p2").read()).resource;

    await h.restart();
    const after = h.client();
    const c = after.database("keep").container("things");
    const read = await c.read();
    expect(read.resource).toMatchObject({
      id: "things",
      _rid: coll?._rid,
      defaultTtl: 3600,
      partitionKey: { paths: ["/p"] },
    });
    expect((await c.item("k5", "p2").read()).resource).toEqual(k5);
    expect((await c.item("k0", "p0").read()).resource?.i).toBe(100);
    expect((await c.item("k1", "p1").read()).statusCode).toBe(404);
    const { resources } = await c.items.query("SELECT VALUE c.id FROM c").fetchAll();
    expect(resources.sort()).toEqual(
      items
        .map((r) => r?.id)
        .filter((id) => id !== "k1")
        .sort(),
    );
    expect(
      (await c.items.query("SELECT VALUE udf.double(c.i) FROM c WHERE c.id = 'k7'").fetchAll()).resources,
    ).toEqual([14]);
    expect((await c.scripts.storedProcedure("sp").read()).resource?.id).toBe("sp");

    // New writes after the restart get fresh identities and do not collide with the old ones.
    const fresh = await c.items.create({ id: "k20", p: "p0" });
    const rids = new Set(items.map((r) => r?._rid));
    expect(rids.has(fresh.resource?._rid)).toBe(false);
    expect((await c.items.create({ id: "k2", p: "p2" }).catch((e) => e)).code).toBe(409);
  });
});

describe("embedded store: HTTPS with the dev CA", () => {
  it("serves the SDK over TLS when given a certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cosmosgate-devstore-tls-"));
    const tls = await ensureDevTls(dir);
    const store = await startDevStore({
      file: join(dir, "store.db"),
      masterKey: EMULATOR_KEY,
      tls: { cert: tls.cert, key: tls.key },
    });
    const client = new CosmosClient({
      endpoint: store.origin,
      key: EMULATOR_KEY,
      agent: new Agent({ ca: tls.ca, keepAlive: true }),
    });
    try {
      expect(store.origin).toMatch(/^https:\/\//);
      const { database } = await client.databases.create({ id: "tls" });
      const { container } = await database.containers.create({ id: "c", partitionKey: { paths: ["/p"] } });
      await container.items.create({ id: "1", p: "x" });
      expect((await container.item("1", "x").read()).resource?.p).toBe("x");
    } finally {
      client.dispose();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
