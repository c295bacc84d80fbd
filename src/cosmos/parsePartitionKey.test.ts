import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CosmosWireError } from "./errors.js";
import { parsePartitionKey } from "./parsePartitionKey.js";

function code(text: string): string | undefined {
  try {
    parsePartitionKey(text);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(CosmosWireError);
    expect((e as CosmosWireError).status).toBe(400);
    return (e as CosmosWireError).code;
  }
}

describe("parsePartitionKey", () => {
  it("accepts what the SDK sends", () => {
    expect(parsePartitionKey('["eu"]')).toEqual(["eu"]);
    expect(parsePartitionKey("[42]")).toEqual([42]);
    expect(parsePartitionKey("[-1.5]")).toEqual([-1.5]);
    expect(parsePartitionKey("[true]")).toEqual([true]);
    expect(parsePartitionKey("[null]")).toEqual([null]);
    expect(parsePartitionKey("[{}]")).toEqual([{}]);
    expect(parsePartitionKey("[]")).toEqual([]);
    expect(parsePartitionKey('["tenant",7,false]')).toEqual(["tenant", 7, false]);
    // The SDK escapes non-ASCII characters (jsonStringifyAndEscapeNonASCII).
    expect(parsePartitionKey('["\\u00e9t\\u00e9"]')).toEqual(["été"]);
    expect(parsePartitionKey(` [ "a" ] `)).toEqual(["a"]);
  });

  it("refuses anything else with ERR_BAD_PARTITION_KEY", () => {
    for (const bad of [
      "eu",
      '"eu"',
      "42",
      "null",
      "{}",
      '{"0":"a"}',
      '[["a"]]',
      '[{"a":1}]',
      '[{"__proto__":1}]',
      "[1,2,3,4]",
      "[1e999]",
      "[-1e999]",
      "[",
      "",
      "[undefined]",
      "[NaN]",
    ]) {
      expect(code(bad), bad).toBe("ERR_BAD_PARTITION_KEY");
    }
  });

  it("refuses a key longer than 2048 characters before parsing it", () => {
    expect(parsePartitionKey(`["${"a".repeat(2044)}"]`)).toHaveLength(1);
    expect(code(`["${"a".repeat(2045)}"]`)).toBe("ERR_BAD_PARTITION_KEY");
  });

  it("names the source in its message", () => {
    expect(() => parsePartitionKey("x", "batch operation 3's partitionKey")).toThrow(
      /batch operation 3's partitionKey/,
    );
    expect(() => parsePartitionKey("x")).toThrow(/x-ms-documentdb-partitionkey/);
  });

  it("agrees with JSON.parse on every single-string key, fast path or not", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (v) => {
        expect(parsePartitionKey(JSON.stringify([v]))).toEqual([v]);
        const raw = `["${v}"]`;
        let expected: unknown;
        try {
          expected = JSON.parse(raw);
        } catch {
          expect(() => parsePartitionKey(raw)).toThrow(CosmosWireError);
          return;
        }
        if (Array.isArray(expected) && expected.length === 1 && typeof expected[0] === "string") {
          expect(parsePartitionKey(raw)).toEqual(expected);
        }
      }),
      { numRuns: 3000 },
    );
    expect(parsePartitionKey('[""]')).toEqual([""]);
    expect(code('["]')).toBe("ERR_BAD_PARTITION_KEY");
    expect(code('["a\\"]')).toBe("ERR_BAD_PARTITION_KEY");
    expect(code('["a\n"]')).toBe("ERR_BAD_PARTITION_KEY"); // a raw newline
  });
});
