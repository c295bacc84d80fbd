import { describe, expect, it } from "vitest";
import { createGatewayMetrics } from "./metrics.js";

/** The value of one sample line of the exposition (`name{labels} value`), or undefined. */
function sample(text: string, line: string): number | undefined {
  for (const l of text.split("\n")) {
    if (l.startsWith(`${line} `)) return Number(l.slice(line.length + 1));
  }
  return undefined;
}

describe("createGatewayMetrics", () => {
  it("counts data-plane requests by action, decision and status, with latency histograms", async () => {
    const m = createGatewayMetrics();
    m.proxy.requestDone(["read"], "allow", 200, 0.0007, 0.0004);
    m.proxy.requestDone(["read"], "allow", 200, 0.003, 0.002);
    m.proxy.requestDone(["delete"], "deny", 403, 0.0002, -1);
    m.proxy.requestDone(["create", "read"], "allow", 200, 0.02, 0.015);
    m.proxy.requestDone(undefined, "error", 503, 0.0001, -1);
    const text = await m.text();
    expect(sample(text, 'cosmosgate_data_requests_total{action="read",decision="allow",status="200"}')).toBe(
      2,
    );
    expect(sample(text, 'cosmosgate_data_requests_total{action="delete",decision="deny",status="403"}')).toBe(
      1,
    );
    expect(
      sample(text, 'cosmosgate_data_requests_total{action="multiple",decision="allow",status="200"}'),
    ).toBe(1);
    expect(sample(text, 'cosmosgate_data_requests_total{action="none",decision="error",status="503"}')).toBe(
      1,
    );
    expect(text).toContain("# TYPE cosmosgate_data_requests_total counter");
    expect(text).toContain("# TYPE cosmosgate_data_request_duration_seconds histogram");
    // Cumulative buckets: 0.0001 and 0.0002 ≤ 0.0005; 0.0007 ≤ 0.001; 0.003 ≤ 0.005; 0.02 ≤ 0.025.
    expect(sample(text, 'cosmosgate_data_request_duration_seconds_bucket{le="0.0005"}')).toBe(2);
    expect(sample(text, 'cosmosgate_data_request_duration_seconds_bucket{le="0.001"}')).toBe(3);
    expect(sample(text, 'cosmosgate_data_request_duration_seconds_bucket{le="0.005"}')).toBe(4);
    expect(sample(text, 'cosmosgate_data_request_duration_seconds_bucket{le="0.025"}')).toBe(5);
    expect(sample(text, 'cosmosgate_data_request_duration_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(sample(text, "cosmosgate_data_request_duration_seconds_count")).toBe(5);
    expect(sample(text, "cosmosgate_data_request_duration_seconds_sum")).toBeCloseTo(0.024, 6);
    // Only forwarded requests have an upstream latency.
    expect(sample(text, "cosmosgate_upstream_request_duration_seconds_count")).toBe(3);
    expect(sample(text, 'cosmosgate_upstream_request_duration_seconds_bucket{le="0.0005"}')).toBe(1);
  });

  it("reads the audit writer and the token cache at scrape time, and counts their events", async () => {
    const m = createGatewayMetrics();
    let pending = 7;
    let accepting = true;
    let hits = 41;
    m.watch({
      audit: { pending: () => pending, accepting: () => accepting },
      tokens: { stats: () => ({ hits, size: 3 }) },
    });
    m.tokenVerified("valid");
    m.tokenVerified("ERR_TOKEN_EXPIRED");
    m.tokenVerified("valid");
    m.auditCommitted(30, 0.002);
    m.auditCommitted(12, 0.03);
    m.proxy.auditRefused("retrying");
    m.proxy.auditRefused("retrying");
    m.proxy.auditRefused("record_failed");
    m.proxy.auditFailOpen();
    m.auditLogSink();
    let text = await m.text();
    expect(sample(text, "cosmosgate_audit_queue_depth")).toBe(7);
    expect(sample(text, "cosmosgate_audit_accepting")).toBe(1);
    expect(sample(text, "cosmosgate_token_cache_hits_total")).toBe(41);
    expect(sample(text, "cosmosgate_token_cache_entries")).toBe(3);
    expect(sample(text, 'cosmosgate_token_verifications_total{result="valid"}')).toBe(2);
    expect(sample(text, 'cosmosgate_token_verifications_total{result="ERR_TOKEN_EXPIRED"}')).toBe(1);
    expect(sample(text, "cosmosgate_audit_records_committed_total")).toBe(42);
    expect(sample(text, "cosmosgate_audit_commit_duration_seconds_count")).toBe(2);
    expect(sample(text, 'cosmosgate_audit_commit_duration_seconds_bucket{le="0.0025"}')).toBe(1);
    expect(sample(text, 'cosmosgate_audit_refusals_total{reason="retrying"}')).toBe(2);
    expect(sample(text, 'cosmosgate_audit_refusals_total{reason="record_failed"}')).toBe(1);
    expect(sample(text, "cosmosgate_audit_fail_open_total")).toBe(1);
    expect(sample(text, "cosmosgate_audit_log_sink_records_total")).toBe(1);

    // A second scrape sees the new values (counters are totals, not deltas).
    pending = 0;
    accepting = false;
    hits = 50;
    m.proxy.auditRefused("retrying");
    text = await m.text();
    expect(sample(text, "cosmosgate_audit_queue_depth")).toBe(0);
    expect(sample(text, "cosmosgate_audit_accepting")).toBe(0);
    expect(sample(text, "cosmosgate_token_cache_hits_total")).toBe(50);
    expect(sample(text, 'cosmosgate_audit_refusals_total{reason="retrying"}')).toBe(3);
  });

  it("keeps one registry per gateway (no global default registry)", async () => {
    const a = createGatewayMetrics();
    const b = createGatewayMetrics();
    a.proxy.auditFailOpen();
    expect(sample(await a.text(), "cosmosgate_audit_fail_open_total")).toBe(1);
    expect(sample(await b.text(), "cosmosgate_audit_fail_open_total")).toBe(0);
    expect(a.registry).not.toBe(b.registry);
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
