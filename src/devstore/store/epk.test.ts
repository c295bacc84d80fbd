import { describe, expect, it } from "vitest";
// The SDK's own implementation, as the reference (a dev dependency; not imported by the store).
import { hashMultiHashPartitionKey } from "../../../node_modules/@azure/cosmos/dist/esm/utils/hashing/multiHash.js";
import { multiHashEpk } from "./epk.js";
import type { PartitionKeyComponent } from "./partitionKey.js";

describe("multiHashEpk", () => {
  it("computes the same effective partition keys as the @azure/cosmos SDK", () => {
    const keys: PartitionKeyComponent[][] = [
      ["x"],
      ["x", "1"],
      ["a longer string that spans more than one 16-byte block", 42],
      [1.5, true, null],
      [{}],
      ["ü鱀", -0.25, false],
      ["0123456789abcde"],
      ["0123456789abcdef"],
      ["", 0],
      [Number.MAX_SAFE_INTEGER, -1e300],
    ];
    for (const k of keys) expect(multiHashEpk(k)).toBe(hashMultiHashPartitionKey(k));
  });

  it("gives a full key an EPK that starts with its prefix's, inside [prefix, prefix + 'FF')", () => {
    const prefix = multiHashEpk(["tenant"]);
    const full = multiHashEpk(["tenant", "user"]);
    expect(full.startsWith(prefix)).toBe(true);
    expect(full > prefix && full < `${prefix}FF`).toBe(true);
    expect(multiHashEpk(["other", "user"]).startsWith(prefix)).toBe(false);
  });
});
