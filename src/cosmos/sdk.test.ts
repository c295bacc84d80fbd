/*
 * The real @azure/cosmos SDK against a local recording endpoint: every request it sends is classified
 * and re-signed here, and the signature must equal the one the SDK computed with the same key. This
 * pins the classification to the SDK's actual wire (paths, headers, bodies) and the signing rules
 * (decoded ids, feed → parent link, GET / → ("", ""), partitionkeydelete → container, offers lower-cased).
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ChangeFeedStartFrom, CosmosClient, PermissionMode } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classify } from "./classify.js";
import { classifyBatchBody } from "./classifyBatchBody.js";
import { CosmosWireError } from "./errors.js";
import { signMasterKey } from "./masterKey.js";
import type { CosmosOperation } from "./types.js";

const KEY = "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";

interface Captured {
  step: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let step = "";
const captured: Captured[] = [];
const stepErrors = new Map<string, string>();

function answer(
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  body: string,
  port: number,
): [number, unknown] {
  const path = url.split("?")[0];
  const self = `http://127.0.0.1:${port}/`;
  if (path === "/") {
    return [
      200,
      {
        id: "acct",
        writableLocations: [{ name: "r1", databaseAccountEndpoint: self }],
        readableLocations: [{ name: "r1", databaseAccountEndpoint: self }],
        userConsistencyPolicy: { defaultConsistencyLevel: "Session" },
      },
    ];
  }
  if (method === "DELETE" || path.endsWith("/partitionkeydelete")) return [204, null];
  if (path.endsWith("/pkranges")) {
    return [200, { PartitionKeyRanges: [{ id: "0", minInclusive: "", maxExclusive: "FF" }], _count: 1 }];
  }
  if (headers["x-ms-cosmos-is-batch-request"]) {
    return [200, (JSON.parse(body) as unknown[]).map(() => ({ statusCode: 200, requestCharge: 1 }))];
  }
  if (headers["x-ms-cosmos-is-query-plan-request"]) {
    return [
      200,
      {
        partitionedQueryExecutionInfoVersion: 2,
        queryInfo: {
          distinctType: "None",
          orderBy: [],
          orderByExpressions: [],
          groupByExpressions: [],
          groupByAliases: [],
          aggregates: [],
          groupByAliasToAggregateType: {},
          rewrittenQuery: "",
          hasSelectValue: false,
        },
        queryRanges: [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }],
      },
    ];
  }
  const last = path.slice(path.lastIndexOf("/") + 1);
  const isFeed = [
    "dbs",
    "colls",
    "docs",
    "sprocs",
    "udfs",
    "triggers",
    "conflicts",
    "users",
    "permissions",
    "offers",
  ].includes(last);
  if (isFeed && (method === "GET" || headers["x-ms-documentdb-isquery"])) {
    return [
      200,
      {
        _count: 0,
        Databases: [],
        DocumentCollections: [],
        Documents: [],
        StoredProcedures: [],
        UserDefinedFunctions: [],
        Triggers: [],
        Conflicts: [],
        Users: [],
        Permissions: [],
        Offers: [{ id: "OfFeR1", offerResourceId: "rid" }],
      },
    ];
  }
  if (method === "POST" && isFeed)
    return [201, { ...(JSON.parse(body || "{}") as object), _rid: "r", _etag: "e" }];
  if (/^\/dbs\/[^/]+\/colls\/[^/]+$/.test(path)) {
    return [200, { id: "orders", _rid: "rid", partitionKey: { paths: ["/pk"], kind: "Hash", version: 2 } }];
  }
  return [200, { id: "x", _rid: "r", _etag: "e" }];
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const method = req.method ?? "";
      const url = req.url ?? "";
      captured.push({ step, method, url, headers: req.headers, body });
      const [status, out] = answer(method, url, req.headers, body, (server.address() as AddressInfo).port);
      res.writeHead(status, { "content-type": "application/json", "x-ms-request-charge": "1" });
      res.end(out === null ? "" : JSON.stringify(out));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new CosmosClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    key: KEY,
  });
  const db = client.database("shop");
  const c = db.container("orders");
  const steps: [string, () => Promise<unknown>][] = [
    ["account", () => client.getDatabaseAccount()],
    ["database.create", () => client.databases.create({ id: "shop" })],
    ["database.list", () => client.databases.readAll().fetchAll()],
    ["database.query", () => client.databases.query("SELECT * FROM d").fetchAll()],
    ["database.read", () => db.read()],
    ["database.delete", () => db.delete()],
    ["container.create", () => db.containers.create({ id: "orders", partitionKey: { paths: ["/pk"] } })],
    ["container.list", () => db.containers.readAll().fetchAll()],
    ["container.read", () => c.read()],
    ["container.replace", () => c.replace({ id: "orders", partitionKey: { paths: ["/pk"] } })],
    ["container.delete", () => c.delete()],
    ["item.read", () => c.item("a 1:é@+", "eu").read()],
    ["item.create", () => c.items.create({ id: "a1", pk: "eu" })],
    ["item.upsert", () => c.items.upsert({ id: "a1", pk: "eu" })],
    ["item.replace", () => c.item("a1", "eu").replace({ id: "a1", pk: "eu" })],
    ["item.patch", () => c.item("a1", "eu").patch([{ op: "add", path: "/x", value: 1 }])],
    ["item.delete", () => c.item("a%1", ["eu"]).delete()],
    ["item.query", () => c.items.query("SELECT * FROM c", { partitionKey: "eu" }).fetchAll()],
    ["item.readAll", () => c.items.readAll().fetchAll()],
    [
      "item.changeFeed",
      async () => {
        const it = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
        await it.readNext();
      },
    ],
    [
      "item.batch",
      () =>
        c.items.batch(
          [
            { operationType: "Create", resourceBody: { id: "b1", pk: "eu" } },
            { operationType: "Read", id: "b2" },
            { operationType: "Delete", id: "b3", partitionKey: "eu" },
            {
              operationType: "Patch",
              id: "b4",
              resourceBody: { operations: [{ op: "add", path: "/x", value: 1 }] },
            },
          ],
          "eu",
        ),
    ],
    [
      "item.bulk",
      () =>
        c.items.executeBulkOperations([
          { operationType: "Create", resourceBody: { id: "c1", pk: "eu" }, partitionKey: "eu" },
          { operationType: "Upsert", resourceBody: { id: "u1", pk: "eu" }, partitionKey: "eu" },
          { operationType: "Replace", id: "p1", resourceBody: { id: "p1", pk: "eu" }, partitionKey: "eu" },
          { operationType: "Delete", id: "d1", partitionKey: "eu" },
        ]),
    ],
    ["pkranges.read", () => c.readPartitionKeyRanges().fetchAll()],
    ["sproc.create", () => c.scripts.storedProcedures.create({ id: "sp", body: "function(){}" })],
    ["sproc.list", () => c.scripts.storedProcedures.readAll().fetchAll()],
    ["sproc.read", () => c.scripts.storedProcedure("sp").read()],
    ["sproc.execute", () => c.scripts.storedProcedure("sp").execute("eu", [1])],
    ["sproc.delete", () => c.scripts.storedProcedure("sp").delete()],
    ["udf.replace", () => c.scripts.userDefinedFunction("u").replace({ id: "u", body: "function(){}" })],
    ["trigger.read", () => c.scripts.trigger("t").read()],
    ["conflict.list", () => c.conflicts.readAll().fetchAll()],
    ["conflict.read", () => c.conflict("cf1").read()],
    ["conflict.delete", () => c.conflict("cf1", "eu").delete()],
    ["user.upsert", () => db.users.upsert({ id: "u1" })],
    ["user.read", () => db.user("u1").read()],
    [
      "permission.create",
      () =>
        db.user("u1").permissions.create({
          id: "p1",
          permissionMode: PermissionMode.Read,
          resource: "dbs/shop/colls/orders",
        }),
    ],
    ["offer.list", () => client.offers.readAll().fetchAll()],
    ["offer.read", () => client.offer("OfFeR1").read()],
    ["container.readOffer", () => c.readOffer()],
    ["partitionKey.delete", () => c.deleteAllItemsForPartitionKey("eu")],
  ];
  for (const [name, run] of steps) {
    step = name;
    try {
      await run();
    } catch (e) {
      stepErrors.set(name, (e as Error).message);
    }
  }
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function classifyCaptured(r: Captured): CosmosOperation {
  let op = classify(r.method, r.url, r.headers);
  if (op.atomic !== undefined) op = classifyBatchBody(op, Buffer.from(r.body));
  return op;
}

/** Names of a step's requests, without the account reads endpoint discovery interleaves. */
function namesOf(stepName: string): string[] {
  return captured
    .filter((r) => r.step === stepName)
    .map((r) => classifyCaptured(r).name)
    .filter((name) => stepName === "account" || name !== "account.read")
    .sort();
}

