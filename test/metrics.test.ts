import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue, scrapeMetrics } from "./helpers/auditProbe.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

/** `/metrics` of a real gateway, scraped before and after real SDK traffic. */
describe("GET /metrics on the control plane", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("serves the Prometheus text format with the data-plane, token and audit metrics moving", async () => {
    const res = await fetch(`${h.controlUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const before = await res.text();

    const admin = h.client("alice", ["cosmos-admins"]);
    const { database } = await admin.databases.createIfNotExists({ id: "shop" });
    const { container } = await database.containers.createIfNotExists({
      id: "orders",
      partitionKey: { paths: ["/pk"] },
    });
    await container.items.create({ id: "o1", pk: "p1" });
    for (let i = 0; i < 5; i++) await container.item("o1", "p1").read();
    // An analyst may read orders but not write them: denied (403).
    const analyst = h.client("bob", ["analysts"]).database("shop").container("orders");
    await analyst.item("o1", "p1").read();
    await expect(analyst.items.create({ id: "o2", pk: "p1" })).rejects.toMatchObject({ code: 403 });
    // A token that is not a JWT: one failed full verification.
    const bad = await h.raw("GET", "/dbs/shop", {
      authorization: "type=aad&ver=1.0&sig=not.a.jwt",
      "x-ms-version": "2020-07-15",
    });
    expect(bad.status).toBe(401);

    const after = await scrapeMetrics(h.controlUrl);
    const delta = (sample: string) => metricValue(after, sample) - metricValue(before, sample);
    expect(delta('cosmosgate_data_requests_total{action="read",decision="allow",status="200"}')).toBe(6);
    expect(delta('cosmosgate_data_requests_total{action="create",decision="allow",status="201"}')).toBe(1);
    expect(delta('cosmosgate_data_requests_total{action="create",decision="deny",status="403"}')).toBe(1);
    expect(delta('cosmosgate_data_requests_total{action="none",decision="deny",status="401"}')).toBe(1);
    expect(delta("cosmosgate_data_request_duration_seconds_count")).toBeGreaterThanOrEqual(10);
    // The denial and the 401 were not forwarded.
    expect(delta("cosmosgate_upstream_request_duration_seconds_count")).toBe(
      delta("cosmosgate_data_request_duration_seconds_count") - 2,
    );
    // Two principals' tokens verified in full once each (the SDK reuses its token), the rest from the cache.
    expect(delta('cosmosgate_token_verifications_total{result="valid"}')).toBe(2);
    expect(delta('cosmosgate_token_verifications_total{result="ERR_TOKEN_MALFORMED"}')).toBe(1);
    expect(delta("cosmosgate_token_cache_hits_total")).toBeGreaterThanOrEqual(8);
    // Every request's record was committed (strict): the queue is empty, commits were timed.
    expect(delta("cosmosgate_audit_records_committed_total")).toBeGreaterThanOrEqual(
      delta("cosmosgate_data_request_duration_seconds_count"),
    );
    expect(delta("cosmosgate_audit_commit_duration_seconds_count")).toBeGreaterThan(0);
    expect(metricValue(after, "cosmosgate_audit_queue_depth")).toBe(0);
    expect(metricValue(after, "cosmosgate_audit_accepting")).toBe(1);
    expect(metricValue(after, "cosmosgate_audit_fail_open_total")).toBe(0);
    expect(after).toContain("# TYPE cosmosgate_audit_refusals_total counter");
    // No subject, key or resource in any label.
    expect(after).not.toMatch(/alice|bob|\/dbs\//);
  });
});
