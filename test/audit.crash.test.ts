import type { Container } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { openDatabase } from "../src/store/index.js";
import { type ChildGateway, createChildGateway } from "./helpers/childGateway.js";
import { runCli } from "./helpers/cli.js";

/** A request the client saw succeed: what its audit record must show. */
interface Acknowledged {
  method: string;
  resource: string;
  activityId: string;
  status: number;
}

/**
 * Strict durability against a real crash: `cosmosgate serve` runs as a child process, takes a
 * burst of concurrent SDK writes and reads, and is SIGKILLed mid-burst (no shutdown hook runs).
 * Every request whose 2xx reached the client must have its record after the restart, and the
 * chain must verify.
 */
describe("audit durability: SIGKILL mid-burst in strict mode", () => {
  let gw: ChildGateway;

  beforeAll(async () => {
    gw = await createChildGateway({ auditYaml: "audit: {durability: strict}" });
    await gw.start();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("keeps the record of every acknowledged request, and the chain verifies after the restart", async () => {
    const client = gw.client("alice", ["cosmos-admins"]);
    const { database } = await client.databases.createIfNotExists({ id: "crash" });
    const { container } = await database.containers.createIfNotExists({
      id: "items",
      partitionKey: { paths: ["/pk"] },
    });

    const acknowledged: Acknowledged[] = [];
    let failures = 0;
    let stop = false;
    const KILL_AFTER = 300;
    const WORKERS = 32;
    let killed: Promise<number | null> | undefined;
    const burst = async (worker: number, c: Container) => {
      for (let i = 0; !stop; i++) {
        const id = `w${worker}-${i}`;
        const pk = `p${worker % 4}`;
        try {
          // A write, then a read and (every other item) a replace of what was written.
          const created = await c.items.create({ id, pk, n: i });
          acknowledged.push({
            method: "POST",
            resource: "/dbs/crash/colls/items/docs",
            activityId: created.activityId,
            status: created.statusCode,
          });
          const read = await c.item(id, pk).read();
          acknowledged.push({
            method: "GET",
            resource: `/dbs/crash/colls/items/docs/${id}`,
            activityId: read.activityId,
            status: read.statusCode,
          });
          if (i % 2 === 0) {
            const replaced = await c.item(id, pk).replace({ id, pk, n: i, replaced: true });
            acknowledged.push({
              method: "PUT",
              resource: `/dbs/crash/colls/items/docs/${id}`,
              activityId: replaced.activityId,
              status: replaced.statusCode,
            });
          }
        } catch {
          // The gateway died under this request: it got no 2xx, so it makes no claim.
          failures++;
          if (killed) return;
        }
        if (acknowledged.length >= KILL_AFTER && killed === undefined) {
          // Mid-burst: the other workers have requests in flight right now.
          killed = gw.process()!.stop("SIGKILL");
        }
      }
    };
    await Promise.race([
      Promise.all(Array.from({ length: WORKERS }, (_, w) => burst(w, container))),
      new Promise((_, reject) => setTimeout(() => reject(new Error("the burst did not end")), 60_000)),
    ]);
    stop = true;
    expect(killed).toBeDefined();
    await killed;
    // Requests were in flight when the process died (they got no answer).
    expect(failures).toBeGreaterThan(0);
    for (const a of acknowledged) expect(a.status).toBeGreaterThanOrEqual(200);
    for (const a of acknowledged) expect(a.status).toBeLessThan(300);
    expect(acknowledged.length).toBeGreaterThanOrEqual(KILL_AFTER);

    // Restart on the same state: the chain continues and every acknowledged request is there.
    await gw.start();
    const db = openDatabase(gw.auditFile, { readonly: true });
    let records: AuditRecord[];
    try {
      records = (db.prepare("SELECT data FROM audit_events ORDER BY seq").all() as { data: string }[]).map(
        (r) => JSON.parse(r.data) as AuditRecord,
      );
    } finally {
      db.close();
    }
    const byActivity = new Map(
      records.filter((r) => r.type === "data.request").map((r) => [r.activityId, r] as const),
    );
    const missing = acknowledged.filter((a) => {
      const r = byActivity.get(a.activityId);
      return r === undefined || r.method !== a.method || r.resource !== a.resource || r.status !== a.status;
    });
    expect(missing).toEqual([]);
    expect(byActivity.size).toBeGreaterThanOrEqual(acknowledged.length);

    // The restarted gateway appends after what the killed one left, and the whole chain verifies.
    const after = await client.database("crash").container("items").item("w0-0", "p0").read();
    expect(after.statusCode).toBe(200);
    const verify = await runCli(["audit", "verify", "--config", gw.configFile], { timeoutMs: 60_000 });
    expect({ code: verify.code, out: verify.stdout }).toMatchObject({ code: 0 });
  }, 180_000);
});
