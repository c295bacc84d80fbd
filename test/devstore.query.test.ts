// Conformance of the embedded store's query language (issue 4, item 3) through the real
// @azure/cosmos 4.9.3 SDK: each construct on a small fixture, with its exact expected result.
// Semantics follow the Cosmos DB NoSQL query reference on learn.microsoft.com; queries without
// ORDER BY have no defined order, so their results are compared sorted.
import type { Container, FeedOptions, JSONValue, SqlParameter } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { byId, type StoreHarness, sdkError, sorted, startStoreHarness } from "./helpers/devstore.js";

/** Seven products in three partitions (tenant). Prices sum to 598, quantities to 194, 9 tags in all. */
const PRODUCTS = [
  {
    id: "a1",
    tenant: "acme",
    name: "Anvil",
    kind: "tool",
    price: 50,
    qty: 3,
    tags: ["heavy", "metal"],
    dims: { w: 10, h: 5 },
    parts: [
      { n: "base", w: 30 },
      { n: "horn", w: 20 },
    ],
  },
  {
    id: "a2",
    tenant: "acme",
    name: "Rocket",
    kind: "vehicle",
    price: 500,
    qty: 1,
    tags: ["fast"],
    dims: { w: 2, h: 20 },
    parts: [{ n: "engine", w: 100 }],
  },
  { id: "a3", tenant: "acme", name: "Bird seed", kind: "food", price: 5, qty: 100, tags: [], parts: [] },
  {
    id: "b1",
    tenant: "bolt",
    name: "Hammer",
    kind: "tool",
    price: 25,
    qty: 10,
    tags: ["metal"],
    dims: { w: 3, h: 1 },
    parts: [
      { n: "head", w: 5 },
      { n: "handle", w: 2 },
    ],
  },
  {
    id: "b2",
    tenant: "bolt",
    name: "Wrench",
    kind: "tool",
    price: 15,
    qty: 0,
    tags: ["metal", "adjustable"],
    discount: null,
  },
  { id: "c1", tenant: "core", name: "apple", kind: "food", price: 1, qty: 50, tags: ["fresh", "red"] },
  {
    id: "c2",
    tenant: "core",
    name: "Banana",
    kind: "food",
    price: 2,
    qty: 30,
    tags: ["fresh"],
    discount: 0.5,
  },
];
const ALL_IDS = PRODUCTS.map((p) => p.id);

