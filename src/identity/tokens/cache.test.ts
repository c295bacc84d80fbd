import { describe, expect, it } from "vitest";
import type { Principal } from "../types.js";
import { createVerifiedTokenCache } from "./cache.js";

const principal = (sub: string, exp: number): Principal =>
  Object.freeze({ sub, kind: "user", groups: [], issuer: "https://idp.test", exp });

describe("createVerifiedTokenCache", () => {
  it("keys by SHA-256, never by the raw token", () => {
    const cache = createVerifiedTokenCache();
    const token = "header.payload.signature-that-is-secret";
    const key = cache.keyOf(token);
    expect(key).toHaveLength(32);
    expect(key).not.toContain("secret");
    expect(cache.keyOf(token)).toBe(key);
    expect(cache.keyOf(`${token}x`)).not.toBe(key);
  });

  it("hits until exactly exp by the clock, then drops the entry", () => {
    let now = 1_000_000;
    const cache = createVerifiedTokenCache({ clock: () => now });
    const p = principal("a", 1_060); // expires at 1_060_000 ms
    cache.set(cache.keyOf("t"), p);
    expect(cache.get("t")).toBe(p);
    now = 1_059_999;
    expect(cache.get("t")).toBe(p);
    now = 1_060_000;
    expect(cache.get("t")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 2, size: 0 });
  });

  it("does not store what has already expired", () => {
    const cache = createVerifiedTokenCache({ clock: () => 5_000 });
    cache.set(cache.keyOf("t"), principal("a", 5));
    expect(cache.stats().size).toBe(0);
  });

  it("evicts the oldest entry at the bound and counts it", () => {
    const cache = createVerifiedTokenCache({ maxEntries: 2, clock: () => 0 });
    for (const t of ["a", "b", "c"]) cache.set(cache.keyOf(t), principal(t, 100));
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")?.sub).toBe("b");
    expect(cache.get("c")?.sub).toBe("c");
    cache.set(cache.keyOf("c"), principal("c2", 100)); // replacing an entry evicts nothing
    expect(cache.stats()).toMatchObject({ size: 2, evictions: 1 });
  });

  it("revokes by predicate and clears", () => {
    const cache = createVerifiedTokenCache({ clock: () => 0 });
    for (const t of ["a", "b", "c"]) cache.set(cache.keyOf(t), principal(t, 100));
    expect(cache.revoke((p) => p.sub !== "b")).toBe(2);
    expect(cache.get("b")?.sub).toBe("b");
    cache.clear();
    expect(cache.stats().size).toBe(0);
  });

  it("stores nothing with maxEntries 0 and refuses a bad bound", () => {
    const cache = createVerifiedTokenCache({ maxEntries: 0, clock: () => 0 });
    cache.set(cache.keyOf("t"), principal("a", 100));
    expect(cache.get("t")).toBeUndefined();
    expect(() => createVerifiedTokenCache({ maxEntries: 1.5 })).toThrow(TypeError);
  });
});
