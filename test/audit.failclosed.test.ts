import type Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/index.js";
import {
  metricValue,
  readAuditRecords,
  requestKeys,
  scrapeMetrics,
  waitUntil,
} from "./helpers/auditProbe.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

const aad = (jwt: string) => `type=aad&ver=1.0&sig=${jwt}`;

/** Creates /dbs/shop/colls/orders with one item through the gateway. */
async function seed(h: Harness): Promise<void> {
  const client = h.client("alice", ["cosmos-admins"]);
  const { database } = await client.databases.createIfNotExists({ id: "shop" });
  const { container } = await database.containers.createIfNotExists({
    id: "orders",
    partitionKey: { paths: ["/pk"] },
  });
  await container.items.create({ id: "o1", pk: "p1" });
}

/** Raw data-plane requests of several kinds: reads, creates, replaces, queries. */
function burst(h: Harness, token: string, n: number) {
  const headers = {
    authorization: aad(token),
    "x-ms-version": "2020-07-15",
    "x-ms-documentdb-partitionkey": '["p1"]',
    "content-type": "application/json",
  };
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      switch (i % 3) {
        case 0:
          return h.raw("GET", "/dbs/shop/colls/orders/docs/o1", headers);
        case 1:
          return h.raw(
            "POST",
            "/dbs/shop/colls/orders/docs",
            headers,
            JSON.stringify({ id: `b${i}`, pk: "p1" }),
          );
        default:
          return h.raw(
            "PUT",
            "/dbs/shop/colls/orders/docs/o1",
            headers,
            JSON.stringify({ id: "o1", pk: "p1", i }),
          );
      }
    }),
  );
}

/** Takes the audit database's write lock from another connection, as a backup tool would. */
function lockAuditStore(h: Harness): Database.Database {
  const other = openDatabase(h.gw.auditFile);
  other.exec("BEGIN EXCLUSIVE");
  return other;
}

/** The upstream saw exactly the requests the audit holds allowed records of (none unrecorded). */
function expectEveryForwardedRequestRecorded(h: Harness): void {
  const allowed = readAuditRecords(h.gw.auditFile).filter(
    (r) => r.type === "data.request" && r.decision === "allow",
  );
  expect(requestKeys(allowed)).toEqual(requestKeys(h.seen));
}

function logLines(h: Harness, msg: string): Record<string, unknown>[] {
  return h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

describe("audit fail closed: the audit store is locked (BEGIN EXCLUSIVE from another connection)", () => {
  let h: Harness | undefined;
  let lock: Database.Database | undefined;
  afterEach(async () => {
    if (lock?.inTransaction) lock.exec("ROLLBACK");
    lock?.close();
    lock = undefined;
    await h?.close();
    h = undefined;
  });

  it("answers 503 without contacting the upstream, and records every request the upstream saw once the lock goes", async () => {
    h = await startHarness();
    await seed(h);
    const token = await h.issuer.sign({ sub: "alice", groups: ["cosmos-admins"] });
    const headers = {
      authorization: aad(token),
      "x-ms-version": "2020-07-15",
      "x-ms-documentdb-partitionkey": '["p1"]',
    };

    lock = lockAuditStore(h);
    // The writer learns of the lock on its next commit: this request was forwarded, and in strict
    // mode its answer waits for its record.
    const first = h.raw("GET", "/dbs/shop/colls/orders/docs/o1", headers);
    await waitUntil(
      async () => metricValue(await scrapeMetrics(h!.controlUrl), "cosmosgate_audit_accepting") === 0,
      5_000,
      "the audit to stop accepting",
    );
    const seenBefore = h.seen.length;

    const refused = await burst(h, token, 30);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.json().code).toBe("ServiceUnavailable");
      expect(r.json().message).toMatch(/audit trail cannot record requests/);
      expect(r.json().message).toMatch(/was not forwarded/);
      expect(r.json().message).toMatch(/check the disk that holds stateDir\/audit\.db/);
    }
    // The SDK sees the same refusal.
    const sdk = h.client("alice", ["cosmos-admins"]).database("shop").container("orders");
    await expect(sdk.items.create({ id: "sdk-1", pk: "p1" })).rejects.toMatchObject({ code: 503 });
    // Nothing new reached the upstream.
    expect(h.seen.length).toBe(seenBefore);

    const text = await scrapeMetrics(h.controlUrl);
    expect(metricValue(text, 'cosmosgate_audit_refusals_total{reason="retrying"}')).toBeGreaterThanOrEqual(
      31,
    );
    expect(
      metricValue(text, 'cosmosgate_data_requests_total{action="none",decision="error",status="503"}'),
    ).toBeGreaterThanOrEqual(31);
    expect(metricValue(text, "cosmosgate_audit_queue_depth")).toBe(1);
    // One log line for 31 refusals (rate-limited), and the writer's own error.
    expect(
      logLines(
        h,
        "audit cannot record requests: refusing data-plane requests with 503 (audit.onFailure: closed)",
      ),
    ).toHaveLength(1);
    expect(logLines(h, "audit store cannot be written: retrying; records wait in memory")).toHaveLength(1);

    lock.exec("COMMIT");
    // The forwarded request's record is stored, then its answer leaves.
    expect((await first).status).toBe(200);
    expect((await h.raw("GET", "/dbs/shop/colls/orders/docs/o1", headers)).status).toBe(200);
    expect(logLines(h, "audit store writable again: records are being stored")).toHaveLength(1);
    expectEveryForwardedRequestRecorded(h);
    expect(h.logs.some((l) => l.includes("audit record could not be stored"))).toBe(false);
  });

  it("with onFailure: open, serves the requests, says so in the log and in metrics, and records them once the lock goes", async () => {
    h = await startHarness({ extraConfig: "audit: {onFailure: open}" });
    await seed(h);
    const token = await h.issuer.sign({ sub: "alice", groups: ["cosmos-admins"] });
    const headers = {
      authorization: aad(token),
      "x-ms-version": "2020-07-15",
      "x-ms-documentdb-partitionkey": '["p1"]',
    };

    lock = lockAuditStore(h);
    const first = h.raw("GET", "/dbs/shop/colls/orders/docs/o1", headers);
    await waitUntil(
      async () => metricValue(await scrapeMetrics(h!.controlUrl), "cosmosgate_audit_accepting") === 0,
      5_000,
      "the audit to stop accepting",
    );
    const seenBefore = h.seen.length;
    const served = await burst(h, token, 30);
    for (const r of served) expect(r.status).toBeLessThan(300);
    expect(h.seen.length).toBe(seenBefore + 30);

    const text = await scrapeMetrics(h.controlUrl);
    expect(metricValue(text, "cosmosgate_audit_fail_open_total")).toBe(30);
    expect(metricValue(text, "cosmosgate_audit_queue_depth")).toBe(31);
    const warnings = logLines(
      h,
      "audit cannot record requests in time: serving data-plane requests anyway (audit.onFailure: open); records that cannot be stored go to this log",
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0].level).toBe(40);

    lock.exec("COMMIT");
    expect((await first).status).toBe(200);
    // The records of the requests served meanwhile were kept and are stored now.
    await waitUntil(
      async () => metricValue(await scrapeMetrics(h!.controlUrl), "cosmosgate_audit_queue_depth") === 0,
      5_000,
      "the queued records to be stored",
    );
    expectEveryForwardedRequestRecorded(h);
  });
});
