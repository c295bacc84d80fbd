import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/index.js";
import { readAuditRecords, waitUntil } from "./helpers/auditProbe.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

const DELAY_MS = 200;
// The test polls the database every 5 ms from the same (busy) process: allow it that much on top.
const POLL_SLACK_MS = 100;

describe("audit durability: buffered", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("commits each record within audit.bufferedDelay of its response", async () => {
    h = await startHarness({ extraConfig: `audit: {durability: buffered, bufferedDelay: ${DELAY_MS}ms}` });
    const client = h.client("alice", ["cosmos-admins"]);
    const { database } = await client.databases.createIfNotExists({ id: "shop" });
    const { container } = await database.containers.createIfNotExists({
      id: "orders",
      partitionKey: { paths: ["/pk"] },
    });
    // Each record's lag: from its own response reaching the client to the record being visible
    // to another connection (the poller below reads the table every 5 ms meanwhile).
    const answeredAt = new Map<string, number>();
    const visibleAt = new Map<string, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const now = performance.now();
        for (const r of readAuditRecords(h!.gw.auditFile))
          if (r.activityId !== undefined && !visibleAt.has(r.activityId)) visibleAt.set(r.activityId, now);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          container.items.create({ id: `r${round}-${i}`, pk: "p1" }).then((r) => {
            answeredAt.set(r.activityId, performance.now());
          }),
        ),
      );
    }
    await waitUntil(
      () => [...answeredAt.keys()].every((id) => visibleAt.has(id)),
      5_000,
      "the buffered records",
    );
    polling = false;
    await poller;
    const lags = [...answeredAt].map(([id, t]) => (visibleAt.get(id) as number) - t);
    expect(lags).toHaveLength(100);
    expect(Math.max(...lags)).toBeLessThan(DELAY_MS + POLL_SLACK_MS);
  });

  it("answers without waiting for the commit: a locked store does not hold the response", async () => {
    h = await startHarness({ extraConfig: "audit: {durability: buffered}" });
    const client = h.client("alice", ["cosmos-admins"]);
    await client.databases.createIfNotExists({ id: "shop" });
    const lock = openDatabase(h.gw.auditFile);
    lock.exec("BEGIN EXCLUSIVE");
    try {
      const started = performance.now();
      const read = await client.database("shop").read();
      expect(read.statusCode).toBe(200);
      // Strict mode would hold this answer until the lock goes; buffered answers at once.
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(readAuditRecords(h.gw.auditFile).some((r) => r.activityId === read.activityId)).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      lock.exec("COMMIT");
      await waitUntil(
        () => readAuditRecords(h!.gw.auditFile).some((r) => r.activityId === read.activityId),
        5_000,
        "the record once the lock is released",
      );
    } finally {
      if (lock.inTransaction) lock.exec("ROLLBACK");
      lock.close();
    }
  });
});
