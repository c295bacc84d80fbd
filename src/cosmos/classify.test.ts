import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classify, type RequestHeaders } from "./classify.js";
import { CosmosWireError } from "./errors.js";
import type { CosmosOperation } from "./types.js";

// Header sets exactly as @azure/cosmos 4.9.3 sends them (captured from the SDK; see sdk.test.ts).
const PK = { "x-ms-documentdb-partitionkey": '["eu"]' };
const JSON_BODY = { "content-type": "application/json" };
const QUERY = { "content-type": "application/query+json", "x-ms-documentdb-isquery": "true" };
const QUERY_PLAN = { "content-type": "application/query+json", "x-ms-cosmos-is-query-plan-request": "True" };
const UPSERT = { ...JSON_BODY, "x-ms-documentdb-is-upsert": "true" };
const BATCH = {
  ...JSON_BODY,
  ...PK,
  "x-ms-cosmos-is-batch-request": "true",
  "x-ms-cosmos-batch-atomic": "true",
};
const BULK = {
  ...JSON_BODY,
  "x-ms-cosmos-is-batch-request": "true",
  "x-ms-cosmos-batch-atomic": "false",
  "x-ms-cosmos-batch-continue-on-error": "true",
  "x-ms-documentdb-partitionkeyrangeid": "0",
};

const C = "/dbs/shop/colls/orders";
const CL = "dbs/shop/colls/orders";

type Expect = Pick<CosmosOperation, "name" | "actions" | "resource" | "resourceType"> & {
  signing: [string, string];
  partitionKey?: unknown;
  atomic?: boolean;
};

