import { ChangeFeedStartFrom, type CosmosClient, StatusCodes } from "@azure/cosmos";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyChain } from "../src/audit/verify.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { sdkError } from "./helpers/sdkError.js";

interface Row {
  seq: number;
  subject: string;
  decision: string;
  status: number;
  resource: string;
  actions: string;
  data: string;
}

function auditRows(h: Harness): Row[] {
  const db = new Database(h.gw.auditFile, { readonly: true });
  try {
    return db
      .prepare(
        "SELECT seq, subject, decision, status, resource, actions, data FROM audit_events ORDER BY seq",
      )
      .all() as Row[];
  } finally {
    db.close();
  }
}

// The suite runs against both upstreams: the embedded store (the default, `upstream: {type:
// embedded}`) and @vercel/cosmosdb-server (an independent implementation, reached as a `cosmos`
// upstream with key auth through a recorder), so the gateway is not tuned to our own store.
const UPSTREAMS = [
  { name: "the embedded store", upstream: "embedded", ownStore: true },
  { name: "a recording @vercel/cosmosdb-server", upstream: "recording", ownStore: false },
] as const;

describe.each(UPSTREAMS)(
  "the real @azure/cosmos SDK through the gateway to $name",
  ({ upstream, ownStore }) => {
    let h: Harness;
    let admin: CosmosClient;
    let reader: CosmosClient;

    beforeAll(async () => {
      h = await startHarness({ upstream });
      admin = h.client("alice", ["cosmos-admins"]);
      reader = h.client("bob", ["analysts"]);
    });
    afterAll(async () => {
      await h?.close();
    });

    it("lets an administrator create a database and a container (manage)", async () => {
      const { database, statusCode } = await admin.databases.create({ id: "shop" });
      expect(statusCode).toBe(StatusCodes.Created);
      const { container } = await database.containers.create({
        id: "orders",
        partitionKey: { paths: ["/customer"] },
      });
      expect(container.id).toBe("orders");
      const { resources } = await database.containers.readAll().fetchAll();
      expect(resources.map((c) => c.id)).toEqual(["orders"]);
    });

    it("creates, upserts, reads, replaces, patches and deletes items", async () => {
      const c = admin.database("shop").container("orders");
      expect((await c.items.create({ id: "o1", customer: "c1", total: 10 })).statusCode).toBe(201);
      expect((await c.items.upsert({ id: "o2", customer: "c2", total: 20 })).statusCode).toBe(201);
      expect((await c.items.upsert({ id: "o2", customer: "c2", total: 21 })).statusCode).toBe(200);
      const read = await c.item("o1", "c1").read();
      expect(read.resource).toMatchObject({ id: "o1", customer: "c1", total: 10 });
      const replaced = await c.item("o1", "c1").replace({ id: "o1", customer: "c1", total: 11 });
      expect(replaced.resource?.total).toBe(11);
      const patched = await c.item("o1", "c1").patch([{ op: "set", path: "/status", value: "paid" }]);
      expect(patched.resource).toMatchObject({ total: 11, status: "paid" });
      await c.items.create({ id: "gone", customer: "c3", total: 1 });
      expect((await c.item("gone", "c3").delete()).statusCode).toBe(204);
      expect((await c.item("gone", "c3").read()).statusCode).toBe(404);
    });

    it("runs single-partition and cross-partition queries", async () => {
      const c = admin.database("shop").container("orders");
      const cross = await c.items
        .query({ query: "SELECT c.id FROM c WHERE c.total > @min", parameters: [{ name: "@min", value: 5 }] })
        .fetchAll();
      expect(cross.resources.map((r) => r.id).sort()).toEqual(["o1", "o2"]);
      const single = await c.items
        .query("SELECT c.id, c.total FROM c WHERE c.customer = 'c1'", { partitionKey: "c1" })
        .fetchAll();
      expect(single.resources).toEqual([{ id: "o1", total: 11 }]);
    });

    // @vercel/cosmosdb-server ignores a query's partition key (COSMOS-WIRE.md), so this holds on our store only.
    if (ownStore) {
      it("returns only the partition's items from a single-partition query", async () => {
        const c = admin.database("shop").container("orders");
        const all = await c.items.query("SELECT VALUE c.id FROM c", { partitionKey: "c2" }).fetchAll();
        expect(all.resources).toEqual(["o2"]);
      });
    }

    it("passes continuation tokens and upstream error bodies through unchanged", async () => {
      const c = admin.database("shop").container("orders");
      const pages = c.items.query("SELECT c.id FROM c", { maxItemCount: 1 });
      const ids: string[] = [];
      let continuations = 0;
      while (pages.hasMoreResults()) {
        const page = await pages.fetchNext();
        ids.push(...page.resources.map((r: { id: string }) => r.id));
        if (page.continuationToken) continuations++;
      }
      expect(ids.sort()).toEqual(["o1", "o2"]);
      expect(continuations).toBeGreaterThanOrEqual(1);
      const conflict = await sdkError(() => c.items.create({ id: "o1", customer: "c1" }));
      expect(conflict.code).toBe(409);
      const direct = await h.raw(
        "POST",
        "/dbs/shop/colls/orders/docs",
        {
          authorization: `type=aad&ver=1.0&sig=${await h.issuer.sign({ sub: "alice", groups: ["cosmos-admins"] })}`,
          "content-type": "application/json",
          "x-ms-documentdb-partitionkey": '["c1"]',
        },
        JSON.stringify({ id: "o1", customer: "c1" }),
      );
      expect(direct.status).toBe(409);
      expect(direct.json()).toMatchObject({ code: "Conflict" });
    });

    it("runs a transactional batch and a bulk call", async () => {
      const c = admin.database("shop").container("orders");
      const batch = await c.items.batch(
        [
          { operationType: "Create" as const, resourceBody: { id: "b1", customer: "c9", total: 1 } },
          { operationType: "Create" as const, resourceBody: { id: "b2", customer: "c9", total: 2 } },
        ],
        "c9",
      );
      // (@vercel/cosmosdb-server cannot run batch Read/Replace/Delete/Upsert without a per-operation
      // partition key, which the SDK does not send; the embedded store's suite covers those.)
      expect(batch.result?.map((r) => r.statusCode)).toEqual([201, 201]);
      expect((await c.item("b2", "c9").read()).resource?.total).toBe(2);
      if (ownStore) {
        // Every operation type in one atomic batch, and a failing batch that changes nothing.
        const all = await c.items.batch(
          [
            { operationType: "Upsert" as const, resourceBody: { id: "b1", customer: "c9", total: 10 } },
            { operationType: "Read" as const, id: "b2" },
            {
              operationType: "Replace" as const,
              id: "b2",
              resourceBody: { id: "b2", customer: "c9", total: 20 },
            },
            {
              operationType: "Patch" as const,
              id: "b1",
              resourceBody: { operations: [{ op: "incr", path: "/total", value: 5 }] },
            },
            { operationType: "Delete" as const, id: "b2" },
          ],
          "c9",
        );
        expect(all.result?.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 204]);
        expect((await c.item("b1", "c9").read()).resource?.total).toBe(15);
        const failing = await c.items.batch(
          [
            { operationType: "Upsert" as const, resourceBody: { id: "b1", customer: "c9", total: 99 } },
            { operationType: "Create" as const, resourceBody: { id: "b1", customer: "c9" } },
          ],
          "c9",
        );
        expect(failing.result?.map((r) => r.statusCode)).toEqual([424, 409]);
        expect((await c.item("b1", "c9").read()).resource?.total).toBe(15);
      }
      const bulk = await c.items.executeBulkOperations([
        {
          operationType: "Create" as const,
          partitionKey: "c7",
          resourceBody: { id: "k1", customer: "c7", total: 7 },
        },
        {
          operationType: "Create" as const,
          partitionKey: "c8",
          resourceBody: { id: "k2", customer: "c8", total: 8 },
        },
      ]);
      expect(bulk.map((r) => r.response?.statusCode)).toEqual([201, 201]);
      expect((await c.item("k2", "c8").read()).resource?.total).toBe(8);
    });

    it("reads the item feed and the change feed", async () => {
      const feed = await h.raw("GET", "/dbs/shop/colls/orders/docs", {
        authorization: `type=aad&ver=1.0&sig=${await h.issuer.sign({ sub: "alice", groups: ["cosmos-admins"] })}`,
        "x-ms-version": "2020-07-15",
      });
      expect(feed.status).toBe(200);
      expect(feed.json().Documents.map((d: { id: string }) => d.id)).toContain("o1");
      const it = admin
        .database("shop")
        .container("orders")
        .items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
      const page = await it.readNext();
      expect(page.statusCode).toBe(200);
      expect(page.result.map((d: { id: string }) => d.id)).toContain("o2");
    });

    it("lets a reader read and query, and refuses each write with 403/5301", async () => {
      const c = reader.database("shop").container("orders");
      expect((await c.item("o1", "c1").read()).resource?.id).toBe("o1");
      const q = await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
      expect(q.resources[0]).toBeGreaterThan(0);
      const writes: [string, () => Promise<unknown>][] = [
        ["create", () => c.items.create({ id: "r1", customer: "c1" })],
        ["upsert", () => c.items.upsert({ id: "o1", customer: "c1" })],
        ["replace", () => c.item("o1", "c1").replace({ id: "o1", customer: "c1" })],
        ["patch", () => c.item("o1", "c1").patch([{ op: "set", path: "/x", value: 1 }])],
        ["delete", () => c.item("o1", "c1").delete()],
        ["manage", () => reader.database("shop").containers.create({ id: "evil", partitionKey: "/x" })],
      ];
      for (const [action, write] of writes) {
        const e = await sdkError(write);
        expect({ action, code: e.code, substatus: e.substatus }).toEqual({
          action,
          code: 403,
          substatus: 5301,
        });
        expect(e.message).toContain("bob");
      }
      // The SDK rewraps batch errors without their status, so the message is what shows the refusal.
      const batch = await sdkError(() =>
        c.items.batch(
          [{ operationType: "Create" as const, resourceBody: { id: "r2", customer: "c1" } }],
          "c1",
        ),
      );
      expect(batch.message).toMatch(
        /transactional batch refused as a whole: operation 0 \(Create\) is denied/,
      );
      // Nothing the reader tried changed the data.
      expect(
        (await admin.database("shop").container("orders").item("o1", "c1").read()).resource?.status,
      ).toBe("paid");
    });

    it("refuses a bulk request's denied operations in place and forwards the allowed ones", async () => {
      const scoped = h.client("dora", ["analysts"]);
      const res = await scoped
        .database("shop")
        .container("orders")
        .items.executeBulkOperations([
          { operationType: "Read" as const, id: "o1", partitionKey: "c1" },
          {
            operationType: "Create" as const,
            partitionKey: "c1",
            resourceBody: { id: "nope", customer: "c1" },
          },
        ]);
      expect(res[0].response?.statusCode).toBe(200);
      expect(res[1].response?.statusCode ?? (res[1].error as { code?: number })?.code).toBe(403);
      expect((await admin.database("shop").container("orders").item("nope", "c1").read()).statusCode).toBe(
        404,
      );
    });

    // Only the recording upstream shows what the gateway sent.
    if (!ownStore) {
      it("signs upstream requests with the gateway's key and never forwards the caller's token", () => {
        expect(h.seen.length).toBeGreaterThan(10);
        for (const r of h.seen) {
          expect(String(r.headers.authorization)).toMatch(/^type%3Dmaster%26ver%3D1\.0%26sig%3D/);
          expect(r.headers["x-ms-date"]).toBeTruthy();
        }
      });
    }

    it("audits every request with the right decision, and the chain verifies", () => {
      const rows = auditRows(h);
      expect(rows.length).toBeGreaterThan(20);
      const denied = rows.filter((r) => r.decision === "deny");
      expect(denied.length).toBeGreaterThanOrEqual(7);
      expect(denied.every((r) => r.status === 403 && r.subject === "bob")).toBe(true);
      expect(
        new Set(denied.filter((r) => r.subject === "bob").map((r) => JSON.parse(r.actions).join(","))),
      ).toEqual(new Set(["create", "upsert", "replace", "patch", "delete", "manage"]));
      const allowedAlice = rows.filter((r) => r.subject === "alice" && r.decision === "allow");
      expect(
        allowedAlice.some((r) => r.resource === "/dbs/shop/colls/orders/docs/o1" && r.status === 200),
      ).toBe(true);
      // No record carries a token.
      for (const r of rows) expect(r.data).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
      const db = new Database(h.gw.auditFile, { readonly: true });
      try {
        expect(verifyChain(db)).toMatchObject({ ok: true, count: rows.length });
      } finally {
        db.close();
      }
    });
  },
);
