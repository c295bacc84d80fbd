import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../store/index.js";
import { canonicalRecord, hashCanonical } from "./chain.js";
import { type AuditCheckpoint, createCheckpointer, insertCheckpoint } from "./checkpoints.js";
import { createTestCheckpointKeys } from "./checkpointTesting.js";
import { CSV_COLUMNS, csvText, exportAudit, exportChunks } from "./export.js";
import { verifyExportLines } from "./exportVerify.js";
import { pruneAudit } from "./retention.js";
import type { AuditEvent, AuditRecord } from "./types.js";
import { createAuditWriter } from "./writer.js";

const T0 = Date.UTC(2025, 2, 1);

function ev(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: T0 + i * 1000,
    type: "data.request",
    subject: i % 2 === 0 ? "ada" : "bob",
    credential: `key${i % 3}`,
    actions: i % 4 === 0 ? ["create", "read"] : ["read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: i % 5 === 0 ? "deny" : "allow",
    reason: "test",
    status: i % 5 === 0 ? 403 : 200,
    durationMs: 1.5,
    ...over,
  };
}

let dir: string;
let db: Database;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-export-"));
  db = openDatabase(path.join(dir, "audit.db"));
});

afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function fill(n: number, over: (i: number) => Partial<AuditEvent> = () => ({})): Promise<void> {
  const w = createAuditWriter(db);
  await Promise.all(Array.from({ length: n }, (_, i) => w.append(ev(i + 1, over(i + 1)))));
  // A few single commits: an unindexed tail the export must include.
  for (let i = n + 1; i <= n + 5; i++) await w.append(ev(i, over(i)));
}

async function exportText(opts: Parameters<typeof exportAudit>[2]): Promise<string> {
  let text = "";
  await exportAudit(
    db,
    (c) => {
      text += c;
    },
    opts,
  );
  return text;
}

function checkpoint(seq: number): AuditCheckpoint {
  const hash = db.prepare("SELECT hash FROM audit_events WHERE seq = ?").pluck().get(seq) as string;
  return {
    seq,
    hash,
    time: T0 + seq,
    kid: "kid-1",
    alg: "ES256",
    jws: `jws-${seq}`,
    jwk: { kty: "EC", crv: "P-256" },
  };
}