describe("embedded store: the query language through the real SDK", () => {
  let h: StoreHarness;
  let c: Container;

  async function q<T = JSONValue>(
    query: string,
    options?: FeedOptions,
    parameters?: SqlParameter[],
  ): Promise<T[]> {
    const { resources } = await c.items
      .query<T>(parameters ? { query, parameters } : query, options)
      .fetchAll();
    return resources;
  }
  /** All pages of a query with `maxItemCount`, checking each page's size. */
  async function pages<T = JSONValue>(query: string, options: FeedOptions): Promise<T[][]> {
    const it = c.items.query<T>(query, options);
    const out: T[][] = [];
    while (it.hasMoreResults()) {
      const page = await it.fetchNext();
      expect(page.resources.length).toBeLessThanOrEqual(options.maxItemCount ?? Number.POSITIVE_INFINITY);
      if (page.resources.length > 0) out.push(page.resources);
    }
    return out;
  }

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "q" });
    // Multi-property ORDER BY needs a matching composite index on the real service.
    c = (
      await database.containers.create({
        id: "products",
        partitionKey: { paths: ["/tenant"] },
        indexingPolicy: {
          compositeIndexes: [
            [
              { path: "/kind", order: "ascending" },
              { path: "/price", order: "descending" },
            ],
          ],
        },
      })
    ).container;
    for (const p of PRODUCTS) await c.items.create(p);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe("partition scoping", () => {
    it("a query with a partition key returns only that partition's items", async () => {
      const acme = await q<{ id: string; tenant: string }>("SELECT * FROM c", { partitionKey: "acme" });
      expect(acme.map((r) => r.id).sort()).toEqual(["a1", "a2", "a3"]);
      expect(new Set(acme.map((r) => r.tenant))).toEqual(new Set(["acme"]));
      expect(
        sorted(await q<string>("SELECT VALUE c.id FROM c WHERE c.kind = 'tool'", { partitionKey: "bolt" })),
      ).toEqual(["b1", "b2"]);
      expect(await q("SELECT VALUE COUNT(1) FROM c", { partitionKey: "core" })).toEqual([2]);
      expect(await q("SELECT VALUE c.id FROM c WHERE c.tenant = 'bolt'", { partitionKey: "acme" })).toEqual(
        [],
      );
      expect(await q("SELECT * FROM c", { partitionKey: "nobody" })).toEqual([]);
    });

    it("a cross-partition query returns matching items of every partition", async () => {
      expect(sorted(await q<string>("SELECT VALUE c.id FROM c WHERE c.kind = 'tool'"))).toEqual([
        "a1",
        "b1",
        "b2",
      ]);
      const all = await q<Record<string, unknown>>("SELECT * FROM c");
      expect(byId(all).map((r) => r.id)).toEqual(ALL_IDS);
      for (const r of all) {
        expect(r).toMatchObject(PRODUCTS.find((p) => p.id === r.id) as Record<string, unknown>);
        expect(typeof r._rid).toBe("string");
        expect(typeof r._etag).toBe("string");
        expect(typeof r._ts).toBe("number");
      }
    });

    it("reports a request charge on query pages", async () => {
      const page = await c.items.query("SELECT * FROM c").fetchNext();
      expect(page.requestCharge).toBeGreaterThan(0);
    });
  });

  describe("parameters", () => {
    it("binds scalar, array and TOP parameters", async () => {
      expect(
        sorted(
          await q<string>("SELECT VALUE c.id FROM c WHERE c.price > @min AND c.kind = @kind", undefined, [
            { name: "@min", value: 20 },
            { name: "@kind", value: "tool" },
          ]),
        ),
      ).toEqual(["a1", "b1"]);
      expect(
        sorted(
          await q<string>("SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)", undefined, [
            { name: "@ids", value: ["a1", "c2", "zz"] },
          ]),
        ),
      ).toEqual(["a1", "c2"]);
      expect(
        await q("SELECT TOP @n VALUE c.id FROM c ORDER BY c.price DESC", undefined, [
          { name: "@n", value: 2 },
        ]),
      ).toEqual(["a2", "a1"]);
      // A string parameter is a value, never query text.
      expect(
        await q("SELECT VALUE c.id FROM c WHERE c.name = @name", undefined, [
          { name: "@name", value: "x' OR 1=1 --" },
        ]),
      ).toEqual([]);
    });
  });

  describe("pages and continuation", () => {
    it("maxItemCount pages of a cross-partition query concatenate to the full result", async () => {
      const got = await pages<{ id: string }>("SELECT * FROM c", { maxItemCount: 2 });
      expect(got.length).toBeGreaterThanOrEqual(4);
      expect(
        got
          .flat()
          .map((r) => r.id)
          .sort(),
      ).toEqual(ALL_IDS);
    });

    it("maxItemCount pages of an ORDER BY query concatenate to the ordered result", async () => {
      const got = await pages<string>("SELECT VALUE c.id FROM c ORDER BY c.price", { maxItemCount: 3 });
      expect(got.flat()).toEqual(["c1", "c2", "a3", "b2", "b1", "a1", "a2"]);
      expect(got.length).toBeGreaterThanOrEqual(3);
    });

    it("maxItemCount pages of OFFSET LIMIT, DISTINCT and GROUP BY queries are still exact", async () => {
      expect(
        (
          await pages("SELECT VALUE c.id FROM c ORDER BY c.price OFFSET 1 LIMIT 4", { maxItemCount: 1 })
        ).flat(),
      ).toEqual(["c2", "a3", "b2", "b1"]);
      expect(
        sorted((await pages<string>("SELECT DISTINCT VALUE c.kind FROM c", { maxItemCount: 1 })).flat()),
      ).toEqual(["food", "tool", "vehicle"]);
      const groups = (
        await pages<{ kind: string; n: number }>("SELECT c.kind, COUNT(1) AS n FROM c GROUP BY c.kind", {
          maxItemCount: 1,
        })
      ).flat();
      expect([...groups].sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
        { kind: "food", n: 3 },
        { kind: "tool", n: 3 },
        { kind: "vehicle", n: 1 },
      ]);
    });

    it("a continuation token resumes the query in a new iterator", async () => {
      const first = await c.items
        .query("SELECT VALUE c.id FROM c WHERE c.tenant = 'acme'", { partitionKey: "acme", maxItemCount: 1 })
        .fetchNext();
      expect(first.resources).toHaveLength(1);
      expect(first.continuationToken).toBeTruthy();
      const rest: string[] = [];
      const it = c.items.query<string>("SELECT VALUE c.id FROM c WHERE c.tenant = 'acme'", {
        partitionKey: "acme",
        maxItemCount: 1,
        continuationToken: first.continuationToken,
      });
      while (it.hasMoreResults()) rest.push(...(await it.fetchNext()).resources);
      expect([...first.resources, ...rest].sort()).toEqual(["a1", "a2", "a3"]);
    });
  });

  describe("SELECT and FROM", () => {
    it("projects properties with aliases, nested paths and VALUE; omits undefined properties", async () => {
      expect(await q("SELECT c.id AS ident, c.dims.w AS width FROM c WHERE c.id = 'a1'")).toEqual([
        { ident: "a1", width: 10 },
      ]);
      expect(await q("SELECT c.id, c.dims FROM c WHERE c.id = 'a3'")).toEqual([{ id: "a3" }]);
      expect(await q("SELECT c.name FROM c WHERE c.id = 'b1'")).toEqual([{ name: "Hammer" }]);
      expect(await q("SELECT VALUE c.name FROM c WHERE c.id = 'b1'")).toEqual(["Hammer"]);
      // An undefined VALUE is not returned.
      expect(await q("SELECT VALUE c.dims FROM c WHERE c.id = 'a3'")).toEqual([]);
      expect(await q("SELECT VALUE c['name'] FROM c WHERE c.id = 'b1'")).toEqual(["Hammer"]);
      expect(await q("SELECT VALUE c.parts[1].n FROM c WHERE c.id = 'b1'")).toEqual(["handle"]);
    });

    it("accepts any FROM alias, and a container name before it", async () => {
      expect(await q("SELECT p.name FROM products p WHERE p.id = 'a1'")).toEqual([{ name: "Anvil" }]);
      expect(await q("SELECT VALUE root.id FROM root WHERE root.price = 500")).toEqual(["a2"]);
    });

    it("builds object and array literals", async () => {
      expect(
        await q(`SELECT VALUE {"id": c.id, "pair": [c.price, c.qty], "n": null} FROM c WHERE c.id = 'b1'`),
      ).toEqual([{ id: "b1", pair: [25, 10], n: null }]);
      expect(
        await q(`SELECT c.id, {"w": c.dims.w} AS d, [1, c.qty] AS arr FROM c WHERE c.id = 'a1'`),
      ).toEqual([{ id: "a1", d: { w: 10 }, arr: [1, 3] }]);
    });
  });

  describe("WHERE operators", () => {
    const ids = async (where: string) => sorted(await q<string>(`SELECT VALUE c.id FROM c WHERE ${where}`));

    it("comparison and logical operators", async () => {
      expect(await ids("c.price >= 25")).toEqual(["a1", "a2", "b1"]);
      expect(await ids("c.price < 5")).toEqual(["c1", "c2"]);
      expect(await ids("c.kind != 'food'")).toEqual(["a1", "a2", "b1", "b2"]);
      expect(await ids("c.kind = 'tool' AND NOT (c.price > 20) OR c.id = 'a2'")).toEqual(["a2", "b2"]);
      expect(await ids("c.qty = 0 OR c.qty = 1")).toEqual(["a2", "b2"]);
    });

    it("comparing values of different types matches nothing (the comparison is undefined)", async () => {
      expect(await ids("c.price > 'a'")).toEqual([]);
      expect(await ids("c.name < 10")).toEqual([]);
    });

    it("null and undefined", async () => {
      expect(await ids("c.discount = null")).toEqual(["b2"]);
      expect(await ids("IS_NULL(c.discount)")).toEqual(["b2"]);
      expect(await ids("NOT IS_DEFINED(c.dims)")).toEqual(["a3", "b2", "c1", "c2"]);
      expect(await ids("IS_DEFINED(c.discount)")).toEqual(["b2", "c2"]);
    });

    it("IN and NOT IN", async () => {
      expect(await ids("c.id IN ('a1', 'c2', 'zz')")).toEqual(["a1", "c2"]);
      expect(await ids("c.kind NOT IN ('food', 'tool')")).toEqual(["a2"]);
    });

    it("BETWEEN (inclusive)", async () => {
      expect(await ids("c.price BETWEEN 5 AND 25")).toEqual(["a3", "b1", "b2"]);
    });

    it("LIKE with % and _ (case-sensitive), and NOT LIKE", async () => {
      expect(await ids("c.name LIKE '%an%'")).toEqual(["c2"]);
      expect(await ids("c.name LIKE 'A%'")).toEqual(["a1"]);
      expect(await ids("c.name LIKE '_pple'")).toEqual(["c1"]);
      expect(await ids("c.name NOT LIKE '%e%'")).toEqual(["a1", "c2"]);
    });

    it("?? takes the right side only when the left is undefined (null stays null)", async () => {
      // Cosmos coalesce works on undefined, not null (dotnet/efcore#16152).
      const rows = await q<{ id: string; d: number | null }>(
        "SELECT c.id, c.discount ?? 0 AS d FROM c WHERE c.tenant != 'acme'",
      );
      expect(byId(rows)).toEqual([
        { id: "b1", d: 0 },
        { id: "b2", d: null },
        { id: "c1", d: 0 },
        { id: "c2", d: 0.5 },
      ]);
    });

    it("the ternary operator", async () => {
      const rows = await q<{ id: string; band: string }>(
        "SELECT c.id, (c.price > 20 ? 'expensive' : 'cheap') AS band FROM c WHERE c.tenant = 'bolt'",
      );
      expect(byId(rows)).toEqual([
        { id: "b1", band: "expensive" },
        { id: "b2", band: "cheap" },
      ]);
    });

    it("arithmetic and || string concatenation", async () => {
      expect(await q("SELECT VALUE c.price * c.qty + 1 FROM c WHERE c.id = 'b1'")).toEqual([251]);
      expect(
        await q("SELECT VALUE [c.price / 2, c.price % 7, -c.qty, c.price - 30] FROM c WHERE c.id = 'b1'"),
      ).toEqual([[12.5, 4, -10, -5]]);
      expect(await q("SELECT VALUE c.tenant || '/' || c.id FROM c WHERE c.kind = 'vehicle'")).toEqual([
        "acme/a2",
      ]);
      expect(await ids("c.price * 2 > 90")).toEqual(["a1", "a2"]);
    });
  });

  describe("ORDER BY, TOP, OFFSET LIMIT, DISTINCT", () => {
    it("ORDER BY ascending, descending, on strings (ordinal), and on several properties", async () => {
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price")).toEqual([
        "c1",
        "c2",
        "a3",
        "b2",
        "b1",
        "a1",
        "a2",
      ]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price ASC")).toEqual([
        "c1",
        "c2",
        "a3",
        "b2",
        "b1",
        "a1",
        "a2",
      ]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price DESC")).toEqual([
        "a2",
        "a1",
        "b1",
        "b2",
        "a3",
        "c2",
        "c1",
      ]);
      // Ordinal string order: upper case before lower case.
      expect(await q("SELECT VALUE c.name FROM c ORDER BY c.name")).toEqual([
        "Anvil",
        "Banana",
        "Bird seed",
        "Hammer",
        "Rocket",
        "Wrench",
        "apple",
      ]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.kind ASC, c.price DESC")).toEqual([
        "a3",
        "c2",
        "c1",
        "a1",
        "b1",
        "b2",
        "a2",
      ]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price DESC", { partitionKey: "acme" })).toEqual([
        "a2",
        "a1",
        "a3",
      ]);
    });

    it("TOP", async () => {
      expect(await q("SELECT TOP 2 VALUE c.id FROM c ORDER BY c.price DESC")).toEqual(["a2", "a1"]);
      expect(await q("SELECT TOP 1 c.name FROM c ORDER BY c.price")).toEqual([{ name: "apple" }]);
      const three = await q<string>("SELECT TOP 3 VALUE c.id FROM c");
      expect(three).toHaveLength(3);
      expect(new Set(three).size).toBe(3);
      for (const id of three) expect(ALL_IDS).toContain(id);
      expect(await q("SELECT TOP 10 VALUE c.id FROM c WHERE c.tenant = 'core' ORDER BY c.price")).toEqual([
        "c1",
        "c2",
      ]);
    });

    it("OFFSET LIMIT", async () => {
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price OFFSET 2 LIMIT 3")).toEqual([
        "a3",
        "b2",
        "b1",
      ]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price OFFSET 5 LIMIT 10")).toEqual(["a1", "a2"]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price OFFSET 10 LIMIT 1")).toEqual([]);
      expect(await q("SELECT VALUE c.id FROM c ORDER BY c.price OFFSET 0 LIMIT 0")).toEqual([]);
    });

    it("DISTINCT on values and on projections", async () => {
      expect(sorted(await q<string>("SELECT DISTINCT VALUE c.kind FROM c"))).toEqual([
        "food",
        "tool",
        "vehicle",
      ]);
      const kinds = await q<{ kind: string }>("SELECT DISTINCT c.kind FROM c");
      expect(kinds.map((k) => k.kind).sort()).toEqual(["food", "tool", "vehicle"]);
      expect(kinds).toHaveLength(3);
      expect(sorted(await q<string>("SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags"))).toEqual([
        "adjustable",
        "fast",
        "fresh",
        "heavy",
        "metal",
        "red",
      ]);
    });
  });

  describe("aggregates and GROUP BY", () => {
    it("COUNT, SUM, AVG, MIN, MAX over the container", async () => {
      expect(await q("SELECT VALUE COUNT(1) FROM c")).toEqual([7]);
      expect(await q("SELECT VALUE SUM(c.qty) FROM c")).toEqual([194]);
      const [avg] = await q<number>("SELECT VALUE AVG(c.price) FROM c");
      expect(avg).toBeCloseTo(598 / 7, 10);
      expect(await q("SELECT VALUE MIN(c.price) FROM c")).toEqual([1]);
      expect(await q("SELECT VALUE MAX(c.price) FROM c")).toEqual([500]);
      expect(await q("SELECT VALUE MIN(c.name) FROM c")).toEqual(["Anvil"]);
      expect(await q("SELECT VALUE MAX(c.name) FROM c")).toEqual(["apple"]);
      // COUNT of an expression counts the items where it is defined.
      expect(await q("SELECT VALUE COUNT(c.dims) FROM c")).toEqual([3]);
      expect(await q("SELECT VALUE COUNT(1) FROM c WHERE c.kind = 'none'")).toEqual([0]);
    });

    it("several aggregates in one projection, with a filter and with a partition key", async () => {
      expect(
        await q("SELECT COUNT(1) AS n, SUM(c.qty) AS q, MAX(c.price) AS hi FROM c WHERE c.kind = 'tool'"),
      ).toEqual([{ n: 3, q: 13, hi: 50 }]);
      expect(await q("SELECT VALUE SUM(c.price) FROM c", { partitionKey: "acme" })).toEqual([555]);
      expect(await q("SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags")).toEqual([9]);
    });

    it("GROUP BY one and two keys", async () => {
      const byKind = await q<{ kind: string; n: number; q: number }>(
        "SELECT c.kind, COUNT(1) AS n, SUM(c.qty) AS q FROM c GROUP BY c.kind",
      );
      expect([...byKind].sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
        { kind: "food", n: 3, q: 180 },
        { kind: "tool", n: 3, q: 13 },
        { kind: "vehicle", n: 1, q: 1 },
      ]);
      const two = await q<{ tenant: string; kind: string; n: number }>(
        "SELECT c.tenant, c.kind, COUNT(1) AS n FROM c GROUP BY c.tenant, c.kind",
      );
      expect(two.map((r) => `${r.tenant}/${r.kind}=${r.n}`).sort()).toEqual([
        "acme/food=1",
        "acme/tool=1",
        "acme/vehicle=1",
        "bolt/tool=2",
        "core/food=2",
      ]);
      expect(
        await q("SELECT c.kind, MIN(c.price) AS low FROM c GROUP BY c.kind", { partitionKey: "bolt" }),
      ).toEqual([{ kind: "tool", low: 15 }]);
    });
  });

  describe("JOIN and subqueries", () => {
    it("JOIN … IN unrolls arrays, and items without the array drop out", async () => {
      const rows = await q<{ id: string; n: string }>(
        "SELECT c.id, p.n FROM c JOIN p IN c.parts WHERE p.w >= 20",
      );
      expect([...rows].sort((a, b) => `${a.id}${a.n}`.localeCompare(`${b.id}${b.n}`))).toEqual([
        { id: "a1", n: "base" },
        { id: "a1", n: "horn" },
        { id: "a2", n: "engine" },
      ]);
      expect(
        sorted(await q<string>("SELECT VALUE t FROM c JOIN t IN c.tags WHERE c.tenant = 'bolt'")),
      ).toEqual(["adjustable", "metal", "metal"]);
      expect(
        await q("SELECT VALUE [t, p.n] FROM c JOIN t IN c.tags JOIN p IN c.parts WHERE c.id = 'b1'"),
      ).toEqual([
        ["metal", "head"],
        ["metal", "handle"],
      ]);
    });

    it("EXISTS and NOT EXISTS subqueries", async () => {
      const exists = "EXISTS(SELECT VALUE p FROM p IN c.parts WHERE p.w > 50)";
      expect(await q(`SELECT VALUE c.id FROM c WHERE ${exists}`)).toEqual(["a2"]);
      expect(sorted(await q<string>(`SELECT VALUE c.id FROM c WHERE NOT ${exists}`))).toEqual([
        "a1",
        "a3",
        "b1",
        "b2",
        "c1",
        "c2",
      ]);
    });

    it("ARRAY subqueries", async () => {
      const rows = await q<{ id: string; light: string[] }>(
        "SELECT c.id, ARRAY(SELECT VALUE p.n FROM p IN c.parts WHERE p.w < 25) AS light FROM c WHERE c.tenant = 'acme'",
      );
      expect(byId(rows)).toEqual([
        { id: "a1", light: ["horn"] },
        { id: "a2", light: [] },
        { id: "a3", light: [] },
      ]);
    });
  });

  describe("built-in functions (evaluated on b1: Hammer, price 25, qty 10, tags [metal], dims {w:3,h:1})", () => {
    const cases: [string, unknown][] = [
      // type checks
      ["IS_DEFINED(c.dims)", true],
      ["IS_DEFINED(c.nothing)", false],
      ["IS_NUMBER(c.price)", true],
      ["IS_STRING(c.price)", false],
      ["IS_STRING(c.name)", true],
      ["IS_BOOL(false)", true],
      ["IS_ARRAY(c.tags)", true],
      ["IS_OBJECT(c.dims)", true],
      ["IS_NULL(null)", true],
      ["IS_NULL(c.nothing)", false],
      ["IS_PRIMITIVE(c.name)", true],
      ["IS_PRIMITIVE(c.dims)", false],
      // strings
      ["CONCAT(c.id, '-', c.kind)", "b1-tool"],
      ["CONTAINS(c.name, 'mm')", true],
      ["CONTAINS(c.name, 'MM')", false],
      ["CONTAINS(c.name, 'MM', true)", true],
      ["STARTSWITH(c.name, 'Ham')", true],
      ["STARTSWITH(c.name, 'ham', true)", true],
      ["ENDSWITH(c.name, 'er')", true],
      ["INDEX_OF(c.name, 'm')", 2],
      ["INDEX_OF(c.name, 'z')", -1],
      ["LEFT(c.name, 2)", "Ha"],
      ["RIGHT(c.name, 2)", "er"],
      ["LENGTH(c.name)", 6],
      ["LOWER(c.name)", "hammer"],
      ["UPPER(c.name)", "HAMMER"],
      ["LTRIM('  x ')", "x "],
      ["RTRIM(' x  ')", " x"],
      ["TRIM('  x  ')", "x"],
      ["REPLACE(c.name, 'm', 'M')", "HaMMer"],
      ["REPLICATE('ab', 3)", "ababab"],
      ["REVERSE(c.name)", "remmaH"],
      ["SUBSTRING(c.name, 1, 3)", "amm"],
      ["ToString(c.qty)", "10"],
      // arrays
      ["ARRAY_CONTAINS(c.tags, 'metal')", true],
      ['ARRAY_CONTAINS(c.parts, {"n": "head"})', false],
      ['ARRAY_CONTAINS(c.parts, {"n": "head"}, true)', true],
      ["ARRAY_LENGTH(c.parts)", 2],
      ["ARRAY_CONCAT(c.tags, ['x'])", ["metal", "x"]],
      ["ARRAY_SLICE(['a', 'b', 'c'], 1)", ["b", "c"]],
      ["ARRAY_SLICE(['a', 'b', 'c'], 1, 1)", ["b"]],
      ["ARRAY_SLICE(['a', 'b', 'c'], -2, 1)", ["b"]],
      // math (ROUND rounds half away from zero)
      ["ABS(-3)", 3],
      ["CEILING(2.1)", 3],
      ["FLOOR(2.7)", 2],
      ["ROUND(2.5)", 3],
      ["ROUND(-2.6)", -3],
      ["TRUNC(2.7)", 2],
      ["POWER(2, 3)", 8],
      ["SQRT(16)", 4],
      ["SIGN(-5)", -1],
      // operators on this item
      ["c.nothing ?? 'fallback'", "fallback"],
      ["c.qty ?? 0", 10],
    ];
    it.each(cases)("SELECT VALUE %s", async (expr, expected) => {
      expect(await q(`SELECT VALUE ${expr} FROM c WHERE c.id = 'b1'`)).toEqual([expected]);
    });

    it("a function of an undefined argument is undefined, so no VALUE is returned", async () => {
      expect(await q("SELECT VALUE LOWER(c.nothing) FROM c WHERE c.id = 'b1'")).toEqual([]);
      expect(await q("SELECT VALUE c.nothing + 1 FROM c WHERE c.id = 'b1'")).toEqual([]);
    });
  });

  describe("what the store cannot run", () => {
    it("answers 400 naming the unsupported function, never a wrong result", async () => {
      const err = await sdkError(() =>
        q(`SELECT VALUE ST_DISTANCE(c.loc, {"type": "Point", "coordinates": [0, 0]}) FROM c`),
      );
      expect(err.code).toBe(400);
      expect(err.message).toMatch(/ST_DISTANCE/);
    });

    it("answers 400 to a syntax error, naming the offending token", async () => {
      const err = await sdkError(() => q("SELECT * FORM c"));
      expect(err.code).toBe(400);
      expect(err.message).toMatch(/FORM/);
    });

    it("answers 404 to a query on a container that does not exist", async () => {
      const { database } = await h.client().databases.createIfNotExists({ id: "q" });
      const err = await sdkError(() =>
        database.container("nothere").items.query("SELECT * FROM c").fetchAll(),
      );
      expect(err.code).toBe(404);
    });
  });

  describe("the query-plan path (forceQueryPlan: the SDK asks for a plan, reads pkranges, queries per range)", () => {
    it("returns the same results as the direct path", async () => {
      const opts = { forceQueryPlan: true };
      expect(sorted(await q<string>("SELECT VALUE c.id FROM c WHERE c.price > 10", opts))).toEqual([
        "a1",
        "a2",
        "b1",
        "b2",
      ]);
      expect(await q("SELECT TOP 2 VALUE c.id FROM c ORDER BY c.price DESC", opts)).toEqual(["a2", "a1"]);
      expect(await q("SELECT VALUE COUNT(1) FROM c", opts)).toEqual([7]);
      expect(sorted(await q<string>("SELECT DISTINCT VALUE c.kind FROM c", opts))).toEqual([
        "food",
        "tool",
        "vehicle",
      ]);
    });
  });
});

