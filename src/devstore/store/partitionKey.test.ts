import { describe, expect, it } from "vitest";
import { DevStoreError } from "./errors.js";
import {
  extractPartitionKey,
  headerPartitionKey,
  parsePath,
  partitionKeySpec,
  partitionKeyText,
  prefixRange,
} from "./partitionKey.js";

describe("partition keys", () => {
  it("parses paths, quoted names included, and refuses malformed ones", () => {
    expect(parsePath("/tenant")).toEqual(["tenant"]);
    expect(parsePath("/address/city")).toEqual(["address", "city"]);
    expect(parsePath('/"a b"/c')).toEqual(["a b", "c"]);
    for (const bad of ["tenant", "/", "//a", "/a/", '/"a', "/*"])
      expect(() => parsePath(bad)).toThrow(DevStoreError);
  });

  it("keeps the definition as given, defaults kind, and refuses impossible ones", () => {
    expect(partitionKeySpec({ paths: ["/p"] }).definition).toEqual({ paths: ["/p"], kind: "Hash" });
    expect(partitionKeySpec({ paths: ["/a", "/b"], kind: "MultiHash", version: 2 }).definition).toEqual({
      paths: ["/a", "/b"],
      kind: "MultiHash",
      version: 2,
    });
    expect(partitionKeySpec(undefined).paths).toEqual(["/id"]);
    expect(() => partitionKeySpec({ paths: ["/a", "/b"], kind: "Hash" })).toThrow(/MultiHash/);
    expect(() => partitionKeySpec({ paths: ["/a", "/b", "/c", "/d"], kind: "MultiHash" })).toThrow(
      /at most 3/,
    );
    expect(() => partitionKeySpec({ paths: [] })).toThrow(DevStoreError);
  });

  it("extracts a document's key: primitives and null as they are, anything else as undefined ({})", () => {
    const spec = partitionKeySpec({ paths: ["/a/b", "/n", "/o"], kind: "MultiHash" });
    expect(extractPartitionKey({ a: { b: "x" }, n: null, o: [1] }, spec)).toEqual(["x", null, {}]);
    expect(partitionKeyText(extractPartitionKey({ a: { b: 1.0 } }, spec))).toBe("[1,{},{}]");
    expect(partitionKeyText(extractPartitionKey({ a: "not an object" }, spec))).toBe("[{},{},{}]");
  });

  it("checks a header key against the definition; prefixes only where allowed", () => {
    const spec = partitionKeySpec({ paths: ["/a", "/b"], kind: "MultiHash" });
    expect(headerPartitionKey('["x","y"]', spec, false)).toEqual({ text: '["x","y"]', prefix: false });
    expect(headerPartitionKey('["x"]', spec, true)).toEqual({ text: '["x"]', prefix: true });
    expect(() => headerPartitionKey('["x"]', spec, false)).toThrow(/doesn't correspond to definition/);
    expect(() => headerPartitionKey('["x","y","z"]', spec, true)).toThrow(
      DevStoreError.prototype.constructor,
    );
    expect(headerPartitionKey("[1.0, {}]", spec, false).text).toBe("[1,{}]");
  });

  it("bounds every full key under a prefix, and no other", () => {
    const [lo, hi] = prefixRange('["a"]');
    const inside = ['["a","b"]', '["a",""]', '["a",{}]', '["a",1]', '["a","\\u0000"]'];
    const outside = ['["a"]', '["ab","b"]', '["b","a"]', '["a\\"","x"]', '["A","b"]'];
    for (const k of inside) expect(k >= lo && k < hi, k).toBe(true);
    for (const k of outside) expect(k >= lo && k < hi, k).toBe(false);
  });
});
