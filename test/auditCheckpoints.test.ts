import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditCheckpoint, verifyCheckpoint } from "../src/audit/checkpoints.js";
import { createTestCheckpointKeys, exportLines } from "../src/audit/checkpointTesting.js";
import { openDatabase } from "../src/store/sqlite.js";
import { runCli } from "./helpers/cli.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

/**
 * Signed checkpoints end to end: a real gateway writes them on its timer and serves them at
 * /audit/checkpoints; they verify with the gateway's JWKS and with the key they carry; the
 * `audit verify` command line checks the live store, checkpoints kept elsewhere, an export, and
 * a pruned trail, with a progress bar and exit codes.
 */
describe("audit checkpoints, verify and prune (gateway + CLI)", () => {
  let h: Harness;
  let work: string;
  let configFile: string;

  beforeAll(async () => {
    h = await startHarness({ extraConfig: "audit: {checkpoints: {every: 3, interval: 200ms}}" });
    work = mkdtempSync(join(tmpdir(), "cosmosgate-auditcp-"));
    configFile = join(h.dir, "cosmosgate.yaml");
    const client = h.client("alice", ["cosmos-admins"]);
    for (let i = 0; i < 7; i++) await client.databases.readAll().fetchAll();
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    rmSync(work, { recursive: true, force: true });
  });

  async function checkpoints(
    query = "",
  ): Promise<{ status: number; body: { checkpoints: AuditCheckpoint[] } }> {
    const res = await fetch(`${h.controlUrl}/audit/checkpoints${query}`);
    return { status: res.status, body: await res.json() };
  }

  async function waitForCheckpointAtHead(): Promise<AuditCheckpoint[]> {
    const db = openDatabase(h.gw.auditFile, { readonly: true });
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const head = (db.prepare("SELECT max(seq) AS s FROM audit_events").get() as { s: number }).s;
        const { body } = await checkpoints();
        if (body.checkpoints[0]?.seq === head) return body.checkpoints;
        if (Date.now() > deadline) throw new Error(`no checkpoint of the head ${head} in time`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      db.close();
    }
  }

  it("serves recent signed checkpoints, newest first, that verify with the gateway's JWKS and with their stored JWK", async () => {
    const cps = await waitForCheckpointAtHead();
    expect(cps.length).toBeGreaterThanOrEqual(2);
    expect(cps.map((c) => c.seq)).toEqual([...cps.map((c) => c.seq)].sort((a, b) => b - a));
    for (const cp of cps) {
      expect(Object.keys(cp).sort()).toEqual(["alg", "hash", "instance", "jwk", "jws", "kid", "seq", "time"]);
      expect(cp.instance).toBe(h.gw.instance);
    }

    const jwks = (await (await fetch(`${h.controlUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const keySet = createLocalJWKSet(jwks);
    for (const cp of cps) {
      // Independently of our code: jose against the control plane's JWKS.
      const { payload, protectedHeader } = await compactVerify(cp.jws, keySet);
      expect(protectedHeader).toMatchObject({
        alg: "ES256",
        kid: cp.kid,
        typ: "cosmosgate-audit-checkpoint",
      });
      expect(JSON.parse(new TextDecoder().decode(payload))).toMatchObject({
        seq: cp.seq,
        hash: cp.hash,
        time: cp.time,
      });
      // And with the key the checkpoint carries, and against the JWKS as the trusted set.
      expect(await verifyCheckpoint(cp)).toEqual({ ok: true });
      expect(await verifyCheckpoint(cp, { jwks })).toEqual({ ok: true });
    }
    // The record each names has exactly that hash.
    const db = openDatabase(h.gw.auditFile, { readonly: true });
    for (const cp of cps) {
      expect(
        (db.prepare("SELECT hash FROM audit_events WHERE seq = ?").get(cp.seq) as { hash: string }).hash,
      ).toBe(cp.hash);
    }
    db.close();

    expect((await checkpoints("?limit=1")).body.checkpoints).toHaveLength(1);
    expect((await checkpoints("?limit=0")).status).toBe(400);
    expect((await checkpoints("?limit=abc")).status).toBe(400);
  });

  it("`audit verify` checks the live store with a progress bar (--progress), and against checkpoints from the URL", async () => {
    await waitForCheckpointAtHead();
    const ok = await runCli(["audit", "verify", "--config", configFile, "--progress"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit chain OK: \d+ record\(s\) verified \(seq 1–\d+\)/);
    expect(ok.stdout).toMatch(/checkpoints: \d+ signed checkpoint\(s\) match their records/);
    expect(ok.stderr).toMatch(/\rverifying \[#+\] 100% \d+\/\d+ records/);

    // Not a terminal and no --progress: no bar.
    const quiet = await runCli(["audit", "verify", "--config", configFile]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");

    const url = await runCli([
      "audit",
      "verify",
      "--config",
      configFile,
      "--checkpoints",
      `${h.controlUrl}/audit/checkpoints`,
    ]);
    expect(url.code).toBe(0);
    expect(url.stdout).toMatch(/\d+ external with valid signatures/);

    const usage = await runCli(["audit", "verify", "--config", configFile, "--complete"]);
    expect(usage.code).toBe(2);
  }, 60_000);

  it("`audit verify` names a truncated tail (exit 1), also from checkpoints kept elsewhere, and a forged checkpoint", async () => {
    const kept = await waitForCheckpointAtHead();
    const keptFile = join(work, "kept-checkpoints.json");
    writeFileSync(keptFile, JSON.stringify({ checkpoints: kept }));

    // A copy of the live trail to attack (the gateway keeps running on the original).
    const stateDir = join(work, "copy");
    const copyConfig = join(work, "copy.yaml");
    writeFileSync(copyConfig, `stateDir: ${stateDir}\n`);
    const copy = async () => {
      rmSync(stateDir, { recursive: true, force: true });
      const { mkdirSync } = await import("node:fs");
      mkdirSync(stateDir, { recursive: true });
      const src = openDatabase(h.gw.auditFile, { readonly: true });
      await src.backup(join(stateDir, "audit.db"));
      src.close();
      return openDatabase(join(stateDir, "audit.db"));
    };

    // Truncate the tail after the newest checkpoint: the stored checkpoint proves it.
    let db = await copy();
    const head = (db.prepare("SELECT max(seq) AS s FROM audit_events").get() as { s: number }).s;
    const newest = (db.prepare("SELECT max(seq) AS s FROM audit_checkpoints").get() as { s: number }).s;
    db.prepare("DELETE FROM audit_events WHERE seq >= ?").run(newest - 1);
    db.close();
    const cut = await runCli(["audit", "verify", "--config", copyConfig]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain(`BROKEN at record ${newest - 1} (truncated)`);
    expect(head).toBeGreaterThanOrEqual(newest);

    // The attacker also deletes the stored checkpoints: the auditor's copy still proves it.
    db = await copy();
    db.prepare("DELETE FROM audit_events WHERE seq >= ?").run(newest - 1);
    db.prepare("DELETE FROM audit_checkpoints WHERE seq >= ?").run(newest - 1);
    db.close();
    expect((await runCli(["audit", "verify", "--config", copyConfig])).code).toBe(0);
    const viaCopy = await runCli(["audit", "verify", "--config", copyConfig, "--checkpoints", keptFile]);
    expect(viaCopy.code).toBe(1);
    expect(viaCopy.stderr).toContain(`BROKEN at record ${newest - 1} (truncated)`);
    expect(viaCopy.stderr).toContain("external checkpoint");

    // A checkpoint forged with another key.
    db = await copy();
    const other = await createTestCheckpointKeys();
    const { signCheckpoint } = await import("../src/audit/checkpoints.js");
    const s = await other.signer();
    const victim = db.prepare("SELECT kid, jwk FROM audit_checkpoints ORDER BY seq LIMIT 1").get() as {
      kid: string;
      jwk: string;
    };
    const forged = await signCheckpoint(
      { seq: 2, hash: "f".repeat(64), time: Date.now() },
      { kid: victim.kid, key: s.key, jwk: JSON.parse(victim.jwk) },
    );
    db.prepare(
      "INSERT OR REPLACE INTO audit_checkpoints (seq, hash, time, instance, kid, alg, jws, jwk) VALUES (?, ?, ?, NULL, ?, 'ES256', ?, ?)",
    ).run(forged.seq, forged.hash, forged.time, forged.kid, forged.jws, victim.jwk);
    db.close();
    const bad = await runCli(["audit", "verify", "--config", copyConfig]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("BROKEN at record 2 (bad-checkpoint)");
  }, 60_000);

  it("`audit verify --file` checks an export: OK, then a changed line and a removed line", async () => {
    await waitForCheckpointAtHead();
    const db = openDatabase(h.gw.auditFile, { readonly: true });
    const lines = exportLines(db);
    db.close();
    const file = join(work, "export.jsonl");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const ok = await runCli(["audit", "verify", "--file", file, "--complete", "--progress"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/export .* OK: \d+ record\(s\) verified/);
    expect(ok.stderr).toMatch(/MB/);

    const changed = [...lines];
    changed[1] = changed[1].replace('"decision":"allow"', '"decision":"deny"');
    writeFileSync(file, `${changed.join("\n")}\n`);
    const c = await runCli(["audit", "verify", "--file", file]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/BROKEN at record 2 \(changed\)/);

    writeFileSync(file, `${lines.filter((_, i) => i !== 2).join("\n")}\n`);
    const r = await runCli(["audit", "verify", "--file", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/BROKEN at record \d+ \((missing|reordered)\)/);
    expect(readFileSync(file, "utf8").length).toBeGreaterThan(0);
  }, 60_000);

  it("`audit prune` (--dry-run first) prunes to an anchor checkpoint, and verify passes from it", async () => {
    await waitForCheckpointAtHead();
    const stateDir = join(work, "prune");
    rmSync(stateDir, { recursive: true, force: true });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(stateDir, { recursive: true });
    const src = openDatabase(h.gw.auditFile, { readonly: true });
    await src.backup(join(stateDir, "audit.db"));
    src.close();
    const config = join(work, "prune.yaml");

    writeFileSync(config, `stateDir: ${stateDir}\n`);
    const off = await runCli(["audit", "prune", "--config", config]);
    expect(off.code).toBe(0);
    expect(off.stdout).toContain("keep forever");

    writeFileSync(config, `stateDir: ${stateDir}\naudit: {retention: 1ms}\n`);
    const before = openDatabase(join(stateDir, "audit.db"), { readonly: true });
    const count = (before.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n;
    before.close();

    const dry = await runCli(["audit", "prune", "--dry-run", "--config", config]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would prune \d+ record\(s\)/);
    const after = openDatabase(join(stateDir, "audit.db"), { readonly: true });
    expect((after.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n).toBe(count);
    after.close();

    const pruned = await runCli(["audit", "prune", "--config", config]);
    expect(pruned.code).toBe(0);
    const m = /pruned (\d+) record\(s\) \(seq 1–(\d+)/.exec(pruned.stdout);
    expect(m).not.toBeNull();
    const anchor = Number(m![2]);

    const v = await runCli([
      "audit",
      "verify",
      "--config",
      config,
      "--checkpoints",
      `${h.controlUrl}/audit/checkpoints`,
    ]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`starts at the retention anchor: the checkpoint at seq ${anchor}`);

    const bad = await runCli([
      "audit",
      "verify",
      "--config",
      config,
      "--checkpoints",
      join(work, "nope.json"),
    ]);
    expect(bad.code).toBe(2);
  }, 60_000);
});
