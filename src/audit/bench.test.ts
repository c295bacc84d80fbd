import { describe, expect, it } from "vitest";
import { benchAppend } from "./bench.js";

// A smoke test of the helper, not a timed test: it only checks that the numbers are sane.
describe("benchAppend", () => {
  it("appends n records through group commit and reports a rate", async () => {
    const r = await benchAppend(500, { concurrency: 50 });
    expect(r.records).toBe(500);
    expect(r.recordsPerSecond).toBeGreaterThan(0);
    expect(r.commits).toBeLessThan(500);
    expect(r.meanGroup).toBeGreaterThan(1);
  });
});
