import type { AuditRecord } from "../../src/audit/types.js";
import { openDatabase } from "../../src/store/index.js";

/** Every record of an audit database, in seq order (a read-only connection, as an auditor would). */
export function readAuditRecords(auditFile: string): AuditRecord[] {
  const db = openDatabase(auditFile, { readonly: true });
  try {
    return (db.prepare("SELECT data FROM audit_events ORDER BY seq").all() as { data: string }[]).map(
      (r) => JSON.parse(r.data) as AuditRecord,
    );
  } finally {
    db.close();
  }
}

/** `GET /metrics` on the control plane: the Prometheus text. */
export async function scrapeMetrics(controlUrl: string): Promise<string> {
  const res = await fetch(`${controlUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

/** The value of one sample (`name{labels}` exactly as exposed), or 0 when absent. */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/** Polls `check` every few milliseconds until it returns true; throws after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `METHOD path` of each request, sorted: to compare what the upstream saw with what the audit holds. */
export function requestKeys(
  items: readonly { method?: string; url?: string; resource?: string }[],
): string[] {
  return items.map((i) => `${i.method} ${i.url ?? i.resource}`).sort();
}
