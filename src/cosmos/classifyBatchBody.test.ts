import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classify } from "./classify.js";
import { classifyBatchBody } from "./classifyBatchBody.js";
import { CosmosWireError } from "./errors.js";

const DOCS = "/dbs/shop/colls/orders/docs";
// Headers exactly as ClientContext.batch / ClientContext.bulk in @azure/cosmos 4.9.3 send them.
const BATCH_HEADERS = {
  "content-type": "application/json",
  "x-ms-documentdb-partitionkey": '["eu"]',
  "x-ms-cosmos-is-batch-request": "true",
  "x-ms-cosmos-batch-atomic": "true",
};
const BULK_HEADERS = {
  "content-type": "application/json",
  "x-ms-cosmos-is-batch-request": "true",
  "x-ms-cosmos-batch-atomic": "false",
  "x-ms-cosmos-batch-continue-on-error": "true",
  "x-ms-documentdb-partitionkeyrangeid": "0",
};
const batchOp = () => classify("POST", DOCS, BATCH_HEADERS);
const bulkOp = () => classify("POST", DOCS, BULK_HEADERS);

function refusal(body: string, op = batchOp()): string {
  try {
    classifyBatchBody(op, body);
  } catch (e) {
    expect(e).toBeInstanceOf(CosmosWireError);
    expect((e as CosmosWireError).status).toBe(400);
    return (e as CosmosWireError).code;
  }
  throw new Error(`accepted: ${body.slice(0, 80)}`);
}

describe("classifyBatchBody: SDK shapes", () => {
  it("container.items.batch(ops, 'eu'): atomic, operations take the request's partition key", () => {
    // Body captured from Items.batch([{Create, resourceBody}, {Read, id}, {Patch, id, resourceBody: {operations}}], "eu").
    const body =
      '[{"operationType":"Create","resourceBody":{"id":"b1","pk":"eu"}},{"operationType":"Read","id":"b2"},' +
      '{"operationType":"Patch","id":"b3","resourceBody":{"operations":[{"op":"add","path":"/x","value":1}]}}]';
    const op = classifyBatchBody(batchOp(), Buffer.from(body));
    expect(op.name).toBe("item.batch");
    expect(op.atomic).toBe(true);
    expect(op.partitionKey).toEqual(["eu"]);
    expect(op.actions).toEqual(["read", "create", "patch"]);
    expect(op.batch).toEqual([
      { index: 0, operationType: "Create", action: "create", id: "b1", partitionKey: ["eu"] },
      { index: 1, operationType: "Read", action: "read", id: "b2", partitionKey: ["eu"] },
      { index: 2, operationType: "Patch", action: "patch", id: "b3", partitionKey: ["eu"] },
    ]);
    // The rest of the operation is untouched.
    expect(op.resource).toBe(DOCS);
    expect(op.signing).toEqual({ resourceType: "docs", resourceLink: "dbs/shop/colls/orders" });
  });

  it("Items.batch with an operation's own partitionKey (the SDK sends it as a JSON string)", () => {
    const body =
      '[{"operationType":"Upsert","resourceBody":{"id":"u1","pk":"eu"},"partitionKey":"[\\"eu\\"]"},' +
      '{"operationType":"Delete","id":"d1","partitionKey":"[\\"eu\\"]","ifMatch":"\\"etag\\""}]';
    const op = classifyBatchBody(batchOp(), body);
    expect(op.actions).toEqual(["upsert", "delete"]);
    expect(op.batch).toEqual([
      { index: 0, operationType: "Upsert", action: "upsert", id: "u1", partitionKey: ["eu"] },
      { index: 1, operationType: "Delete", action: "delete", id: "d1", partitionKey: ["eu"] },
    ]);
  });

  it("executeBulkOperations: not atomic, every operation carries its own partition key", () => {
    // BulkHelper.prepareOperation: {...operationInput, partitionKey: JSON.stringify([...])}
    const body = JSON.stringify([
      { operationType: "Create", resourceBody: { id: "c1", pk: "eu" }, partitionKey: '["eu"]' },
      { operationType: "Upsert", resourceBody: { id: "u1", pk: "us" }, partitionKey: '["us"]' },
      { operationType: "Read", id: "r1", partitionKey: '["eu"]' },
      { operationType: "Replace", id: "p1", resourceBody: { id: "p1", pk: "eu" }, partitionKey: '["eu"]' },
      {
        operationType: "Patch",
        id: "x1",
        resourceBody: { operations: [{ op: "incr", path: "/n", value: 1 }] },
        partitionKey: '["eu"]',
      },
      { operationType: "Delete", id: "d1", partitionKey: '["tenant",7]' },
    ]);
    const op = classifyBatchBody(bulkOp(), body);
    expect(op.name).toBe("item.bulk");
    expect(op.atomic).toBe(false);
    expect(op.partitionKey).toBeUndefined();
    expect(op.actions).toEqual(["read", "create", "upsert", "replace", "patch", "delete"]);
    expect(op.batch).toEqual([
      { index: 0, operationType: "Create", action: "create", id: "c1", partitionKey: ["eu"] },
      { index: 1, operationType: "Upsert", action: "upsert", id: "u1", partitionKey: ["us"] },
      { index: 2, operationType: "Read", action: "read", id: "r1", partitionKey: ["eu"] },
      { index: 3, operationType: "Replace", action: "replace", id: "p1", partitionKey: ["eu"] },
      { index: 4, operationType: "Patch", action: "patch", id: "x1", partitionKey: ["eu"] },
      { index: 5, operationType: "Delete", action: "delete", id: "d1", partitionKey: ["tenant", 7] },
    ]);
  });

  it("bulk operations without a partition key stay without one (policy decides what unknown means)", () => {
    const op = classifyBatchBody(bulkOp(), '[{"operationType":"Read","id":"r1"}]');
    expect(op.batch).toEqual([{ index: 0, operationType: "Read", action: "read", id: "r1" }]);
  });

  it("prefers the operation's id over resourceBody.id, and tolerates a missing or non-string body id", () => {
    const op = classifyBatchBody(
      bulkOp(),
      '[{"operationType":"Replace","id":"a","resourceBody":{"id":"b"}},{"operationType":"Create","resourceBody":{"id":5}},{"operationType":"Create","resourceBody":null}]',
    );
    expect(op.batch?.map((b) => b.id)).toEqual(["a", undefined, undefined]);
  });

  it("accepts exactly 100 operations and refuses 101", () => {
    const ops = (n: number) =>
      JSON.stringify(Array.from({ length: n }, (_, i) => ({ operationType: "Read", id: `r${i}` })));
    expect(classifyBatchBody(batchOp(), ops(100)).batch).toHaveLength(100);
    expect(refusal(ops(101))).toBe("ERR_BAD_BATCH");
    expect(refusal(ops(101), bulkOp())).toBe("ERR_BAD_BATCH");
  });

  it("returns any non-batch operation unchanged", () => {
    const op = classify("POST", DOCS, { "content-type": "application/json" });
    expect(classifyBatchBody(op, "not even json")).toBe(op);
  });

  it("does not mutate the operation it is given", () => {
    const op = batchOp();
    const before = structuredClone(op);
    classifyBatchBody(op, '[{"operationType":"Read","id":"r"}]');
    expect(op).toEqual(before);
  });
});

