import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, migrate, openDatabase } from "../store/index.js";
import {
  auditMigrations,
  INDEX_TAIL_SQL,
  indexCopySelect,
  registerScopeFunction,
  scopeOf,
} from "./schema.js";
import {
  type AuditFilter,
  countAudit,
  explainSearch,
  parseTime,
  prefixEnd,
  searchAudit,
  seqOrdered,
} from "./search.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

const T0 = Date.UTC(2025, 0, 1);
const SUBJECTS = ["ada", "bob", "carol", "cli:root"];
const KEYS = ["kA", "kB", "kC", undefined];
const ACTIONS = [["read"], ["query"], ["create", "read"], ["delete"], [], ["manage"]];
const RESOURCES = [
  "/dbs/shop/colls/orders/docs/1",
  "/dbs/shop/colls/orders",
  "/dbs/shopping/colls/carts/docs/9",
  "/dbs/shop/colls/users/docs/x",
  "/users/ada",
];
const TYPES = ["data.request", "data.request", "signin.succeeded", "credential.suspended", "data.request"];
const DECISIONS = ["allow", "allow", "deny", "allow", "error"] as const;

/** Varied records; times are not monotonic in seq (a slow request is recorded after a fast one). */
function ev(i: number): AuditEvent {
  const key = KEYS[i % 4];
  return {
    time: T0 + i * 1000 - (i % 3) * 1500,
    type: TYPES[i % 5],
    subject: SUBJECTS[i % 4 === 3 ? 3 : (i >> 1) % 3],
    ...(key !== undefined ? { credential: key } : {}),
    actions: ACTIONS[i % 6],
    resource: RESOURCES[i % 5],
    decision: DECISIONS[(i * 7) % 5],
    reason: "test",
    status: 200,
    durationMs: 1,
  };
}

let dir: string;
let db: Database;
/** Every record with its seq, as written. */
const all: (AuditEvent & { seq: number })[] = [];
let hw = 0;
let head = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-search-"));
  db = openDatabase(path.join(dir, "audit.db"));
  const w = createAuditWriter(db);
  // 600 records in one group (indexed at once), then 12 single commits: the unindexed tail.
  const seqs = await Promise.all(Array.from({ length: 600 }, (_, i) => w.append(ev(i))));
  seqs.forEach((seq, i) => {
    all.push({ ...ev(i), seq });
  });
  for (let i = 600; i < 612; i++) all.push({ ...ev(i), seq: await w.append(ev(i)) });
  hw = db.prepare("SELECT max(seq) FROM audit_index").pluck().get() as number;
  head = db.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;
});

afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function matches(e: AuditEvent, f: AuditFilter): boolean {
  if (f.actor !== undefined && e.subject !== f.actor) return false;
  if (f.key !== undefined && e.credential !== f.key) return false;
  if (f.action !== undefined && !e.actions.includes(f.action)) return false;
  if (f.decision !== undefined && e.decision !== f.decision) return false;
  if (f.from !== undefined && e.time < f.from) return false;
  if (f.to !== undefined && e.time >= f.to) return false;
  for (const [field, value] of [
    ["resource", f.resource],
    ["type", f.type],
  ] as const) {
    if (value === undefined) continue;
    const v = e[field];
    if (value.endsWith("*")) {
      if (!v.startsWith(value.slice(0, -1))) return false;
    } else if (field === "resource" && value.endsWith("/")) {
      if (!v.startsWith(value)) return false;
    } else if (v !== value) return false;
  }
  return true;
}

function expected(f: AuditFilter, order: "asc" | "desc" = "desc"): number[] {
  const rows = all.filter((e) => matches(e, f));
  rows.sort((a, b) => a.time - b.time || a.seq - b.seq);
  if (order === "desc") rows.reverse();
  return rows.map((r) => r.seq);
}

