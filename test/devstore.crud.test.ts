// Conformance of the embedded store (src/devstore) with the Cosmos DB REST API as the real
// @azure/cosmos 4.9.3 SDK uses it: account, databases, containers, items, conditional requests,
// errors, scripts and authentication. Expected behaviour is the real service's; sources are cited
// where it is not obvious.
import { createHmac } from "node:crypto";
import {
  type Container,
  type CosmosClient,
  type Database,
  type ItemDefinition,
  PartitionKeyKind,
  TriggerOperation,
  TriggerType,
} from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  byId,
  EMULATOR_KEY,
  type SdkError,
  type StoreHarness,
  sdkError,
  startStoreHarness,
} from "./helpers/devstore.js";

/** The real service's error body is `{"code": "<status name>", "message": "..."}`; the SDK reads `message`. */
function expectCosmosError(err: SdkError, status: number, code: string, message?: RegExp): void {
  expect({ status: err.code, code: (err.body as { code?: string } | undefined)?.code }).toEqual({
    status,
    code,
  });
  if (message) expect(err.message).toMatch(message);
}

/** _rid, _self (a link of rids ending in "/"), _etag (a quoted string) and _ts (seconds) as the service sets them. */
function expectSystemProperties(resource: Record<string, unknown> | undefined, self: RegExp): void {
  expect(resource).toBeDefined();
  const r = resource as Record<string, unknown>;
  expect(typeof r._rid).toBe("string");
  expect((r._rid as string).length).toBeGreaterThan(0);
  expect(r._self).toMatch(self);
  expect(r._etag).toMatch(/^".+"$/);
  expect(Number.isInteger(r._ts)).toBe(true);
  expect(Math.abs((r._ts as number) - Date.now() / 1000)).toBeLessThan(120);
}

const DOC_SELF = /^dbs\/[^/]+\/colls\/[^/]+\/docs\/[^/]+\/$/;

