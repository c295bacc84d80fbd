import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "./helpers/cli.js";
import { freePort } from "./helpers/upstream.js";

const ROOT = join(import.meta.dirname, "..");

/** Runs examples/quickstart.ts the way the README says, with a development token. */
function runQuickstart(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "examples", "quickstart.ts")], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`quickstart.ts did not finish\n${out}`));
    }, 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("the README quick start on the embedded store", () => {
  let dir: string;
  let config: string;
  let endpoint: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-quickstart-"));
    const data = await freePort();
    const control = await freePort();
    endpoint = `https://localhost:${data}`;
    config = join(dir, "cosmosgate.yaml");
    // Only the ports differ from the defaults, so tests can run side by side.
    writeFileSync(
      config,
      `dataPlane: {listen: "127.0.0.1:${data}", publicUrl: "${endpoint}"}\n` +
        `controlPlane: {listen: "127.0.0.1:${control}", publicUrl: "http://localhost:${control}"}\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps data created before Ctrl-C for the next start", async () => {
    const first = startCli(["dev", "--config", config], { cwd: dir });
    try {
      const banner = await first.waitFor(/Press Ctrl-C to stop/);
      expect(banner).toMatch(/upstream\s+embedded store, data in .*store\.db/);
      const token = (
        await runCli(["dev-token", "--config", config, "--sub", "you", "--group", "cosmos-admins"], {
          cwd: dir,
        })
      ).stdout.trim();
      const caFile = join(dir, ".cosmosgate", "tls", "ca.pem");
      const run = await runQuickstart({
        COSMOSGATE_ENDPOINT: endpoint,
        COSMOSGATE_TOKEN: token,
        NODE_EXTRA_CA_CERTS: caFile,
      });
      expect(run.out).toContain("read back: o1 42");
      expect(run.code).toBe(0);
    } finally {
      expect(await first.stop("SIGINT")).toBe(0);
    }
    expect(first.output().stdout).toContain("stopping (SIGINT)");

    const second = startCli(["dev", "--config", config], { cwd: dir });
    try {
      await second.waitFor(/Press Ctrl-C to stop/);
      const token = (
        await runCli(["dev-token", "--config", config, "--sub", "you", "--group", "cosmos-admins"], {
          cwd: dir,
        })
      ).stdout.trim();
      const client = new CosmosClient({
        endpoint,
        aadCredentials: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 300_000 }) },
        agent: new HttpsAgent({ ca: readFileSync(join(dir, ".cosmosgate", "tls", "ca.pem"), "utf8") }),
      });
      const { resource } = await client.database("shop").container("orders").item("o1", "c1").read();
      expect(resource).toMatchObject({ id: "o1", customer: "c1", total: 42 });
      client.dispose();
    } finally {
      expect(await second.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);
});

describe("`cosmosgate devstore`: the store alone, like the emulator", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-devstore-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serves any SDK with the emulator key over HTTPS, refuses a wrong key, and keeps data across restarts", async () => {
    const port = await freePort();
    const args = ["devstore", "--port", String(port), "--state-dir", join(dir, "state")];
    const first = startCli(args, { cwd: dir });
    let key: string;
    let ca: string;
    try {
      const banner = await first.waitFor(/Press Ctrl-C to stop/);
      key = /key\s+(\S+)\s+\(the emulator's well-known key\)/.exec(banner)?.[1] ?? "";
      expect(banner).toContain(`endpoint  https://localhost:${port}`);
      ca = readFileSync(join(dir, "state", "tls", "ca.pem"), "utf8");
      const agent = new HttpsAgent({ ca });
      const client = new CosmosClient({ endpoint: `https://localhost:${port}`, key, agent });
      const { database } = await client.databases.createIfNotExists({ id: "app" });
      const { container } = await database.containers.createIfNotExists({ id: "c", partitionKey: "/pk" });
      await container.items.create({ id: "1", pk: "a", n: 1 });
      client.dispose();

      const wrong = new CosmosClient({
        endpoint: `https://localhost:${port}`,
        key: Buffer.from("not the key at all, sorry").toString("base64"),
        agent,
      });
      await expect(wrong.database("app").read()).rejects.toMatchObject({ code: 401 });
      wrong.dispose();
    } finally {
      expect(await first.stop("SIGINT")).toBe(0);
    }

    const second = startCli(args, { cwd: dir });
    try {
      await second.waitFor(/Press Ctrl-C to stop/);
      const client = new CosmosClient({
        endpoint: `https://localhost:${port}`,
        key,
        agent: new HttpsAgent({ ca }),
      });
      const { resource } = await client.database("app").container("c").item("1", "a").read();
      expect(resource).toMatchObject({ id: "1", pk: "a", n: 1 });
      client.dispose();
    } finally {
      await second.stop("SIGINT");
    }
  }, 90_000);
});