const FILTERS: [string, AuditFilter, string][] = [
  ["actor", { actor: "bob" }, "audit_index_subject_time"],
  ["key", { key: "kB" }, "audit_index_credential_time"],
  ["action", { action: "read" }, "audit_index_actions_action_time"],
  ["exact resource (a container)", { resource: "/dbs/shop/colls/orders" }, "audit_index_scope_time"],
  ["exact resource (a document)", { resource: "/dbs/shop/colls/orders/docs/1" }, "audit_index_scope_time"],
  ["exact resource (a user)", { resource: "/users/ada" }, "audit_index_scope_time"],
  ["resource below a database", { resource: "/dbs/shop/" }, "audit_index_scope_time"],
  ["resource below a container", { resource: "/dbs/shop/colls/orders/" }, "audit_index_scope_time"],
  ["resource prefix above the scopes", { resource: "/dbs/shop*" }, "audit_index_scope_time"],
  ["resource prefix below a scope", { resource: "/dbs/shop/colls/orders/do*" }, "audit_index_scope_time"],
  ["exact type", { type: "signin.succeeded" }, "audit_index_type_time"],
  ["type prefix", { type: "credential.*" }, "audit_index_type_time"],
  ["decision deny", { decision: "deny" }, "audit_index_decision_time"],
  ["decision error", { decision: "error" }, "audit_index_decision_time"],
  ["decision allow (with a time window)", { decision: "allow", from: T0 + 100_000 }, "audit_index_time"],
  ["time window", { from: T0 + 100_000, to: T0 + 300_000 }, "audit_index_time"],
  ["from only", { from: T0 + 550_000 }, "audit_index_time"],
];

const COMBINED: [string, AuditFilter][] = [
  ["actor + action", { actor: "ada", action: "read" }],
  ["key + time", { key: "kA", from: T0 + 50_000, to: T0 + 400_000 }],
  ["action + decision + resource prefix", { action: "read", decision: "deny", resource: "/dbs/shop/" }],
  ["action + key", { action: "create", key: "kC" }],
  ["type + actor + time", { type: "data.request", actor: "carol", from: T0 + 10_000 }],
  [
    "everything",
    {
      actor: "ada",
      key: "kB",
      action: "read",
      decision: "allow",
      resource: "/dbs/*",
      from: T0,
      to: T0 + 10_000_000,
    },
  ],
  ["no match", { actor: "nobody" }],
];

describe("searchAudit", () => {
  it("has an unindexed tail to merge (the fixture is what the tests assume)", () => {
    expect(hw).toBe(600);
    expect(head).toBe(612);
  });

  it.each(FILTERS)("finds by %s, newest and oldest first, including the unindexed tail", (_name, f) => {
    for (const order of ["desc", "asc"] as const) {
      const got = [...searchAudit(db, { ...f, order })].map((r) => r.seq);
      expect(got).toEqual(expected(f, order));
    }
    expect(expected(f).length).toBeGreaterThan(0);
  });

  it("returns records from the tail beyond the index's high-water mark", () => {
    for (const [, f] of FILTERS) {
      const want = expected(f).filter((s) => s > hw);
      const got = [...searchAudit(db, f)].map((r) => r.seq).filter((s) => s > hw);
      expect(got).toEqual(want);
    }
    expect([...searchAudit(db, { actor: "ada" })].some((r) => r.seq > hw)).toBe(true);
  });

  it.each(COMBINED)("combines filters: %s", (_name, f) => {
    expect([...searchAudit(db, f)].map((r) => r.seq)).toEqual(expected(f));
    expect([...searchAudit(db, { ...f, order: "asc" })].map((r) => r.seq)).toEqual(expected(f, "asc"));
    expect(countAudit(db, f)).toBe(expected(f).length);
  });

  it("stops at the limit, merging the tail in time order", () => {
    for (const [, f] of [...FILTERS, ...COMBINED]) {
      for (const limit of [1, 3, 25]) {
        expect([...searchAudit(db, { ...f, limit })].map((r) => r.seq)).toEqual(expected(f).slice(0, limit));
        expect([...searchAudit(db, { ...f, limit, order: "asc" })].map((r) => r.seq)).toEqual(
          expected(f, "asc").slice(0, limit),
        );
      }
    }
    expect([...searchAudit(db, { limit: 0 })]).toEqual([]);
  });

  it("returns whole records: the event, seq and chain hashes", () => {
    const [r] = searchAudit(db, { key: "kA", limit: 1, order: "asc" });
    const src = all.find((e) => e.seq === r.seq)!;
    expect(r).toMatchObject({ ...src, seq: src.seq });
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof r.prevHash).toBe("string");
  });

  it("matches a resource prefix exactly, not its siblings", () => {
    const below = [...searchAudit(db, { resource: "/dbs/shop/" })].map((r) => r.resource);
    expect(below.length).toBeGreaterThan(0);
    expect(below.every((r) => r.startsWith("/dbs/shop/"))).toBe(true);
    const star = new Set([...searchAudit(db, { resource: "/dbs/shop*" })].map((r) => r.resource));
    expect(star.has("/dbs/shopping/colls/carts/docs/9")).toBe(true);
    expect(
      [...searchAudit(db, { resource: "/dbs/shop/colls/orders" })].every(
        (r) => r.resource === "/dbs/shop/colls/orders",
      ),
    ).toBe(true);
  });

  it("does not return records appended while it runs (by another connection, as the gateway)", async () => {
    const other = openDatabase(db.name);
    const w = createAuditWriter(other);
    const it = searchAudit(db, { actor: "ada", order: "asc" });
    const first = it.next();
    expect(first.done).toBe(false);
    const added = await w.append({ ...ev(3), subject: "ada", time: T0 + 10_000_000 });
    const rest = [...it].map((r) => r.seq);
    expect(rest).not.toContain(added);
    expect([...searchAudit(db, { actor: "ada", limit: 1 })][0].seq).toBe(added);
    // Put the fixture back as the other tests expect it.
    other.prepare("DELETE FROM audit_index WHERE seq = ?").run(added);
    other.prepare("DELETE FROM audit_events WHERE seq = ?").run(added);
    other.close();
  });

  it("refuses bad filters with ERR_AUDIT_ARGUMENT", () => {
    const bad: unknown[] = [
      { actor: "" },
      { decision: "maybe" },
      { from: Number.NaN },
      { from: T0 + 10, to: T0 },
      { limit: -1 },
      { limit: 1.5 },
      { order: "sideways" },
    ];
    for (const f of bad) {
      expect(() => [...searchAudit(db, f as AuditFilter)]).toThrow(
        expect.objectContaining({ code: "ERR_AUDIT_ARGUMENT" }),
      );
    }
  });

  it("reports ERR_AUDIT_READ for a database without the trail", () => {
    const empty = openDatabase(":memory:");
    expect(() => [...searchAudit(empty, { actor: "x" })]).toThrow(
      expect.objectContaining({ code: "ERR_AUDIT_READ" }),
    );
    empty.close();
  });
});