describe("embedded store: account, databases and containers through the real SDK", () => {
  let h: StoreHarness;
  let client: CosmosClient;

  beforeAll(async () => {
    h = await startStoreHarness();
    client = h.client();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers the account read with one region whose locations point at the store itself", async () => {
    const { resource } = await client.getDatabaseAccount();
    const locations = [...(resource?.readableLocations ?? []), ...(resource?.writableLocations ?? [])];
    expect(locations.length).toBeGreaterThanOrEqual(2);
    for (const l of locations) expect(new URL(l.databaseAccountEndpoint).origin).toBe(h.store.origin);
  });

  it("creates, reads, lists and deletes databases with system properties; 409 on a duplicate id, 404 when gone", async () => {
    const created = await client.databases.create({ id: "crud-db" });
    expect(created.statusCode).toBe(201);
    expectSystemProperties(created.resource as never, /^dbs\/[^/]+\/$/);
    expect(created.requestCharge).toBeGreaterThan(0);

    const read = await client.database("crud-db").read();
    expect(read.statusCode).toBe(200);
    expect(read.resource).toMatchObject({
      id: "crud-db",
      _rid: created.resource?._rid,
      _etag: created.resource?._etag,
    });
    const { resources } = await client.databases.readAll().fetchAll();
    expect(resources.map((d) => d.id)).toContain("crud-db");

    expectCosmosError(
      await sdkError(() => client.databases.create({ id: "crud-db" })),
      409,
      "Conflict",
      /already exists/i,
    );
    // createIfNotExists reads first: it returns the existing database.
    const again = await client.databases.createIfNotExists({ id: "crud-db" });
    expect(again.resource?._rid).toBe(created.resource?._rid);

    expect((await client.database("crud-db").delete()).statusCode).toBe(204);
    expectCosmosError(await sdkError(() => client.database("crud-db").read()), 404, "NotFound");
    expectCosmosError(await sdkError(() => client.database("crud-db").delete()), 404, "NotFound");
  });

  it("creates a container keeping its partition key, default TTL and indexing policy as given; replaces, lists and deletes it", async () => {
    const { database } = await client.databases.create({ id: "containers-db" });
    const indexingPolicy = {
      indexingMode: "consistent",
      automatic: true,
      includedPaths: [{ path: "/*" }],
      excludedPaths: [{ path: "/blob/?" }, { path: '/"_etag"/?' }],
      compositeIndexes: [
        [
          { path: "/kind", order: "ascending" },
          { path: "/price", order: "descending" },
        ],
      ],
    };
    const created = await database.containers.create({
      id: "c1",
      partitionKey: { paths: ["/tenant"], kind: PartitionKeyKind.Hash, version: 2 },
      defaultTtl: 3600,
      indexingPolicy: indexingPolicy as never,
    });
    expect(created.statusCode).toBe(201);
    expectSystemProperties(created.resource as never, /^dbs\/[^/]+\/colls\/[^/]+\/$/);
    expect(created.resource?.partitionKey).toMatchObject({ paths: ["/tenant"], kind: "Hash" });
    expect(created.resource?.defaultTtl).toBe(3600);
    expect(created.resource?.indexingPolicy).toMatchObject(indexingPolicy);

    const read = await database.container("c1").read();
    expect(read.resource).toMatchObject({
      id: "c1",
      _rid: created.resource?._rid,
      defaultTtl: 3600,
      partitionKey: { paths: ["/tenant"] },
    });
    expect(read.resource?.indexingPolicy).toMatchObject(indexingPolicy);

    const replaced = await database.container("c1").replace({
      id: "c1",
      partitionKey: { paths: ["/tenant"], kind: PartitionKeyKind.Hash, version: 2 },
      defaultTtl: 60,
    });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.resource?.defaultTtl).toBe(60);
    expect((await database.container("c1").read()).resource?.defaultTtl).toBe(60);

    await database.containers.create({ id: "c2", partitionKey: { paths: ["/x"] } });
    const { resources } = await database.containers.readAll().fetchAll();
    expect(resources.map((c) => c.id).sort()).toEqual(["c1", "c2"]);

    expectCosmosError(
      await sdkError(() => database.containers.create({ id: "c1", partitionKey: { paths: ["/tenant"] } })),
      409,
      "Conflict",
    );
    await database.container("c2").items.create({ id: "x1", x: "p" });
    expect((await database.container("c2").delete()).statusCode).toBe(204);
    expectCosmosError(await sdkError(() => database.container("c2").read()), 404, "NotFound");
    // Items of a deleted container are gone with it.
    expect((await database.container("c2").item("x1", "p").read()).statusCode).toBe(404);
  });

  it("answers pkranges with ranges that cover the whole hash space", async () => {
    const { database } = await client.databases.createIfNotExists({ id: "containers-db" });
    const { container } = await database.containers.createIfNotExists({
      id: "ranges",
      partitionKey: { paths: ["/p"] },
    });
    const { resources } = await container.readPartitionKeyRanges().fetchAll();
    expect(resources.length).toBeGreaterThanOrEqual(1);
    expect(resources[0].minInclusive).toBe("");
    expect(resources[resources.length - 1].maxExclusive).toBe("FF");
  });
});

