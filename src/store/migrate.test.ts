import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { StoreError } from "./errors.js";
import { migrate } from "./migrate.js";
import { openDatabase } from "./sqlite.js";

const v1 = { version: 1, sql: "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)" };
const v2 = { version: 2, sql: "ALTER TABLE kv ADD COLUMN expires INTEGER" };

describe("migrate", () => {
  it("applies pending steps in order and records user_version", () => {
    const db = openDatabase(":memory:");
    expect(migrate(db, [v2, v1])).toBe(2);
    expect(db.pragma("user_version", { simple: true })).toBe(2);
    db.prepare("INSERT INTO kv (k, v, expires) VALUES ('a', 'b', 1)").run();
    expect(migrate(db, [v1, v2])).toBe(2); // idempotent
    db.close();
  });

  it("applies only the new steps", () => {
    const db = openDatabase(":memory:");
    migrate(db, [v1]);
    db.prepare("INSERT INTO kv (k, v) VALUES ('a', 'b')").run();
    expect(migrate(db, [v1, v2])).toBe(2);
    expect(db.prepare("SELECT k, v, expires FROM kv").get()).toEqual({ k: "a", v: "b", expires: null });
    db.close();
  });

  it("rolls back every step when one fails", () => {
    const db = openDatabase(":memory:");
    const bad = { version: 2, sql: "CREATE TABLE oops (" };
    expect(() => migrate(db, [v1, bad])).toThrow(StoreError);
    expect(db.pragma("user_version", { simple: true })).toBe(0);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'kv'").get()).toBeUndefined();
    db.close();
  });

  it("refuses a database newer than the list", () => {
    const db = openDatabase(":memory:");
    migrate(db, [v1, v2]);
    try {
      migrate(db, [v1]);
      expect.unreachable();
    } catch (err) {
      expect((err as StoreError).code).toBe("ERR_STORE_MIGRATE");
      expect((err as StoreError).message).toMatch(/newer/);
    }
    db.close();
  });

  it("refuses malformed versions", () => {
    const db = openDatabase(":memory:");
    expect(() => migrate(db, [v1, { ...v1 }])).toThrow(/distinct/);
    expect(() => migrate(db, [{ version: 0, sql: "" }])).toThrow(/positive/);
    expect(() => migrate(db, [{ version: 1.5, sql: "" }])).toThrow(/integers/);
    db.close();
  });

  it("is a no-op on an up-to-date read-only connection", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-migrate-"));
    try {
      const file = path.join(dir, "s.db");
      const db = openDatabase(file);
      migrate(db, [v1]);
      db.close();
      const ro = openDatabase(file, { readonly: true });
      expect(migrate(ro, [v1])).toBe(1);
      ro.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