describe("seqOrdered (what an export reads)", () => {
  it.each([...FILTERS, ...COMBINED.map(([n, f]) => [n, f, ""] as [string, AuditFilter, string])])(
    "yields %s in seq order, the tail last",
    (_name, f) => {
      const got = [...seqOrdered(db, f)].map((r) => r.seq);
      expect(got).toEqual(expected(f, "asc").sort((a, b) => a - b));
    },
  );

  it("yields the whole trail without a filter", () => {
    expect([...seqOrdered(db)].map((r) => r.seq)).toEqual(all.map((e) => e.seq));
    expect(countAudit(db)).toBe(all.length);
  });
});

describe("index use (EXPLAIN QUERY PLAN)", () => {
  const FULL_SCAN = /\bSCAN (i|a|audit_index|audit_index_actions|audit_events)\b/;

  it.each(FILTERS)("%s reads %s, and the tail by seq range", (_name, f, index) => {
    const plan = explainSearch(db, f);
    expect(plan.index).toBe(index);
    const indexed = plan.indexed.join(" | ");
    expect(indexed).toMatch(new RegExp(`SEARCH [ai] USING (COVERING )?INDEX ${index} \\(`));
    expect(indexed).not.toMatch(FULL_SCAN);
    expect(indexed).toMatch(/SEARCH e USING INTEGER PRIMARY KEY \(rowid=\?\)/);
    const tail = plan.tail.join(" | ");
    expect(tail).toMatch(/SEARCH audit_events USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
    expect(tail).not.toMatch(FULL_SCAN);
    const exported = plan.exported.join(" | ");
    expect(exported).toMatch(new RegExp(`INDEX ${index} \\(`));
    expect(exported).not.toMatch(FULL_SCAN);
  });

  it.each(COMBINED)("%s: one index drives, the other filters are index lookups", (_name, f) => {
    const plan = explainSearch(db, f);
    const indexed = plan.indexed.join(" | ");
    expect(indexed).toMatch(/SEARCH [ai] USING (COVERING )?INDEX audit_index_\w+ \(\w+[=>]/);
    expect(indexed).not.toMatch(FULL_SCAN);
    if (f.action !== undefined && plan.index !== "audit_index_actions_action_time")
      expect(indexed).toMatch(/SEARCH x EXISTS USING PRIMARY KEY \(seq=\? AND action=\?\)/);
  });

  it("drives a search by the most selective of its filters", () => {
    expect(explainSearch(db, { resource: "/dbs/*", from: T0 + 590_000 }).index).toBe("audit_index_time");
    expect(explainSearch(db, { resource: "/dbs/*", from: T0 }).index).toBe("audit_index_scope_time");
    // In the index: 150 records per actor and per key, 200 reads, 100 deletes, 120 denials.
    expect(explainSearch(db, { actor: "bob", key: "kA" }).index).toBe("audit_index_credential_time"); // a tie
    expect(explainSearch(db, { actor: "bob", action: "read" }).index).toBe("audit_index_subject_time");
    expect(explainSearch(db, { action: "delete", decision: "deny" }).index).toBe(
      "audit_index_actions_action_time",
    );
    expect(explainSearch(db, { action: "read", decision: "deny" }).index).toBe("audit_index_decision_time");
    expect(explainSearch(db, { action: "manage", decision: "allow", key: "kA" }).index).toBe(
      "audit_index_actions_action_time",
    );
    expect(explainSearch(db, { type: "credential.suspended", actor: "ada" }).index).toBe(
      "audit_index_type_time",
    );
  });

  it("an exact resource or a prefix below a scope reads one scope in time order, checking the resource inside the index", () => {
    for (const resource of ["/dbs/shop/colls/orders/docs/1", "/dbs/shop/colls/orders/"]) {
      const indexed = explainSearch(db, { resource }).indexed.join(" | ");
      expect(indexed).toMatch(/SEARCH i USING COVERING INDEX audit_index_scope_time \(scope=\?\)/);
      // Records of one millisecond come in resource order from the index: only they are sorted by seq.
      expect(indexed).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
    }
  });

  it("an action search with other filters joins audit_index by primary key", () => {
    const indexed = explainSearch(db, { action: "read", decision: "allow" }).indexed.join(" | ");
    expect(indexed).toMatch(/SEARCH a USING COVERING INDEX audit_index_actions_action_time \(action=\?\)/);
    expect(indexed).toMatch(/SEARCH i USING INTEGER PRIMARY KEY \(rowid=\?\)/);
  });
});

describe("schema version 3", () => {
  it("rebuilds a version-2 index with type, resource, scope and actions, and fills them on every batch", async () => {
    // The same records in a current file and in a version-2 file.
    const current = openDatabase(path.join(dir, "v3.db"));
    const w = createAuditWriter(current);
    await Promise.all(Array.from({ length: 300 }, (_, i) => w.append(ev(i))));
    await w.close();
    const old = openDatabase(path.join(dir, "v2.db"));
    migrate(old, auditMigrations.slice(0, 2));
    old.exec(`ATTACH '${path.join(dir, "v3.db")}' AS cur`);
    old.exec("INSERT INTO main.audit_events SELECT * FROM cur.audit_events; DETACH cur;");
    old.exec(
      "INSERT INTO audit_index (seq, time, subject, credential, decision) SELECT seq, time, subject, credential, decision FROM audit_events WHERE seq <= 256",
    );
    migrate(old, auditMigrations);
    const snapshot = (d: Database) => ({
      index: d.prepare("SELECT * FROM audit_index ORDER BY seq").all(),
      actions: d.prepare("SELECT seq, action, time FROM audit_index_actions ORDER BY seq, action").all(),
    });
    const want = snapshot(current);
    const got = snapshot(old);
    // What version 2 had indexed (256 records) is in the rebuilt index, the rest follows with the next batch.
    expect(got.index).toEqual(want.index.slice(0, 256));
    expect(got.actions).toEqual(want.actions.filter((a) => (a as { seq: number }).seq <= 256));
    expect(want.index[1]).toMatchObject({
      resource: RESOURCES[1],
      scope: "/dbs/shop/colls/orders",
      type: TYPES[1],
    });
    registerScopeFunction(old);
    old.exec(INDEX_TAIL_SQL);
    expect(snapshot(old)).toEqual(want);
    expect(want.actions.length).toBe(all.slice(0, 300).reduce((n, e) => n + e.actions.length, 0));
    // Retention deletes from audit_index; the trigger drops the actions with it.
    old.prepare("DELETE FROM audit_index WHERE seq <= 100").run();
    expect(old.prepare("SELECT count(*) FROM audit_index_actions WHERE seq <= 100").pluck().get()).toBe(0);
    old.close();
    current.close();
  });

  it("scopeOf cuts a resource before its fifth slash, as the index copy and migration 3's SQL do", () => {
    expect(scopeOf("/dbs/shop/colls/orders/docs/a1")).toBe("/dbs/shop/colls/orders");
    expect(scopeOf("/dbs/shop/colls/orders/")).toBe("/dbs/shop/colls/orders");
    expect(scopeOf("/dbs/shop/colls/orders")).toBe("/dbs/shop/colls/orders");
    expect(scopeOf("/dbs/shop")).toBe("/dbs/shop");
    expect(scopeOf("/users/ada")).toBe("/users/ada");
    expect(scopeOf("")).toBe("");
    const d = openDatabase(":memory:");
    migrate(d, auditMigrations);
    const resources = [
      "",
      "x",
      "/",
      "/dbs/shop/colls/orders/docs/a/attachments/b",
      "//a///b",
      "/dbs/\u{1f600}/colls/x/docs/y",
      "user:ada",
    ];
    const ins = d.prepare(
      "INSERT INTO audit_events (seq, time, type, subject, credential, actions, resource, decision, status, data, prev_hash, hash) VALUES (?, 0, 't', 's', NULL, '[]', ?, 'allow', 0, '{}', '', '')",
    );
    for (const [i, r] of resources.entries()) ins.run(i + 1, r);
    // The copy needs its SQL function: without it, it fails rather than index wrongly.
    expect(() => d.exec(INDEX_TAIL_SQL)).toThrow(/no such function/);
    registerScopeFunction(d);
    d.exec(INDEX_TAIL_SQL);
    const rows = d.prepare("SELECT resource, scope FROM audit_index ORDER BY seq").all() as {
      resource: string;
      scope: string;
    }[];
    expect(rows.map((r) => r.scope)).toEqual(resources.map(scopeOf));
    // Migration 3 computed scopes in SQL alone (databases indexed before this writer): the same rule.
    const inSql = d.prepare(indexCopySelect("")).all() as unknown[][];
    expect(
      d
        .prepare(indexCopySelect(""))
        .raw()
        .all()
        .map((r) => (r as unknown[])[6]),
    ).toEqual(resources.map(scopeOf));
    expect(inSql).toHaveLength(resources.length);
    d.close();
  });
});

describe("parseTime", () => {
  const now = Date.UTC(2025, 5, 1, 12, 0, 0);
  it("reads ISO 8601 (no zone = UTC), now, and durations before now", () => {
    expect(parseTime("2025-01-02", now)).toBe(Date.UTC(2025, 0, 2));
    expect(parseTime("2025-01-02T03:04:05Z", now)).toBe(Date.UTC(2025, 0, 2, 3, 4, 5));
    expect(parseTime("2025-01-02T03:04", now)).toBe(Date.UTC(2025, 0, 2, 3, 4));
    expect(parseTime("2025-01-02T05:04:05.250+02:00", now)).toBe(Date.UTC(2025, 0, 2, 3, 4, 5, 250));
    expect(parseTime("now", now)).toBe(now);
    expect(parseTime("1h", now)).toBe(now - 3_600_000);
    expect(parseTime("7d", now)).toBe(now - 7 * 86_400_000);
    expect(parseTime("90s", now)).toBe(now - 90_000);
  });
  it("refuses anything else", () => {
    for (const t of ["", "yesterday", "2025-13-01", "2025-01-02T25:00", "1y", "-1h", "12", "2025/01/02"])
      expect(parseTime(t, now)).toBeUndefined();
  });
});

describe("prefixEnd", () => {
  it("is the least string above every string with the prefix", () => {
    expect(prefixEnd("/dbs/shop/")).toBe("/dbs/shop0");
    expect(prefixEnd("a\uffff")).toBe("a\u{10000}");
    expect(prefixEnd("a\u{10ffff}")).toBe("b");
    expect(prefixEnd("\ud7ff")).toBe("\ue000");
    expect(prefixEnd("")).toBeUndefined();
  });
});