describe("embedded store: items through the real SDK", () => {
  let h: StoreHarness;
  let client: CosmosClient;
  let db: Database;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    client = h.client();
    db = (await client.databases.create({ id: "db" })).database;
    c = (await db.containers.create({ id: "items", partitionKey: { paths: ["/tenant"] } })).container;
  });
  afterAll(async () => {
    await h?.close();
  });

  it("creates an item with system properties, a session token and a request charge, and reads it back unchanged", async () => {
    const body = { id: "i1", tenant: "t1", n: 1, nested: { a: [1, 2, { b: null }] }, s: "héllo ☃", f: 1.5 };
    const created = await c.items.create(body);
    expect(created.statusCode).toBe(201);
    expect(created.resource).toMatchObject(body);
    expectSystemProperties(created.resource as never, DOC_SELF);
    expect(created.etag).toBe(created.resource?._etag);
    expect(created.requestCharge).toBeGreaterThan(0);
    expect(created.headers["x-ms-session-token"]).toMatch(/^[^:]+:.+/);

    const read = await c.item("i1", "t1").read();
    expect(read.statusCode).toBe(200);
    expect(read.resource).toEqual(created.resource);
    expect(read.requestCharge).toBeGreaterThan(0);
    expect(read.headers["x-ms-session-token"]).toMatch(/^[^:]+:.+/);

    // A later write moves the session token on.
    const second = await c.items.create({ id: "i1-b", tenant: "t1" });
    expect(second.headers["x-ms-session-token"]).not.toBe(created.headers["x-ms-session-token"]);
  });

  it("keys items by (partition key, id): the same id lives in two partitions, each read by its own key", async () => {
    await c.items.create({ id: "same", tenant: "t1", v: 1 });
    await c.items.create({ id: "same", tenant: "t2", v: 2 });
    expect((await c.item("same", "t1").read()).resource?.v).toBe(1);
    expect((await c.item("same", "t2").read()).resource?.v).toBe(2);
    expect((await c.item("same", "t3").read()).statusCode).toBe(404);
  });

  it("reads items whose ids hold characters the SDK leaves unescaped in the path", async () => {
    const id = "a b?c&d=e+f:g@h;i,j$k'l(m)n~ü";
    const created = await c.items.create({ id, tenant: "t1", odd: true });
    expect(created.resource?.id).toBe(id);
    const read = await c.item(id, "t1").read();
    expect(read.statusCode).toBe(200);
    expect(read.resource).toMatchObject({ id, odd: true });
    expect((await c.item(id, "t1").delete()).statusCode).toBe(204);
  });

  it("answers 409 Conflict on a duplicate id in the same partition and leaves the original", async () => {
    await c.items.create({ id: "dup", tenant: "t1", v: "first" });
    // Real service: 409, {"code":"Conflict","message":"Resource with specified id or name already exists."}
    // (Azure/azure-cosmos-dotnet-v2#464).
    const err = await sdkError(() => c.items.create({ id: "dup", tenant: "t1", v: "second" }));
    expectCosmosError(err, 409, "Conflict", /already exists/i);
    expect((await c.item("dup", "t1").read()).resource?.v).toBe("first");
  });

  it("answers 404 NotFound for a missing item on read, replace, patch and delete", async () => {
    expect((await c.item("nope", "t1").read()).statusCode).toBe(404);
    expectCosmosError(
      await sdkError(() => c.item("nope", "t1").replace({ id: "nope", tenant: "t1" })),
      404,
      "NotFound",
    );
    expectCosmosError(
      await sdkError(() => c.item("nope", "t1").patch([{ op: "set", path: "/a", value: 1 }])),
      404,
      "NotFound",
    );
    expectCosmosError(await sdkError(() => c.item("nope", "t1").delete()), 404, "NotFound");
  });

  it("upserts: 201 when new, 200 with the new body and a new etag when it exists", async () => {
    const first = await c.items.upsert({ id: "u1", tenant: "t1", v: 1, gone: true });
    expect(first.statusCode).toBe(201);
    const second = await c.items.upsert({ id: "u1", tenant: "t1", v: 2 });
    expect(second.statusCode).toBe(200);
    expect(second.resource).toMatchObject({ id: "u1", v: 2 });
    expect(second.resource).not.toHaveProperty("gone");
    expect(second.etag).not.toBe(first.etag);
    expect(second.resource?._rid).toBe(first.resource?._rid);
    expect((await c.item("u1", "t1").read()).resource?.v).toBe(2);
  });

  it("replaces the whole body and changes the etag", async () => {
    const created = await c.items.create({ id: "r1", tenant: "t1", a: 1, b: 2 });
    const replaced = await c.item("r1", "t1").replace({ id: "r1", tenant: "t1", c: 3 });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.resource).toMatchObject({ id: "r1", c: 3 });
    expect(replaced.resource).not.toHaveProperty("a");
    expect(replaced.etag).not.toBe(created.etag);
    const read = await c.item("r1", "t1").read();
    expect(read.resource).toMatchObject({ id: "r1", tenant: "t1", c: 3 });
    expect(read.resource).not.toHaveProperty("b");
  });

  it("deletes an item: 204, then 404", async () => {
    await c.items.create({ id: "d1", tenant: "t1" });
    const del = await c.item("d1", "t1").delete();
    expect(del.statusCode).toBe(204);
    expect((await c.item("d1", "t1").read()).statusCode).toBe(404);
  });

  it("reads the feed of all items (readAll), and of one partition", async () => {
    const { database } = await client.databases.create({ id: "feed-db" });
    const { container } = await database.containers.create({ id: "feed", partitionKey: { paths: ["/p"] } });
    for (const [id, p] of [
      ["f1", "x"],
      ["f2", "y"],
      ["f3", "x"],
    ])
      await container.items.create({ id, p });
    const all = await container.items.readAll().fetchAll();
    expect(byId(all.resources).map((r) => [r.id, r.p])).toEqual([
      ["f1", "x"],
      ["f2", "y"],
      ["f3", "x"],
    ]);
    for (const r of all.resources) expect(r._self).toMatch(DOC_SELF);
    const onlyX = await container.items.readAll({ partitionKey: "x" }).fetchAll();
    expect(onlyX.resources.map((r) => r.id).sort()).toEqual(["f1", "f3"]);
    // Paged: maxItemCount 1 gives three pages that together are the whole feed.
    const it1 = container.items.readAll({ maxItemCount: 1 });
    const seen: string[] = [];
    while (it1.hasMoreResults()) {
      const page = await it1.fetchNext();
      expect(page.resources.length).toBeLessThanOrEqual(1);
      seen.push(...page.resources.map((r) => String(r.id)));
    }
    expect(seen.sort()).toEqual(["f1", "f2", "f3"]);
  });

  it("answers 412 PreconditionFailed to a replace, upsert, patch or delete with a stale If-Match etag, and applies it with the current one", async () => {
    const v1 = await c.items.create({ id: "e1", tenant: "t1", v: 1 });
    const v2 = await c.item("e1", "t1").replace({ id: "e1", tenant: "t1", v: 2 });
    const stale = { accessCondition: { type: "IfMatch", condition: v1.etag } };
    expectCosmosError(
      await sdkError(() => c.item("e1", "t1").replace({ id: "e1", tenant: "t1", v: 3 }, stale)),
      412,
      "PreconditionFailed",
    );
    expectCosmosError(
      await sdkError(() => c.items.upsert({ id: "e1", tenant: "t1", v: 3 }, stale)),
      412,
      "PreconditionFailed",
    );
    expectCosmosError(
      await sdkError(() => c.item("e1", "t1").patch([{ op: "set", path: "/v", value: 3 }], stale)),
      412,
      "PreconditionFailed",
    );
    expectCosmosError(await sdkError(() => c.item("e1", "t1").delete(stale)), 412, "PreconditionFailed");
    expect((await c.item("e1", "t1").read()).resource?.v).toBe(2);

    const ok = await c
      .item("e1", "t1")
      .replace(
        { id: "e1", tenant: "t1", v: 3 },
        { accessCondition: { type: "IfMatch", condition: v2.etag } },
      );
    expect(ok.statusCode).toBe(200);
    expect(ok.resource?.v).toBe(3);
  });

  it("answers 304 to a read with If-None-Match of the current etag, and 200 with a stale one", async () => {
    const created = await c.items.create({ id: "nm1", tenant: "t1", v: 1 });
    const notModified = await c
      .item("nm1", "t1")
      .read({ accessCondition: { type: "IfNoneMatch", condition: created.etag } });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.resource ?? null).toBeNull(); // the SDK gives no body for a 304
    await c.item("nm1", "t1").replace({ id: "nm1", tenant: "t1", v: 2 });
    const modified = await c
      .item("nm1", "t1")
      .read({ accessCondition: { type: "IfNoneMatch", condition: created.etag } });
    expect(modified.statusCode).toBe(200);
    expect(modified.resource?.v).toBe(2);
  });

  it("answers 413 RequestEntityTooLarge for an item over 2 MB and stores nothing", async () => {
    // Real service: 413 {"code":"RequestEntityTooLarge","message":"Message: {\"Errors\":[\"Request size is too
    // large\"]}..."} (Azure/azure-cosmosdb-node#65); the item limit is 2 MB of UTF-8 JSON (learn.microsoft.com
    // concepts-limits, cited in MicrosoftDocs/azure-docs#42582).
    const err = await sdkError(() =>
      c.items.create({ id: "big", tenant: "t1", blob: "x".repeat(2_200_000) }),
    );
    expectCosmosError(err, 413, "RequestEntityTooLarge", /Request size is too large/);
    expect((await c.item("big", "t1").read()).statusCode).toBe(404);
    // Just under the limit is accepted.
    const ok = await c.items.create({ id: "almost", tenant: "t1", blob: "x".repeat(1_900_000) });
    expect(ok.statusCode).toBe(201);
  });

  it("answers 400 when the partition key in the body does not match the request's partition-key header", async () => {
    await c.items.create({ id: "pk1", tenant: "t1", v: 1 });
    // item("pk1", "t2") sends x-ms-documentdb-partitionkey ["t2"]; the body says "t1". Real service: 400,
    // substatus 1001, "PartitionKey extracted from document doesn't match the one specified in the header"
    // (MicrosoftDocs/azure-docs#43078).
    const err = await sdkError(() => c.item("pk1", "t2").replace({ id: "pk1", tenant: "t1", v: 2 }));
    expectCosmosError(
      err,
      400,
      "BadRequest",
      /PartitionKey extracted from document doesn't match the one specified in the header/,
    );
    expect((await c.item("pk1", "t1").read()).resource?.v).toBe(1);
    expect((await c.item("pk1", "t2").read()).statusCode).toBe(404);
  });

  it("patches with every operation (add, set, replace, remove, incr, move) in one request", async () => {
    await c.items.create({
      id: "p1",
      tenant: "t1",
      n: 1,
      tags: ["a", "c"],
      old: "x",
      nested: { k: 1 },
      keep: true,
    });
    const r = await c.item("p1", "t1").patch([
      { op: "add", path: "/tags/1", value: "b" },
      { op: "add", path: "/tags/-", value: "d" },
      { op: "add", path: "/added", value: { deep: [1] } },
      { op: "set", path: "/nested/k2", value: 2 },
      { op: "replace", path: "/keep", value: false },
      { op: "remove", path: "/old" },
      { op: "incr", path: "/n", value: 5 },
      // "move" is a service operation the 4.9.3 typings omit; the SDK sends it as given.
      { op: "move", from: "/nested/k", path: "/moved" } as never,
    ]);
    expect(r.statusCode).toBe(200);
    const { _rid, _self, _etag, _ts, _attachments, ...body } = r.resource as ItemDefinition;
    expect(body).toEqual({
      id: "p1",
      tenant: "t1",
      n: 6,
      tags: ["a", "b", "c", "d"],
      added: { deep: [1] },
      nested: { k2: 2 },
      keep: false,
      moved: 1,
    });
    const read = await c.item("p1", "t1").read();
    expect(read.resource).toEqual(r.resource);
  });

  it("patch incr adds to floats and negative numbers", async () => {
    await c.items.create({ id: "p2", tenant: "t1", n: 10, f: 0.5 });
    const r = await c.item("p2", "t1").patch([
      { op: "incr", path: "/n", value: -3 },
      { op: "incr", path: "/f", value: 1.25 },
    ]);
    expect(r.resource).toMatchObject({ n: 7, f: 1.75 });
  });

  it("applies a patch whose condition holds, and answers 412 when it does not (nothing changes)", async () => {
    await c.items.create({ id: "pc", tenant: "t1", n: 1, status: "open" });
    const ok = await c.item("pc", "t1").patch({
      condition: "from c where c.status = 'open'",
      operations: [{ op: "incr", path: "/n", value: 1 }],
    });
    expect(ok.resource?.n).toBe(2);
    // Real service: a false condition fails the patch with 412 Precondition Failed
    // (learn.microsoft.com/azure/cosmos-db/partial-document-update, "Conditional patch").
    const err = await sdkError(() =>
      c.item("pc", "t1").patch({
        condition: "from c where c.n > 100",
        operations: [{ op: "set", path: "/status", value: "closed" }],
      }),
    );
    expectCosmosError(err, 412, "PreconditionFailed");
    expect((await c.item("pc", "t1").read()).resource).toMatchObject({ n: 2, status: "open" });
  });

  it("answers 400 to a patch that replaces or removes a missing path, or increments a string, and changes nothing", async () => {
    const created = await c.items.create({ id: "pbad", tenant: "t1", s: "text", n: 1 });
    // Replace on a non-existent property: 400 BadRequest (Azure/azure-cosmos-dotnet-v3#4632).
    for (const ops of [
      [{ op: "replace" as const, path: "/missing", value: 1 }],
      [{ op: "remove" as const, path: "/missing" }],
      [{ op: "incr" as const, path: "/s", value: 1 }],
      [
        { op: "set" as const, path: "/n", value: 99 },
        { op: "remove" as const, path: "/missing/deeper" },
      ],
    ]) {
      const err = await sdkError(() => c.item("pbad", "t1").patch(ops));
      expectCosmosError(err, 400, "BadRequest");
    }
    const read = await c.item("pbad", "t1").read();
    expect(read.resource?.n).toBe(1);
    expect(read.etag).toBe(created.etag);
  });

  it("refuses a patch of the partition key, of a system property, or of more than 10 operations", async () => {
    // "We don't support partial document update for system-generated properties like _id, _ts, _etag, _rid";
    // "There's a limit of 10 patch operations" (learn.microsoft.com/azure/cosmos-db/partial-document-update-faq).
    const created = await c.items.create({ id: "ppk", tenant: "t1", n: 0 });
    const eleven = Array.from({ length: 11 }, () => ({ op: "incr" as const, path: "/n", value: 1 }));
    for (const ops of [
      [{ op: "set" as const, path: "/tenant", value: "t9" }],
      [{ op: "set" as const, path: "/_rid", value: "x" }],
      eleven,
    ]) {
      expectCosmosError(await sdkError(() => c.item("ppk", "t1").patch(ops)), 400, "BadRequest");
    }
    const read = await c.item("ppk", "t1").read();
    expect(read.resource).toMatchObject({ tenant: "t1", n: 0 });
    expect(read.etag).toBe(created.etag);
    // Exactly 10 operations are fine.
    const ten = await c.item("ppk", "t1").patch(eleven.slice(1));
    expect(ten.resource?.n).toBe(10);
  });
});

