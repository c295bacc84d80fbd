import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import { createCheckpointer, listCheckpoints } from "./checkpoints.js";
import { createTestCheckpointKeys } from "./checkpointTesting.js";
import { pruneAudit, startRetention } from "./retention.js";
import type { AuditEvent } from "./types.js";
import { verifyChain, verifyTrail } from "./verify.js";
import { type AuditWriter, createAuditWriter } from "./writer.js";

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

function ev(i: number, time: number): AuditEvent {
  return {
    time,
    type: "data.request",
    subject: `user${i}`,
    actions: ["read", "query"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: "allow",
    reason: "allowed",
    status: 200,
    durationMs: 1,
  };
}

const dbs: Database[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
});

/**
 * Records 1–10 on day 0 (checkpoint at 10), 11–20 on day 1 (checkpoint at 20), 21–25 on day 5
 * (no checkpoint yet). Now is day 5.
 */
async function aged(opts: { every?: number } = {}) {
  const db = openDatabase(":memory:");
  dbs.push(db);
  let now = T0;
  const writer = createAuditWriter(db, { clock: () => now });
  const cps = createCheckpointer({ db, keys: await createTestCheckpointKeys(), every: 1, clock: () => now });
  let seq = 0;
  const add = async (n: number, day: number, every = opts.every ?? 10) => {
    now = T0 + day * DAY;
    for (let i = 0; i < n; i++) {
      seq += 1;
      await writer.append(ev(seq, now));
      if (seq % every === 0) await cps.checkpoint();
    }
  };
  await add(10, 0);
  await add(10, 1);
  await add(5, 5);
  await writer.flush();
  // Fill audit_index as the writer would in time.
  db.exec(
    "INSERT INTO audit_index (seq, time, type, subject, credential, resource, decision) SELECT seq, time, type, subject, credential, resource, decision FROM audit_events WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_index)",
  );
  return { db, writer, clock: () => now, setDay: (d: number) => (now = T0 + d * DAY), add };
}

const appendOf = (w: AuditWriter) => (e: AuditEvent) => w.append(e);

