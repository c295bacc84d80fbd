import { describe, expect, it } from "vitest";
import { createProgress } from "./progress.js";

describe("createProgress", () => {
  it("draws a bar in place with \\r, throttled, and ends the line on finish", () => {
    let out = "";
    let now = 0;
    const bar = createProgress({
      write: (t) => (out += t),
      enabled: true,
      unit: "records",
      label: "verifying",
      clock: () => now,
      width: 10,
    });
    bar.update(0, 200);
    now = 50;
    bar.update(50, 200); // within 100 ms of the last draw: skipped
    now = 1000;
    bar.update(100, 200);
    bar.finish();
    const frames = out.split("\r").filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toContain("[----------]   0% 0/200 records");
    expect(frames[1]).toContain("verifying [#####-----]  50% 100/200 records (1.0s, 100/s)");
    expect(out.endsWith("\n")).toBe(true);
  });

  it("shows bytes in MB and a count alone when the total is unknown", () => {
    let out = "";
    const bytes = createProgress({ write: (t) => (out += t), enabled: true, unit: "bytes", clock: () => 0 });
    bytes.update(3 * 1_048_576, 4 * 1_048_576);
    expect(out).toContain("75% 3.0/4.0 MB");
    out = "";
    const count = createProgress({
      write: (t) => (out += t),
      enabled: true,
      unit: "records",
      clock: () => 0,
    });
    count.update(42, 0);
    expect(out).toBe("\r42 records (0.0s)");
  });

  it("writes nothing when disabled (stderr is not a terminal and --progress was not given)", () => {
    let out = "";
    const bar = createProgress({ write: (t) => (out += t), enabled: false, unit: "records" });
    bar.update(5, 10);
    bar.finish();
    expect(out).toBe("");
  });
});