describe("embedded store: partition key values of other types through the real SDK", () => {
  let h: StoreHarness;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "tdb" });
    c = (await database.containers.create({ id: "t", partitionKey: { paths: ["/k"] } })).container;
    await c.items.create({ id: "num", k: 5 });
    await c.items.create({ id: "str", k: "5" });
    await c.items.create({ id: "bool", k: true });
    await c.items.create({ id: "nested", k: 5.5 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("keeps 5 and '5' apart in point reads and partition-scoped queries", async () => {
    expect((await c.item("num", 5).read()).resource?.k).toBe(5);
    expect((await c.item("num", "5").read()).statusCode).toBe(404);
    expect((await c.item("str", "5").read()).resource?.k).toBe("5");
    expect((await c.item("bool", true).read()).statusCode).toBe(200);
    const q = (pk: string | number | boolean) =>
      c.items.query("SELECT VALUE c.id FROM c", { partitionKey: pk }).fetchAll();
    expect((await q(5)).resources).toEqual(["num"]);
    expect((await q("5")).resources).toEqual(["str"]);
    expect((await q(true)).resources).toEqual(["bool"]);
    expect((await q(5.5)).resources).toEqual(["nested"]);
  });
});

describe("embedded store: hierarchical partition keys through the real SDK", () => {
  let h: StoreHarness;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "hdb" });
    c = (
      await database.containers.create({
        id: "h",
        partitionKey: { paths: ["/tenant", "/user"], kind: PartitionKeyKind.MultiHash, version: 2 },
      })
    ).container;
    for (const [id, tenant, user] of [
      ["1", "acme", "ann"],
      ["2", "acme", "bob"],
      ["3", "bolt", "ann"],
      ["4", "acme", "ann"],
    ])
      await c.items.create({ id, tenant, user });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("reads an item by its full hierarchical key only", async () => {
    expect((await c.item("1", ["acme", "ann"]).read()).resource).toMatchObject({ id: "1", user: "ann" });
    expect((await c.item("1", ["acme", "bob"]).read()).statusCode).toBe(404);
  });

  it("a query with the full key returns only that partition's items", async () => {
    const { resources } = await c.items
      .query("SELECT VALUE c.id FROM c", { partitionKey: ["acme", "ann"] })
      .fetchAll();
    expect(resources.sort()).toEqual(["1", "4"]);
  });

  it("a query with a prefix of the key returns the items under that prefix", async () => {
    const { resources } = await c.items
      .query("SELECT VALUE c.id FROM c", { partitionKey: ["acme"] })
      .fetchAll();
    expect(resources.sort()).toEqual(["1", "2", "4"]);
  });
});

