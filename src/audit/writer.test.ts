import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import { hashRecord } from "./chain.js";
import { AuditError } from "./errors.js";
import { tail } from "./query.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: 1_700_000_000_000 + i,
    type: "data.request",
    subject: `user${i % 7}`,
    credential: i % 2 === 0 ? `cred${i % 3}` : undefined,
    actions: ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: i % 5 === 0 ? "deny" : "allow",
    reason: "test",
    status: i % 5 === 0 ? 403 : 200,
    durationMs: 1,
    ...over,
  };
}

let dir: string;
let file: string;
const open: Database[] = [];
function db(opts?: { readonly?: boolean }): Database {
  const d = openDatabase(file, opts);
  open.push(d);
  return d;
}
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-audit-"));
  file = path.join(dir, "audit.db");
});
afterEach(() => {
  for (const d of open.splice(0)) if (d.open) d.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("createAuditWriter", () => {
  it("commits appends of one turn in one transaction with consecutive seqs and a valid chain", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    const seqs = await Promise.all(Array.from({ length: 500 }, (_, i) => writer.append(ev(i))));
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(writer.stats()).toMatchObject({ committed: 500, commits: 1, maxGroup: 500, rejected: 0 });
    expect(writer.head().seq).toBe(500);
    expect(verifyChain(d)).toEqual({ ok: true, count: 500 });
    const rows = d
      .prepare("SELECT seq, subject, decision, status, credential FROM audit_events ORDER BY seq")
      .all();
    expect(rows[0]).toEqual({ seq: 1, subject: "user0", decision: "deny", status: 403, credential: "cred0" });
    expect(rows[1]).toEqual({ seq: 2, subject: "user1", decision: "allow", status: 200, credential: null });
  });

  it("groups per turn under concurrent load and keeps the chain valid", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    const all: Promise<number>[] = [];
    for (let t = 0; t < 20; t++) {
      for (let i = 0; i < 50; i++) all.push(writer.append(ev(t * 50 + i)));
      await turn();
    }
    const seqs = await Promise.all(all);
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(writer.stats().commits).toBeGreaterThan(1);
    expect(writer.stats().commits).toBeLessThanOrEqual(20);
    expect(verifyChain(d)).toEqual({ ok: true, count: 1000 });
    // The stored record is the event appended with that seq.
    expect(tail(d, 1)[0]).toEqual({
      ...JSON.parse(JSON.stringify(ev(999))),
      seq: 1000,
      prevHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it("resolves only once the record is committed", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    const seq = await writer.append(ev(1));
    const other = openDatabase(file, { readonly: true }); // another connection sees it
    expect(other.prepare("SELECT count(*) AS n FROM audit_events").get()).toEqual({ n: seq });
    other.close();
  });

  it("continues the chain after a reopen", async () => {
    let d = db();
    let writer = createAuditWriter(d);
    await Promise.all([writer.append(ev(1)), writer.append(ev(2))]);
    const head = writer.head();
    await writer.close();
    d.close();

    d = db();
    writer = createAuditWriter(d);
    expect(writer.head()).toEqual(head);
    expect(await writer.append(ev(3))).toBe(3);
    const [, , third] = tail(d, 3);
    expect(third.prevHash).toBe(head.hash);
    expect(third.hash).toBe(hashRecord(head.hash, 3, ev(3)));
    expect(verifyChain(d)).toEqual({ ok: true, count: 3 });
  });

  it("re-reads the head in each transaction, so two connections appending still chain", async () => {
    const a = createAuditWriter(db());
    const b = createAuditWriter(db());
    for (let i = 0; i < 10; i++) {
      await Promise.all([a.append(ev(i)), b.append(ev(100 + i)), b.append(ev(200 + i))]);
    }
    expect(verifyChain(db({ readonly: true }))).toEqual({ ok: true, count: 30 });
  });

  it("flush commits at once, close refuses later appends", async () => {
    const d = db();
    const writer = createAuditWriter(d, { clock: () => 42 });
    const p = writer.append(ev(1));
    await writer.flush();
    expect(d.prepare("SELECT count(*) AS n FROM audit_events").get()).toEqual({ n: 1 });
    expect(await p).toBe(1);
    expect(writer.stats().lastCommitAt).toBe(42);
    const q = writer.append(ev(2));
    await writer.close();
    expect(await q).toBe(2);
    await expect(writer.append(ev(3))).rejects.toMatchObject({ code: "ERR_AUDIT_CLOSED" });
    await expect(writer.flush()).resolves.toBeUndefined();
  });

  it("rejects every append of a failed group with ERR_AUDIT_WRITE and stores none of it", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    await writer.append(ev(1));
    d.exec(
      "CREATE TRIGGER fail BEFORE INSERT ON audit_events WHEN NEW.subject = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    );
    const group = [writer.append(ev(2)), writer.append(ev(3, { subject: "boom" })), writer.append(ev(4))];
    const results = await Promise.allSettled(group);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      const err = (r as PromiseRejectedResult).reason as AuditError;
      expect(err).toBeInstanceOf(AuditError);
      expect(err.code).toBe("ERR_AUDIT_WRITE");
    }
    expect(writer.head().seq).toBe(1);
    expect(writer.stats().rejected).toBe(3);
    d.exec("DROP TRIGGER fail");
    expect(await writer.append(ev(5))).toBe(2);
    expect(verifyChain(d)).toEqual({ ok: true, count: 2 });
  });

  it("rejects with ERR_AUDIT_WRITE when the database is closed", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    d.close();
    const results = await Promise.allSettled([writer.append(ev(1)), writer.append(ev(2))]);
    expect(results.map((r) => r.status === "rejected" && (r.reason as AuditError).code)).toEqual([
      "ERR_AUDIT_WRITE",
      "ERR_AUDIT_WRITE",
    ]);
    await expect(writer.flush()).resolves.toBeUndefined();
  });

  it("flush rejects with ERR_AUDIT_WRITE when its commit fails", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    const p = writer.append(ev(1));
    d.close();
    await expect(writer.flush()).rejects.toMatchObject({ code: "ERR_AUDIT_WRITE" });
    await expect(p).rejects.toMatchObject({ code: "ERR_AUDIT_WRITE" });
  });

  it("rejects with ERR_AUDIT_WRITE when the database is read-only", async () => {
    createAuditWriter(db()); // creates the table
    const writer = createAuditWriter(db({ readonly: true }));
    await expect(writer.append(ev(1))).rejects.toMatchObject({ code: "ERR_AUDIT_WRITE" });
  });

  it("rejects a malformed event alone with ERR_AUDIT_EVENT, without using a seq", async () => {
    const d = db();
    const writer = createAuditWriter(d);
    const bad = { ...ev(2), subject: undefined } as unknown as AuditEvent;
    const nan = ev(3, { durationMs: Number.NaN });
    const results = await Promise.allSettled([
      writer.append(ev(1)),
      writer.append(bad),
      writer.append(nan),
      writer.append(ev(4)),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as AuditError).code))).toEqual([
      1,
      "ERR_AUDIT_EVENT",
      "ERR_AUDIT_EVENT",
      2,
    ]);
    expect(verifyChain(d)).toEqual({ ok: true, count: 2 });
  });

  it("fails to start with ERR_AUDIT_WRITE on a closed database", () => {
    const d = db();
    d.close();
    expect(() => createAuditWriter(d)).toThrow(expect.objectContaining({ code: "ERR_AUDIT_WRITE" }));
  });
});
