import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../store/sqlite.js";
import type { ChainReply, ChainRequest } from "./chainThread.js";
import { createDurableAuditWriter, INLINE_GROUP } from "./durableWriter.js";
import { AuditError } from "./errors.js";
import { INDEX_BATCH } from "./schema.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

/** The trail in `file` verifies and holds `count` records. */
function expectChain(file: string, count: number): void {
  const db = openDatabase(file, { readonly: true });
  try {
    expect(verifyChain(db)).toMatchObject({ ok: true, count });
  } finally {
    db.close();
  }
}

/** Wraps the thread's postMessage: pushes the size of each group handed to it (after it is sent). */
function recordHandedGroups(w: Worker, into: number[]): void {
  const post = w.postMessage.bind(w);
  w.postMessage = (m: ChainRequest) => {
    post(m); // throws for a group it cannot copy
    if (m.op === "write") into.push(m.events.length);
  };
}

/** Watches for the writer thread: `ready` resolves once it is started and in use. */
function threadWatch() {
  let worker: Worker | undefined;
  let started: Promise<unknown> | undefined;
  return {
    onThread: (w: Worker) => {
      worker = w;
      started = once(w, "message");
    },
    get worker() {
      return worker;
    },
    async ready() {
      expect(started).toBeDefined();
      await started;
      // The writer adopts the thread right after its "ready".
      await new Promise((r) => setImmediate(r));
    },
  };
}

const event = (i: number): AuditEvent => ({
  time: 1_700_000_000_000 + i,
  type: "data.request",
  subject: `user-${i % 3}`,
  actions: ["read"],
  resource: `/dbs/a/colls/b/docs/${i}`,
  decision: "allow",
  reason: "test",
  status: 200,
  durationMs: 1,
});

