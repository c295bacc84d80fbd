import { describe, expect, it } from "vitest";
import { openDatabase } from "../store/index.js";
import { AuditError } from "./errors.js";
import { formatRecord, tail } from "./query.js";
import type { AuditEvent, AuditRecord } from "./types.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number): AuditEvent {
  return {
    time: Date.UTC(2025, 0, 2, 3, 4, 5, 678) + i,
    type: "data.request",
    subject: `user${i}`,
    actions: ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: "allow",
    reason: "allowed by reader#0",
    status: 200,
    durationMs: 1,
  };
}

describe("tail", () => {
  it("returns the most recent n records, oldest first", async () => {
    const db = openDatabase(":memory:");
    const writer = createAuditWriter(db);
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.append(ev(i + 1))));
    const last3 = tail(db, 3);
    expect(last3.map((r) => r.seq)).toEqual([8, 9, 10]);
    expect(last3.map((r) => r.subject)).toEqual(["user8", "user9", "user10"]);
    expect(last3[1].prevHash).toBe(last3[0].hash);
    expect(tail(db, 100).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(tail(db, 0)).toEqual([]);
    db.close();
  });

  it("refuses a bad count and a database without the table", () => {
    const db = openDatabase(":memory:");
    for (const n of [-1, 1.5, Number.NaN]) {
      expect(() => tail(db, n)).toThrow(expect.objectContaining({ code: "ERR_AUDIT_ARGUMENT" }));
    }
    expect(() => tail(db, 1)).toThrow(AuditError);
    expect(() => tail(db, 1)).toThrow(expect.objectContaining({ code: "ERR_AUDIT_READ" }));
    db.close();
  });
});

describe("formatRecord", () => {
  const record: AuditRecord = {
    ...ev(0),
    seq: 1,
    prevHash: "",
    hash: "ab",
    subject: "alice@contoso.com",
    actions: ["read", "query"],
    partitionKey: '["a1"]',
    durationMs: 3.08,
  };

  it("writes one line with the fields in order", () => {
    expect(formatRecord(record)).toBe(
      '2025-01-02T03:04:05.678Z allow 200 alice@contoso.com read,query /dbs/shop/colls/orders/docs/0 pk=["a1"] "allowed by reader#0" 3.1ms',
    );
  });

  it("shows a substatus, and dashes for what is absent", () => {
    const denied: AuditRecord = {
      ...record,
      subject: "",
      actions: [],
      partitionKey: undefined,
      decision: "deny",
      status: 403,
      substatus: 5301,
      reason: "no rule allows delete",
    };
    expect(formatRecord(denied)).toBe(
      '2025-01-02T03:04:05.678Z deny 403/5301 - - /dbs/shop/colls/orders/docs/0 pk=- "no rule allows delete" 3.1ms',
    );
  });

  it("names the key used, and the type of events other than data-plane requests", () => {
    const line = formatRecord({ ...record, credential: "cred-1", type: "signin.succeeded" });
    expect(line).toMatch(/^\S+ signin\.succeeded \S+ \S+ \S+ key=cred-1 /);
    expect(formatRecord({ ...record, credential: "cred-1" })).toContain(" key=cred-1 ");
  });

  it("never spans more than one line", () => {
    const line = formatRecord({
      ...record,
      subject: "eve\nfake line",
      resource: "/dbs/a b\r\u2028",
      reason: "x\ny",
      partitionKey: '["\u0007"]',
    });
    expect(line).not.toMatch(/[\n\r\u2028]/);
    expect(line).toContain("eve\\u000afake%20line");
    expect(line).toContain('"x\\ny"');
  });
});