describe("classifyBatchBody: refusals", () => {
  it("refuses bodies that are not an array of 1..100 operation objects", () => {
    for (const body of [
      "",
      "nope",
      "{}",
      '{"operationType":"Read"}',
      "[]",
      "null",
      '"x"',
      "[1]",
      "[null]",
      "[[]]",
      '["Read"]',
    ]) {
      expect(refusal(body), body).toBe("ERR_BAD_BATCH");
    }
  });

  it("refuses unknown operation types (exact, case-sensitive)", () => {
    for (const t of ["create", "READ", "Query", "Execute", "", null, 1]) {
      expect(refusal(JSON.stringify([{ operationType: t, id: "a" }])), String(t)).toBe("ERR_BAD_BATCH");
    }
    expect(refusal('[{"id":"a"}]')).toBe("ERR_BAD_BATCH");
  });

  it("refuses a non-string id", () => {
    expect(refusal('[{"operationType":"Read","id":5}]')).toBe("ERR_BAD_BATCH");
    expect(refusal('[{"operationType":"Read","id":null}]')).toBe("ERR_BAD_BATCH");
  });

  it("refuses malformed operation partition keys", () => {
    for (const pk of ['"eu"', '["eu"', "[[1]]", '[{"a":1}]', "[1,2,3,4]", "eu"]) {
      expect(refusal(JSON.stringify([{ operationType: "Read", id: "a", partitionKey: pk }])), pk).toBe(
        "ERR_BAD_PARTITION_KEY",
      );
    }
    // Not a JSON string, as the SDK always sends it.
    expect(refusal('[{"operationType":"Read","id":"a","partitionKey":["eu"]}]')).toBe(
      "ERR_BAD_PARTITION_KEY",
    );
    expect(refusal('[{"operationType":"Read","id":"a","partitionKey":null}]')).toBe("ERR_BAD_PARTITION_KEY");
  });

  it("refuses an operation outside the partition of an atomic batch", () => {
    expect(refusal('[{"operationType":"Read","id":"a","partitionKey":"[\\"us\\"]"}]')).toBe("ERR_BAD_BATCH");
    expect(refusal('[{"operationType":"Read","id":"a","partitionKey":"[\\"eu\\",1]"}]')).toBe(
      "ERR_BAD_BATCH",
    );
    // Same key, different spelling, is the same partition.
    expect(
      classifyBatchBody(batchOp(), '[{"operationType":"Read","id":"a","partitionKey":" [ \\"eu\\" ] "}]')
        .batch?.[0].partitionKey,
    ).toEqual(["eu"]);
    const none = classify("POST", DOCS, { ...BATCH_HEADERS, "x-ms-documentdb-partitionkey": "[{}]" });
    expect(
      classifyBatchBody(none, '[{"operationType":"Read","id":"a","partitionKey":"[{}]"}]').batch?.[0]
        .partitionKey,
    ).toEqual([{}]);
  });

  it("refuses duplicate keys that decide authorization, wherever JSON parsers might disagree", () => {
    const cases = [
      '[{"operationType":"Read","operationType":"Delete","id":"a"}]',
      '[{"operationType":"Read","id":"a","id":"b"}]',
      '[{"operationType":"Read","id":"a","partitionKey":"[\\"eu\\"]","partitionKey":"[\\"eu\\"]"}]',
      '[{"operationType":"Create","resourceBody":{"id":"a"},"resourceBody":{"id":"b"}}]',
      '[{"operationType":"Create","resourceBody":{"id":"a","id":"b"}}]',
      // Escapes spell the same key.
      '[{"operationType":"Read","operation\\u0054ype":"Delete","id":"a"}]',
      '[{"operationType":"Read","\\u0069d":"a","id":"b"}]',
      '[{"operationType":"Read","id":"x"},{"id":"a","operationType":"Read","operationType":"Delete"}]',
    ];
    for (const body of cases) {
      expect(refusal(body), body).toBe("ERR_BAD_BATCH");
      expect(() => classifyBatchBody(batchOp(), body)).toThrow(/repeats the key/);
    }
  });

  it("allows the same keys in different objects, deeper, or inside strings", () => {
    const body = JSON.stringify([
      {
        operationType: "Create",
        resourceBody: { id: "a", nested: { id: 1, operationType: "x" }, list: [{ id: 1 }, { id: 2 }] },
      },
      {
        operationType: "Create",
        resourceBody: { id: "b", text: '"operationType":"Delete","id":"z"', 'q\\"': "\\" },
      },
      { id: "c", operationType: "Read", ifMatch: '"etag"' },
    ]);
    const op = classifyBatchBody(bulkOp(), body);
    expect(op.batch?.map((b) => [b.operationType, b.id])).toEqual([
      ["Create", "a"],
      ["Create", "b"],
      ["Read", "c"],
    ]);
  });
});

