import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type PolicyEvent, type PolicyHolder, readPolicyFile, watchPolicy } from "./policyWatcher.js";

const READERS = 'members:\n  Cosmos DB Built-in Data Reader: ["sub:ada"]\n';
const WRITERS = 'members:\n  Cosmos DB Built-in Data Contributor: ["sub:ada"]\n';

let dir: string;
let file: string;
let stop: (() => void) | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-policy-"));
  file = join(dir, "policy.yaml");
  writeFileSync(file, READERS);
});
afterEach(() => {
  stop?.();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const v = what();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for a policy event");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("watchPolicy audit events", () => {
  it("emits policy.loaded with both versions, then policy.refused for a broken or removed file", async () => {
    const holder: PolicyHolder = { current: (await readPolicyFile(file)).policy, loads: 0, refusals: 0 };
    const first = holder.current.version;
    const events: PolicyEvent[] = [];
    stop = watchPolicy(file, holder, pino({ level: "silent" }), {
      debounceMs: 10,
      events: (e) => events.push(e),
    });

    writeFileSync(file, WRITERS);
    const loaded = await until(() => events.find((e) => e.type === "policy.loaded"));
    expect(loaded).toMatchObject({
      subject: "cosmosgate",
      subjectKind: "system",
      resource: "/policy",
      decision: "allow",
      details: { file, version: holder.current.version, previousVersion: first },
    });
    expect(holder.current.version).not.toBe(first);

    writeFileSync(file, "members: [not: valid\n");
    const refused = await until(() => events.find((e) => e.type === "policy.refused"));
    expect(refused).toMatchObject({
      decision: "deny",
      details: { file, keptVersion: holder.current.version, problem: expect.any(String) },
    });
    expect(holder.refusals).toBeGreaterThanOrEqual(1);

    unlinkSync(file);
    const removed = await until(() =>
      events.find((e) => e.type === "policy.refused" && e.details.problem === "the file was removed"),
    );
    expect(removed.reason).toMatch(/previous policy stays in force/);
  });

  it("a failing audit sink does not stop the reload", async () => {
    const holder: PolicyHolder = { current: (await readPolicyFile(file)).policy, loads: 0, refusals: 0 };
    stop = watchPolicy(file, holder, pino({ level: "silent" }), {
      debounceMs: 10,
      events: () => {
        throw new Error("audit down");
      },
    });
    writeFileSync(file, WRITERS);
    await until(() => (holder.loads > 0 ? true : undefined));
  });
});
