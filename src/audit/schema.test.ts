import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../store/sqlite.js";
import { canonicalRecord, hashRecord } from "./chain.js";
import { AuditError } from "./errors.js";
import { auditColumns } from "./schema.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

/** An identity event with every optional field of the documented schema. */
const full: AuditEvent = {
  time: 1_700_000_000_000,
  type: "credential.renamed",
  instance: "7f1c2a9e-0000-4000-8000-000000000001",
  subject: "ada",
  subjectKind: "user",
  subjectName: "Ada Lovelace",
  issuer: "http://localhost:8080",
  credential: "q83vEjRWeJA",
  credentialName: "desk key",
  aaguid: "00000000-0000-0000-0000-000000000000",
  deviceBound: true,
  session: "5d7b4c3e-1111-4222-8333-444455556666",
  jti: "0b9e...",
  actions: [],
  resource: "/users/ada",
  decision: "allow",
  reason: 'renamed from "old" to "desk key"',
  status: 0,
  durationMs: 0,
  clientAddress: "127.0.0.1",
  userAgent: "Mozilla/5.0",
  details: { from: "old", to: "desk key", count: 2, first: false },
};

function rejects(event: unknown, field: RegExp): void {
  let error: unknown;
  try {
    auditColumns(event as AuditEvent);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(AuditError);
  expect((error as AuditError).code).toBe("ERR_AUDIT_EVENT");
  expect((error as AuditError).message).toMatch(field);
}

describe("auditColumns with the optional fields of the documented schema", () => {
  it("accepts every optional field, booleans and a flat details object", () => {
    expect(auditColumns(full)).toEqual({
      time: full.time,
      type: "credential.renamed",
      subject: "ada",
      credential: "q83vEjRWeJA",
      actions: "[]",
      resource: "/users/ada",
      decision: "allow",
      status: 0,
    });
    expect(() => auditColumns({ ...full, deviceBound: false, details: {} })).not.toThrow();
    expect(() => auditColumns({ ...full, details: { gone: undefined } as never })).not.toThrow();
  });

  it("refuses optional fields of the wrong type, naming the field", () => {
    rejects({ ...full, instance: 7 }, /field instance must be a string or absent/);
    rejects({ ...full, session: null }, /field session/);
    rejects({ ...full, credentialName: ["x"] }, /field credentialName/);
    rejects({ ...full, deviceBound: "yes" }, /field deviceBound must be true, false or absent/);
    rejects({ ...full, details: "kid=1" }, /field details must be a plain object/);
    rejects({ ...full, details: ["a"] }, /field details must be a plain object/);
    rejects({ ...full, details: new Map() }, /field details must be a plain object/);
    rejects({ ...full, details: { nested: { a: 1 } } }, /field details\.nested must be a string/);
    rejects({ ...full, details: { n: Number.NaN } }, /field details\.n must be a string, a finite number/);
    rejects({ ...full, details: { list: [1] } }, /field details\.list/);
  });
});

describe("canonical JSON of the new fields", () => {
  it("writes booleans and the nested details object with sorted keys, whatever the insertion order", () => {
    const text = canonicalRecord(3, full);
    expect(text).toContain('"deviceBound":true');
    expect(text).toContain('"details":{"count":2,"first":false,"from":"old","to":"desk key"}');
    const reordered = { ...full, details: { to: "desk key", first: false, count: 2, from: "old" } };
    expect(canonicalRecord(3, reordered)).toBe(text);
    expect(JSON.parse(text)).toEqual({ ...full, seq: 3 });
    expect(hashRecord("", 3, reordered)).toBe(hashRecord("", 3, full));
  });
});

describe("writing and verifying records with the new fields", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-schema-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("stores them in data, verifies the chain, and detects a changed detail", async () => {
    const db = openDatabase(path.join(dir, "audit.db"));
    try {
      const writer = createAuditWriter(db);
      await writer.append(full);
      await writer.append({ ...full, type: "signin.failed", decision: "deny", details: { code: "ERR_X" } });
      await writer.close();
      expect(verifyChain(db)).toEqual({ ok: true, count: 2 });
      const row = db.prepare("SELECT data FROM audit_events WHERE seq = 1").get() as { data: string };
      expect(JSON.parse(row.data)).toEqual({ ...full, seq: 1 });
      db.prepare(
        "UPDATE audit_events SET data = replace(data, '\"ERR_X\"', '\"ERR_Y\"') WHERE seq = 2",
      ).run();
      const broken = verifyChain(db);
      expect(broken.ok).toBe(false);
      expect(broken.count).toBe(1); // record 1 is good; record 2 is the changed one
    } finally {
      db.close();
    }
  });
});
