import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import { createCheckpointer, listCheckpoints } from "./checkpoints.js";
import { createTestCheckpointKeys, exportLines } from "./checkpointTesting.js";
import { verifyExport, verifyExportLines } from "./exportVerify.js";
import { pruneAudit } from "./retention.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

function ev(i: number): AuditEvent {
  return {
    time: 1_700_000_000_000 + i,
    type: "data.request",
    subject: `user${i}`,
    credential: `cred${i}`,
    actions: ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: "allow",
    reason: "allowed",
    status: 200,
    durationMs: 1,
    details: { note: `n${i}`, ok: true },
  };
}

const dbs: Database[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
});
const dir = mkdtempSync(join(tmpdir(), "cosmosgate-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 12 records, checkpoints at 5 and 10. */
async function trail() {
  const db = openDatabase(":memory:");
  dbs.push(db);
  let now = 1_700_000_000_000;
  const writer = createAuditWriter(db, { clock: () => now });
  const cps = createCheckpointer({ db, keys: await createTestCheckpointKeys(), every: 1, clock: () => now });
  for (let i = 1; i <= 12; i++) {
    await writer.append(ev(i));
    if (i % 5 === 0) await cps.checkpoint();
  }
  return { db, writer, setNow: (t: number) => (now = t) };
}

const verify = (lines: string[], opts = {}) => verifyExportLines(lines, opts);

describe("verifyExport", () => {
  it("passes a full export, checking its checkpoint lines, and reads it from a file with progress", async () => {
    const { db } = await trail();
    const lines = exportLines(db);
    expect(lines.filter((l) => l.startsWith('{"checkpoint"'))).toHaveLength(2);
    const r = await verify(lines, { complete: true });
    expect(r).toMatchObject({ ok: true, count: 12, firstSeq: 1, lastSeq: 12, partial: false, lines: 14 });
    expect(r.checkpoints).toMatchObject({
      stored: 2,
      matched: 2,
      uncovered: 2,
      newest: { seq: 10, source: "file" },
    });

    const file = join(dir, "full.jsonl");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const progress: [number, number][] = [];
    const fromFile = await verifyExport(file, { onProgress: (d, t) => progress.push([d, t]) });
    expect(fromFile).toMatchObject({ ok: true, count: 12 });
    expect(progress.at(-1)?.[0]).toBe(progress.at(-1)?.[1]);
    await expect(verifyExport(join(dir, "missing.jsonl"))).rejects.toMatchObject({ code: "ERR_AUDIT_READ" });
  });

  it("detects a changed line", async () => {
    const { db } = await trail();
    const lines = exportLines(db);
    lines[6] = lines[6].replace('"decision":"allow"', '"decision":"deny"'); // record 6
    const r = await verify(lines);
    expect(r).toMatchObject({ ok: false, count: 5, firstBroken: { seq: 6, kind: "changed" } });
    expect(r.firstBroken?.detail).toContain("line 7");
  });

  it("detects a removed line, a removed tail and moved lines", async () => {
    const { db } = await trail();
    const lines = exportLines(db);
    const removed = lines.filter((_, i) => i !== 3); // record 4
    expect((await verify(removed)).firstBroken).toMatchObject({ seq: 4, kind: "missing" });

    // The tail after the checkpoint at 10 removed, but the checkpoint line kept? Then it is ahead of the end.
    const idx10 = lines.findIndex((l) => l.startsWith('{"seq":10') || JSON.parse(l).seq === 10);
    const truncated = [...lines.slice(0, idx10), lines[idx10 + 1]]; // records 1–9 and the checkpoint for 10
    expect((await verify(truncated)).firstBroken).toMatchObject({ seq: 10, kind: "truncated" });

    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3], swapped[2]]; // records 3 and 4
    expect((await verify(swapped)).firstBroken).toMatchObject({ seq: 3, kind: "reordered" });

    const far = [...lines];
    [far[2], far[7]] = [far[7], far[2]]; // records 3 and 7
    expect((await verify(far)).firstBroken).toMatchObject({ seq: 3, kind: "reordered" });

    const duplicated = [...lines.slice(0, 4), lines[2], ...lines.slice(4)];
    expect((await verify(duplicated)).firstBroken).toMatchObject({ seq: 3, kind: "inserted" });
  });

  it("detects a tampered checkpoint line, and a truncation with checkpoints kept elsewhere", async () => {
    const { db } = await trail();
    const lines = exportLines(db);
    const i = lines.findIndex((l) => l.startsWith('{"checkpoint"'));
    const cp = JSON.parse(lines[i]).checkpoint;
    const forged = [...lines];
    forged[i] = JSON.stringify({ checkpoint: { ...cp, hash: "0".repeat(64) } });
    expect((await verify(forged)).firstBroken).toMatchObject({ seq: 5, kind: "bad-checkpoint" });

    // Cut after record 7 with every checkpoint line after it: only a copy kept elsewhere shows it.
    const cut = exportLines(db, { to: 7 });
    expect((await verify(cut, { complete: true })).ok).toBe(true);
    const r = await verify(cut, { complete: true, external: listCheckpoints(db) });
    expect(r.firstBroken).toMatchObject({
      seq: 8,
      kind: "truncated",
      checkpoint: { seq: 10, source: "external" },
    });
    // Without --complete the file may end early on purpose (an export with --to).
    expect((await verify(cut, { external: listCheckpoints(db) })).ok).toBe(true);
  });

  it("accepts a partial export and says its first link is taken as given; --complete refuses it", async () => {
    const { db } = await trail();
    const part = exportLines(db, { from: 4, to: 9 });
    const r = await verify(part);
    expect(r).toMatchObject({ ok: true, partial: true, count: 6, firstSeq: 4, lastSeq: 9 });
    expect((await verify(part, { complete: true })).firstBroken).toMatchObject({ seq: 1, kind: "missing" });
  });

  it("verifies a full export of a pruned trail from its retention anchor", async () => {
    const { db, writer, setNow } = await trail();
    setNow(1_700_000_000_000 + 10 * 86_400_000);
    const pruned = await pruneAudit(db, {
      retentionMs: 86_400_000,
      clock: () => 1_700_000_000_000 + 10 * 86_400_000,
      append: (e) => writer.append(e),
    });
    expect(pruned.anchor?.seq).toBe(10);
    const lines = exportLines(db, { anchor: true });
    const r = await verify(lines, { complete: true });
    expect(r).toMatchObject({ ok: true, partial: false, firstSeq: 11, lastSeq: 13, anchor: { seq: 10 } });
    // Without the anchor line (or its authorization) a complete export does not verify.
    expect((await verify(lines.slice(1), { complete: true })).firstBroken).toMatchObject({ kind: "missing" });
    const noEvent = lines.filter((l) => !l.includes('"audit.pruned"'));
    expect((await verify(noEvent, { complete: true })).firstBroken).toMatchObject({
      seq: 10,
      kind: "missing",
    });
  });
});