describe("embedded store: results larger than one default page", () => {
  let h: StoreHarness;
  let c: Container;

  beforeAll(async () => {
    h = await startStoreHarness();
    const { database } = await h.client().databases.create({ id: "big" });
    c = (await database.containers.create({ id: "many", partitionKey: { paths: ["/p"] } })).container;
    for (const p of ["x", "y", "z"]) {
      for (let start = 0; start < 100; start += 50) {
        const operations = Array.from({ length: 50 }, (_, i) => ({
          operationType: "Create" as const,
          resourceBody: { id: `${p}${start + i}`, p, n: start + i },
        }));
        await c.items.batch(operations, p);
      }
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it("fetchAll follows the server's continuations to all 300 items, in ORDER BY order when asked", async () => {
    const all = await c.items.query<{ id: string }>("SELECT c.id FROM c").fetchAll();
    expect(all.resources).toHaveLength(300);
    expect(new Set(all.resources.map((r) => r.id)).size).toBe(300);
    const ordered = await c.items
      .query<number>("SELECT VALUE c.n FROM c WHERE c.p = 'y' ORDER BY c.n DESC")
      .fetchAll();
    expect(ordered.resources).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
    const feed = await c.items.readAll().fetchAll();
    expect(feed.resources).toHaveLength(300);
  });
});