describe("embedded store: scripts through the real SDK", () => {
  let h: StoreHarness;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "sdb" });
    c = (await database.containers.create({ id: "s", partitionKey: { paths: ["/p"] } })).container;
    await c.items.create({ id: "x", p: "a", price: 10 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("stores a stored procedure (create, read, list) but answers 400 to executing it, saying it runs no server-side JavaScript", async () => {
    const body = "function hello() { getContext().getResponse().setBody('hi'); }";
    const created = await c.scripts.storedProcedures.create({ id: "hello", body });
    expect(created.statusCode).toBe(201);
    expect(created.resource).toMatchObject({ id: "hello", body });
    expect((await c.scripts.storedProcedure("hello").read()).resource?.body).toBe(body);
    const { resources } = await c.scripts.storedProcedures.readAll().fetchAll();
    expect(resources.map((s) => s.id)).toEqual(["hello"]);
    const err = await sdkError(() => c.scripts.storedProcedure("hello").execute("a", []));
    expectCosmosError(err, 400, "BadRequest", /server-side JavaScript/i);
  });

  it("stores a trigger, but a request that includes it answers 400 and writes nothing", async () => {
    const created = await c.scripts.triggers.create({
      id: "stamp",
      body: "function stamp() {}",
      triggerType: TriggerType.Pre,
      triggerOperation: TriggerOperation.Create,
    });
    expect(created.statusCode).toBe(201);
    expect((await c.scripts.trigger("stamp").read()).resource).toMatchObject({
      id: "stamp",
      triggerType: "Pre",
    });
    const err = await sdkError(() => c.items.create({ id: "t1", p: "a" }, { preTriggerInclude: ["stamp"] }));
    expectCosmosError(err, 400, "BadRequest", /server-side JavaScript/i);
    expect((await c.item("t1", "a").read()).statusCode).toBe(404);
  });

  it("stores a UDF and runs it in a query; an unknown UDF is a 400", async () => {
    const created = await c.scripts.userDefinedFunctions.create({
      id: "withTax",
      body: "function withTax(price) { return price * 1.5; }",
    });
    expect(created.statusCode).toBe(201);
    const { resources } = await c.items
      .query("SELECT VALUE udf.withTax(c.price) FROM c WHERE c.id = 'x'")
      .fetchAll();
    expect(resources).toEqual([15]);
    const err = await sdkError(() => c.items.query("SELECT VALUE udf.nothere(c.price) FROM c").fetchAll());
    expect(err.code).toBe(400);
    expect(err.message).toMatch(/nothere/);
  });
});