describe("JSONL export", () => {
  it("round-trips: every line's hash and the chain recompute from the file alone", async () => {
    await fill(300);
    const lines = (await exportText({ format: "jsonl" })).trimEnd().split("\n");
    expect(lines).toHaveLength(305);
    let prev = "";
    lines.forEach((line, i) => {
      const r = JSON.parse(line) as AuditRecord;
      const { seq, prevHash, hash, ...event } = r;
      expect(seq).toBe(i + 1);
      expect(prevHash).toBe(prev);
      expect(hashCanonical(prevHash, canonicalRecord(seq, event))).toBe(hash);
      prev = hash;
    });
  });

  it("detects an edited line when recomputed (the export is evidence, not just text)", async () => {
    await fill(10);
    const lines = (await exportText({ format: "jsonl" })).trimEnd().split("\n");
    const tampered = JSON.parse(lines[3]) as AuditRecord;
    tampered.subject = "mallory";
    const { seq, prevHash, hash, ...event } = tampered;
    expect(hashCanonical(prevHash, canonicalRecord(seq, event))).not.toBe(hash);
  });

  it("exports a filtered range in seq order, the unindexed tail included", async () => {
    await fill(300);
    const lines = (await exportText({ format: "jsonl", actor: "ada", from: T0 + 100_000 }))
      .trimEnd()
      .split("\n");
    const seqs = lines.map((l) => (JSON.parse(l) as AuditRecord).seq);
    const want = Array.from({ length: 305 }, (_, i) => i + 1).filter(
      (i) => i % 2 === 0 && T0 + i * 1000 >= T0 + 100_000,
    );
    expect(seqs).toEqual(want);
    expect(seqs.some((s) => s > 300)).toBe(true);
  });

  it("puts each checkpoint right after the record it covers, and only those within the exported range", async () => {
    await fill(40);
    for (const seq of [5, 10, 11, 20, 44]) insertCheckpoint(db, checkpoint(seq));
    const all = (await exportText({ format: "jsonl" }))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const order = all.map((o) => (o.checkpoint ? `cp${o.checkpoint.seq}` : o.seq));
    expect(order.slice(0, 7)).toEqual([1, 2, 3, 4, 5, "cp5", 6]);
    expect(order.slice(order.indexOf(10), order.indexOf(10) + 5)).toEqual([10, "cp10", 11, "cp11", 12]);
    expect(order.slice(-3)).toEqual([44, "cp44", 45]);
    expect(all.find((o) => o.checkpoint?.seq === 20).checkpoint).toMatchObject({
      seq: 20,
      kid: "kid-1",
      jws: "jws-20",
      jwk: { kty: "EC", crv: "P-256" },
    });

    // Records 10..19 only (time window): checkpoints 10 and 11 come with them, 5 and 20 do not.
    const part = (await exportText({ format: "jsonl", from: T0 + 10_000, to: T0 + 20_000 }))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const partOrder = part.map((o) => (o.checkpoint ? `cp${o.checkpoint.seq}` : o.seq));
    expect(partOrder).toEqual([10, "cp10", 11, "cp11", 12, 13, 14, 15, 16, 17, 18, 19]);

    // Bob's records (odd seqs): checkpoint 10 covers a filtered-out record; it follows record 9.
    const bob = (await exportText({ format: "jsonl", actor: "bob", to: T0 + 14_000 }))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(bob.map((o) => (o.checkpoint ? `cp${o.checkpoint.seq}` : o.seq))).toEqual([
      1,
      3,
      5,
      "cp5",
      7,
      9,
      "cp10",
      11,
      "cp11",
      13,
    ]);

    expect((await exportText({ format: "jsonl", checkpoints: false })).includes('"checkpoint"')).toBe(false);

    // From record 11 on: the checkpoint of record 10 is its anchor and comes first.
    const from11 = (await exportText({ format: "jsonl", from: T0 + 11_000, to: T0 + 13_000 }))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(from11.map((o) => (o.checkpoint ? `cp${o.checkpoint.seq}` : o.seq))).toEqual([
      "cp10",
      11,
      "cp11",
      12,
    ]);
  });

  it("writes what `audit verify` accepts: a full export, a partial one, and a pruned trail from its anchor", async () => {
    let now = T0 + 100_000;
    const writer = createAuditWriter(db, { clock: () => now });
    const cps = createCheckpointer({
      db,
      keys: await createTestCheckpointKeys(),
      every: 1,
      clock: () => now,
    });
    for (let i = 1; i <= 30; i++) {
      await writer.append(ev(i));
      if (i % 7 === 0) await cps.checkpoint();
    }
    const lines = async (opts: Partial<Parameters<typeof exportAudit>[2]> = {}) =>
      (await exportText({ format: "jsonl", ...opts })).trimEnd().split("\n");
    const full = await lines();
    expect(full.filter((l) => l.startsWith('{"checkpoint"'))).toHaveLength(4);
    expect(await verifyExportLines(full, { complete: true })).toMatchObject({
      ok: true,
      count: 30,
      partial: false,
    });
    const part = await lines({ from: T0 + 10_000, to: T0 + 20_000 });
    expect(await verifyExportLines(part)).toMatchObject({
      ok: true,
      partial: true,
      firstSeq: 10,
      lastSeq: 19,
    });

    // Tampering with the export is detected.
    const tampered = full.map((l) =>
      l.includes('"seq":12,') ? l.replace('"subject":"ada"', '"subject":"eve"') : l,
    );
    expect((await verifyExportLines(tampered)).firstBroken).toMatchObject({ seq: 12, kind: "changed" });

    now = T0 + 30 * 86_400_000;
    const pruned = await pruneAudit(db, {
      retentionMs: 86_400_000,
      clock: () => now,
      append: (e) => writer.append(e),
    });
    expect(pruned.anchor?.seq).toBe(28);
    const afterPrune = await lines();
    expect(JSON.parse(afterPrune[0]).checkpoint.seq).toBe(28);
    expect(await verifyExportLines(afterPrune, { complete: true })).toMatchObject({
      ok: true,
      partial: false,
      firstSeq: 29,
      anchor: { seq: 28 },
    });
  });

  it("streams in chunks with back-pressure and reports progress against the index's count", async () => {
    await fill(600);
    const calls: [number, number][] = [];
    const chunks: string[] = [];
    const result = await exportAudit(
      db,
      async (c) => {
        chunks.push(c);
        await new Promise((r) => setImmediate(r));
      },
      { format: "jsonl", chunkSize: 4096, progressEvery: 100, onProgress: (d, t) => calls.push([d, t]) },
    );
    expect(result).toMatchObject({ records: 605, firstSeq: 1, lastSeq: 605 });
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.join("").split("\n")).toHaveLength(606);
    expect(calls[0]).toEqual([0, 605]);
    expect(calls.at(-1)).toEqual([605, 605]);
    expect(calls.map(([d]) => d)).toEqual([0, 100, 200, 300, 400, 500, 600, 605]);
  });

  it("refuses a bad format or filter", () => {
    expect(() => [...exportChunks(db, { format: "xml" as "csv" })]).toThrow(
      expect.objectContaining({ code: "ERR_AUDIT_ARGUMENT" }),
    );
    expect(() => [...exportChunks(db, { format: "csv", decision: "nope" as "deny" })]).toThrow(
      expect.objectContaining({ code: "ERR_AUDIT_ARGUMENT" }),
    );
  });
});