describe("pruneAudit", () => {
  it("prunes up to the newest checkpoint older than the retention, keeps it as the anchor, and the trail still verifies", async () => {
    const { db, writer, clock } = await aged();
    const r = await pruneAudit(db, { retentionMs: 2 * DAY, clock, append: appendOf(writer) });
    expect(r).toMatchObject({ status: "pruned", deleted: 20, fromSeq: 1, anchor: { seq: 20 }, eventSeq: 26 });

    const seqs = (db.prepare("SELECT seq FROM audit_events ORDER BY seq").all() as { seq: number }[]).map(
      (x) => x.seq,
    );
    expect(seqs).toEqual([21, 22, 23, 24, 25, 26]);
    expect(listCheckpoints(db).map((c) => c.seq)).toEqual([20]); // the anchor; older ones went
    expect((db.prepare("SELECT min(seq) AS m FROM audit_index").get() as { m: number }).m).toBe(21);
    expect(
      (db.prepare("SELECT count(*) AS n FROM audit_index_actions WHERE seq <= 20").get() as { n: number }).n,
    ).toBe(0);

    // The event, through the normal writer, says what went and authorizes the anchor.
    const event = JSON.parse(
      (db.prepare("SELECT data FROM audit_events WHERE seq = 26").get() as { data: string }).data,
    );
    expect(event).toMatchObject({
      type: "audit.pruned",
      subject: "cosmosgate",
      details: { upTo: 20, fromSeq: 1, records: 20, retentionMs: 2 * DAY },
    });

    const v = await verifyTrail(db);
    expect(v).toMatchObject({ ok: true, count: 6, firstSeq: 21, lastSeq: 26, anchor: { seq: 20 } });
    expect(v.checkpoints.matched).toBe(1);
    expect(verifyChain(db)).toMatchObject({ ok: true, count: 6, anchor: { seq: 20 } });
  });

  it("prunes again later from the new anchor, and verify follows", async () => {
    const { db, writer, clock, setDay, add } = await aged();
    await pruneAudit(db, { retentionMs: 4.5 * DAY, clock, append: appendOf(writer) }); // cutoff day 0.5: up to 10
    expect((await verifyTrail(db)).anchor).toMatchObject({ seq: 10 });
    await add(4, 9, 2); // records 27–30 (26 is the audit.pruned record): checkpoints at 27 and 29
    setDay(12);
    const r = await pruneAudit(db, { retentionMs: 2 * DAY, clock, append: appendOf(writer) }); // cutoff day 10
    expect(r).toMatchObject({ status: "pruned", fromSeq: 11, anchor: { seq: 29 }, eventSeq: 31 });
    expect(await verifyTrail(db)).toMatchObject({ ok: true, firstSeq: 30, lastSeq: 31, anchor: { seq: 29 } });
  });

  it("deletes in small transactions that each end at a checkpoint: the trail verifies at every step", async () => {
    const { db, writer, clock } = await aged({ every: 3 });
    const steps: number[] = [];
    const r = await pruneAudit(db, {
      retentionMs: 2 * DAY,
      clock,
      append: appendOf(writer),
      chunk: 4,
      pause: async () => {
        const v = verifyChain(db);
        expect(v.ok).toBe(true);
        steps.push(v.anchor?.seq ?? 0);
      },
    });
    expect(r).toMatchObject({ status: "pruned", anchor: { seq: 18 }, deleted: 18 });
    expect(steps).toEqual([3, 6, 9, 12, 15]);
    expect((await verifyTrail(db)).ok).toBe(true);
  });

  it("--dry-run says what it would delete and deletes nothing", async () => {
    const { db, clock } = await aged();
    const r = await pruneAudit(db, { retentionMs: 2 * DAY, clock, dryRun: true });
    expect(r).toMatchObject({ status: "pruned", dryRun: true, deleted: 20, anchor: { seq: 20 } });
    expect(r.eventSeq).toBeUndefined();
    expect((db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n).toBe(25);
  });

  it("prunes nothing when retention is off, or no checkpoint is older than it", async () => {
    const { db, writer, clock } = await aged();
    expect(await pruneAudit(db, { retentionMs: 0, clock })).toMatchObject({ status: "nothing", deleted: 0 });
    const r = await pruneAudit(db, { retentionMs: 10 * DAY, clock, append: appendOf(writer) });
    expect(r).toMatchObject({ status: "nothing", deleted: 0 });
    expect(r.reason).toContain("no checkpoint older than the retention");
    expect((db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n).toBe(25);
  });

  it("never deletes the chain head, even when everything is old", async () => {
    const { db, writer, setDay } = await aged({ every: 5 }); // checkpoint at 25 = the head
    setDay(100);
    const r = await pruneAudit(db, {
      retentionMs: DAY,
      clock: () => T0 + 100 * DAY,
      append: appendOf(writer),
    });
    expect(r.anchor?.seq).toBe(20);
    await writer.append(ev(99, T0 + 100 * DAY)); // the writer continues the chain
    expect((await verifyTrail(db)).ok).toBe(true);
  });

  it("refuses to prune on a checkpoint that does not verify", async () => {
    const { db, writer, clock } = await aged();
    db.prepare("UPDATE audit_checkpoints SET time = time - 1 WHERE seq = 20").run(); // edited after signing
    const r = await pruneAudit(db, { retentionMs: 2 * DAY, clock, append: appendOf(writer) });
    expect(r).toMatchObject({ status: "refused", deleted: 0 });
    expect(r.reason).toContain("does not verify");
    expect((db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n).toBe(25);
  });
});

describe("startRetention", () => {
  it("does nothing with retention 0, and prunes the file on run()", async () => {
    expect(
      await startRetention("/nonexistent/audit.db", { retentionMs: 0, append: async () => 0 }).run(),
    ).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), "cosmosgate-retention-"));
    try {
      const file = join(dir, "audit.db");
      const { db: mem, clock } = await aged();
      await mem.backup(file);
      const db = openDatabase(file);
      const writer = createAuditWriter(db, { clock });
      const results: unknown[] = [];
      const job = startRetention(file, {
        retentionMs: 2 * DAY,
        clock,
        append: appendOf(writer),
        onResult: (r) => results.push(r),
        everyMs: DAY,
      });
      const r = await job.run();
      expect(r).toMatchObject({ status: "pruned", deleted: 20 });
      expect(results).toHaveLength(1);
      await job.close();
      expect(await job.run()).toBeUndefined();
      expect((await verifyTrail(db)).ok).toBe(true);
      await writer.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
