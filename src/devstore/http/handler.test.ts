import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classify } from "../../cosmos/classify.js";
import { rfc7231Date, signMasterKey } from "../../cosmos/masterKey.js";
import { type DevStore, EMULATOR_KEY, startDevStore } from "../server.js";

/** A raw client: signs like the SDK (unless told otherwise) and returns status, headers and parsed body. */
async function call(
  store: DevStore,
  method: string,
  path: string,
  opts: {
    body?: unknown;
    headers?: Record<string, string>;
    key?: string | null;
    date?: Date;
    rawBody?: string;
  } = {},
): Promise<{ status: number; headers: Headers; body: Body; text: string }> {
  const headers: Record<string, string> = { "x-ms-version": "2020-07-15", ...opts.headers };
  if (opts.key !== null) {
    const date = rfc7231Date(opts.date ?? new Date());
    // Sign what the path means (an id with "?" signs in full, as the SDK does).
    const op = classify(method, path.replace(/\?/g, "%3F"), {});
    headers["x-ms-date"] = date;
    headers.authorization = signMasterKey({
      verb: method,
      resourceType: op.signing.resourceType,
      resourceLink: op.signing.resourceLink,
      date,
      key: opts.key ?? EMULATOR_KEY,
    });
  }
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(store.origin + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

// biome-ignore lint/suspicious/noExplicitAny: test assertions read whatever JSON came back
type Body = any;

const PK = (v: string) => ({ "x-ms-documentdb-partitionkey": JSON.stringify([v]) });
const QUERY = { "x-ms-documentdb-isquery": "true", "content-type": "application/query+json" };

describe("the embedded store's wire", () => {
  let dir: string;
  let store: DevStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "devstore-wire-"));
    store = await startDevStore({ file: join(dir, "store.db"), masterKey: EMULATOR_KEY });
    expect((await call(store, "POST", "/dbs", { body: { id: "d" } })).status).toBe(201);
    const coll = await call(store, "POST", "/dbs/d/colls", {
      body: { id: "c", partitionKey: { paths: ["/p"], kind: "Hash" } },
    });
    expect(coll.status).toBe(201);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("authentication", () => {
    it("answers 401 with a Cosmos-shaped body when the signature is missing, wrong, or too old", async () => {
      const missing = await call(store, "GET", "/dbs", { key: null });
      expect(missing.status).toBe(401);
      expect(missing.body).toMatchObject({ code: "Unauthorized" });
      const wrong = await call(store, "GET", "/dbs", { key: Buffer.alloc(32, 7).toString("base64") });
      expect(wrong.status).toBe(401);
      expect(wrong.body.message).toMatch(/payload to sign: 'get\\ndbs\\n\\n/);
      const old = await call(store, "GET", "/dbs", { date: new Date(Date.now() - 16 * 60_000) });
      expect(old.status).toBe(401);
      expect(old.body.message).toMatch(/not valid at the current time/);
      const aad = await call(store, "GET", "/dbs", {
        key: null,
        headers: { authorization: "type=aad&ver=1.0&sig=x.y.z", "x-ms-date": rfc7231Date(new Date()) },
      });
      expect(aad.status).toBe(401);
    });

    it("accepts the signature URL-encoded (SDK) or not, and signs ids as the SDK does", async () => {
      expect((await call(store, "GET", "/dbs/d")).status).toBe(200);
      const date = rfc7231Date(new Date());
      const sig = decodeURIComponent(
        signMasterKey({ verb: "GET", resourceType: "dbs", resourceLink: "dbs/d", date, key: EMULATOR_KEY }),
      );
      const plain = await call(store, "GET", "/dbs/d", {
        key: null,
        headers: { authorization: sig, "x-ms-date": date },
      });
      expect(plain.status).toBe(200);
    });

    it("needs no signature when the store has no master key", async () => {
      const open = await startDevStore({ file: join(dir, "open.db") });
      try {
        expect((await call(open, "GET", "/", { key: null })).status).toBe(200);
      } finally {
        await open.close();
      }
    });
  });

  it("answers the account read with one region at the address the client used", async () => {
    const r = await call(store, "GET", "/");
    expect(r.status).toBe(200);
    expect(r.body.writableLocations).toEqual([
      { name: "Local", databaseAccountEndpoint: `${store.origin}/` },
    ]);
    expect(r.body.readableLocations).toEqual(r.body.writableLocations);
    expect(r.body.userConsistencyPolicy.defaultConsistencyLevel).toBe("Session");
  });

  it("refuses hostile and unknown paths with 400/404 Cosmos bodies, never a 500", async () => {
    for (const path of [
      "/dbs/../dbs",
      "/dbs/a%2Fb",
      "/nope",
      "/dbs/d/colls/c/docs/x/y/z",
      "/dbs/d/widgets",
      "/dbs//colls",
      "/dbs/%ZZ",
    ]) {
      const r = await call(store, "GET", path, {
        key: null,
        headers: { authorization: "type=master&ver=1.0&sig=x" },
      });
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      expect(r.body, path).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
    const missing = await call(store, "GET", "/dbs/nope/colls/c/docs/x", { headers: PK("a") });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-ms-substatus")).toBe("1003");
  });

  it("answers 400 to malformed JSON, 413 to bodies over the limits, 431 to huge headers", async () => {
    const bad = await call(store, "POST", "/dbs/d/colls/c/docs", {
      rawBody: "{not json",
      headers: { ...PK("a"), "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("BadRequest");
    const big = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "big", p: "a", pad: "x".repeat(2_200_000) },
      headers: PK("a"),
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe("RequestEntityTooLarge");
    const huge = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "h", p: "a", pad: "x".repeat(5_000_000) },
      headers: PK("a"),
    });
    expect(huge.status).toBe(413);
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(store.origin);
      const req = httpRequest(
        { host: u.hostname, port: u.port, path: "/", headers: { "x-big": "y".repeat(40_000) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it("requires the partition key header on point operations", async () => {
    const r = await call(store, "GET", "/dbs/d/colls/c/docs/x");
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/PartitionKey value must be supplied/);
  });

  it("carries item ids with '?', '&', '+' and spaces through the path", async () => {
    const id = "a b?c&d=e+f";
    const created = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id, p: "a" },
      headers: PK("a"),
    });
    expect(created.status).toBe(201);
    const read = await call(store, "GET", `/dbs/d/colls/c/docs/${encodeURI(id)}`, { headers: PK("a") });
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(id);
  });

  it("sends session tokens, owner ids, etags and a request charge on item answers", async () => {
    const r = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "h1", p: "a" },
      headers: PK("a"),
    });
    expect(r.headers.get("x-ms-session-token")).toMatch(/^0:-1#\d+$/);
    expect(Buffer.from(String(r.headers.get("x-ms-content-path")).replace(/-/g, "/"), "base64").length).toBe(
      8,
    );
    expect(r.headers.get("x-ms-alt-content-path")).toBe("dbs/d/colls/c");
    expect(r.headers.get("etag")).toBe(r.body._etag);
    expect(Number(r.headers.get("x-ms-request-charge"))).toBeGreaterThan(1);
    expect(r.headers.get("x-ms-activity-id")).toMatch(/^[0-9a-f-]{36}$/);
    const up = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "h1", p: "a", v: 2 },
      headers: { ...PK("a"), "x-ms-documentdb-is-upsert": "true" },
    });
    expect(up.status).toBe(200);
    const minimal = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "h2", p: "a" },
      headers: { ...PK("a"), prefer: "return=minimal" },
    });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe("");
  });

  it("pages queries with x-ms-max-item-count and an opaque continuation; answers query plans", async () => {
    for (const id of ["q1", "q2", "q3"]) {
      await call(store, "POST", "/dbs/d/colls/c/docs", { body: { id, p: "q" }, headers: PK("q") });
    }
    const first = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { query: "SELECT VALUE c.id FROM c WHERE c.p = @p", parameters: [{ name: "@p", value: "q" }] },
      headers: { ...QUERY, "x-ms-max-item-count": "2" },
    });
    expect(first.body.Documents).toEqual(["q1", "q2"]);
    expect(first.headers.get("x-ms-item-count")).toBe("2");
    const token = first.headers.get("x-ms-continuation") ?? "";
    expect(token).not.toBe("");
    const second = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { query: "SELECT VALUE c.id FROM c WHERE c.p = @p", parameters: [{ name: "@p", value: "q" }] },
      headers: { ...QUERY, "x-ms-max-item-count": "2", "x-ms-continuation": token },
    });
    expect(second.body.Documents).toEqual(["q3"]);
    expect(second.headers.get("x-ms-continuation")).toBeNull();

    const plan = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { query: "SELECT VALUE COUNT(1) FROM c" },
      headers: { "x-ms-cosmos-is-query-plan-request": "True", "content-type": "application/query+json" },
    });
    expect(plan.status).toBe(200);
    expect(plan.body.queryRanges).toEqual([
      { min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false },
    ]);
    expect(plan.body.queryInfo).toMatchObject({
      aggregates: [],
      orderBy: [],
      rewrittenQuery: "",
      hasSelectValue: true,
    });

    const bad = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { query: "SELECT * FORM c" },
      headers: QUERY,
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: "BadRequest", message: expect.stringMatching(/FORM/) });
    expect(bad.body.additionalErrorInfo).toBeUndefined(); // else the SDK would retry with the plan
    const badCount = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { query: "SELECT * FROM c" },
      headers: { ...QUERY, "x-ms-max-item-count": "many" },
    });
    expect(badCount.status).toBe(400);
  });

  it("serves the change feed: 304 with an etag when nothing changed, '*' from now, the etag to resume", async () => {
    const path = "/dbs/d/colls/c/docs";
    const feed = { "a-im": "Incremental Feed", ...PK("cf") };
    const empty = await call(store, "GET", path, { headers: feed });
    expect(empty.status).toBe(304);
    const etag = empty.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"\d+"$/);
    await call(store, "POST", path, { body: { id: "cf1", p: "cf" }, headers: PK("cf") });
    const changed = await call(store, "GET", path, { headers: { ...feed, "if-none-match": etag } });
    expect(changed.status).toBe(200);
    expect(changed.body.Documents.map((d: { id: string }) => d.id)).toEqual(["cf1"]);
    const now = await call(store, "GET", path, { headers: { ...feed, "if-none-match": "*" } });
    expect(now.status).toBe(304);
    const allVersions = await call(store, "GET", path, { headers: { "a-im": "Full-Fidelity Feed" } });
    expect(allVersions.status).toBe(400);
  });

  it("answers pkranges with one range over the whole hash space", async () => {
    const r = await call(store, "GET", "/dbs/d/colls/c/pkranges");
    expect(r.body.PartitionKeyRanges).toEqual([
      expect.objectContaining({ id: "0", minInclusive: "", maxExclusive: "FF" }),
    ]);
  });

  it("answers the resources it does not implement plausibly or with a clear 400", async () => {
    const users = await call(store, "GET", "/dbs/d/users");
    expect(users.status).toBe(400);
    expect(users.body.message).toMatch(/not supported by the embedded store/);
    const conflicts = await call(store, "GET", "/dbs/d/colls/c/conflicts");
    expect(conflicts.body).toMatchObject({ Conflicts: [], _count: 0 });
    const offers = await call(store, "GET", "/offers");
    expect(offers.body.Offers[0]).toMatchObject({ content: { offerThroughput: 400 } });
    const sproc = await call(store, "POST", "/dbs/d/colls/c/sprocs", {
      body: { id: "sp", body: "function () {}" },
    });
    expect(sproc.status).toBe(201);
    const exec = await call(store, "POST", "/dbs/d/colls/c/sprocs/sp", { body: [], headers: PK("a") });
    expect(exec.status).toBe(400);
    expect(exec.body.message).toMatch(/does not run server-side JavaScript/);
    const perm = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: { id: "t", p: "a" },
      headers: { ...PK("a"), "x-ms-documentdb-pre-trigger-include": "x" },
    });
    expect(perm.status).toBe(400);
  });

  it("deletes one partition's items (operations/partitionkeydelete)", async () => {
    await call(store, "POST", "/dbs/d/colls/c/docs", { body: { id: "z1", p: "zap" }, headers: PK("zap") });
    await call(store, "POST", "/dbs/d/colls/c/docs", { body: { id: "z2", p: "keep" }, headers: PK("keep") });
    const r = await call(store, "POST", "/dbs/d/colls/c/operations/partitionkeydelete", {
      headers: PK("zap"),
    });
    expect(r.status).toBe(200);
    expect((await call(store, "GET", "/dbs/d/colls/c/docs/z1", { headers: PK("zap") })).status).toBe(404);
    expect((await call(store, "GET", "/dbs/d/colls/c/docs/z2", { headers: PK("keep") })).status).toBe(200);
  });

  it("answers a transactional batch with 207 and per-operation results, and bulk without a partition-key header", async () => {
    const batch = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: [
        { operationType: "Create", resourceBody: { id: "b1", p: "b" } },
        { operationType: "Read", id: "nope" },
      ],
      headers: { ...PK("b"), "x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "true" },
    });
    expect(batch.status).toBe(207);
    expect(batch.body.map((r: { statusCode: number }) => r.statusCode)).toEqual([424, 404]);
    const bulk = await call(store, "POST", "/dbs/d/colls/c/docs", {
      body: [
        { operationType: "Create", partitionKey: '["b"]', resourceBody: { id: "b1", p: "b" } },
        { operationType: "Upsert", partitionKey: '["b"]', resourceBody: { id: "b1", p: "b", v: 2 } },
      ],
      headers: {
        "x-ms-cosmos-is-batch-request": "true",
        "x-ms-cosmos-batch-atomic": "false",
        "x-ms-documentdb-partitionkeyrangeid": "0",
      },
    });
    expect(bulk.status).toBe(200);
    expect(bulk.body.map((r: { statusCode: number }) => r.statusCode)).toEqual([201, 200]);
    expect(bulk.body[1].resourceBody).toMatchObject({ id: "b1", v: 2 });
  });
});
