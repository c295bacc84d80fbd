import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import { canonicalRecord, hashCanonical } from "./chain.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number): AuditEvent {
  return {
    time: 1_700_000_000_000 + i,
    type: "data.request",
    subject: `user${i}`,
    credential: `cred${i}`,
    actions: ["read", "query"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: "allow",
    reason: "allowed by reader#0",
    status: 200,
    durationMs: 1,
  };
}

const dbs: Database[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
});

/** A database holding a good chain of n records (seq 1..n). */
async function chain(n: number): Promise<Database> {
  const db = openDatabase(":memory:");
  dbs.push(db);
  const writer = createAuditWriter(db);
  await Promise.all(Array.from({ length: n }, (_, i) => writer.append(ev(i + 1))));
  return db;
}

function hashOf(db: Database, seq: number): string {
  return (db.prepare("SELECT hash FROM audit_events WHERE seq = ?").get(seq) as { hash: string }).hash;
}

/** Moves row `from` to seq `to` (which must be free). */
function move(db: Database, from: number, to: number): void {
  db.prepare("UPDATE audit_events SET seq = ? WHERE seq = ?").run(to, from);
}

function swap(db: Database, i: number, j: number): void {
  move(db, i, -1);
  move(db, j, i);
  move(db, -1, j);
}

/** Inserts a forged, correctly hashed record at seq k, renumbering k.. up by one. */
function insertAt(db: Database, k: number): void {
  db.prepare("UPDATE audit_events SET seq = -seq WHERE seq >= ?").run(k);
  db.prepare("UPDATE audit_events SET seq = 1 - seq WHERE seq < 0").run();
  const prev = k === 1 ? "" : hashOf(db, k - 1);
  const forged: AuditEvent = { ...ev(999), subject: "mallory" };
  const data = canonicalRecord(k, forged);
  db.prepare(
    "INSERT INTO audit_events (seq, time, type, subject, credential, actions, resource, decision, status, data, prev_hash, hash) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  ).run(
    k,
    forged.time,
    forged.type,
    forged.subject,
    forged.credential,
    JSON.stringify(forged.actions),
    forged.resource,
    forged.decision,
    forged.status,
    data,
    prev,
    hashCanonical(prev, data),
  );
}

