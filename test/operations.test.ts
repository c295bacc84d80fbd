import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { freePort, startHangingUpstream } from "./helpers/upstream.js";

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("an upstream that does not answer", () => {
  let h: Harness;
  let hanging: Awaited<ReturnType<typeof startHangingUpstream>>;
  beforeAll(async () => {
    hanging = await startHangingUpstream();
    h = await startHarness({
      upstreamYaml: `upstream:\n  type: cosmos\n  endpoint: ${hanging.origin}/\n  auth: {type: key, env: TEST_COSMOS_KEY}\n  timeouts: {connect: 1s, request: 700ms}`,
    });
  });
  afterAll(async () => {
    await h?.close();
    await hanging?.close();
  });

  it("yields 503 with a Cosmos-shaped body within the configured timeout", async () => {
    const token = await h.issuer.sign({ groups: ["cosmos-admins"] });
    const started = Date.now();
    const res = await h.raw("GET", "/dbs/shop", { authorization: `Bearer ${token}` });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: "ServiceUnavailable" });
    expect(res.json().message).toMatch(/did not answer within 700 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(650);
    expect(elapsed).toBeLessThan(5000);
  });
});

describe("an upstream that cannot be reached", () => {
  let h: Harness;
  beforeAll(async () => {
    const port = await freePort(); // bound and released: nothing listens there
    h = await startHarness({
      upstreamYaml: `upstream:\n  type: cosmos\n  endpoint: http://127.0.0.1:${port}/\n  auth: {type: key, env: TEST_COSMOS_KEY}\n  timeouts: {connect: 1s, request: 1s}`,
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("yields 503 with a Cosmos-shaped body that says so, at once", async () => {
    const token = await h.issuer.sign({ groups: ["cosmos-admins"] });
    const res = await h.raw("GET", "/dbs/shop", { authorization: `Bearer ${token}` });
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: "ServiceUnavailable" });
    expect(res.json().message).toMatch(/could not be reached \(ECONNREFUSED\)/);
  });
});

describe("policy reload", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("applies a changed policy, and keeps the previous one in force when the new file is broken", async () => {
    const admin = `type=aad&ver=1.0&sig=${await h.issuer.sign({ sub: "erin", groups: ["cosmos-admins"] })}`;
    const erin = `type=aad&ver=1.0&sig=${await h.issuer.sign({ sub: "erin", groups: [] })}`;
    expect((await h.raw("GET", "/", { authorization: admin })).status).toBe(200);
    expect((await h.raw("GET", "/", { authorization: erin })).status).toBe(403);

    // A good change: erin becomes a reader of the whole account.
    const loads = h.gw.policy.loads;
    writeFileSync(h.policyFile, `members:\n  Cosmos DB Built-in Data Reader: ["sub:erin"]\n`);
    await waitFor(() => h.gw.policy.loads > loads);
    expect((await h.raw("GET", "/", { authorization: erin })).status).toBe(200);

    // A broken change: refused, logged, and erin keeps her access.
    const refusals = h.gw.policy.refusals;
    writeFileSync(
      h.policyFile,
      `members:\n  Cosmos DB Built-in Data Reader: ["sub:erin"]\n  nosuchrole: ["sub:x"]\nbogus: 1\n`,
    );
    await waitFor(() => h.gw.policy.refusals > refusals);
    expect(h.logs.join("")).toMatch(/policy file refused; the previous policy stays in force/);
    expect(h.logs.join("")).toMatch(/bogus/);
    expect((await h.raw("GET", "/", { authorization: erin })).status).toBe(200);
  });
});

describe("the embedded upstream (the default)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ upstream: "embedded" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("serves the SDK through the gateway and rewrites the account's locations to the public URL", async () => {
    const token = await h.issuer.sign({ groups: ["cosmos-admins"] });
    const account = await h.raw("GET", "/", { authorization: `Bearer ${token}` });
    expect(account.status).toBe(200);
    for (const loc of [...account.json().writableLocations, ...account.json().readableLocations]) {
      expect(loc.databaseAccountEndpoint).toBe(`${h.endpoint}/`);
    }
    const client = h.client("alice", ["cosmos-admins"]);
    const { database } = await client.databases.createIfNotExists({ id: "dev" });
    const { container } = await database.containers.createIfNotExists({ id: "c", partitionKey: "/pk" });
    await container.items.create({ id: "1", pk: "a" });
    expect((await container.item("1", "a").read()).resource?.id).toBe("1");
  });
});

describe("invalid configuration", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-cfg-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("stops `serve` with exit code 2 and a file:line message naming the key, the value and the expectation", async () => {
    const file = join(dir, "cosmosgate.yaml");
    writeFileSync(
      file,
      "stateDir: ./s\ndataPlane:\n  listen: 127.0.0.1:0\n  tls: maybe\nupstream: {type: embedded, colour: blue}\n",
    );
    const res = await runCli(["serve", "--config", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file}:4:8: dataPlane.tls: expected "auto" or object; found "maybe"`);
    expect(res.stderr).toContain(`${file}:5:28: upstream.colour: unknown key "colour"`);
  });

  it("reads the file named by COSMOSGATE_CONFIG", async () => {
    const file = join(dir, "env.yaml");
    writeFileSync(file, "identity:\n  tokens:\n    ttl: soon\n");
    const res = await runCli(["config", "check"], { env: { COSMOSGATE_CONFIG: file } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file}:3:10: identity.tokens.ttl: expected a duration`);
  });

  it("reports YAML syntax errors with their line", async () => {
    const file = join(dir, "syntax.yaml");
    writeFileSync(file, "dataPlane:\n  listen: [unclosed\n");
    const res = await runCli(["config", "check", "--config", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      new RegExp(`${file.replace(/[.]/g, "\\.")}:\\d+:\\d+: \\(top level\\): YAML syntax error`),
    );
  });
});