describe("classifyBatchBody: properties", () => {
  const opArb = fc.record(
    {
      operationType: fc.oneof(
        fc.constantFrom("Create", "Upsert", "Read", "Delete", "Replace", "Patch"),
        fc.string({ maxLength: 8 }),
      ),
      id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
      partitionKey: fc.oneof(fc.constantFrom('["eu"]', '["us"]', "[{}]", "[null]", "x", "[[1]]"), fc.json()),
      resourceBody: fc.oneof(fc.jsonValue(), fc.record({ id: fc.string({ maxLength: 5 }) })),
    },
    { requiredKeys: [] },
  );
  const bodyArb = fc.oneof(
    fc.array(opArb, { maxLength: 6 }).map((a) => JSON.stringify(a)),
    fc.json(),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc
      .array(fc.constantFrom('{"operationType":"Read"', ',"id":"a"', ',"id":"b"', "}", "[", "]", ","), {
        maxLength: 8,
      })
      .map((a) => a.join("")),
  );

  it("never throws anything but a 400 CosmosWireError; accepted bodies give one entry per operation", () => {
    fc.assert(
      fc.property(fc.boolean(), bodyArb, (atomic, body) => {
        const op = atomic ? batchOp() : bulkOp();
        try {
          const out = classifyBatchBody(op, body);
          const parsed = JSON.parse(body) as unknown[];
          expect(out.batch).toHaveLength(parsed.length);
          expect(new Set(out.actions)).toEqual(new Set(out.batch?.map((b) => b.action)));
          if (atomic) for (const b of out.batch ?? []) expect(b.partitionKey).toEqual(["eu"]);
        } catch (e) {
          expect(e).toBeInstanceOf(CosmosWireError);
          expect((e as CosmosWireError).status).toBe(400);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
