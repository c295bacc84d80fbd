import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "./errors.js";
import { openDatabase } from "./sqlite.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-store-"));
});
afterEach(() => {
  fs.chmodSync(dir, 0o700);
  fs.rmSync(dir, { recursive: true, force: true });
});

function mode(f: string): number {
  return fs.statSync(f).mode & 0o777;
}

describe("openDatabase", () => {
  it("opens :memory:", () => {
    const db = openDatabase(":memory:");
    expect(db.prepare("SELECT 1 AS one").get()).toEqual({ one: 1 });
    db.close();
  });

  it("creates the parent directory 0700, uses WAL + synchronous FULL", () => {
    const file = path.join(dir, "state", "nested", "audit.db");
    const db = openDatabase(file);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("synchronous", { simple: true })).toBe(2); // FULL
    expect(db.pragma("busy_timeout", { simple: true })).toBe(5000);
    expect(mode(path.join(dir, "state"))).toBe(0o700);
    expect(mode(path.dirname(file))).toBe(0o700);
    db.close();
  });

  it("makes the db, -wal and -shm files 0600", () => {
    const file = path.join(dir, "audit.db");
    const db = openDatabase(file);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      expect(fs.existsSync(f), f).toBe(true);
      expect(mode(f), f).toBe(0o600);
    }
    db.close();
  });

  it("-wal and -shm files SQLite creates after opening inherit 0600", () => {
    const file = path.join(dir, "audit.db");
    openDatabase(file).close(); // a clean close removes -wal and -shm
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const db = openDatabase(file);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(`${file}-shm`)).toBe(0o600);
    db.close();
  });

  it("tightens an existing world-readable file to 0600", () => {
    const file = path.join(dir, "audit.db");
    openDatabase(file).close();
    fs.chmodSync(file, 0o644);
    const db = openDatabase(file);
    expect(mode(file)).toBe(0o600);
    db.close();
  });

  it("keeps data across reopen", () => {
    const file = path.join(dir, "a.db");
    const db = openDatabase(file);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (42);");
    db.close();
    const again = openDatabase(file, { readonly: true });
    expect(again.prepare("SELECT x FROM t").get()).toEqual({ x: 42 });
    expect(() => again.exec("INSERT INTO t VALUES (1)")).toThrow(/readonly/);
    again.close();
  });

  it("fails with ERR_STORE_OPEN naming the file when it is not a database", () => {
    const file = path.join(dir, "garbage.db");
    fs.writeFileSync(file, "this is not a sqlite database, just some text that is long enough ".repeat(20));
    const err = catchError(() => openDatabase(file));
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("ERR_STORE_OPEN");
    expect((err as StoreError).message).toContain(file);
    expect((err as StoreError).message).toMatch(/corrupt/);
  });

  it("fails with ERR_STORE_OPEN when a read-only file is missing", () => {
    const file = path.join(dir, "missing.db");
    const err = catchError(() => openDatabase(file, { readonly: true }));
    expect((err as StoreError).code).toBe("ERR_STORE_OPEN");
    expect((err as StoreError).message).toContain(file);
    expect(fs.existsSync(file)).toBe(false);
  });

  it("fails with ERR_STORE_OPEN when the parent directory cannot be made", () => {
    const blocker = path.join(dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const err = catchError(() => openDatabase(path.join(blocker, "audit.db")));
    expect((err as StoreError).code).toBe("ERR_STORE_OPEN");
    expect((err as StoreError).message).toContain(`cannot create the directory "${blocker}"`);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}