/** A strict RFC 4180 parser for the test: CRLF records, quoted fields with doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error("unterminated quoted field");
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            cell += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else cell += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r") {
        if (text[i] === '"' || text[i] === "\n") throw new Error(`bare ${JSON.stringify(text[i])} at ${i}`);
        cell += text[i++];
      }
    }
    row.push(cell);
    if (text[i] === ",") i++;
    else if (text.startsWith("\r\n", i)) {
      rows.push(row);
      row = [];
      i += 2;
    } else if (i < text.length) throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

describe("CSV export", () => {
  const HOSTILE: Partial<AuditEvent> = {
    subject: "=cmd|' /C calc'!A0",
    subjectName: '+SUM(1,2) "boss", the\nsecond line',
    reason: '-2+3, said "eve"\r\nthen left',
    resource: "@/dbs/evil,path",
    userAgent: "\tTAB at the start",
    actions: ["read", "=1+1"],
    details: { note: "a,b" },
  };

  it("quotes per RFC 4180 and neutralizes formula-injection prefixes", async () => {
    await fill(3, (i) => (i === 2 ? HOSTILE : {}));
    const text = await exportText({ format: "csv" });
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + 8);
    for (const r of rows) expect(r).toHaveLength(CSV_COLUMNS.length);
    const col = (name: (typeof CSV_COLUMNS)[number]) => rows[2][CSV_COLUMNS.indexOf(name)];
    expect(col("seq")).toBe("2");
    expect(col("time")).toBe(new Date(T0 + 2000).toISOString());
    expect(col("subject")).toBe("'=cmd|' /C calc'!A0");
    expect(col("subjectName")).toBe('\'+SUM(1,2) "boss", the\nsecond line');
    expect(col("reason")).toBe('\'-2+3, said "eve"\r\nthen left');
    expect(col("resource")).toBe("'@/dbs/evil,path");
    expect(col("userAgent")).toBe("'\tTAB at the start");
    expect(col("actions")).toBe("read;=1+1");
    expect(col("details")).toBe('{"note":"a,b"}');
    expect(col("durationMs")).toBe("1.5");
    expect(col("credential")).toBe("key2");
    // No cell a spreadsheet would evaluate.
    for (const r of rows.slice(1)) for (const c of r) expect(c).not.toMatch(/^[=+\-@\t\r]/);
  });

  it("csvText leaves plain values alone", () => {
    expect(csvText("ada")).toBe("ada");
    expect(csvText("")).toBe("");
    expect(csvText("a,b")).toBe('"a,b"');
    expect(csvText('say "hi"')).toBe('"say ""hi"""');
    expect(csvText("-")).toBe("'-");
  });
});
