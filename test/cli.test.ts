import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEvent } from "../src/audit/types.js";
import { createAuditWriter } from "../src/audit/writer.js";
import { openDatabase } from "../src/store/sqlite.js";
import { runCli } from "./helpers/cli.js";

describe("cosmosgate command line", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints help for every command", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    for (const cmd of ["serve", "dev", "dev-token", "devstore", "init", "config", "policy", "audit"])
      expect(top.stdout).toContain(cmd);
    for (const cmd of [
      ["serve"],
      ["dev"],
      ["dev-token"],
      ["devstore"],
      ["init"],
      ["config", "schema"],
      ["config", "check"],
      ["policy", "check"],
      ["policy", "explain"],
      ["audit", "tail"],
      ["audit", "search"],
      ["audit", "export"],
      ["audit", "keys"],
      ["audit", "verify"],
      ["audit", "prune"],
    ]) {
      const res = await runCli([...cmd, "--help"]);
      expect({ cmd, code: res.code }).toEqual({ cmd, code: 0 });
      expect(res.stdout).toMatch(/Usage: cosmosgate/);
    }
  }, 60_000);

  it("`init` writes starter files that validate, and refuses to overwrite them", async () => {
    const res = await runCli(["init", "--dir", dir]);
    expect(res.code).toBe(0);
    expect(readFileSync(join(dir, "cosmosgate.yaml"), "utf8")).toContain("upstream:");
    const check = await runCli(["config", "check", "--config", join(dir, "cosmosgate.yaml")]);
    expect(check.code).toBe(0);
    const policy = await runCli(["policy", "check", join(dir, "policy.yaml")]);
    expect(policy.code).toBe(0);
    expect(policy.stdout).toMatch(/is valid/);
    const again = await runCli(["init", "--dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);
  });

  it("`config schema` prints a JSON Schema that refuses unknown keys", async () => {
    const res = await runCli(["config", "schema"]);
    expect(res.code).toBe(0);
    const schema = JSON.parse(res.stdout);
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        "stateDir",
        "dataPlane",
        "controlPlane",
        "upstream",
        "identity",
        "policy",
        "audit",
      ]),
    );
  });

  it("`policy check` names the line and key of a broken policy and exits 2", async () => {
    const file = join(dir, "bad-policy.yaml");
    writeFileSync(file, "roles:\n  r:\n    - allow: [read, fly]\n      on: /dbs/x\n");
    const res = await runCli(["policy", "check", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file}:3`);
    expect(res.stderr).toMatch(/fly/);
  });

  it("`policy explain` prints the decision and the rule that made it", async () => {
    const file = join(dir, "policy.yaml");
    const allow = await runCli([
      "policy",
      "explain",
      "--policy",
      file,
      "--subject",
      "zed",
      "--groups",
      "cosmos-admins",
      "--action",
      "delete",
      "--resource",
      "/dbs/shop/colls/orders/docs/o1",
    ]);
    expect(allow.code).toBe(0);
    expect(allow.stdout).toMatch(/allow/i);
    expect(allow.stdout).toMatch(/admin/);
    const deny = await runCli([
      "policy",
      "explain",
      "--policy",
      file,
      "--subject",
      "zed",
      "--groups",
      "readers",
      "--action",
      "delete",
      "--resource",
      "/dbs/shop/colls/orders/docs/o1",
      "--json",
    ]);
    expect(deny.code).toBe(0);
    expect(JSON.parse(deny.stdout).decision.effect).toBe("deny");
  });

  it("`audit tail` prints records and `audit verify` detects a record changed in the database", async () => {
    const stateDir = join(dir, "state");
    const config = join(dir, "audit-config.yaml");
    writeFileSync(config, `stateDir: ${stateDir}\n`);
    const db = openDatabase(join(stateDir, "audit.db"));
    const writer = createAuditWriter(db);
    const event = (i: number): AuditEvent => ({
      time: Date.now(),
      type: "data.request",
      subject: i % 2 ? "alice" : "bob",
      actions: ["read"],
      resource: `/dbs/shop/colls/orders/docs/o${i}`,
      decision: i % 2 ? "allow" : "deny",
      reason: "test",
      status: i % 2 ? 200 : 403,
      durationMs: 1,
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.append(event(i))));
    await writer.close();
    db.close();

    const tail = await runCli(["audit", "tail", "-n", "3", "--config", config]);
    expect(tail.code).toBe(0);
    expect(tail.stdout.trim().split("\n")).toHaveLength(3);
    expect(tail.stdout).toContain("/dbs/shop/colls/orders/docs/o9");

    const ok = await runCli(["audit", "verify", "--config", config]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/OK: 10 record/);

    const tamper = openDatabase(join(stateDir, "audit.db"));
    tamper
      .prepare("UPDATE audit_events SET data = replace(data, '\"allow\"', '\"deny\"') WHERE seq = 4")
      .run();
    tamper.close();
    const broken = await runCli(["audit", "verify", "--config", config]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/BROKEN at record 4 \(changed\)/);
  });

  it("`dev-token` mints a token for the development issuer", async () => {
    const config = join(dir, "dev.yaml");
    writeFileSync(config, `stateDir: ${join(dir, "devstate")}\n`);
    const res = await runCli(["dev-token", "--config", config, "--sub", "you", "--group", "cosmos-admins"]);
    expect(res.code).toBe(0);
    const [, payload] = res.stdout.trim().split(".");
    expect(JSON.parse(Buffer.from(payload, "base64url").toString())).toMatchObject({
      sub: "you",
      groups: ["cosmos-admins"],
    });
    expect(existsSync(join(dir, "devstate", "dev-issuer", "private.jwk.json"))).toBe(true);
  });
});
