import { describe, expect, it } from "vitest";
import { parsePath } from "./parsePath.js";

describe("parsePath", () => {
  it("splits valid scopes", () => {
    expect(parsePath("/", "scope")).toEqual({ ok: true, segments: [] });
    expect(parsePath("/dbs/shop", "scope")).toEqual({ ok: true, segments: ["dbs", "shop"] });
    expect(parsePath("/dbs/*/colls/orders/docs/a 1", "scope")).toEqual({
      ok: true,
      segments: ["dbs", "*", "colls", "orders", "docs", "a 1"],
    });
    expect(parsePath("/dbs/shop/users/u/permissions/p", "scope").ok).toBe(true);
    expect(parsePath("/dbs/shop/colls/o/sprocs/s", "scope").ok).toBe(true);
  });

  it("accepts feeds as resources but not as scopes", () => {
    expect(parsePath("/dbs/shop/colls", "resource")).toEqual({
      ok: true,
      segments: ["dbs", "shop", "colls"],
    });
    expect(parsePath("/dbs", "resource").ok).toBe(true);
    expect(parsePath("/dbs/shop/colls", "scope").ok).toBe(false);
  });

  it.each([
    ["", 'expected a path starting with "/"'],
    ["/dbs//colls/x", "expected no empty segment"],
    ["/colls/x", 'expected "/" (the whole account) or a path starting with /dbs'],
    [
      "/dbs/a/colls/b/items/c",
      'expected "docs" or "sprocs" or "udfs" or "triggers" or "conflicts" or "pkranges" after /dbs/a/colls/b',
    ],
    ["/dbs/a/users/u/docs/c", 'expected "permissions" after /dbs/a/users/u'],
    ["/dbs/a/colls/b/docs/c/x/y", "expected at most 6 segments"],
    ["/dbs/*/*/b", 'expected "colls" or "users" after /dbs/*'],
    ["/dbs/a?b", 'expected an id without "\\", "?" or "#"'],
  ])("rejects %j", (text, expected) => {
    const parsed = parsePath(text, "scope");
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.expected).toContain(expected);
  });
});

describe("parsePath resources", () => {
  it("keeps ids with * in resources (Cosmos DB ids may contain it) but refuses a bare *", () => {
    expect(parsePath("/dbs/a*b", "resource")).toEqual({ ok: true, segments: ["dbs", "a*b"] });
    expect(parsePath("/dbs/*", "resource").ok).toBe(false);
  });
});
