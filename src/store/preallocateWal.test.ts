import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { preallocateWal, walBytes } from "./preallocateWal.js";
import { openDatabase } from "./sqlite.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-wal-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("preallocateWal", () => {
  it("grows the WAL with zeros after its end, and SQLite keeps every committed row, also after a crash-like reopen", async () => {
    const file = path.join(dir, "a.db");
    const db = openDatabase(file, { synchronous: "NORMAL" });
    db.pragma("wal_autocheckpoint = 0"); // keep every frame in the WAL for this test
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)");
    const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
    for (let i = 0; i < 50; i++) insert.run(`before ${i}`);
    const before = fs.statSync(`${file}-wal`).size;
    const target = walBytes(2000, 4096);
    await preallocateWal(file, target);
    expect(fs.statSync(`${file}-wal`).size).toBe(target);
    for (let i = 0; i < 50; i++) insert.run(`after ${i}`);
    expect(fs.statSync(`${file}-wal`).size).toBe(target); // commits wrote into the grown space
    expect(before).toBeLessThan(target);
    // Another connection reads through the WAL while the writer is open (no checkpoint happened).
    const reader = openDatabase(file, { readonly: true });
    expect((reader.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(100);
    reader.close();
    // A copy of the files as they are now is what a crash leaves: recovery reads the valid frames only.
    fs.copyFileSync(file, path.join(dir, "b.db"));
    fs.copyFileSync(`${file}-wal`, path.join(dir, "b.db-wal"));
    const recovered = openDatabase(path.join(dir, "b.db"));
    expect(recovered.prepare("SELECT v FROM t ORDER BY n").pluck().all()).toEqual([
      ...Array.from({ length: 50 }, (_, i) => `before ${i}`),
      ...Array.from({ length: 50 }, (_, i) => `after ${i}`),
    ]);
    expect(recovered.pragma("integrity_check", { simple: true })).toBe("ok");
    recovered.close();
    db.close();
  });

  it("never shrinks or rewrites a WAL that is already large enough, and ignores a missing WAL", async () => {
    const file = path.join(dir, "a.db");
    fs.writeFileSync(`${file}-wal`, Buffer.alloc(5000, 7));
    await preallocateWal(file, 4000);
    expect(fs.readFileSync(`${file}-wal`)).toEqual(Buffer.alloc(5000, 7));
    await expect(preallocateWal(path.join(dir, "none.db"), 4000)).resolves.toBeUndefined();
    expect(fs.existsSync(path.join(dir, "none.db-wal"))).toBe(false);
  });
});
