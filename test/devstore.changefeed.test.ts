// Conformance of the embedded store's change feed with the real @azure/cosmos 4.9.3 SDK's pull
// model (getChangeFeedIterator). Latest-version mode: each changed item appears once, as its
// latest version, in the order of its last change; deletes do not appear; "nothing changed" is 304
// (learn.microsoft.com/azure/cosmos-db/nosql/change-feed-modes, "Latest version change feed mode").
import { ChangeFeedStartFrom, type Container, type CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StoreHarness, startStoreHarness } from "./helpers/devstore.js";

type Doc = { id: string; v?: number };

describe("embedded store: change feed through the real SDK", () => {
  let h: StoreHarness;
  let client: CosmosClient;
  let n = 0;

  /** A fresh container, so each test sees only its own changes. */
  async function freshContainer(c: CosmosClient = client): Promise<Container> {
    const { database } = await c.databases.createIfNotExists({ id: "cf" });
    n += 1;
    return (await database.containers.create({ id: `feed${n}`, partitionKey: { paths: ["/p"] } })).container;
  }
  const ids = (r: { result?: Doc[] }) => (r.result ?? []).map((d) => d.id);

  beforeAll(async () => {
    h = await startStoreHarness();
    client = h.client();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("from the beginning: each item once, as its latest version, in the order of its last change; deletes do not appear; then 304", async () => {
    const c = await freshContainer();
    await c.items.create({ id: "cf1", p: "a", v: 1 });
    await c.items.create({ id: "cf2", p: "b", v: 1 });
    await c.items.create({ id: "cf3", p: "a", v: 1 });
    await c.item("cf1", "a").replace({ id: "cf1", p: "a", v: 2 });
    await c.item("cf3", "a").delete();

    const it = c.items.getChangeFeedIterator<Doc>({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
    const first = await it.readNext();
    expect(first.statusCode).toBe(200);
    expect(ids(first)).toEqual(["cf2", "cf1"]);
    expect(first.result[1]).toMatchObject({ id: "cf1", v: 2 });
    expect(typeof first.result[1]._etag).toBe("string");
    expect(first.continuationToken).toBeTruthy();

    const nothing = await it.readNext();
    expect(nothing.statusCode).toBe(304);
    expect(ids(nothing)).toEqual([]);
  });

  it("pages by maxItemCount, and a continuation token resumes in a new iterator", async () => {
    const c = await freshContainer();
    for (let i = 1; i <= 5; i++) await c.items.create({ id: `m${i}`, p: i % 2 ? "a" : "b" });

    const it = c.items.getChangeFeedIterator<Doc>({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
      maxItemCount: 2,
    });
    const page1 = await it.readNext();
    expect(ids(page1)).toEqual(["m1", "m2"]);

    const resumed = c.items.getChangeFeedIterator<Doc>({
      changeFeedStartFrom: ChangeFeedStartFrom.Continuation(page1.continuationToken),
      maxItemCount: 2,
    });
    const seen: string[] = [];
    for (;;) {
      const page = await resumed.readNext();
      if (page.statusCode === 304) break;
      expect(page.result.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page));
    }
    expect(seen).toEqual(["m3", "m4", "m5"]);
  });

  it("from now: 304 while nothing changes, then only the new changes", async () => {
    const c = await freshContainer();
    await c.items.create({ id: "old", p: "a" });
    const it = c.items.getChangeFeedIterator<Doc>({ changeFeedStartFrom: ChangeFeedStartFrom.Now() });
    const empty = await it.readNext();
    expect(empty.statusCode).toBe(304);
    expect(ids(empty)).toEqual([]);
    await c.items.create({ id: "new", p: "b" });
    const next = await it.readNext();
    expect(next.statusCode).toBe(200);
    expect(ids(next)).toEqual(["new"]);
    expect((await it.readNext()).statusCode).toBe(304);
  });

  it("from a time: only the changes made after it", async () => {
    const c = await freshContainer();
    await c.items.create({ id: "before", p: "a" });
    h.advance(10_000);
    const between = new Date(h.now() - 5_000);
    await c.items.create({ id: "after", p: "a" });
    const it = c.items.getChangeFeedIterator<Doc>({ changeFeedStartFrom: ChangeFeedStartFrom.Time(between) });
    expect(ids(await it.readNext())).toEqual(["after"]);
    const fromLongAgo = c.items.getChangeFeedIterator<Doc>({
      changeFeedStartFrom: ChangeFeedStartFrom.Time(new Date(h.now() - 3_600_000)),
    });
    expect(ids(await fromLongAgo.readNext())).toEqual(["before", "after"]);
  });

  it("for one partition key: only that partition's changes", async () => {
    const c = await freshContainer();
    await c.items.create({ id: "a1", p: "a" });
    await c.items.create({ id: "b1", p: "b" });
    await c.items.create({ id: "a2", p: "a" });
    const it = c.items.getChangeFeedIterator<Doc>({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning("a"),
    });
    const page = await it.readNext();
    expect(ids(page)).toEqual(["a1", "a2"]);
    expect((await it.readNext()).statusCode).toBe(304);
    await c.items.create({ id: "b2", p: "b" });
    expect((await it.readNext()).statusCode).toBe(304);
    await c.items.create({ id: "a3", p: "a" });
    expect(ids(await it.readNext())).toEqual(["a3"]);
  });

  it("resumes from its continuation after the store restarts on the same file", async () => {
    const c = await freshContainer();
    const dbId = c.database.id;
    const containerId = c.id;
    await c.items.create({ id: "r1", p: "a" });
    await c.items.create({ id: "r2", p: "b" });
    const it = c.items.getChangeFeedIterator<Doc>({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
    expect(ids(await it.readNext())).toEqual(["r1", "r2"]);
    const caughtUp = await it.readNext();
    expect(caughtUp.statusCode).toBe(304);
    const token = caughtUp.continuationToken;
    await c.items.create({ id: "r3", p: "a" });

    await h.restart();
    const after = h.client().database(dbId).container(containerId);
    const resumed = after.items.getChangeFeedIterator<Doc>({
      changeFeedStartFrom: ChangeFeedStartFrom.Continuation(token),
    });
    expect(ids(await resumed.readNext())).toEqual(["r3"]);
    expect((await resumed.readNext()).statusCode).toBe(304);
    await after.items.create({ id: "r4", p: "b" });
    expect(ids(await resumed.readNext())).toEqual(["r4"]);
  });
});