describe("createDurableAuditWriter", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-auditd-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("commits concurrent appends with consecutive seqs and a valid chain, each acknowledged after the WAL fsync", async () => {
    const file = join(dir, "audit.db");
    const audit = await createDurableAuditWriter(file);
    const seqs = await Promise.all(Array.from({ length: 500 }, (_, i) => audit.append(event(i))));
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(audit.pending()).toBe(0);
    await audit.close();
    expectChain(file, 500);
  });

  it("continues the chain across restarts", async () => {
    const file = join(dir, "audit.db");
    const first = await createDurableAuditWriter(file);
    await first.append(event(1));
    await first.close();
    const second = await createDurableAuditWriter(file);
    expect(await second.append(event(2))).toBe(2);
    await second.close();
  });

  it("keeps the database in WAL mode with synchronous=NORMAL (it fsyncs the WAL itself) and files 0600", async () => {
    const file = join(dir, "audit.db");
    const audit = await createDurableAuditWriter(file);
    await audit.append(event(1));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
    const db = openDatabase(file, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    } finally {
      db.close();
    }
    await audit.close();
  });

  it("chains after records another connection appended between its groups (data_version)", async () => {
    const file = join(dir, "audit.db");
    const audit = await createDurableAuditWriter(file);
    expect(await audit.append(event(1))).toBe(1);
    const other = openDatabase(file);
    try {
      const writer = createAuditWriter(other);
      expect(await writer.append(event(2))).toBe(2);
      expect(await Promise.all([audit.append(event(3)), audit.append(event(4))])).toEqual([3, 4]);
      expect(await writer.append(event(5))).toBe(5);
      expect(await audit.append(event(6))).toBe(6);
      expect(verifyChain(other)).toEqual({ ok: true, count: 6 });
    } finally {
      other.close();
    }
    await audit.close();
  });

  it("refuses appends after close with ERR_AUDIT_CLOSED", async () => {
    const audit = await createDurableAuditWriter(join(dir, "audit.db"));
    await audit.close();
    await expect(audit.append(event(1))).rejects.toMatchObject({ code: "ERR_AUDIT_CLOSED" });
  });

  it("buffered: an append settles once queued; the record is committed and fsync'd within the delay", async () => {
    const file = join(dir, "audit.db");
    const commits: number[] = [];
    const audit = await createDurableAuditWriter(file, {
      durability: "buffered",
      bufferedDelayMs: 200,
      onCommit: (records) => commits.push(records),
    });
    const reader = openDatabase(file, { readonly: true });
    try {
      const count = () => reader.prepare("SELECT count(*) FROM audit_events").pluck().get() as number;
      const queuedAt = performance.now();
      // Settles with 0 (the seq is not known yet) without waiting for any commit.
      expect(await Promise.all(Array.from({ length: 50 }, (_, i) => audit.append(event(i))))).toEqual(
        Array(50).fill(0),
      );
      expect(count()).toBe(0);
      expect(audit.pending()).toBe(50);
      while (count() < 50) await new Promise((r) => setTimeout(r, 5));
      expect(performance.now() - queuedAt).toBeLessThan(200);
      // The fsync may still be running when the rows become visible; it follows within the delay.
      await audit.flush();
      expect(performance.now() - queuedAt).toBeLessThan(200);
      expect(audit.pending()).toBe(0);
      expect(commits).toEqual([50]);
      expect(verifyChain(reader)).toMatchObject({ ok: true, count: 50 });
    } finally {
      reader.close();
      await audit.close();
    }
  });

  it("buffered: close commits what is queued without waiting for the delay", async () => {
    const file = join(dir, "audit.db");
    const audit = await createDurableAuditWriter(file, { durability: "buffered", bufferedDelayMs: 60_000 });
    for (let i = 0; i < 10; i++) await audit.append(event(i));
    const started = performance.now();
    await audit.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expectChain(file, 10);
  });

  it("keeps the records of a locked store queued, refuses new requests, and stores them when the lock goes", async () => {
    const file = join(dir, "audit.db");
    const changes: string[] = [];
    const causes: unknown[] = [];
    const lostEvents: AuditEvent[] = [];
    const audit = await createDurableAuditWriter(file, {
      onStateChange: (c, err) => {
        changes.push(c);
        causes.push((err?.cause as { code?: string } | undefined)?.code);
      },
      onLost: (e) => lostEvents.push(e),
    });
    expect(await audit.append(event(0))).toBe(1);
    // A backup tool (or anyone) holds the write lock: a real lock, from another connection.
    const other = openDatabase(file);
    other.exec("BEGIN EXCLUSIVE");
    let settled = 0;
    const appends = Array.from({ length: 20 }, (_, i) =>
      audit.append(event(i + 1)).finally(() => {
        settled++;
      }),
    );
    // The event loop is not blocked by the lock: timers run while the writer retries.
    await new Promise((r) => setTimeout(r, 30));
    expect(changes).toEqual(["retrying"]);
    expect(causes).toEqual(["SQLITE_BUSY"]);
    expect(audit.state()).toBe("retrying");
    // A short SQLITE_BUSY is tolerated; a lock held longer than the grace refuses new requests.
    await new Promise((r) => setTimeout(r, 150));
    expect(audit.accepting()).toBe(false);
    expect(settled).toBe(0);
    expect(audit.pending()).toBe(20);
    other.exec("COMMIT");
    expect(await Promise.all(appends)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(audit.accepting()).toBe(true);
    expect(audit.state()).toBe("ok");
    expect(changes).toEqual(["retrying", "recovered"]);
    expect(lostEvents).toEqual([]);
    expect(verifyChain(other)).toMatchObject({ ok: true, count: 21 });
    other.close();
    await audit.close();
  });

  it("refuses at once on a commit error other than a lock, retries, and recovers when the store is writable", async () => {
    const file = join(dir, "audit.db");
    const changes: string[] = [];
    const audit = await createDurableAuditWriter(file, { onStateChange: (c) => changes.push(c) });
    expect(await audit.append(event(0))).toBe(1);
    // Every insert now fails inside the writer's transaction, as on SQLITE_FULL or an I/O error.
    const other = openDatabase(file);
    other.exec(
      "CREATE TRIGGER fail_inserts BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'simulated: database or disk is full'); END",
    );
    const appended = audit.append(event(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(audit.state()).toBe("retrying");
    expect(audit.accepting()).toBe(false);
    other.exec("DROP TRIGGER fail_inserts");
    expect(await appended).toBe(2);
    expect(audit.accepting()).toBe(true);
    expect(changes).toEqual(["retrying", "recovered"]);
    expect(verifyChain(other)).toMatchObject({ ok: true, count: 2 });
    other.close();
    await audit.close();
  });

  it("gives up records it cannot store within the bound: each goes to the last-resort sink, its append rejects", async () => {
    const file = join(dir, "audit.db");
    const lostEvents: { event: AuditEvent; code: string }[] = [];
    const audit = await createDurableAuditWriter(file, {
      storeTimeoutMs: 300,
      onLost: (event, err) => lostEvents.push({ event, code: err.code }),
    });
    const other = openDatabase(file);
    other.exec("BEGIN EXCLUSIVE");
    try {
      const started = performance.now();
      const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => audit.append(event(i))));
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(300);
      expect(waited).toBeLessThan(2000);
      for (const r of results) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "ERR_AUDIT_WRITE" });
        expect(String((r as PromiseRejectedResult).reason.message)).toMatch(
          /could not be stored within 300 ms/,
        );
      }
      expect(lostEvents.map((l) => l.event.resource)).toEqual(
        Array.from({ length: 5 }, (_, i) => `/dbs/a/colls/b/docs/${i}`),
      );
      expect(audit.pending()).toBe(0);
    } finally {
      other.exec("COMMIT");
    }
    // The store is writable again: the writer recovers and the chain holds what it stored.
    expect(await audit.append(event(9))).toBe(1);
    expect(audit.accepting()).toBe(true);
    expect(verifyChain(other)).toMatchObject({ ok: true, count: 1 });
    other.close();
    await audit.close();
  });

  it("fails closed for good after an fsync error (fsyncgate); the records it covered go to the sink", async () => {
    const file = join(dir, "audit.db");
    const lostEvents: AuditEvent[] = [];
    const changes: string[] = [];
    let failSync = false;
    const audit = await createDurableAuditWriter(file, {
      onLost: (e) => lostEvents.push(e),
      onStateChange: (c) => changes.push(c),
      datasync: (wal) => (failSync ? Promise.reject(new Error("EIO: i/o error, fdatasync")) : wal.datasync()),
    });
    expect(await audit.append(event(0))).toBe(1);
    failSync = true;
    const results = await Promise.allSettled([audit.append(event(1)), audit.append(event(2))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect((results[0] as PromiseRejectedResult).reason.message).toMatch(
      /could not be flushed to disk \(EIO/,
    );
    expect(lostEvents.map((e) => e.resource)).toEqual(["/dbs/a/colls/b/docs/1", "/dbs/a/colls/b/docs/2"]);
    expect(changes).toEqual(["failed"]);
    expect(audit.accepting()).toBe(false);
    expect(audit.state()).toBe("failed");
    // A later fsync would not make the lost pages durable: the writer refuses from now on.
    failSync = false;
    await expect(audit.append(event(3))).rejects.toMatchObject({ code: "ERR_AUDIT_WRITE" });
    expect(lostEvents).toHaveLength(3);
    await audit.close();
  });

  it("reports it cannot keep up beyond maxQueue, and bounds memory at twice maxQueue", async () => {
    const file = join(dir, "audit.db");
    const lostEvents: AuditEvent[] = [];
    const audit = await createDurableAuditWriter(file, {
      durability: "buffered",
      bufferedDelayMs: 60_000,
      maxQueue: 5,
      onLost: (e) => lostEvents.push(e),
    });
    for (let i = 0; i < 5; i++) await audit.append(event(i));
    expect(audit.accepting()).toBe(true);
    await audit.append(event(5));
    expect(audit.accepting()).toBe(false);
    expect(audit.state()).toBe("overloaded");
    for (let i = 6; i < 10; i++) await audit.append(event(i));
    await expect(audit.append(event(10))).rejects.toThrow(/cannot keep up: 10 records are waiting/);
    expect(lostEvents.map((e) => e.resource)).toEqual(["/dbs/a/colls/b/docs/10"]);
    await audit.flush();
    expect(audit.accepting()).toBe(true);
    expect(audit.state()).toBe("ok");
    await audit.close();
    expectChain(file, 10);
  });

  it("sends appends made after close to the sink", async () => {
    const lostEvents: AuditEvent[] = [];
    const audit = await createDurableAuditWriter(join(dir, "audit.db"), {
      onLost: (e) => lostEvents.push(e),
    });
    await audit.close();
    await expect(audit.append(event(1))).rejects.toMatchObject({ code: "ERR_AUDIT_CLOSED" });
    expect(lostEvents).toHaveLength(1);
    expect(audit.state()).toBe("closed");
  });

  it("writes small groups on the event loop, large groups and the index copies in the writer thread: one chain", async () => {
    const file = join(dir, "audit.db");
    const watch = threadWatch();
    const audit = await createDurableAuditWriter(file, { onThread: watch.onThread });
    // The first large group starts the thread and is written here while the thread starts.
    let next = 0;
    await Promise.all(Array.from({ length: INLINE_GROUP }, () => audit.append(event(next++))));
    await watch.ready();
    // What the thread was asked to write, seen from its replies: one entry per group it wrote.
    const threadGroups: number[] = [];
    watch.worker?.on("message", (m: ChainReply) => {
      if (m.type === "written") threadGroups.push(m.out.length);
    });
    const sizes = [1, INLINE_GROUP + 4, 2, 3, 60, 1, INLINE_GROUP - 1, 200, 5, 40];
    for (const size of sizes) {
      // Appends of one turn form one group.
      const group = Array.from({ length: size }, () => audit.append(event(next++)));
      const seqs = await Promise.all(group);
      expect(seqs).toEqual(Array.from({ length: size }, (_, i) => next - size + i + 1));
    }
    const total = INLINE_GROUP + sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(INDEX_BATCH);
    await audit.close();
    // Large groups and the group that completes INDEX_BATCH records went to the thread; the small
    // ones never did.
    expect(threadGroups).toContain(INLINE_GROUP + 4);
    expect(threadGroups).toContain(60);
    expect(threadGroups).toContain(200);
    expect(threadGroups).not.toContain(2);
    expect(threadGroups).not.toContain(INLINE_GROUP - 1);
    expect(threadGroups.reduce((a, b) => a + b, 0)).toBeLessThan(total);
    const db = openDatabase(file, { readonly: true });
    try {
      expect(verifyChain(db)).toMatchObject({ ok: true, count: total });
      // close() copied the rest to the search index.
      expect(db.prepare("SELECT count(*) FROM audit_index").pluck().get()).toBe(total);
    } finally {
      db.close();
    }
  });

  it("with every group in the thread, keeps consecutive seqs, the chain and the index", async () => {
    const file = join(dir, "audit.db");
    const requests: number[] = [];
    const watch = threadWatch();
    const audit = await createDurableAuditWriter(file, {
      inlineBelow: 0,
      onThread: (w) => {
        watch.onThread(w);
        recordHandedGroups(w, requests);
      },
    });
    // The first group starts the thread (and is written here meanwhile).
    expect(await audit.append(event(0))).toBe(1);
    await watch.ready();
    const seqs = await Promise.all(Array.from({ length: 300 }, (_, i) => audit.append(event(i + 1))));
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
    await audit.close();
    expect(requests.reduce((a, b) => a + b, 0)).toBe(300);
    const db = openDatabase(file, { readonly: true });
    try {
      expect(verifyChain(db)).toMatchObject({ ok: true, count: 301 });
      expect(db.prepare("SELECT count(*) FROM audit_index").pluck().get()).toBe(301);
    } finally {
      db.close();
    }
  });

  it("refuses for good, and sends records to the sink, once the writer thread has died", async () => {
    const file = join(dir, "audit.db");
    const watch = threadWatch();
    const lostEvents: AuditEvent[] = [];
    const changes: string[] = [];
    const audit = await createDurableAuditWriter(file, {
      inlineBelow: 0,
      onThread: watch.onThread,
      onLost: (e) => lostEvents.push(e),
      onStateChange: (c) => changes.push(c),
    });
    expect(await audit.append(event(0))).toBe(1);
    await watch.ready();
    await watch.worker?.terminate();
    await expect(audit.append(event(1))).rejects.toMatchObject({
      code: "ERR_AUDIT_WRITE",
      message: expect.stringMatching(
        /audit writer thread exited.*refuses to record more until it is restarted/,
      ),
    });
    expect(changes).toEqual(["failed"]);
    expect(audit.accepting()).toBe(false);
    expect(audit.state()).toBe("failed");
    expect(lostEvents.map((e) => e.resource)).toEqual(["/dbs/a/colls/b/docs/1"]);
    await audit.close();
    // What was acknowledged before is stored.
    expectChain(file, 1);
  });

  it("refuses an event the thread cannot be handed (a function in it) alone; the rest of its group is stored", async () => {
    const file = join(dir, "audit.db");
    const lostEvents: AuditEvent[] = [];
    const watch = threadWatch();
    const handed: number[] = [];
    const audit = await createDurableAuditWriter(file, {
      inlineBelow: 0,
      onThread: (w) => {
        watch.onThread(w);
        recordHandedGroups(w, handed);
      },
      onLost: (e) => lostEvents.push(e),
    });
    expect(await audit.append(event(0))).toBe(1);
    await watch.ready();
    const bad = { ...event(1), reason: () => "not data" } as unknown as AuditEvent;
    const results = await Promise.allSettled([
      audit.append(event(0)),
      audit.append(bad),
      audit.append(event(2)),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as AuditError).code))).toEqual([
      2,
      "ERR_AUDIT_EVENT",
      3,
    ]);
    expect(lostEvents).toEqual([bad]);
    // The thread wrote the two others: the group could not be handed over whole.
    expect(handed).toEqual([2]);
    await audit.close();
  });

  it("fails to start with an AuditError when the database cannot be opened", async () => {
    const file = join(dir, "is-a-directory.db");
    mkdirSync(file);
    const err = await createDurableAuditWriter(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).message).toContain(file);
  });
});