describe("embedded store: authentication", () => {
  let h: StoreHarness;

  beforeAll(async () => {
    h = await startStoreHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers 401 to a client signing with the wrong master key, and serves the right one", async () => {
    const wrong = h.client(Buffer.from("not the emulator key, but valid base64").toString("base64"));
    const err = await sdkError(() => wrong.databases.create({ id: "nope" }));
    expect(err.code).toBe(401);
    const right = h.client();
    expect((await right.databases.create({ id: "yes" })).statusCode).toBe(201);
    expect((await sdkError(() => wrong.database("yes").read())).code).toBe(401);
  });

  it("checks the signature's date and resource, and refuses an unsigned request (raw HTTP)", async () => {
    // Master-key signing as in the REST reference ("Access control on Cosmos DB resources"): HMAC-SHA256
    // over verb, resource type, resource link and x-ms-date; the service allows 15 minutes of clock skew.
    const sign = (verb: string, type: string, link: string, date: string) => {
      const text = `${verb.toLowerCase()}\n${type.toLowerCase()}\n${link}\n${date.toLowerCase()}\n\n`;
      const sig = createHmac("sha256", Buffer.from(EMULATOR_KEY, "base64")).update(text).digest("base64");
      return encodeURIComponent(`type=master&ver=1.0&sig=${sig}`);
    };
    const listDbs = (headers: Record<string, string>) =>
      fetch(`${h.store.origin}/dbs`, { headers: { "x-ms-version": "2020-07-15", ...headers } });
    const now = new Date().toUTCString();
    const ok = await listDbs({ authorization: sign("GET", "dbs", "", now), "x-ms-date": now });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { Databases: { id: string }[] }).Databases.map((d) => d.id)).toContain(
      "yes",
    );

    const stale = new Date(Date.now() - 20 * 60_000).toUTCString();
    const old = await listDbs({ authorization: sign("GET", "dbs", "", stale), "x-ms-date": stale });
    expect(old.status).toBe(401);
    expect(((await old.json()) as { code?: string }).code).toBe("Unauthorized");

    const otherResource = await listDbs({
      authorization: sign("GET", "dbs", "dbs/yes", now),
      "x-ms-date": now,
    });
    expect(otherResource.status).toBe(401);
    const unsigned = await listDbs({ "x-ms-date": now });
    expect(unsigned.status).toBe(401);
  });
});
