import { describe, expect, it } from "vitest";
import { benchTokenIssue } from "./issueBench.js";

// A smoke test of the benchmark's plumbing; it asserts no timings (benchmarks live in bench/).
describe("benchTokenIssue", () => {
  it("runs and reports positive figures", async () => {
    const result = await benchTokenIssue({ iterations: 20 });
    expect(result.issuesPerSecond).toBeGreaterThan(0);
    expect(result.concurrentIssuesPerSecond).toBeGreaterThan(0);
    expect(result.tokenLength).toBeGreaterThan(300);
  });
});
