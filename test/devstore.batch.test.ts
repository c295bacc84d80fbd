// Conformance of the embedded store's transactional batch and bulk with the real @azure/cosmos
// 4.9.3 SDK. Expected outcomes follow the SDK's own functional tests against the real service
// (Azure/azure-sdk-for-js, sdk/cosmosdb/cosmos/test/public/functional/item/batch.item.spec.ts:
// "can batch all operation types" → 201, 201, 200, 204, 200; "rolls back prior operations when one
// fails" → the failing operation's status, 424 for the others, and nothing written). The service
// answers a failed atomic batch with 207 Multi-Status and per-operation codes
// (Azure/azure-cosmos-dotnet-v3#5650), which the JS SDK returns as a result instead of throwing.
import { BulkOperationType, type Container, type OperationInput } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StoreHarness, startStoreHarness } from "./helpers/devstore.js";

describe("embedded store: transactional batch and bulk through the real SDK", () => {
  let h: StoreHarness;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "bdb" });
    c = (await database.containers.create({ id: "b", partitionKey: { paths: ["/key"] } })).container;
  });
  afterAll(async () => {
    await h?.close();
  });

  it("runs one batch of every operation type (Create, Upsert, Replace, Read, Delete, Patch) atomically", async () => {
    for (const id of ["toRead", "toReplace", "toDelete", "toPatch"])
      await c.items.create({ id, key: "A", v: 1 });
    const operations: OperationInput[] = [
      { operationType: BulkOperationType.Create, resourceBody: { id: "created", key: "A", v: 1 } },
      { operationType: BulkOperationType.Upsert, resourceBody: { id: "upserted", key: "A", v: 1 } },
      {
        operationType: BulkOperationType.Replace,
        id: "toReplace",
        resourceBody: { id: "toReplace", key: "A", v: 2 },
      },
      { operationType: BulkOperationType.Read, id: "toRead" },
      { operationType: BulkOperationType.Delete, id: "toDelete" },
      {
        operationType: BulkOperationType.Patch,
        id: "toPatch",
        resourceBody: {
          operations: [{ op: "add", path: "/good", value: "greatValue" }],
          condition: "from c where NOT IS_DEFINED(c.newImproved)",
        },
      },
    ];
    const response = await c.items.batch(operations, "A");
    expect(response.result?.map((r) => r.statusCode)).toEqual([201, 201, 200, 200, 204, 200]);
    for (const r of response.result ?? []) expect(typeof r.requestCharge).toBe("number");
    expect(response.result?.[0].eTag).toBeTruthy();
    expect(response.result?.[3].resourceBody).toMatchObject({ id: "toRead", key: "A", v: 1 });
    expect(response.result?.[5].resourceBody).toMatchObject({ id: "toPatch", good: "greatValue" });

    expect((await c.item("created", "A").read()).resource?.v).toBe(1);
    expect((await c.item("upserted", "A").read()).resource?.v).toBe(1);
    expect((await c.item("toReplace", "A").read()).resource?.v).toBe(2);
    expect((await c.item("toDelete", "A").read()).statusCode).toBe(404);
    expect((await c.item("toPatch", "A").read()).resource?.good).toBe("greatValue");
  });

  it("an atomic batch with a failing operation changes nothing: the failure reports its status, the others 424", async () => {
    const original = await c.items.create({ id: "x1", key: "B", v: 1 });
    const operations: OperationInput[] = [
      { operationType: BulkOperationType.Create, resourceBody: { id: "y1", key: "B" } },
      { operationType: BulkOperationType.Replace, id: "x1", resourceBody: { id: "x1", key: "B", v: 2 } },
      { operationType: BulkOperationType.Upsert, resourceBody: { id: "z1", key: "B" } },
      { operationType: BulkOperationType.Create, resourceBody: { id: "x1", key: "B", v: 3 } },
      { operationType: BulkOperationType.Delete, id: "x1" },
    ];
    const response = await c.items.batch(operations, "B");
    expect(response.result?.map((r) => r.statusCode)).toEqual([424, 424, 424, 409, 424]);
    expect((await c.item("y1", "B").read()).statusCode).toBe(404);
    expect((await c.item("z1", "B").read()).statusCode).toBe(404);
    const x1 = await c.item("x1", "B").read();
    expect(x1.resource?.v).toBe(1);
    expect(x1.etag).toBe(original.etag);
  });

  it("rolls back when the first operation succeeds and a later read misses (404)", async () => {
    const operations: OperationInput[] = [
      {
        operationType: BulkOperationType.Upsert,
        resourceBody: { id: "other", key: "C", school: "elementary" },
      },
      { operationType: BulkOperationType.Delete, id: "does-not-exist" },
    ];
    const response = await c.items.batch(operations, "C");
    expect(response.result?.map((r) => r.statusCode)).toEqual([424, 404]);
    expect((await c.item("other", "C").read()).statusCode).toBe(404);
  });

  it("a batch operation with a stale ifMatch fails with 412 and rolls the batch back", async () => {
    const v1 = await c.items.create({ id: "e1", key: "D", v: 1 });
    await c.item("e1", "D").replace({ id: "e1", key: "D", v: 2 });
    const operations: OperationInput[] = [
      { operationType: BulkOperationType.Create, resourceBody: { id: "w1", key: "D" } },
      {
        operationType: BulkOperationType.Replace,
        id: "e1",
        ifMatch: v1.etag,
        resourceBody: { id: "e1", key: "D", v: 3 },
      },
    ];
    const response = await c.items.batch(operations, "D");
    expect(response.result?.map((r) => r.statusCode)).toEqual([424, 412]);
    expect((await c.item("w1", "D").read()).statusCode).toBe(404);
    expect((await c.item("e1", "D").read()).resource?.v).toBe(2);
  });

  it("refuses a batch whose operation names another partition key: 400 for the whole request, nothing written", async () => {
    // The service answers 400 "One or more operations within the batch request have a different partition
    // key value than the request." (Azure/azure-sdk-for-js#17387: the SDK throws "Batch request error: ...").
    const operations: OperationInput[] = [
      { operationType: BulkOperationType.Create, partitionKey: "E", resourceBody: { id: "m1", key: "E" } },
      { operationType: BulkOperationType.Create, partitionKey: "F", resourceBody: { id: "m2", key: "F" } },
    ];
    await expect(c.items.batch(operations, "E")).rejects.toThrow(
      /different partition key value than the request/,
    );
    expect((await c.item("m1", "E").read()).statusCode).toBe(404);
    expect((await c.item("m2", "F").read()).statusCode).toBe(404);
  });

  it("a batch whose item body belongs to another partition fails as a whole and writes nothing", async () => {
    const operations: OperationInput[] = [
      { operationType: BulkOperationType.Create, resourceBody: { id: "m3", key: "G" } },
      { operationType: BulkOperationType.Create, resourceBody: { id: "m4", key: "H" } },
    ];
    // Either a 400 for the request, or a failed atomic batch (400 for the operation, 424 for the other).
    const outcome = await c.items.batch(operations, "G").then(
      (r) => r.result?.map((x) => x.statusCode),
      () => "rejected",
    );
    expect(["rejected", "424,400"]).toContain(String(outcome));
    expect((await c.item("m3", "G").read()).statusCode).toBe(404);
    expect((await c.item("m4", "H").read()).statusCode).toBe(404);
  });

  it("bulk (executeBulkOperations) runs mixed operations over several partitions and reports each outcome", async () => {
    await c.items.create({ id: "e1", key: "P1", v: 1 });
    await c.items.create({ id: "e2", key: "P2", v: 1 });
    await c.items.create({ id: "e3", key: "P2", v: 1 });
    await c.items.create({ id: "gone", key: "P1" });
    const operations: OperationInput[] = [
      { operationType: "Create", partitionKey: "P1", resourceBody: { id: "n1", key: "P1" } },
      { operationType: "Create", partitionKey: "P1", resourceBody: { id: "e1", key: "P1", v: 9 } },
      { operationType: "Upsert", partitionKey: "P2", resourceBody: { id: "e2", key: "P2", v: 2 } },
      { operationType: "Read", partitionKey: "P1", id: "e1" },
      { operationType: "Read", partitionKey: "P2", id: "missing" },
      { operationType: "Delete", partitionKey: "P1", id: "gone" },
      { operationType: "Replace", partitionKey: "P2", id: "e3", resourceBody: { id: "e3", key: "P2", v: 3 } },
      {
        operationType: "Patch",
        partitionKey: "P1",
        id: "e1",
        resourceBody: { operations: [{ op: "set", path: "/patched", value: true }] },
      },
      { operationType: "Create", partitionKey: "P3", resourceBody: { id: "n2", key: "P3" } },
    ];
    const results = await c.items.executeBulkOperations(operations);
    const status = results.map((r) => r.response?.statusCode ?? Number(r.error?.code));
    expect(status).toEqual([201, 409, 200, 200, 404, 204, 200, 200, 201]);
    expect(results[3].response?.resourceBody).toMatchObject({ id: "e1", v: 1 });
    // Bulk is not atomic: the successes stay.
    expect((await c.item("n1", "P1").read()).statusCode).toBe(200);
    expect((await c.item("e2", "P2").read()).resource?.v).toBe(2);
    expect((await c.item("gone", "P1").read()).statusCode).toBe(404);
    expect((await c.item("e3", "P2").read()).resource?.v).toBe(3);
    expect((await c.item("e1", "P1").read()).resource).toMatchObject({ v: 1, patched: true });
    expect((await c.item("n2", "P3").read()).statusCode).toBe(200);
  });

  it("bulk (items.bulk) returns per-operation status codes", async () => {
    const operations: OperationInput[] = [
      { operationType: "Create", resourceBody: { id: "k1", key: "Q" } },
      { operationType: "Create", resourceBody: { id: "k1", key: "Q" } },
      { operationType: "Upsert", resourceBody: { id: "k2", key: "R" } },
    ];
    const response = await c.items.bulk(operations);
    expect(response.map((r) => r.statusCode)).toEqual([201, 409, 201]);
    expect((await c.item("k2", "R").read()).statusCode).toBe(200);
  });
});