describe("the @azure/cosmos SDK's own requests", () => {
  it("were all sent", () => {
    expect([...stepErrors.keys()]).toEqual([]);
    expect(captured.length).toBeGreaterThan(40);
  });

  it("classify to the expected operations", () => {
    const expected: Record<string, string[]> = {
      account: ["account.read"],
      "database.create": ["database.create"],
      "database.list": ["database.list"],
      "database.query": ["database.query"],
      "database.read": ["database.read"],
      "database.delete": ["database.delete"],
      "container.create": ["container.create"],
      "container.list": ["container.list"],
      "container.read": ["container.read"],
      "container.replace": ["container.replace"],
      "container.delete": ["container.delete"],
      "item.read": ["item.read"],
      "item.create": ["item.create"],
      "item.upsert": ["item.upsert"],
      "item.replace": ["item.replace"],
      "item.patch": ["item.patch"],
      "item.delete": ["item.delete"],
      "item.query": ["item.query", "item.queryPlan"],
      "item.readAll": ["item.query", "item.queryPlan"],
      "item.changeFeed": ["container.read", "item.changeFeed", "pkranges.read"],
      "item.batch": ["item.batch"],
      "item.bulk": ["item.bulk"],
      "pkranges.read": ["pkranges.read"],
      "sproc.create": ["sproc.create"],
      "sproc.list": ["sproc.list"],
      "sproc.read": ["sproc.read"],
      "sproc.execute": ["sproc.execute"],
      "sproc.delete": ["sproc.delete"],
      "udf.replace": ["udf.replace"],
      "trigger.read": ["trigger.read"],
      "conflict.list": ["conflict.list"],
      "conflict.delete": ["conflict.delete"],
      "user.upsert": ["user.upsert"],
      "user.read": ["user.read"],
      "permission.create": ["permission.create"],
      "offer.list": ["offer.list"],
      "offer.read": ["offer.read"],
      "container.readOffer": ["container.read", "offer.query"],
      "partitionKey.delete": ["partitionKey.delete"],
    };
    for (const [s, names] of Object.entries(expected)) expect(namesOf(s), s).toEqual(names);
  });

  it("are re-signed exactly as the SDK signed them with the same key", () => {
    let checked = 0;
    for (const r of captured) {
      if (r.step === "conflict.read") continue;
      const op = classifyCaptured(r);
      const date = r.headers["x-ms-date"] as string;
      const header = signMasterKey({ verb: r.method, ...op.signing, date, key: KEY });
      expect(header, `${r.method} ${r.url}`).toBe(r.headers.authorization);
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it("decode ids the SDK encoded with encodeURI", () => {
    const read = captured.find((r) => r.step === "item.read");
    expect(read?.url).toBe("/dbs/shop/colls/orders/docs/a%201:%C3%A9@+");
    const readOp = classifyCaptured(read as Captured);
    expect(readOp.segments[5]).toBe("a 1:é@+");
    expect(readOp.signing).toEqual({
      resourceType: "docs",
      resourceLink: "dbs/shop/colls/orders/docs/a 1:é@+",
    });
    const del = captured.find((r) => r.step === "item.delete");
    expect(del?.url).toBe("/dbs/shop/colls/orders/docs/a%251");
    const op = classifyCaptured(del as Captured);
    expect(op.segments[5]).toBe("a%1");
    expect(op.signing.resourceLink).toBe("dbs/shop/colls/orders/docs/a%1");
    expect(op.partitionKey).toEqual(["eu"]);
  });

  it("batch and bulk bodies give per-operation actions and partition keys", () => {
    const batch = classifyCaptured(captured.find((r) => r.step === "item.batch") as Captured);
    expect(batch.atomic).toBe(true);
    expect(batch.actions).toEqual(["read", "create", "patch", "delete"]);
    expect(batch.batch?.map((b) => [b.operationType, b.id, b.partitionKey])).toEqual([
      ["Create", "b1", ["eu"]],
      ["Read", "b2", ["eu"]],
      ["Delete", "b3", ["eu"]],
      ["Patch", "b4", ["eu"]],
    ]);
    const bulk = captured.filter((r) => r.step === "item.bulk").map(classifyCaptured);
    expect(bulk.every((b) => b.atomic === false && b.name === "item.bulk")).toBe(true);
    expect(bulk.flatMap((b) => b.batch ?? []).map((b) => [b.operationType, b.id, b.partitionKey])).toEqual([
      ["Create", "c1", ["eu"]],
      ["Upsert", "u1", ["eu"]],
      ["Replace", "p1", ["eu"]],
      ["Delete", "d1", ["eu"]],
    ]);
  });

  it("refuses the path of the SDK's Conflict.read(), which appends a stray /conflicts", () => {
    const r = captured.find((x) => x.step === "conflict.read") as Captured;
    expect(r.url).toBe("/dbs/shop/colls/orders/conflicts/cf1/conflicts");
    expect(() => classify(r.method, r.url, r.headers)).toThrow(CosmosWireError);
  });
});
