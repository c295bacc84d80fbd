import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../store/sqlite.js";
import { createDurableAuditWriter } from "./durableWriter.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { verifyChain } from "./verify.js";
import { createAuditWriter } from "./writer.js";

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
    const db = openDatabase(file, { readonly: true });
    try {
      expect(verifyChain(db)).toMatchObject({ ok: true, count: 500 });
    } finally {
      db.close();
    }
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

  it("fails to start with an AuditError when the database cannot be opened", async () => {
    const file = join(dir, "is-a-directory.db");
    mkdirSync(file);
    const err = await createDurableAuditWriter(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).message).toContain(file);
  });
});
