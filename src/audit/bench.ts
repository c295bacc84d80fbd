import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "../store/index.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

/** Options of {@link benchAppend}. */
export interface BenchAppendOptions {
  /** Appends kept in flight at once, like concurrent requests; default 256. 1 = no grouping. */
  concurrency?: number;
  /** Directory for the temporary database; default the OS temp directory. */
  dir?: string;
}

/** Result of {@link benchAppend}. */
export interface BenchAppendResult {
  recordsPerSecond: number;
  records: number;
  seconds: number;
  /** Transactions (and so fsyncs of the WAL) used. */
  commits: number;
  /** Mean records per transaction. */
  meanGroup: number;
}

/**
 * Measures committed appends per second on a fresh temporary file (WAL, `synchronous = FULL`),
 * keeping `concurrency` appends in flight: each one that commits starts the next, as concurrent
 * requests would. The file is removed afterwards. For `bench/`, not for timed tests.
 *
 * @example
 * ```ts
 * const grouped = await benchAppend(50_000);
 * const single = await benchAppend(2_000, { concurrency: 1 });
 * console.log(`${Math.round(grouped.recordsPerSecond)} rec/s vs ${Math.round(single.recordsPerSecond)}`);
 * ```
 */
export async function benchAppend(n: number, opts: BenchAppendOptions = {}): Promise<BenchAppendResult> {
  const concurrency = Math.max(1, Math.trunc(opts.concurrency ?? 256));
  const dir = fs.mkdtempSync(path.join(opts.dir ?? os.tmpdir(), "cosmosgate-bench-"));
  const db = openDatabase(path.join(dir, "audit.db"));
  try {
    const writer = createAuditWriter(db);
    const event: AuditEvent = {
      time: Date.now(),
      type: "data.request",
      subject: "alice@contoso.com",
      subjectKind: "user",
      issuer: "http://localhost:8080",
      credential: "qW3rTy-credential-id-0123456789",
      jti: "b1946ac92492d2347c6235b4d2611184",
      operation: "item.read",
      method: "GET",
      actions: ["read"],
      resource: "/dbs/shop/colls/orders/docs/a1",
      partitionKey: '["a1"]',
      decision: "allow",
      reason: "allowed by reader#0",
      rule: "reader#0",
      status: 200,
      requestCharge: 1,
      durationMs: 3.2,
      clientAddress: "127.0.0.1",
      userAgent: "azsdk-js-cosmos/4.9.3",
      activityId: "6f1c2d7e-2d1a-4c39-9a57-1f0c8e6f0a11",
    };
    let started = 0;
    const start = process.hrtime.bigint();
    const lane = async (): Promise<void> => {
      while (started < n) {
        started += 1;
        await writer.append(event);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await writer.close();
    const { commits, committed } = writer.stats();
    return {
      recordsPerSecond: committed / seconds,
      records: committed,
      seconds,
      commits,
      meanGroup: commits === 0 ? 0 : committed / commits,
    };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
