import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrate, openDatabase } from "../store/index.js";
import { createDurableAuditWriter } from "./durableWriter.js";
import { auditMigrations, INDEX_BATCH } from "./schema.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number): AuditEvent {
  return {
    time: 1_700_000_000_000 + i,
    type: "data.request",
    subject: `user${i % 3}`,
    credential: `cred${i % 2}`,
    actions: ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: i % 4 === 0 ? "deny" : "allow",
    reason: "test",
    status: i % 4 === 0 ? 403 : 200,
    durationMs: 1,
  };
}

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-audit-index-"));
  file = path.join(dir, "audit.db");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function indexed(): { seq: number; subject: string; credential: string; decision: string }[] {
  const db = openDatabase(file, { readonly: true });
  try {
    return db
      .prepare("SELECT seq, subject, credential, decision FROM audit_index ORDER BY seq")
      .all() as never;
  } finally {
    db.close();
  }
}

describe("the batched audit index", () => {
  it("copies records to audit_index in batches, not on every commit, and catches up on close", async () => {
    const db = openDatabase(file);
    const w = createAuditWriter(db);
    await w.append(ev(1)); // the first commit of a writer catches up whatever is unindexed
    const first = indexed().length;
    expect(first).toBe(1);
    for (let i = 2; i <= 10; i++) await w.append(ev(i)); // ten single-record commits
    expect(indexed()).toHaveLength(1); // not indexed one by one
    await Promise.all(Array.from({ length: INDEX_BATCH }, (_, i) => w.append(ev(11 + i))));
    const rows = indexed();
    expect(rows.length).toBe(INDEX_BATCH + 10); // a full batch pulled in everything unindexed
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: INDEX_BATCH + 10 }, (_, i) => i + 1));
    for (let i = 0; i < 5; i++) await w.append(ev(1000 + i));
    expect(indexed()).toHaveLength(INDEX_BATCH + 10);
    await w.close();
    expect(indexed()).toHaveLength(INDEX_BATCH + 15);
    // The copies agree with the records.
    const src = db.prepare("SELECT seq, subject, credential, decision FROM audit_events ORDER BY seq").all();
    expect(indexed()).toEqual(src);
    db.close();
  });

  it("serves searches from indexes on audit_index, none left on audit_events", () => {
    const db = openDatabase(file);
    migrate(db, auditMigrations);
    const onEvents = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'")
      .all();
    expect(onEvents).toEqual([]);
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[])
        .map((r) => r.detail)
        .join(" | ");
    expect(plan("SELECT seq FROM audit_index WHERE subject = 'a' AND time > 5")).toMatch(
      /USING (COVERING )?INDEX audit_index_subject_time/,
    );
    expect(plan("SELECT seq FROM audit_index WHERE credential = 'c' AND time > 5")).toMatch(
      /INDEX audit_index_credential_time/,
    );
    expect(plan("SELECT seq FROM audit_index WHERE decision <> 'allow' AND decision = 'deny'")).toMatch(
      /INDEX audit_index_decision_time/,
    );
    db.close();
  });

  it("migrates a version-1 trail: records kept, chain intact, index backfilled", async () => {
    // Make a version-1 file: write 20 records today, then turn the file back into the v1 layout.
    const db2 = openDatabase(file);
    migrate(db2, auditMigrations);
    const w = createAuditWriter(db2);
    for (let i = 1; i <= 20; i++) await w.append(ev(i));
    await w.close();
    db2.exec("DELETE FROM audit_index; PRAGMA user_version = 1;");
    db2.exec(
      "DROP INDEX audit_index_time; DROP INDEX audit_index_subject_time; DROP INDEX audit_index_credential_time; DROP INDEX audit_index_decision_time; DROP TABLE audit_index; DROP TABLE audit_index_actions; DROP TABLE audit_checkpoints;" +
        "CREATE INDEX audit_events_time ON audit_events (time); CREATE INDEX audit_events_subject_time ON audit_events (subject, time);" +
        "CREATE INDEX audit_events_credential_time ON audit_events (credential, time); CREATE INDEX audit_events_decision_time ON audit_events (decision, time) WHERE decision <> 'allow';",
    );
    migrate(db2, auditMigrations);
    expect(verifyChain(db2)).toMatchObject({ ok: true, count: 20 });
    db2.close();
    expect(indexed().map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("the data plane's durable writer indexes on its timer at low traffic", async () => {
    const audit = await createDurableAuditWriter(file);
    await audit.append(ev(1));
    for (let i = 2; i <= 4; i++) await audit.append(ev(i));
    expect(indexed().length).toBeLessThan(4);
    await new Promise((r) => setTimeout(r, 1200));
    expect(indexed()).toHaveLength(4);
    await audit.close();
  });
});