describe("verifyChain", () => {
  it("passes a good chain and reports progress", async () => {
    const db = await chain(10);
    const progress: [number, number][] = [];
    expect(verifyChain(db, { onProgress: (done, total) => progress.push([done, total]) })).toEqual({
      ok: true,
      count: 10,
    });
    expect(progress.at(-1)).toEqual([10, 10]);
  });

  it("passes an empty trail", async () => {
    expect(verifyChain(await chain(0))).toEqual({ ok: true, count: 0 });
  });

  it("names a record whose data was changed", async () => {
    const db = await chain(10);
    db.prepare("UPDATE audit_events SET data = json_set(data, '$.status', 500) WHERE seq = 4").run();
    expect(verifyChain(db)).toMatchObject({ ok: false, count: 3, firstBroken: { seq: 4, kind: "changed" } });
  });

  it("names a record whose indexed column disagrees with its data", async () => {
    const db = await chain(10);
    db.prepare("UPDATE audit_events SET subject = 'someone-else' WHERE seq = 6").run();
    const r = verifyChain(db);
    expect(r).toMatchObject({ ok: false, count: 5, firstBroken: { seq: 6, kind: "changed" } });
    expect(r.firstBroken?.detail).toContain("subject");

    const db2 = await chain(10);
    db2.prepare("UPDATE audit_events SET credential = NULL WHERE seq = 2").run();
    expect(verifyChain(db2).firstBroken).toMatchObject({ seq: 2, kind: "changed" });
  });

  it("names a record rewritten with a recomputed hash as a bad link at the next record", async () => {
    const db = await chain(10);
    const data = canonicalRecord(5, { ...ev(5), decision: "deny", status: 403 });
    db.prepare(
      "UPDATE audit_events SET data = ?, hash = ?, decision = 'deny', status = 403 WHERE seq = 5",
    ).run(data, hashCanonical(hashOf(db, 4), data));
    expect(verifyChain(db)).toMatchObject({ ok: false, firstBroken: { seq: 6, kind: "bad-link" } });
  });

  it("names a deleted middle record as missing", async () => {
    const db = await chain(10);
    db.prepare("DELETE FROM audit_events WHERE seq IN (4, 5)").run();
    const r = verifyChain(db);
    expect(r).toMatchObject({ ok: false, count: 3, firstBroken: { seq: 4, kind: "missing" } });
    expect(r.firstBroken?.detail).toContain("4–5");
  });

  it("names a deleted first record as missing", async () => {
    const db = await chain(5);
    db.prepare("DELETE FROM audit_events WHERE seq = 1").run();
    expect(verifyChain(db)).toMatchObject({ ok: false, count: 0, firstBroken: { seq: 1, kind: "missing" } });
  });

  it("names records deleted and the rest renumbered as missing", async () => {
    const db = await chain(10);
    db.prepare("DELETE FROM audit_events WHERE seq = 4").run();
    for (let s = 5; s <= 10; s++) move(db, s, s - 1);
    expect(verifyChain(db)).toMatchObject({ ok: false, count: 3, firstBroken: { seq: 4, kind: "missing" } });
  });

  it("cannot detect deleting the newest record (needs checkpoints, a later issue)", async () => {
    const db = await chain(10);
    db.prepare("DELETE FROM audit_events WHERE seq = 10").run();
    // A truncated tail is a shorter valid chain; only a checkpoint of the head kept elsewhere shows it.
    expect(verifyChain(db)).toEqual({ ok: true, count: 9 });
  });

  it("names an inserted record", async () => {
    const db = await chain(10);
    insertAt(db, 4);
    const r = verifyChain(db);
    expect(r).toMatchObject({ ok: false, count: 3, firstBroken: { seq: 4, kind: "inserted" } });
  });

  it("names two swapped records as reordered", async () => {
    const db = await chain(10);
    swap(db, 3, 7);
    expect(verifyChain(db)).toMatchObject({
      ok: false,
      count: 2,
      firstBroken: { seq: 3, kind: "reordered" },
    });

    const adjacent = await chain(10);
    swap(adjacent, 5, 6);
    expect(verifyChain(adjacent)).toMatchObject({ ok: false, firstBroken: { seq: 5, kind: "reordered" } });
  });

  it("names a first record with a non-empty prev_hash as a bad link", async () => {
    const db = await chain(3);
    const data = canonicalRecord(1, ev(1));
    db.prepare("UPDATE audit_events SET prev_hash = 'x', hash = ? WHERE seq = 1").run(
      hashCanonical("x", data),
    );
    expect(verifyChain(db).firstBroken).toMatchObject({ seq: 1, kind: "bad-link" });
  });

  it("names the kind and place of any single tampering of a record before the newest", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 20 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            at: fc.integer({ min: 1, max: n - 1 }),
            other: fc.integer({ min: 1, max: n }),
            how: fc.constantFrom("data", "column", "hash", "delete", "swap", "insert"),
          }),
        ),
        async ({ n, at, other, how }) => {
          const db = await chain(n);
          let expected: { seq: number; kind: string };
          switch (how) {
            case "data":
              db.prepare("UPDATE audit_events SET data = replace(data, 'user', 'usr') WHERE seq = ?").run(at);
              expected = { seq: at, kind: "changed" };
              break;
            case "column":
              db.prepare("UPDATE audit_events SET status = status + 1 WHERE seq = ?").run(at);
              expected = { seq: at, kind: "changed" };
              break;
            case "hash":
              db.prepare("UPDATE audit_events SET hash = ? WHERE seq = ?").run("0".repeat(64), at);
              expected = { seq: at, kind: "changed" };
              break;
            case "delete":
              db.prepare("DELETE FROM audit_events WHERE seq = ?").run(at);
              expected = { seq: at, kind: "missing" };
              break;
            case "swap":
              if (other === at) return;
              swap(db, at, other);
              expected = { seq: Math.min(at, other), kind: "reordered" };
              break;
            default:
              insertAt(db, at);
              expected = { seq: at, kind: "inserted" };
          }
          const r = verifyChain(db);
          expect(r).toMatchObject({ ok: false, count: expected.seq - 1, firstBroken: expected });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("throws ERR_AUDIT_READ when there is no audit table", () => {
    const db = openDatabase(":memory:");
    dbs.push(db);
    expect(() => verifyChain(db)).toThrow(AuditError);
    expect(() => verifyChain(db)).toThrow(expect.objectContaining({ code: "ERR_AUDIT_READ" }));
  });
});
