import { describe, expect, it } from "vitest";
import { DevStoreError } from "./errors.js";
import { checkId, checkTtl, MAX_NESTING, parseJson, parseObject } from "./validate.js";

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof DevStoreError) return err.status;
    throw err;
  }
  return 0;
}

describe("request validation", () => {
  it("accepts item ids the service accepts (spaces, '?', unicode) and refuses '/', '\\', '#', control characters", () => {
    for (const id of ["a", " lead", "trail ", "a?b", "ü鱀", "x".repeat(255), "%20"])
      expect(checkId(id, "item")).toBe(id);
    for (const id of ["a/b", "a\\b", "a#b", "a\u0001b", "", "x".repeat(256)])
      expect(status(() => checkId(id, "item"))).toBe(400);
    expect(status(() => checkId("a?b", "container"))).toBe(400);
    expect(status(() => checkId(7, "item"))).toBe(400);
    expect(status(() => checkId(undefined, "item"))).toBe(400);
  });

  it("parses JSON bodies, refusing garbage, non-objects and documents nested too deep (never a crash)", () => {
    expect(parseObject(Buffer.from('{"a":[1,{"b":"]]]"}]}'), "item")).toEqual({ a: [1, { b: "]]]" }] });
    expect(status(() => parseObject("[1]", "item"))).toBe(400);
    expect(status(() => parseJson("{", "item"))).toBe(400);
    expect(status(() => parseJson("", "item"))).toBe(400);
    const ok = `${"[".repeat(MAX_NESTING)}${"]".repeat(MAX_NESTING)}`;
    expect(() => parseJson(ok, "item")).not.toThrow();
    const deep = `{"a":${"[".repeat(50_000)}${"]".repeat(50_000)}}`;
    expect(status(() => parseJson(deep, "item"))).toBe(400);
    // Brackets inside strings (with escaped quotes) do not count.
    expect(() => parseJson(JSON.stringify({ s: `\\"${"[".repeat(500)}` }), "item")).not.toThrow();
  });

  it("accepts ttl -1 or positive integers", () => {
    expect(checkTtl(-1, "ttl")).toBe(-1);
    expect(checkTtl(3600, "ttl")).toBe(3600);
    expect(checkTtl(null, "ttl")).toBeUndefined();
    for (const v of [0, -2, 1.5, "10", 2 ** 31]) expect(status(() => checkTtl(v as never, "ttl"))).toBe(400);
  });
});
