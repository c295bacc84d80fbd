import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../query/index.js";
import { DevStoreError } from "./errors.js";
import { DevStoreDb } from "./store.js";
import type { ContainerInfo } from "./types.js";

const T0 = Date.UTC(2030, 0, 1);

function parse(text: string | undefined): JsonObject {
  return JSON.parse(text ?? "null") as JsonObject;
}

function errorOf(fn: () => unknown): DevStoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DevStoreError) return err;
    throw err;
  }
  throw new Error("expected a DevStoreError");
}

describe("DevStoreDb", () => {
  let clock = T0;
  let store: DevStoreDb;
  let c: ContainerInfo;
  const pk = (v: string) => JSON.stringify([v]);

  beforeEach(() => {
    clock = T0;
    store = DevStoreDb.open(":memory:", { now: () => clock });
    store.createDatabase({ id: "shop" });
    store.createContainer("shop", { id: "orders", partitionKey: { paths: ["/customer"] } });
    c = store.container("shop", "orders");
  });
  afterEach(() => store.close());

  it("stamps system properties in Cosmos DB's shape and returns the stored text on reads", () => {
    const created = store.createItem(c, pk("c1"), { id: "o1", customer: "c1", total: 5 }, false);
    expect(created.status).toBe(201);
    const doc = parse(created.body);
    expect(doc).toMatchObject({
      id: "o1",
      customer: "c1",
      total: 5,
      _attachments: "attachments/",
      _ts: T0 / 1000,
    });
    // Item rid: 16 bytes beginning with the container's 8 (which begin with the database's 4).
    const rid = Buffer.from(String(doc._rid).replace(/-/g, "/"), "base64");
    expect(rid.length).toBe(16);
    expect(Buffer.from(c.rid.replace(/-/g, "/"), "base64").length).toBe(8);
    expect(rid.subarray(0, 8).equals(Buffer.from(c.rid.replace(/-/g, "/"), "base64"))).toBe(true);
    expect(doc._self).toBe(`${c.self}docs/${doc._rid}/`);
    expect(doc._etag).toMatch(/^"[0-9a-f-]{36}"$/);
    const read = store.readItem(c, "o1", pk("c1"));
    expect(read.body).toBe(created.body);
    expect(read.etag).toBe(doc._etag);
  });

  it("answers 409 to a duplicate id in one partition, but keys items by (partition, id)", () => {
    store.createItem(c, pk("c1"), { id: "o1", customer: "c1" }, false);
    expect(errorOf(() => store.createItem(c, pk("c1"), { id: "o1", customer: "c1" }, false)).status).toBe(
      409,
    );
    expect(store.createItem(c, pk("c2"), { id: "o1", customer: "c2" }, false).status).toBe(201);
  });

  it("answers 400 with substatus 1001 when the document's partition key differs from the request's", () => {
    const err = errorOf(() => store.createItem(c, pk("c2"), { id: "o1", customer: "c1" }, false));
    expect(err.status).toBe(400);
    expect(err.substatus).toBe(1001);
    expect(err.message).toMatch(
      /PartitionKey extracted from document doesn't match the one specified in the header/,
    );
    // A missing partition key property is the "undefined" key [{}].
    expect(store.createItem(c, JSON.stringify([{}]), { id: "nokey" }, false).status).toBe(201);
  });

  it("replaces in place (same _rid, new etag) and refuses a stale If-Match with 412", () => {
    const v1 = parse(store.createItem(c, pk("c1"), { id: "o1", customer: "c1", v: 1 }, false).body);
    const v2 = parse(store.replaceItem(c, "o1", pk("c1"), { id: "o1", customer: "c1", v: 2 }).body);
    expect(v2._rid).toBe(v1._rid);
    expect(v2._etag).not.toBe(v1._etag);
    expect(
      errorOf(() =>
        store.replaceItem(c, "o1", pk("c1"), { id: "o1", customer: "c1" }, { ifMatch: v1._etag as string }),
      ).status,
    ).toBe(412);
    expect(errorOf(() => store.deleteItem(c, "o1", pk("c1"), { ifMatch: v1._etag as string })).status).toBe(
      412,
    );
    expect(store.deleteItem(c, "o1", pk("c1"), { ifMatch: v2._etag as string }).status).toBe(204);
    expect(errorOf(() => store.readItem(c, "o1", pk("c1"))).status).toBe(404);
  });

  it("answers 304 to a read whose If-None-Match names the current etag", () => {
    const etag = store.createItem(c, pk("c1"), { id: "o1", customer: "c1" }, false).etag ?? "";
    expect(store.readItem(c, "o1", pk("c1"), etag).status).toBe(304);
    expect(store.readItem(c, "o1", pk("c1"), '"stale"').status).toBe(200);
  });

  it("refuses an item over 2 MB with 413 and stores nothing", () => {
    const err = errorOf(() =>
      store.createItem(c, pk("c1"), { id: "big", customer: "c1", pad: "x".repeat(2_100_000) }, false),
    );
    expect(err.status).toBe(413);
    expect(errorOf(() => store.readItem(c, "big", pk("c1"))).status).toBe(404);
    // The failed write handed out no LSN or position.
    const next = parse(store.createItem(c, pk("c1"), { id: "small", customer: "c1" }, false).body);
    expect(Buffer.from(String(next._rid).replace(/-/g, "/"), "base64").readUInt32LE(8)).toBe(1);
    expect(c.lsn).toBe(1);
    expect(c.pos).toBe(1);
  });

  describe("TTL", () => {
    beforeEach(() => {
      store.createContainer("shop", { id: "ttl", partitionKey: { paths: ["/p"] }, defaultTtl: 10 });
      c = store.container("shop", "ttl");
    });

    it("hides an item once its time is up, honours the item's own ttl (-1: never), and sweeps it", () => {
      store.createItem(c, pk("a"), { id: "dflt", p: "a" }, false);
      store.createItem(c, pk("a"), { id: "never", p: "a", ttl: -1 }, false);
      store.createItem(c, pk("a"), { id: "long", p: "a", ttl: 60 }, false);
      clock += 9_999;
      expect(store.readItem(c, "dflt", pk("a")).status).toBe(200);
      clock += 1;
      expect(errorOf(() => store.readItem(c, "dflt", pk("a"))).status).toBe(404);
      const ids = store.query(c, { query: "SELECT VALUE c.id FROM c" }, undefined, {}).items;
      expect(ids.map((t) => JSON.parse(t))).toEqual(["never", "long"]);
      expect(store.sweepExpired()).toBe(1);
      clock += 60_000;
      expect(store.sweepExpired()).toBe(1);
      expect(store.readItem(c, "never", pk("a")).status).toBe(200);
    });

    it("lets an expired id be created again, and applies a new default TTL to existing items", () => {
      store.createItem(c, pk("a"), { id: "x", p: "a" }, false);
      clock += 11_000;
      expect(store.createItem(c, pk("a"), { id: "x", p: "a" }, false).status).toBe(201);
      store.replaceContainer("shop", "ttl", { id: "ttl", partitionKey: { paths: ["/p"] } }); // TTL off
      clock += 3_600_000;
      expect(store.readItem(c, "x", pk("a")).status).toBe(200);
      store.replaceContainer("shop", "ttl", { id: "ttl", partitionKey: { paths: ["/p"] }, defaultTtl: 5 });
      expect(errorOf(() => store.readItem(c, "x", pk("a"))).status).toBe(404); // written an hour ago
    });

    it("refuses an invalid ttl", () => {
      expect(errorOf(() => store.createItem(c, pk("a"), { id: "z", p: "a", ttl: 0 }, false)).status).toBe(
        400,
      );
      expect(errorOf(() => store.createContainer("shop", { id: "bad", defaultTtl: 1.5 })).status).toBe(400);
    });
  });

  describe("change feed", () => {
    it("returns the latest version of each changed item in LSN order, resumes from its etag, 304 when nothing changed", () => {
      store.createItem(c, pk("c1"), { id: "a", customer: "c1", v: 1 }, false);
      store.createItem(c, pk("c2"), { id: "b", customer: "c2", v: 1 }, false);
      store.replaceItem(c, "a", pk("c1"), { id: "a", customer: "c1", v: 2 });
      const first = store.changeFeed(c, undefined, {});
      expect(first.items.map((t) => [parse(t).id, parse(t).v])).toEqual([
        ["b", 1],
        ["a", 2],
      ]);
      expect(first.etag).toBe('"3"');
      expect(store.changeFeed(c, undefined, { ifNoneMatch: first.etag }).items).toEqual([]);
      store.createItem(c, pk("c1"), { id: "c", customer: "c1" }, false);
      const next = store.changeFeed(c, undefined, { ifNoneMatch: first.etag });
      expect(next.items.map((t) => parse(t).id)).toEqual(["c"]);
    });

    it("starts from now with '*', from a time with If-Modified-Since, pages by maxItemCount, filters by partition", () => {
      store.createItem(c, pk("c1"), { id: "old", customer: "c1" }, false);
      const now = store.changeFeed(c, undefined, { ifNoneMatch: "*" });
      expect(now.items).toEqual([]);
      clock += 5_000;
      store.createItem(c, pk("c1"), { id: "n1", customer: "c1" }, false);
      store.createItem(c, pk("c2"), { id: "n2", customer: "c2" }, false);
      store.createItem(c, pk("c1"), { id: "n3", customer: "c1" }, false);
      expect(store.changeFeed(c, undefined, { ifNoneMatch: now.etag }).items.length).toBe(3);
      expect(store.changeFeed(c, undefined, { since: T0 + 5_000 }).items.map((t) => parse(t).id)).toEqual([
        "n1",
        "n2",
        "n3",
      ]);
      const p1 = store.changeFeed(c, { text: pk("c1"), prefix: false }, {}, 2);
      expect(p1.items.map((t) => parse(t).id)).toEqual(["old", "n1"]);
      const p2 = store.changeFeed(c, { text: pk("c1"), prefix: false }, { ifNoneMatch: p1.etag }, 2);
      expect(p2.items.map((t) => parse(t).id)).toEqual(["n3"]);
    });

    it("refuses a continuation it did not issue", () => {
      expect(errorOf(() => store.changeFeed(c, undefined, { ifNoneMatch: '"abc"' })).status).toBe(400);
    });
  });

  describe("batch", () => {
    it("runs an atomic batch in one transaction: when one operation fails, it reports its status, the others 424, and nothing changes", () => {
      store.createItem(c, pk("c1"), { id: "keep", customer: "c1", v: 1 }, false);
      const lsn = c.lsn;
      const out = store.batch(
        c,
        [
          { operationType: "Upsert", resourceBody: { id: "keep", customer: "c1", v: 2 } },
          { operationType: "Create", resourceBody: { id: "new", customer: "c1" } },
          { operationType: "Create", resourceBody: { id: "keep", customer: "c1" } },
          { operationType: "Delete", id: "keep" },
        ],
        { atomic: true, partitionKey: pk("c1"), continueOnError: false },
      );
      expect(out.status).toBe(207);
      expect(out.results.map((r) => r.statusCode)).toEqual([424, 424, 409, 424]);
      expect(parse(store.readItem(c, "keep", pk("c1")).body).v).toBe(1);
      expect(errorOf(() => store.readItem(c, "new", pk("c1"))).status).toBe(404);
      expect(c.lsn).toBe(lsn);
    });

    it("runs every operation type in a successful atomic batch", () => {
      store.createItem(c, pk("c1"), { id: "r", customer: "c1", n: 1 }, false);
      const out = store.batch(
        c,
        [
          { operationType: "Create", resourceBody: { id: "a", customer: "c1" } },
          { operationType: "Upsert", resourceBody: { id: "b", customer: "c1" } },
          { operationType: "Read", id: "r" },
          { operationType: "Replace", id: "a", resourceBody: { id: "a", customer: "c1", x: 1 } },
          {
            operationType: "Patch",
            id: "r",
            resourceBody: { operations: [{ op: "incr", path: "/n", value: 2 }] },
          },
          { operationType: "Delete", id: "b" },
        ],
        { atomic: true, partitionKey: pk("c1"), continueOnError: false },
      );
      expect(out.status).toBe(200);
      expect(out.results.map((r) => r.statusCode)).toEqual([201, 201, 200, 200, 200, 204]);
      expect(parse(store.readItem(c, "r", pk("c1")).body).n).toBe(3);
    });

    it("refuses an atomic batch whose operations name another partition key", () => {
      const err = errorOf(() =>
        store.batch(c, [{ operationType: "Read", id: "x", partitionKey: '["c2"]' }], {
          atomic: true,
          partitionKey: pk("c1"),
          continueOnError: false,
        }),
      );
      expect(err.message).toMatch(/different partition key value than the request/);
    });

    it("runs bulk operations each on its own: mixed outcomes answer 207, and continueOnError false stops at the first failure", () => {
      const mixed = store.batch(
        c,
        [
          { operationType: "Create", partitionKey: '["c1"]', resourceBody: { id: "a", customer: "c1" } },
          { operationType: "Create", partitionKey: '["c1"]', resourceBody: { id: "a", customer: "c1" } },
          { operationType: "Create", partitionKey: '["c2"]', resourceBody: { id: "b", customer: "c2" } },
        ],
        { atomic: false, continueOnError: true },
      );
      expect(mixed.status).toBe(207);
      expect(mixed.results.map((r) => r.statusCode)).toEqual([201, 409, 201]);
      expect(store.readItem(c, "b", pk("c2")).status).toBe(200);
      const stop = store.batch(
        c,
        [
          { operationType: "Read", partitionKey: '["c1"]', id: "missing" },
          { operationType: "Create", partitionKey: '["c1"]', resourceBody: { id: "later", customer: "c1" } },
        ],
        { atomic: false, continueOnError: false },
      );
      expect(stop.results.map((r) => r.statusCode)).toEqual([404, 424]);
      expect(errorOf(() => store.readItem(c, "later", pk("c1"))).status).toBe(404);
    });
  });

  describe("queries", () => {
    beforeEach(() => {
      for (let i = 0; i < 7; i++) {
        store.createItem(c, pk(`c${i % 2}`), { id: `o${i}`, customer: `c${i % 2}`, n: i }, false);
      }
    });

    function all(query: string, maxItemCount: number, partition?: string): unknown[] {
      const out: unknown[] = [];
      let continuation: string | undefined;
      let pages = 0;
      do {
        const page = store.query(c, { query }, partition ? { text: partition, prefix: false } : undefined, {
          maxItemCount,
          continuation,
        });
        out.push(...page.items.map((t) => JSON.parse(t)));
        continuation = page.continuation;
        if (++pages > 20) throw new Error("too many pages");
      } while (continuation !== undefined);
      return out;
    }

    it("pages a streamable query by position and a sorted one by results, with no loss or repeat", () => {
      expect(all("SELECT VALUE c.id FROM c", 2)).toEqual(["o0", "o1", "o2", "o3", "o4", "o5", "o6"]);
      expect(all("SELECT VALUE c.n FROM c ORDER BY c.n DESC", 3)).toEqual([6, 5, 4, 3, 2, 1, 0]);
      expect(all("SELECT TOP 5 VALUE c.n FROM c", 2)).toEqual([0, 1, 2, 3, 4]);
      expect(all("SELECT VALUE c.n FROM c OFFSET 2 LIMIT 3", 2)).toEqual([2, 3, 4]);
    });

    it("honours the partition key of a single-partition query", () => {
      expect(all("SELECT VALUE c.id FROM c", 100, pk("c1"))).toEqual(["o1", "o3", "o5"]);
      expect(all("SELECT VALUE COUNT(1) FROM c", 100, pk("c0"))).toEqual([4]);
    });

    it("refuses a continuation from another query", () => {
      const page = store.query(c, { query: "SELECT * FROM c" }, undefined, { maxItemCount: 1 });
      expect(page.continuation).toBeDefined();
      const err = errorOf(() =>
        store.query(c, { query: "SELECT c.id FROM c" }, undefined, {
          maxItemCount: 1,
          continuation: page.continuation,
        }),
      );
      expect(err.status).toBe(400);
    });

    it("sees a write made between pages of a streamable query exactly once when it lands after the cursor", () => {
      const page = store.query(c, { query: "SELECT VALUE c.id FROM c" }, undefined, { maxItemCount: 3 });
      store.createItem(c, pk("c9"), { id: "late", customer: "c9" }, false);
      store.deleteItem(c, "o6", pk("c0"));
      const rest = store.query(c, { query: "SELECT VALUE c.id FROM c" }, undefined, {
        maxItemCount: 100,
        continuation: page.continuation,
      });
      expect([...page.items, ...rest.items].map((t) => JSON.parse(t))).toEqual([
        "o0",
        "o1",
        "o2",
        "o3",
        "o4",
        "o5",
        "late",
      ]);
    });
  });

  it("enforces unique keys within a partition", () => {
    store.createContainer("shop", {
      id: "users",
      partitionKey: { paths: ["/tenant"] },
      uniqueKeyPolicy: { uniqueKeys: [{ paths: ["/email"] }] },
    });
    const u = store.container("shop", "users");
    store.createItem(u, pk("t1"), { id: "1", tenant: "t1", email: "a@x" }, false);
    expect(
      errorOf(() => store.createItem(u, pk("t1"), { id: "2", tenant: "t1", email: "a@x" }, false)).status,
    ).toBe(409);
    expect(store.createItem(u, pk("t2"), { id: "2", tenant: "t2", email: "a@x" }, false).status).toBe(201);
    // Replacing an item with its own value is not a violation.
    expect(store.replaceItem(u, "1", pk("t1"), { id: "1", tenant: "t1", email: "a@x", n: 1 }).status).toBe(
      200,
    );
  });

  it("keeps hierarchical keys, reads a prefix of them, and maps them onto the SDK's effective-partition-key space", () => {
    store.createContainer("shop", {
      id: "h",
      partitionKey: { paths: ["/a", "/b"], kind: "MultiHash", version: 2 },
    });
    const h = store.container("shop", "h");
    store.createItem(h, '["x","1"]', { id: "1", a: "x", b: "1" }, false);
    store.createItem(h, '["x","2"]', { id: "2", a: "x", b: "2" }, false);
    store.createItem(h, '["y","1"]', { id: "3", a: "y", b: "1" }, false);
    const prefix = store.query(h, { query: "SELECT VALUE c.id FROM c" }, { text: '["x"]', prefix: true }, {});
    expect(prefix.items.map((t) => JSON.parse(t))).toEqual(["1", "2"]);
    // EPK of ["x"] from the SDK's own hashing (see epk.test.ts): the range [epk, epk + "FF").
    const epkX = "11E3F358618BE9AA5BAFF4C7C74F0716";
    const keys = store.partitionsInEpkRange(h, epkX, `${epkX}FF`).map((p) => p.text);
    expect(keys.sort()).toEqual(['["x","1"]', '["x","2"]']);
    store.deletePartition(h, { text: '["x"]', prefix: true });
    expect(store.readFeed(h, undefined, {}).items.map((t) => parse(t).id)).toEqual(["3"]);
  });

  it("drops a container's items with it; a container created again under the same name is a new resource", () => {
    store.createItem(c, pk("c1"), { id: "o1", customer: "c1" }, false);
    const oldRid = c.rid;
    store.deleteContainer("shop", "orders");
    expect(errorOf(() => store.owner("shop", "orders")).substatus).toBe(1003);
    store.createContainer("shop", { id: "orders", partitionKey: { paths: ["/customer"] } });
    const again = store.container("shop", "orders");
    expect(again.rid).not.toBe(oldRid);
    expect(store.readFeed(again, undefined, {}).items).toEqual([]);
    expect(errorOf(() => store.createItem(c, pk("c1"), { id: "o2", customer: "c1" }, false)).status).toBe(
      404,
    );
  });
});

