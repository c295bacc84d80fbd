import { describe, expect, it } from "vitest";
import { benchTokenVerification } from "./bench.js";

// A smoke test of the benchmark's plumbing; it asserts no timings (benchmarks live in bench/).
describe("benchTokenVerification", () => {
  it("runs and reports positive figures", async () => {
    const result = await benchTokenVerification({
      coldIterations: 5,
      warmIterations: 1000,
      tokenLength: 600,
    });
    expect(result.coldUsPerOp).toBeGreaterThan(0);
    expect(result.warmNsPerOp).toBeGreaterThan(0);
    expect(result.headerNsPerOp).toBeGreaterThan(0);
    expect(result.tokenLength).toBeGreaterThanOrEqual(590);
  });
});
