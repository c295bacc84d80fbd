import { Counter, Gauge, type Metric, Registry } from "prom-client";
import type { ProxyMetricsPort } from "../proxy/handler.js";

/** What `/metrics` reads at scrape time (nothing of it is touched per request). */
export interface MetricsSources {
  audit?: { pending(): number; accepting(): boolean };
  tokens?: { stats(): { hits: number; size: number } };
}

/** The gateway's metrics: one prom-client Registry per gateway, fed by cheap hot-path hooks. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Content type of {@link GatewayMetrics.text} (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The data plane's hooks (see proxy/handler.ts). */
  readonly proxy: ProxyMetricsPort;
  /** The token verifier's hook: one full verification (a cache miss) and its result. */
  tokenVerified(result: string): void;
  /** The audit writer's hook: a group of `records` made durable in `seconds`. */
  auditCommitted(records: number, seconds: number): void;
  /** A record sent to the log because it could not be stored. */
  auditLogSink(): void;
  /** Sets what is read at scrape time. */
  watch(sources: MetricsSources): void;
  /** The exposition, for `GET /metrics`. */
  text(): Promise<string>;
}

// Seconds. Data-plane requests take from a fraction of a millisecond (a denial) to seconds (a
// large query); an fsync'd group commit from ~0.1 ms (NVMe) to tens of ms (network disks).
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Creates the gateway's metrics. prom-client does the exposition; the per-request work is done
 * here, because prom-client's own `inc` and `observe` build a label-hash string and allocate on
 * every call (~0.3-0.6 µs each, measured), which the data path's budget does not allow. So each
 * label combination is a plain counter cell, resolved through nested Maps (no string is built per
 * request) and created once; histograms count into their buckets directly. At scrape time the
 * prom-client metrics read those cells in their `collect`/`get`.
 *
 * Metrics (all prefixed `cosmosgate_`): `data_requests_total{action,decision,status}`,
 * `data_request_duration_seconds`, `upstream_request_duration_seconds`,
 * `token_verifications_total{result}` (full verifications, i.e. cache misses),
 * `token_cache_hits_total`, `token_cache_entries`, `audit_queue_depth`, `audit_accepting`,
 * `audit_records_committed_total`, `audit_commit_duration_seconds` (per group: commit + fsync),
 * `audit_refusals_total{reason}`, `audit_fail_open_total`, `audit_log_sink_records_total`.
 *
 * @example
 * ```ts
 * const metrics = createGatewayMetrics();
 * createDataPlaneHandler({ ...deps, metrics: metrics.proxy });
 * metrics.watch({ audit, tokens: verifier });
 * app.get("/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
 * ```
 */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  let sources: MetricsSources = {};

  // data_requests_total: action → decision → status → cell.
  const requestCells = new Map<string, Map<string, Map<number, Cell>>>();
  const requestCell = (action: string, decision: string, status: number): Cell => {
    let byDecision = requestCells.get(action);
    if (byDecision === undefined) {
      byDecision = new Map();
      requestCells.set(action, byDecision);
    }
    let byStatus = byDecision.get(decision);
    if (byStatus === undefined) {
      byStatus = new Map();
      byDecision.set(decision, byStatus);
    }
    let cell = byStatus.get(status);
    if (cell === undefined) {
      cell = { labels: { action, decision, status: String(status) }, value: 0 };
      byStatus.set(status, cell);
    }
    return cell;
  };
  const tokenCells = new Map<string, Cell>();
  const refusalCells = new Map<string, Cell>();
  const labelled = (cells: Map<string, Cell>, label: string, value: string): Cell => {
    let cell = cells.get(value);
    if (cell === undefined) {
      cell = { labels: { [label]: value }, value: 0 };
      cells.set(value, cell);
    }
    return cell;
  };
  const totals = { committed: 0, failOpen: 0, logSink: 0 };

  const requestDuration = new CountedHistogram(
    "cosmosgate_data_request_duration_seconds",
    "Data-plane request latency at the gateway, from the request's arrival to its response (including the audit commit in strict mode).",
    REQUEST_BUCKETS,
  );
  const upstreamDuration = new CountedHistogram(
    "cosmosgate_upstream_request_duration_seconds",
    "Latency of the upstream Cosmos DB account for forwarded requests (until its whole response is read).",
    REQUEST_BUCKETS,
  );
  const commitDuration = new CountedHistogram(
    "cosmosgate_audit_commit_duration_seconds",
    "Time to make one group of audit records durable: the SQLite commit and the WAL fsync.",
    COMMIT_BUCKETS,
  );
  for (const h of [requestDuration, upstreamDuration, commitDuration]) {
    // A structural prom-client metric (see CountedHistogram): the registry only calls get().
    registry.registerMetric(h as unknown as Metric);
  }

  cellCounter(
    registry,
    "cosmosgate_data_requests_total",
    "Data-plane requests answered, by action (multiple: a batch of several), decision and HTTP status.",
    ["action", "decision", "status"],
    () => {
      const out: Cell[] = [];
      for (const byDecision of requestCells.values())
        for (const byStatus of byDecision.values()) for (const cell of byStatus.values()) out.push(cell);
      return out;
    },
  );
  cellCounter(
    registry,
    "cosmosgate_token_verifications_total",
    'Full token verifications (verified-token cache misses), by result: "valid" or the refusal code.',
    ["result"],
    () => [...tokenCells.values()],
  );
  cellCounter(
    registry,
    "cosmosgate_audit_refusals_total",
    "Data-plane requests refused with 503 because the audit trail could not record them, by reason: the audit writer's state (retrying, overloaded, failed, closed), or record_failed when a forwarded request's record could not be stored.",
    ["reason"],
    () => [...refusalCells.values()],
  );
  totalCounter(
    registry,
    "cosmosgate_token_cache_hits_total",
    "Data-plane tokens answered from the verified-token cache.",
    () => sources.tokens?.stats().hits ?? 0,
  );
  totalCounter(
    registry,
    "cosmosgate_audit_records_committed_total",
    "Audit records committed and fsync'd by the data plane's writer.",
    () => totals.committed,
  );
  totalCounter(
    registry,
    "cosmosgate_audit_fail_open_total",
    "Data-plane requests served without their audit record being stored first (audit.onFailure: open).",
    () => totals.failOpen,
  );
  totalCounter(
    registry,
    "cosmosgate_audit_log_sink_records_total",
    'Audit records that could not be stored and were written to the gateway log instead ("audit record could not be stored").',
    () => totals.logSink,
  );
  new Gauge({
    name: "cosmosgate_token_cache_entries",
    help: "Verified tokens held in the cache.",
    registers: [registry],
    collect() {
      this.set(sources.tokens?.stats().size ?? 0);
    },
  });
  new Gauge({
    name: "cosmosgate_audit_queue_depth",
    help: "Audit records appended and not yet stored (waiting, being committed, or being fsync'd).",
    registers: [registry],
    collect() {
      this.set(sources.audit?.pending() ?? 0);
    },
  });
  new Gauge({
    name: "cosmosgate_audit_accepting",
    help: "1 when the audit trail accepts new data-plane requests, 0 when it refuses them (or lets them pass with onFailure: open).",
    registers: [registry],
    collect() {
      this.set(sources.audit === undefined || sources.audit.accepting() ? 1 : 0);
    },
  });

  const proxy: ProxyMetricsPort = {
    requestDone(actions, decision, status, seconds, upstreamSeconds) {
      const action =
        actions === undefined || actions.length === 0
          ? "none"
          : actions.length === 1
            ? actions[0]
            : "multiple";
      requestCell(action, decision, status).value++;
      requestDuration.observe(seconds);
      if (upstreamSeconds >= 0) upstreamDuration.observe(upstreamSeconds);
    },
    auditRefused(reason) {
      labelled(refusalCells, "reason", reason).value++;
    },
    auditFailOpen() {
      totals.failOpen++;
    },
  };

  return {
    registry,
    contentType: registry.contentType,
    proxy,
    tokenVerified(result) {
      labelled(tokenCells, "result", result).value++;
    },
    auditCommitted(records, seconds) {
      totals.committed += records;
      commitDuration.observe(seconds);
    },
    auditLogSink() {
      totals.logSink++;
    },
    watch(s) {
      sources = { ...sources, ...s };
    },
    text: () => registry.metrics(),
  };
}

interface Cell {
  readonly labels: Record<string, string>;
  value: number;
}

/** A prom-client Counter whose values are read from cells at scrape time. */
function cellCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  cells: () => Cell[],
) {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const cell of cells()) this.inc(cell.labels, cell.value);
    },
  });
}

/** A prom-client Counter without labels whose value is read at scrape time. */
function totalCounter(registry: Registry, name: string, help: string, read: () => number) {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      const v = read();
      if (v > 0) this.inc(v);
    },
  });
}

/**
 * A histogram without labels that counts into its buckets in a few nanoseconds. It has the shape
 * prom-client's Registry reads (name, help, type, aggregator, get, reset), so the exposition is
 * prom-client's; only `observe` is ours (prom-client's allocates per call).
 */
class CountedHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one is above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    bounds: readonly number[],
  ) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName: string }[];
  }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i];
      values.push({ labels: { le: this.#bounds[i] }, value: cumulative, metricName: bucket });
    }
    values.push({ labels: { le: "+Inf" }, value: this.#count, metricName: bucket });
    values.push({ labels: {}, value: this.#sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.#count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