describe("DevStoreDb on disk", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "devstore-db-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps everything across a reopen, with 0600 files; LSNs and positions continue where they were", () => {
    const file = join(dir, "sub", "store.db");
    const a = DevStoreDb.open(file);
    a.createDatabase({ id: "d" });
    a.createContainer("d", { id: "c", partitionKey: { paths: ["/p"] }, defaultTtl: -1 });
    const c1 = a.container("d", "c");
    a.createItem(c1, '["k"]', { id: "1", p: "k" }, false);
    a.createItem(c1, '["k"]', { id: "2", p: "k" }, false);
    a.deleteItem(c1, "2", '["k"]');
    const feed = a.changeFeed(c1, undefined, {});
    a.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const b = DevStoreDb.open(file);
    try {
      const c2 = b.container("d", "c");
      expect(c2.rid).toBe(c1.rid);
      expect(c2.defaultTtl).toBe(-1);
      expect(parse(b.readItem(c2, "1", '["k"]').body).id).toBe("1");
      const third = parse(b.createItem(c2, '["k"]', { id: "3", p: "k" }, false).body);
      expect(Buffer.from(String(third._rid).replace(/-/g, "/"), "base64").readUInt32LE(8)).toBe(3);
      expect(b.changeFeed(c2, undefined, { ifNoneMatch: feed.etag }).items.map((t) => parse(t).id)).toEqual([
        "3",
      ]);
    } finally {
      b.close();
    }
  });

  it("refuses to open a file another store holds", () => {
    const file = join(dir, "store.db");
    const a = DevStoreDb.open(file);
    try {
      a.createDatabase({ id: "d" });
      expect(() => DevStoreDb.open(file)).toThrow(/lock|in use/i);
    } finally {
      a.close();
    }
  });
});
