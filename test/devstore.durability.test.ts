// Durability of the embedded store: a child process runs it on a SQLite file, the real SDK sends it a
// stream of writes from several concurrent writers, the child is killed with SIGKILL in the middle
// of the stream, restarted on the same file, and every write that was acknowledged before the kill
// must be there with its content (deletes acknowledged must stay deleted). Writes in flight at the
// kill may or may not have landed; nothing is asserted about them. (A process kill keeps the OS page
// cache; an fsync-less store could still pass this test, but one that acknowledges before its
// transaction commits, or buffers acknowledged writes in memory, cannot.)
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Container, CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMULATOR_KEY } from "./helpers/devstore.js";

const CHILD = join(import.meta.dirname, "helpers", "devstoreChild.ts");

async function spawnStore(file: string): Promise<{ child: ChildProcess; origin: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, file], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const origin = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout?.on("data", (d) => {
      buf += String(d);
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve((JSON.parse(buf.slice(0, nl)) as { origin: string }).origin);
    });
    child.once("exit", (code, signal) => reject(new Error(`store child exited early (${code ?? signal})`)));
    setTimeout(() => reject(new Error("store child did not start within 20 s")), 20_000).unref();
  });
  return { child, origin };
}

function clientFor(origin: string): CosmosClient {
  return new CosmosClient({
    endpoint: origin,
    key: EMULATOR_KEY,
    connectionPolicy: { enableEndpointDiscovery: false, requestTimeout: 3_000 },
  });
}

interface Created {
  id: string;
  p: string;
  worker: number;
  i: number;
  data: string;
}

describe("embedded store: durability across SIGKILL", () => {
  let dir: string;
  let file: string;
  const children: ChildProcess[] = [];
  const clients: CosmosClient[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-durability-"));
    file = join(dir, "store.db");
  });
  afterAll(() => {
    for (const c of clients) c.dispose();
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("every write acknowledged before the kill is there after the restart", { timeout: 60_000 }, async () => {
    const first = await spawnStore(file);
    children.push(first.child);
    const c1 = clientFor(first.origin);
    clients.push(c1);
    const { database } = await c1.databases.create({ id: "dur" });
    const { container } = await database.containers.create({ id: "w", partitionKey: { paths: ["/p"] } });

    const created = new Map<string, Created>(); // acknowledged creates (minus acknowledged deletes)
    const deleted = new Map<string, string>(); // acknowledged deletes: id → partition key
    const lastSeq = new Map<string, number>(); // counter doc id → last acknowledged seq
    let inFlight = 0;
    let inFlightAtKill = -1;
    let acks = 0;
    let stop = false;

    const ack = async <T>(op: Promise<T>): Promise<T | undefined> => {
      inFlight += 1;
      try {
        const r = await op;
        acks += 1;
        return r;
      } catch {
        stop = true; // the store is gone: this write is unacknowledged
        return undefined;
      } finally {
        inFlight -= 1;
      }
    };

    const worker = async (w: number, c: Container) => {
      const mine: string[] = [];
      for (let i = 0; !stop; i++) {
        const p = `p${i % 4}`;
        if (i % 5 === 4) {
          const id = `counter-${w}`;
          if ((await ack(c.items.upsert({ id, p: "counters", seq: i }))) !== undefined) lastSeq.set(id, i);
        } else if (i % 7 === 6 && mine.length > 0) {
          const id = mine.shift() as string;
          const doc = created.get(id) as Created;
          // Until the delete is acknowledged the item may or may not be there: check neither way.
          created.delete(id);
          if ((await ack(c.item(id, doc.p).delete())) !== undefined) deleted.set(id, doc.p);
        } else {
          const doc: Created = {
            id: `w${w}-${i}`,
            p,
            worker: w,
            i,
            data: randomBytes(24).toString("base64"),
          };
          if ((await ack(c.items.create(doc))) !== undefined) {
            created.set(doc.id, doc);
            mine.push(doc.id);
          }
        }
      }
    };

    const workers = [0, 1, 2, 3].map((w) => worker(w, container));
    // Kill mid-stream once a few hundred writes are acknowledged (or after 4 s on a slow store).
    const t0 = Date.now();
    while (acks < 300 && Date.now() - t0 < 4_000 && !stop) await new Promise((r) => setTimeout(r, 5));
    inFlightAtKill = inFlight;
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    stop = true;
    await Promise.race([
      Promise.allSettled(workers),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("writers did not stop after the kill")), 20_000),
      ),
    ]);
    c1.dispose();

    expect(acks).toBeGreaterThan(50);
    expect(inFlightAtKill).toBeGreaterThan(0);

    const second = await spawnStore(file);
    children.push(second.child);
    const c2 = clientFor(second.origin);
    clients.push(c2);
    const after = c2.database("dur").container("w");

    const missing: string[] = [];
    const wrong: string[] = [];
    for (const doc of created.values()) {
      const r = await after.item(doc.id, doc.p).read();
      if (r.statusCode === 404) missing.push(doc.id);
      else if (JSON.stringify(pick(r.resource)) !== JSON.stringify(doc)) wrong.push(doc.id);
    }
    expect({ missing, wrong }).toEqual({ missing: [], wrong: [] });
    for (const [id, p] of deleted) {
      expect((await after.item(id, p).read()).statusCode, `${id} was deleted`).toBe(404);
    }
    for (const [id, seq] of lastSeq) {
      const r = await after.item(id, "counters").read();
      expect(r.resource?.seq, id).toBeGreaterThanOrEqual(seq);
    }
    // The restarted store takes writes again.
    expect((await after.items.create({ id: "after-restart", p: "p0" })).statusCode).toBe(201);
    second.child.kill("SIGTERM");
    await new Promise((r) => second.child.once("exit", r));
  });
});

function pick(r: Record<string, unknown> | undefined): Created | undefined {
  if (!r) return undefined;
  return { id: r.id, p: r.p, worker: r.worker, i: r.i, data: r.data } as Created;
}
