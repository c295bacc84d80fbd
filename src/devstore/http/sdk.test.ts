// The real @azure/cosmos SDK against the wire, for the paths the store answers in its own way (the
// broad conformance suite is test/devstore.*.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BulkOperationType,
  ChangeFeedStartFrom,
  type Container,
  CosmosClient,
  type OperationInput,
  PartitionKeyKind,
} from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevStore, EMULATOR_KEY, startDevStore } from "../server.js";

describe("the @azure/cosmos SDK on the store's own paths", () => {
  let dir: string;
  let store: DevStore;
  let client: CosmosClient;
  let flat: Container;
  let tree: Container;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "devstore-sdk-"));
    store = await startDevStore({ file: join(dir, "store.db"), masterKey: EMULATOR_KEY });
    client = new CosmosClient({ endpoint: store.origin, key: EMULATOR_KEY });
    const { database } = await client.databases.create({ id: "sdk" });
    flat = (await database.containers.create({ id: "flat", partitionKey: "/pk" })).container;
    tree = (
      await database.containers.create({
        id: "tree",
        partitionKey: { paths: ["/tenant", "/user"], kind: PartitionKeyKind.MultiHash, version: 2 },
      })
    ).container;
    for (const [id, tenant, user] of [
      ["1", "acme", "ann"],
      ["2", "acme", "bob"],
      ["3", "zeta", "ann"],
    ]) {
      await tree.items.create({ id, tenant, user });
    }
    for (let i = 0; i < 5; i++) await flat.items.create({ id: `f${i}`, pk: i % 2 ? "odd" : "even", n: i });
  });
  afterAll(async () => {
    client?.dispose();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads the change feed of a prefix of a hierarchical key (the SDK sends an effective-partition-key range)", async () => {
    const it = tree.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning(["acme"]),
    });
    const first = await it.readNext();
    expect(first.statusCode).toBe(200);
    expect(first.result.map((d: { id: string }) => d.id)).toEqual(["1", "2"]);
    await tree.items.create({ id: "4", tenant: "zeta", user: "cy" });
    await tree.items.create({ id: "5", tenant: "acme", user: "cy" });
    const next = await it.readNext();
    expect(next.result.map((d: { id: string }) => d.id)).toEqual(["5"]);
    expect((await it.readNext()).statusCode).toBe(304);
  });

  it("passes results through when the SDK is made to use the query plan", async () => {
    const { resources } = await flat.items
      .query("SELECT VALUE c.n FROM c ORDER BY c.n DESC OFFSET 1 LIMIT 3", { forceQueryPlan: true })
      .fetchAll();
    expect(resources).toEqual([3, 2, 1]);
    const count = await flat.items.query("SELECT VALUE COUNT(1) FROM c", { forceQueryPlan: true }).fetchAll();
    expect(count.resources).toEqual([5]);
  });

  it("serves the legacy bulk API and a batch without response bodies", async () => {
    const ops = [
      { operationType: BulkOperationType.Create, resourceBody: { id: "b1", pk: "even" } },
      { operationType: BulkOperationType.Read, id: "f1", partitionKey: "odd" },
      { operationType: BulkOperationType.Delete, id: "missing", partitionKey: "even" },
    ] as OperationInput[];
    const legacy = await flat.items.bulk(ops);
    expect(legacy.map((r) => r.statusCode)).toEqual([201, 200, 404]);
    const minimal = await flat.items.batch(
      [{ operationType: BulkOperationType.Create, resourceBody: { id: "b2", pk: "even" } }],
      "even",
      { contentResponseOnWriteEnabled: false } as never,
    );
    expect(minimal.result?.[0]).toMatchObject({ statusCode: 201 });
    expect(minimal.result?.[0].resourceBody).toBeUndefined();
  });

  it("reports a plausible offer for a container", async () => {
    const { resource } = await flat.readOffer();
    expect(resource?.content?.offerThroughput).toBe(400);
  });
});