const SDK_REQUESTS: [string, string, RequestHeaders, Expect][] = [
  [
    "GET",
    "/",
    {},
    { name: "account.read", actions: ["metadata"], resource: "/", resourceType: "", signing: ["", ""] },
  ],
  [
    "POST",
    "/dbs",
    JSON_BODY,
    {
      name: "database.create",
      actions: ["manage"],
      resource: "/dbs",
      resourceType: "dbs",
      signing: ["dbs", ""],
    },
  ],
  [
    "GET",
    "/dbs",
    {},
    {
      name: "database.list",
      actions: ["metadata"],
      resource: "/dbs",
      resourceType: "dbs",
      signing: ["dbs", ""],
    },
  ],
  [
    "POST",
    "/dbs",
    QUERY,
    {
      name: "database.query",
      actions: ["metadata"],
      resource: "/dbs",
      resourceType: "dbs",
      signing: ["dbs", ""],
    },
  ],
  [
    "GET",
    "/dbs/shop",
    {},
    {
      name: "database.read",
      actions: ["metadata"],
      resource: "/dbs/shop",
      resourceType: "dbs",
      signing: ["dbs", "dbs/shop"],
    },
  ],
  [
    "DELETE",
    "/dbs/shop",
    {},
    {
      name: "database.delete",
      actions: ["manage"],
      resource: "/dbs/shop",
      resourceType: "dbs",
      signing: ["dbs", "dbs/shop"],
    },
  ],
  [
    "POST",
    "/dbs/shop/colls",
    JSON_BODY,
    {
      name: "container.create",
      actions: ["manage"],
      resource: "/dbs/shop/colls",
      resourceType: "colls",
      signing: ["colls", "dbs/shop"],
    },
  ],
  [
    "GET",
    "/dbs/shop/colls",
    {},
    {
      name: "container.list",
      actions: ["metadata"],
      resource: "/dbs/shop/colls",
      resourceType: "colls",
      signing: ["colls", "dbs/shop"],
    },
  ],
  [
    "POST",
    "/dbs/shop/colls",
    QUERY,
    {
      name: "container.query",
      actions: ["metadata"],
      resource: "/dbs/shop/colls",
      resourceType: "colls",
      signing: ["colls", "dbs/shop"],
    },
  ],
  [
    "GET",
    C,
    {},
    {
      name: "container.read",
      actions: ["metadata"],
      resource: C,
      resourceType: "colls",
      signing: ["colls", CL],
    },
  ],
  [
    "PUT",
    C,
    JSON_BODY,
    {
      name: "container.replace",
      actions: ["manage"],
      resource: C,
      resourceType: "colls",
      signing: ["colls", CL],
    },
  ],
  [
    "DELETE",
    C,
    {},
    {
      name: "container.delete",
      actions: ["manage"],
      resource: C,
      resourceType: "colls",
      signing: ["colls", CL],
    },
  ],
  [
    "GET",
    `${C}/docs/a1`,
    PK,
    {
      name: "item.read",
      actions: ["read"],
      resource: `${C}/docs/a1`,
      resourceType: "docs",
      signing: ["docs", `${CL}/docs/a1`],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    { ...JSON_BODY, ...PK },
    {
      name: "item.create",
      actions: ["create"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    { ...UPSERT, ...PK },
    {
      name: "item.upsert",
      actions: ["upsert"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      partitionKey: ["eu"],
    },
  ],
  [
    "PUT",
    `${C}/docs/a1`,
    { ...JSON_BODY, ...PK },
    {
      name: "item.replace",
      actions: ["replace"],
      resource: `${C}/docs/a1`,
      resourceType: "docs",
      signing: ["docs", `${CL}/docs/a1`],
      partitionKey: ["eu"],
    },
  ],
  // The SDK sends no Content-Type on PATCH.
  [
    "PATCH",
    `${C}/docs/a1`,
    PK,
    {
      name: "item.patch",
      actions: ["patch"],
      resource: `${C}/docs/a1`,
      resourceType: "docs",
      signing: ["docs", `${CL}/docs/a1`],
      partitionKey: ["eu"],
    },
  ],
  [
    "DELETE",
    `${C}/docs/a1`,
    PK,
    {
      name: "item.delete",
      actions: ["delete"],
      resource: `${C}/docs/a1`,
      resourceType: "docs",
      signing: ["docs", `${CL}/docs/a1`],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    QUERY_PLAN,
    {
      name: "item.queryPlan",
      actions: ["query"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    { ...QUERY, ...PK },
    {
      name: "item.query",
      actions: ["query"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    { ...QUERY, "x-ms-documentdb-partitionkeyrangeid": "0" },
    {
      name: "item.query",
      actions: ["query"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
    },
  ],
  [
    "GET",
    `${C}/docs`,
    {},
    {
      name: "item.readFeed",
      actions: ["read"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
    },
  ],
  [
    "GET",
    `${C}/docs`,
    { "a-im": "Incremental Feed", "x-ms-documentdb-partitionkeyrangeid": "0" },
    {
      name: "item.changeFeed",
      actions: ["changeFeed"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
    },
  ],
  [
    "GET",
    `${C}/docs`,
    { "a-im": "Full-Fidelity Feed", ...PK },
    {
      name: "item.changeFeed",
      actions: ["changeFeed"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/docs`,
    BATCH,
    {
      name: "item.batch",
      actions: ["read", "create", "upsert", "replace", "patch", "delete"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      partitionKey: ["eu"],
      atomic: true,
    },
  ],
  [
    "POST",
    `${C}/docs`,
    BULK,
    {
      name: "item.bulk",
      actions: ["read", "create", "upsert", "replace", "patch", "delete"],
      resource: `${C}/docs`,
      resourceType: "docs",
      signing: ["docs", CL],
      atomic: false,
    },
  ],
  [
    "GET",
    `${C}/pkranges`,
    {},
    {
      name: "pkranges.read",
      actions: ["metadata"],
      resource: `${C}/pkranges`,
      resourceType: "pkranges",
      signing: ["pkranges", CL],
    },
  ],
  [
    "POST",
    `${C}/pkranges`,
    QUERY,
    {
      name: "pkranges.query",
      actions: ["metadata"],
      resource: `${C}/pkranges`,
      resourceType: "pkranges",
      signing: ["pkranges", CL],
    },
  ],
  [
    "POST",
    `${C}/sprocs`,
    JSON_BODY,
    {
      name: "sproc.create",
      actions: ["manage"],
      resource: `${C}/sprocs`,
      resourceType: "sprocs",
      signing: ["sprocs", CL],
    },
  ],
  [
    "GET",
    `${C}/sprocs`,
    {},
    {
      name: "sproc.list",
      actions: ["metadata"],
      resource: `${C}/sprocs`,
      resourceType: "sprocs",
      signing: ["sprocs", CL],
    },
  ],
  [
    "POST",
    `${C}/sprocs`,
    QUERY,
    {
      name: "sproc.query",
      actions: ["metadata"],
      resource: `${C}/sprocs`,
      resourceType: "sprocs",
      signing: ["sprocs", CL],
    },
  ],
  [
    "GET",
    `${C}/sprocs/sp`,
    {},
    {
      name: "sproc.read",
      actions: ["metadata"],
      resource: `${C}/sprocs/sp`,
      resourceType: "sprocs",
      signing: ["sprocs", `${CL}/sprocs/sp`],
    },
  ],
  [
    "PUT",
    `${C}/sprocs/sp`,
    JSON_BODY,
    {
      name: "sproc.replace",
      actions: ["manage"],
      resource: `${C}/sprocs/sp`,
      resourceType: "sprocs",
      signing: ["sprocs", `${CL}/sprocs/sp`],
    },
  ],
  [
    "DELETE",
    `${C}/sprocs/sp`,
    {},
    {
      name: "sproc.delete",
      actions: ["manage"],
      resource: `${C}/sprocs/sp`,
      resourceType: "sprocs",
      signing: ["sprocs", `${CL}/sprocs/sp`],
    },
  ],
  [
    "POST",
    `${C}/sprocs/sp`,
    { ...JSON_BODY, ...PK },
    {
      name: "sproc.execute",
      actions: ["execute"],
      resource: `${C}/sprocs/sp`,
      resourceType: "sprocs",
      signing: ["sprocs", `${CL}/sprocs/sp`],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    `${C}/udfs`,
    JSON_BODY,
    {
      name: "udf.create",
      actions: ["manage"],
      resource: `${C}/udfs`,
      resourceType: "udfs",
      signing: ["udfs", CL],
    },
  ],
  [
    "GET",
    `${C}/udfs/u`,
    {},
    {
      name: "udf.read",
      actions: ["metadata"],
      resource: `${C}/udfs/u`,
      resourceType: "udfs",
      signing: ["udfs", `${CL}/udfs/u`],
    },
  ],
  [
    "PUT",
    `${C}/udfs/u`,
    JSON_BODY,
    {
      name: "udf.replace",
      actions: ["manage"],
      resource: `${C}/udfs/u`,
      resourceType: "udfs",
      signing: ["udfs", `${CL}/udfs/u`],
    },
  ],
  [
    "GET",
    `${C}/triggers`,
    {},
    {
      name: "trigger.list",
      actions: ["metadata"],
      resource: `${C}/triggers`,
      resourceType: "triggers",
      signing: ["triggers", CL],
    },
  ],
  [
    "DELETE",
    `${C}/triggers/t`,
    {},
    {
      name: "trigger.delete",
      actions: ["manage"],
      resource: `${C}/triggers/t`,
      resourceType: "triggers",
      signing: ["triggers", `${CL}/triggers/t`],
    },
  ],
  [
    "GET",
    `${C}/conflicts`,
    {},
    {
      name: "conflict.list",
      actions: ["conflicts"],
      resource: `${C}/conflicts`,
      resourceType: "conflicts",
      signing: ["conflicts", CL],
    },
  ],
  [
    "POST",
    `${C}/conflicts`,
    QUERY,
    {
      name: "conflict.query",
      actions: ["conflicts"],
      resource: `${C}/conflicts`,
      resourceType: "conflicts",
      signing: ["conflicts", CL],
    },
  ],
  [
    "GET",
    `${C}/conflicts/cf1`,
    {},
    {
      name: "conflict.read",
      actions: ["conflicts"],
      resource: `${C}/conflicts/cf1`,
      resourceType: "conflicts",
      signing: ["conflicts", `${CL}/conflicts/cf1`],
    },
  ],
  [
    "DELETE",
    `${C}/conflicts/cf1`,
    PK,
    {
      name: "conflict.delete",
      actions: ["conflicts"],
      resource: `${C}/conflicts/cf1`,
      resourceType: "conflicts",
      signing: ["conflicts", `${CL}/conflicts/cf1`],
      partitionKey: ["eu"],
    },
  ],
  [
    "POST",
    "/dbs/shop/users",
    UPSERT,
    {
      name: "user.upsert",
      actions: ["manage"],
      resource: "/dbs/shop/users",
      resourceType: "users",
      signing: ["users", "dbs/shop"],
    },
  ],
  [
    "POST",
    "/dbs/shop/users",
    JSON_BODY,
    {
      name: "user.create",
      actions: ["manage"],
      resource: "/dbs/shop/users",
      resourceType: "users",
      signing: ["users", "dbs/shop"],
    },
  ],
  [
    "GET",
    "/dbs/shop/users",
    {},
    {
      name: "user.list",
      actions: ["manage"],
      resource: "/dbs/shop/users",
      resourceType: "users",
      signing: ["users", "dbs/shop"],
    },
  ],
  [
    "GET",
    "/dbs/shop/users/u1",
    {},
    {
      name: "user.read",
      actions: ["manage"],
      resource: "/dbs/shop/users/u1",
      resourceType: "users",
      signing: ["users", "dbs/shop/users/u1"],
    },
  ],
  [
    "PUT",
    "/dbs/shop/users/u1",
    JSON_BODY,
    {
      name: "user.replace",
      actions: ["manage"],
      resource: "/dbs/shop/users/u1",
      resourceType: "users",
      signing: ["users", "dbs/shop/users/u1"],
    },
  ],
  [
    "DELETE",
    "/dbs/shop/users/u1",
    {},
    {
      name: "user.delete",
      actions: ["manage"],
      resource: "/dbs/shop/users/u1",
      resourceType: "users",
      signing: ["users", "dbs/shop/users/u1"],
    },
  ],
  [
    "POST",
    "/dbs/shop/users/u1/permissions",
    JSON_BODY,
    {
      name: "permission.create",
      actions: ["manage"],
      resource: "/dbs/shop/users/u1/permissions",
      resourceType: "permissions",
      signing: ["permissions", "dbs/shop/users/u1"],
    },
  ],
  [
    "GET",
    "/dbs/shop/users/u1/permissions/p1",
    {},
    {
      name: "permission.read",
      actions: ["manage"],
      resource: "/dbs/shop/users/u1/permissions/p1",
      resourceType: "permissions",
      signing: ["permissions", "dbs/shop/users/u1/permissions/p1"],
    },
  ],
  [
    "GET",
    "/offers",
    {},
    {
      name: "offer.list",
      actions: ["manage"],
      resource: "/offers",
      resourceType: "offers",
      signing: ["offers", ""],
    },
  ],
  // Container.readOffer() / Database.readOffer() query the offers feed.
  [
    "POST",
    "/offers",
    QUERY,
    {
      name: "offer.query",
      actions: ["manage"],
      resource: "/offers",
      resourceType: "offers",
      signing: ["offers", ""],
    },
  ],
  // The SDK signs an offer with its id alone, lower-cased.
  [
    "GET",
    "/offers/OfFeR1",
    {},
    {
      name: "offer.read",
      actions: ["manage"],
      resource: "/offers/OfFeR1",
      resourceType: "offers",
      signing: ["offers", "offer1"],
    },
  ],
  [
    "PUT",
    "/offers/OfFeR1",
    JSON_BODY,
    {
      name: "offer.replace",
      actions: ["manage"],
      resource: "/offers/OfFeR1",
      resourceType: "offers",
      signing: ["offers", "offer1"],
    },
  ],
  [
    "POST",
    "/dbs/shop/clientencryptionkeys",
    JSON_BODY,
    {
      name: "clientEncryptionKey.create",
      actions: ["manage"],
      resource: "/dbs/shop/clientencryptionkeys",
      resourceType: "clientencryptionkeys",
      signing: ["clientencryptionkeys", "dbs/shop"],
    },
  ],
  [
    "GET",
    "/dbs/shop/clientencryptionkeys",
    {},
    {
      name: "clientEncryptionKey.list",
      actions: ["metadata"],
      resource: "/dbs/shop/clientencryptionkeys",
      resourceType: "clientencryptionkeys",
      signing: ["clientencryptionkeys", "dbs/shop"],
    },
  ],
  [
    "GET",
    "/dbs/shop/clientencryptionkeys/k1",
    {},
    {
      name: "clientEncryptionKey.read",
      actions: ["metadata"],
      resource: "/dbs/shop/clientencryptionkeys/k1",
      resourceType: "clientencryptionkeys",
      signing: ["clientencryptionkeys", "dbs/shop/clientencryptionkeys/k1"],
    },
  ],
  [
    "PUT",
    "/dbs/shop/clientencryptionkeys/k1",
    JSON_BODY,
    {
      name: "clientEncryptionKey.replace",
      actions: ["manage"],
      resource: "/dbs/shop/clientencryptionkeys/k1",
      resourceType: "clientencryptionkeys",
      signing: ["clientencryptionkeys", "dbs/shop/clientencryptionkeys/k1"],
    },
  ],
  [
    "POST",
    `${C}/operations/partitionkeydelete`,
    { ...JSON_BODY, ...PK },
    {
      name: "partitionKey.delete",
      actions: ["manage"],
      resource: `${C}/operations/partitionkeydelete`,
      resourceType: "colls",
      signing: ["colls", CL],
      partitionKey: ["eu"],
    },
  ],
];

function segmentsOf(resource: string): string[] {
  return resource === "/" ? [] : resource.slice(1).split("/");
}

describe("classify: every request shape the @azure/cosmos 4.9 SDK sends", () => {
  for (const [method, path, headers, e] of SDK_REQUESTS) {
    it(`${method} ${path} ${Object.keys(headers).length ? JSON.stringify(headers) : ""}→ ${e.name}`, () => {
      const op = classify(method, path, headers);
      expect(op).toEqual({
        method,
        name: e.name,
        resourceType: e.resourceType,
        segments: segmentsOf(e.resource),
        resource: e.resource,
        signing: { resourceType: e.signing[0], resourceLink: e.signing[1] },
        actions: e.actions,
        partitionKey: e.partitionKey,
        atomic: e.atomic,
      });
    });
  }

  it("covers every short action except none", () => {
    const seen = new Set(SDK_REQUESTS.flatMap(([m, p, h]) => classify(m, p, h).actions));
    expect([...seen].sort()).toEqual(
      [
        "metadata",
        "read",
        "create",
        "upsert",
        "replace",
        "patch",
        "delete",
        "query",
        "changeFeed",
        "execute",
        "conflicts",
        "manage",
      ].sort(),
    );
  });

  it("returns frozen action lists (shared, never to be mutated)", () => {
    const op = classify("GET", `${C}/docs/a1`, {});
    expect(Object.isFrozen(op.actions)).toBe(true);
  });
});

describe("classify: ids", () => {
  it("percent-decodes each segment separately and signs with decoded ids", () => {
    const op = classify("GET", "/dbs/my%20db/colls/c%C3%A9/docs/a%25b%3Fc%23d", {});
    expect(op.segments).toEqual(["dbs", "my db", "colls", "cé", "docs", "a%b?c#d"]);
    expect(op.resource).toBe("/dbs/my db/colls/cé/docs/a%b?c#d");
    expect(op.signing).toEqual({ resourceType: "docs", resourceLink: "dbs/my db/colls/cé/docs/a%b?c#d" });
  });

  it("keeps the characters encodeURI leaves alone, and ids' case", () => {
    const op = classify("GET", "/dbs/Shop/colls/Orders/docs/a:b@c;d,e$f&g=h+i!j'k(l)m*n~o", {});
    expect(op.segments[5]).toBe("a:b@c;d,e$f&g=h+i!j'k(l)m*n~o");
    expect(op.signing.resourceLink).toBe("dbs/Shop/colls/Orders/docs/a:b@c;d,e$f&g=h+i!j'k(l)m*n~o");
  });

  it('refuses any "?" (no query strings; an unencoded ? inside an id would be read differently upstream)', () => {
    for (const path of ["/?x=1", "/dbs/shop?a=b/../../x", `${C}/docs/a?b`, `${C}/docs?`]) {
      expect(() => classify("GET", path, {}), path).toThrow(
        /contains "\?": the gateway accepts no query string/,
      );
    }
  });

  it("accepts ids that merely contain dots", () => {
    expect(classify("GET", "/dbs/.../colls/a.b/docs/.x", {}).segments).toEqual([
      "dbs",
      "...",
      "colls",
      "a.b",
      "docs",
      ".x",
    ]);
  });
});

function refusal(method: string, path: string, headers: RequestHeaders = {}): string {
  try {
    classify(method, path, headers);
  } catch (e) {
    expect(e).toBeInstanceOf(CosmosWireError);
    expect((e as CosmosWireError).status).toBe(400);
    expect((e as CosmosWireError).message.length).toBeGreaterThan(20);
    return (e as CosmosWireError).code;
  }
  throw new Error(`${method} ${path} was accepted`);
}

describe("classify: path attacks and malformed paths are 400s", () => {
  const BAD_PATH: string[] = [
    "",
    "*",
    "dbs/shop",
    "?x",
    "http://evil.example/dbs/shop",
    "//",
    "//dbs",
    "/dbs/",
    "/dbs/shop/",
    "/dbs//colls",
    "/dbs/shop/colls/orders/docs/",
    "/dbs/shop/colls/orders/docs//",
    "/dbs/..",
    "/dbs/.",
    "/dbs/%2e%2e",
    "/dbs/%2E",
    "/dbs/shop/..",
    "/dbs/shop/../../offers",
    "/./dbs",
    "/dbs/shop/./colls",
    "/dbs/a%2Fb",
    "/dbs/a%2fb/colls/c",
    "/dbs/a%5Cb",
    "/dbs/a%5c",
    "/dbs/a\\b",
    "/dbs/a%",
    "/dbs/a%2",
    "/dbs/a%zz",
    "/dbs/%C0%AF", // overlong "/"
    "/dbs/%ED%A0%80", // a UTF-16 surrogate
    "/dbs/%FF",
    "/dbs/a%00",
    "/dbs/a%0A",
    "/dbs/a%7F",
    "/dbs/a\u0000b",
    "/dbs/a\nb",
    "/dbs/a b",
    "/dbs/a\tb",
    "/dbs/é",
    "/dbs/a#b",
    "/dbs/shop/docs",
    "/dbs/shop/docs/a",
    "/docs/a",
    "/colls/a",
    "/dbs/shop/dbs/x",
    "/dbs/shop/colls/orders/colls",
    "/dbs/shop/colls/orders/docs/a/docs",
    "/dbs/shop/colls/orders/pkranges/0",
    "/dbs/shop/colls/orders/operations",
    "/dbs/shop/colls/orders/operations/other",
    "/dbs/shop/colls/orders/operations/partitionkeydelete/x",
    "/dbs/shop/operations/partitionkeydelete",
    "/offers/o/colls",
    "/dbs/shop/users/u/permissions/p/docs",
    "/%64bs/shop",
    "/dbs/shop/%63olls/orders",
    // The SDK's Conflict.read() sends this (a bug in @azure/cosmos 4.9); it is not a Cosmos DB path.
    "/dbs/shop/colls/orders/conflicts/cf1/conflicts",
    "/dbs/a/colls/b/docs/c/d/e/f/g",
    "/dbs/shop/colls/orders/docs/a/attachments", // deeper than any Cosmos DB path
    "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
  ];
  for (const path of BAD_PATH) {
    it(`${JSON.stringify(path)} → ERR_BAD_PATH`, () => {
      expect(refusal("GET", path)).toBe("ERR_BAD_PATH");
    });
  }

  const UNKNOWN: string[] = [
    "/foo",
    "/DBS/shop",
    "/Dbs",
    "/dbs/shop/Colls",
    "/dbs/shop/attachments",
    "/dbs/shop/colls/orders/attachments",
    "/dbs/shop/colls/orders/schemas",
    "/dbs/shop/colls/orders/partitionkeyranges",
    "/databaseaccount",
    "/topology",
  ];
  for (const path of UNKNOWN) {
    it(`${JSON.stringify(path)} → ERR_UNKNOWN_RESOURCE`, () => {
      expect(refusal("GET", path)).toBe("ERR_UNKNOWN_RESOURCE");
    });
  }
});

describe("classify: methods a resource does not accept are 400 ERR_UNSUPPORTED_OPERATION", () => {
  const CASES: [string, string, RequestHeaders?][] = [
    ["POST", "/"],
    ["DELETE", "/"],
    ["get", "/"],
    ["HEAD", "/dbs/shop"],
    ["OPTIONS", "/dbs"],
    ["PUT", "/dbs/shop"],
    ["PATCH", "/dbs/shop"],
    ["POST", "/dbs/shop"],
    ["DELETE", "/dbs"],
    ["PUT", "/dbs"],
    ["PATCH", C],
    ["POST", C],
    ["POST", `${C}/docs/a1`],
    ["PUT", `${C}/docs`],
    ["DELETE", `${C}/docs`],
    ["PATCH", `${C}/docs`],
    ["PATCH", `${C}/sprocs/sp`],
    ["POST", `${C}/udfs/u`],
    ["POST", `${C}/triggers/t`],
    ["POST", `${C}/pkranges`, JSON_BODY],
    ["DELETE", `${C}/pkranges`],
    ["POST", `${C}/conflicts`, JSON_BODY],
    ["PUT", `${C}/conflicts/cf1`],
    ["POST", "/offers", JSON_BODY],
    ["DELETE", "/offers/o"],
    ["DELETE", "/dbs/shop/clientencryptionkeys/k1"],
    ["GET", `${C}/operations/partitionkeydelete`],
    ["DELETE", `${C}/operations/partitionkeydelete`],
  ];
  for (const [method, path, headers] of CASES) {
    it(`${method} ${path}`, () => {
      expect(refusal(method, path, headers)).toBe("ERR_UNSUPPORTED_OPERATION");
    });
  }
});

describe("classify: control headers", () => {
  const docs = `${C}/docs`;

  it("compares booleans case-insensitively", () => {
    for (const v of ["true", "True", "TRUE", "tRuE"]) {
      expect(classify("POST", docs, { "x-ms-documentdb-is-upsert": v }).name).toBe("item.upsert");
      expect(
        classify("POST", docs, { "content-type": "application/query+json", "x-ms-documentdb-isquery": v })
          .name,
      ).toBe("item.query");
    }
    for (const v of ["false", "False", "FALSE"]) {
      expect(classify("POST", docs, { "x-ms-documentdb-is-upsert": v }).name).toBe("item.create");
    }
    expect(classify("POST", docs, { ...BATCH, "x-ms-cosmos-batch-atomic": "True" }).atomic).toBe(true);
    expect(classify("POST", docs, { ...BATCH, "x-ms-cosmos-batch-atomic": "FALSE" }).atomic).toBe(false);
  });

  it("treats a batch request without x-ms-cosmos-batch-atomic as bulk (not atomic)", () => {
    const { "x-ms-cosmos-batch-atomic": _, ...headers } = BATCH;
    const op = classify("POST", docs, headers);
    expect(op.name).toBe("item.bulk");
    expect(op.atomic).toBe(false);
  });

  it("refuses boolean headers that are neither true nor false, or repeated", () => {
    for (const name of [
      "x-ms-documentdb-is-upsert",
      "x-ms-documentdb-isquery",
      "x-ms-cosmos-is-query-plan-request",
      "x-ms-cosmos-is-batch-request",
    ]) {
      for (const v of ["yes", "1", "", "true, true", "truex"]) {
        expect(refusal("POST", docs, { [name]: v }), `${name}: ${v}`).toBe("ERR_BAD_HEADER");
      }
      expect(refusal("POST", docs, { [name]: ["true", "true"] })).toBe("ERR_BAD_HEADER");
    }
    expect(refusal("POST", docs, { ...BATCH, "x-ms-cosmos-batch-atomic": "maybe" })).toBe("ERR_BAD_HEADER");
  });

  it("recognizes application/query+json in any case and with parameters", () => {
    for (const ct of [
      "application/query+json",
      "APPLICATION/QUERY+JSON",
      "application/query+json; charset=utf-8",
      "application/query+json;x=y",
    ]) {
      expect(classify("POST", docs, { "content-type": ct }).name, ct).toBe("item.query");
    }
    for (const ct of ["application/json", "application/query+jsonx", "text/plain", "application/query"]) {
      expect(classify("POST", docs, { "content-type": ct }).name, ct).toBe("item.create");
    }
  });

  it("requires the query content type with a query header", () => {
    expect(refusal("POST", docs, { ...JSON_BODY, "x-ms-documentdb-isquery": "true" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { "x-ms-documentdb-isquery": "true" })).toBe("ERR_UNSUPPORTED_OPERATION");
    expect(refusal("POST", docs, { ...JSON_BODY, "x-ms-cosmos-is-query-plan-request": "True" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
  });

  it("refuses contradictory operation headers instead of guessing", () => {
    expect(refusal("POST", docs, { ...QUERY, "x-ms-documentdb-is-upsert": "true" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { ...QUERY_PLAN, "x-ms-documentdb-is-upsert": "true" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { ...BATCH, "x-ms-documentdb-is-upsert": "true" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { ...BATCH, "x-ms-documentdb-isquery": "true" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { ...BATCH, "content-type": "application/query+json" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
    expect(refusal("POST", docs, { ...BATCH, "x-ms-cosmos-is-query-plan-request": "True" })).toBe(
      "ERR_UNSUPPORTED_OPERATION",
    );
  });

  it("sends batch and query-plan requests only to the items feed", () => {
    expect(refusal("POST", "/dbs", BATCH)).toBe("ERR_UNSUPPORTED_OPERATION");
    expect(refusal("POST", `${C}/sprocs`, BULK)).toBe("ERR_UNSUPPORTED_OPERATION");
    expect(refusal("POST", "/dbs", QUERY_PLAN)).toBe("ERR_UNSUPPORTED_OPERATION");
  });

  it("ignores operation headers where they mean nothing", () => {
    expect(
      classify("GET", docs, { "x-ms-documentdb-isquery": "garbage", "x-ms-documentdb-is-upsert": "true" })
        .name,
    ).toBe("item.readFeed");
    expect(classify("GET", `${C}/docs/a`, BATCH).name).toBe("item.read");
    expect(classify("GET", "/dbs", { "a-im": "Incremental Feed" }).name).toBe("database.list");
    expect(classify("POST", docs, { ...JSON_BODY, "a-im": "nonsense" }).name).toBe("item.create");
    expect(classify("POST", docs, { "x-ms-cosmos-batch-atomic": "true" }).name).toBe("item.create");
  });

  it("accepts the two change-feed modes and refuses any other A-IM on the items feed", () => {
    expect(classify("GET", docs, { "a-im": "incremental feed" }).name).toBe("item.changeFeed");
    expect(classify("GET", docs, { "a-im": "FULL-FIDELITY FEED" }).name).toBe("item.changeFeed");
    for (const v of ["", "Incremental", "feed", "Incremental Feed, Incremental Feed"]) {
      expect(refusal("GET", docs, { "a-im": v }), v).toBe("ERR_BAD_HEADER");
    }
    expect(refusal("GET", docs, { "a-im": ["Incremental Feed"] })).toBe("ERR_BAD_HEADER");
  });
});

describe("classify: partition key header", () => {
  const read = `${C}/docs/a1`;
  it("parses every value shape the SDK sends", () => {
    const cases: [string, unknown][] = [
      ['["eu"]', ["eu"]],
      ["[42]", [42]],
      ["[true]", [true]],
      ["[null]", [null]],
      ["[{}]", [{}]],
      ["[]", []],
      ['["t",1,"x"]', ["t", 1, "x"]],
      ['["\\u00e9"]', ["é"]],
    ];
    for (const [header, value] of cases) {
      expect(classify("GET", read, { "x-ms-documentdb-partitionkey": header }).partitionKey).toEqual(value);
    }
    expect(classify("GET", read, {}).partitionKey).toBeUndefined();
  });

  it("refuses malformed keys with ERR_BAD_PARTITION_KEY on any request", () => {
    for (const header of [
      "eu",
      '"eu"',
      "{}",
      '[["a"]]',
      '[{"a":1}]',
      "[1,2,3,4]",
      `["${"x".repeat(2100)}"]`,
      "[1e999]",
      "",
    ]) {
      expect(refusal("GET", read, { "x-ms-documentdb-partitionkey": header }), header).toBe(
        "ERR_BAD_PARTITION_KEY",
      );
    }
    expect(refusal("GET", "/", { "x-ms-documentdb-partitionkey": "x" })).toBe("ERR_BAD_PARTITION_KEY");
    expect(refusal("GET", read, { "x-ms-documentdb-partitionkey": ['["a"]', '["b"]'] })).toBe(
      "ERR_BAD_HEADER",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const PIECES = [
  "/",
  "/",
  "/",
  "dbs",
  "colls",
  "docs",
  "sprocs",
  "udfs",
  "triggers",
  "conflicts",
  "pkranges",
  "users",
  "permissions",
  "offers",
  "clientencryptionkeys",
  "operations",
  "partitionkeydelete",
  "x",
  "A",
  "..",
  ".",
  "%",
  "%2F",
  "%2f",
  "%5C",
  "%2e",
  "%00",
  "%C0%AF",
  "%E2%82%AC",
  "%zz",
  "%25",
  "?",
  "#",
  "\\",
  " ",
  "\u0000",
  "\u007f",
  "é",
  "\ud800",
  "+",
  ":",
  "@",
  "&",
  "=",
  "*",
];
const pathArb = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { maxLength: 20 }).map((p) => p.join("")),
  fc.array(fc.constantFrom(...PIECES), { maxLength: 20 }).map((p) => "/" + p.join("")),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }).map((s) => "/dbs/" + s),
);
const headerValue = fc.oneof(
  fc.constantFrom(
    "true",
    "True",
    "false",
    "FALSE",
    "yes",
    "",
    "application/query+json",
    "application/json",
    "Incremental Feed",
    "Full-Fidelity Feed",
    '["eu"]',
    "[{}]",
    "[[1]]",
    "[1e999]",
    "[",
  ),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.constant(undefined),
);
const headersArb = fc.record(
  {
    "x-ms-documentdb-partitionkey": headerValue,
    "x-ms-documentdb-isquery": headerValue,
    "x-ms-cosmos-is-query-plan-request": headerValue,
    "x-ms-documentdb-is-upsert": headerValue,
    "x-ms-cosmos-is-batch-request": headerValue,
    "x-ms-cosmos-batch-atomic": headerValue,
    "content-type": headerValue,
    "a-im": headerValue,
  },
  { requiredKeys: [] },
) as fc.Arbitrary<RequestHeaders>;
const methodArb = fc.oneof(
  fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", ""),
  fc.string({ maxLength: 10 }),
);

/** Whether `s` has a control character or one of `chars`. */
function hasForbidden(s: string, chars: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c === 0x7f || chars.includes(ch)) return true;
  }
  return false;
}

describe("classify: properties", () => {
  it("never throws anything but a 400 CosmosWireError, and what it accepts is well-formed", () => {
    fc.assert(
      fc.property(methodArb, pathArb, headersArb, (method, path, headers) => {
        let op: CosmosOperation;
        try {
          op = classify(method, path, headers);
        } catch (e) {
          expect(e).toBeInstanceOf(CosmosWireError);
          expect((e as CosmosWireError).status).toBe(400);
          return;
        }
        expect(op.actions.length).toBeGreaterThan(0);
        expect(op.resource).toBe(op.segments.length === 0 ? "/" : "/" + op.segments.join("/"));
        expect(op.signing.resourceLink.startsWith("/")).toBe(false);
        for (const s of op.segments) {
          expect(s).not.toBe("");
          expect(s).not.toBe(".");
          expect(s).not.toBe("..");
          expect(hasForbidden(s, "/\\")).toBe(false);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("round-trips any id the SDK can send: encodeURI on the way in, the same id in segments and signing", () => {
    const idArb = fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 24 })
      .filter((s) => s !== "." && s !== ".." && !hasForbidden(s, "/\\#?"));
    fc.assert(
      fc.property(idArb, idArb, idArb, (db, coll, id) => {
        const link = `dbs/${db}/colls/${coll}/docs/${id}`;
        const op = classify("GET", "/" + encodeURI(link), {});
        expect(op.segments).toEqual(["dbs", db, "colls", coll, "docs", id]);
        expect(op.signing).toEqual({ resourceType: "docs", resourceLink: link });
        expect(op.name).toBe("item.read");
      }),
      { numRuns: 2000 },
    );
  });
});
