import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../../store/sqlite.js";
import { WalSync } from "./walSync.js";

describe("WalSync (group commit)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), "walsync-"));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("makes concurrent commits durable with shared fdatasyncs of the WAL", async () => {
    const file = join(dir, "db.sqlite");
    const db = openDatabase(file, { synchronous: "NORMAL" });
    const sync = new WalSync(file);
    try {
      db.exec("CREATE TABLE t (v INTEGER)");
      const spy = vi.spyOn(fs, "fdatasync");
      const flushes: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) {
        db.prepare("INSERT INTO t VALUES (?)").run(i);
        flushes.push(sync.flush());
      }
      await Promise.all(flushes);
      // The first sync starts at once; every later request shares the one after it.
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(1);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(2);
      // A flush requested after a sync has started waits for a sync that started after it.
      db.prepare("INSERT INTO t VALUES (99)").run();
      await sync.flush();
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      sync.close();
      db.close();
    }
  });

  it("resolves at once when there is no WAL yet, or once the store is closed", async () => {
    const sync = new WalSync(join(dir, "none.sqlite"));
    await expect(sync.flush()).resolves.toBeUndefined();
    sync.close();
    await expect(sync.flush()).resolves.toBeUndefined();
  });
});
