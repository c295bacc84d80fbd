/**
 * `cosmosgate mcp`: the real command as a child process (node bin/cosmosgate.js mcp ...), driven by
 * the MCP SDK's Client over stdio, against a real gateway (both planes, the embedded store) with a
 * real agent grant created through the grants API and confirmed by a real WebAuthn tap (a software
 * authenticator), and the agent's real key and tokens (AgentCredential, private_key_jwt).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalView, GrantDraft, GrantView } from "../src/agents/contract.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { readAuditRecords, waitUntil } from "./helpers/auditProbe.js";
import { runCli } from "./helpers/cli.js";
import { controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { freePort } from "./helpers/upstream.js";

const BIN = join(import.meta.dirname, "..", "bin", "cosmosgate.js");

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
members:
  admin: ["group:cosmos-admins"]
approvals:
  - actions: [delete]
    on: /dbs/shop/colls/orders
    for: agents
    approvers: self
    quorum: 1
`;

const TOOLS = [
  "approval_status",
  "create_item",
  "delete_item",
  "list_containers",
  "list_databases",
  "patch_item",
  "query_items",
  "read_item",
  "upsert_item",
];

let h: Harness;
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
let adminKey: SoftAuthenticator;
let admin: string; // the person's session cookie
let keyFile: string;
let caFile: string;
let grant: GrantView;

/** A running `cosmosgate mcp` with its MCP client. */
interface McpChild {
  client: Client;
  transport: StdioClientTransport;
  stderr(): string;
  /** Errors the client transport saw (anything on stdout that is not an MCP message ends up here). */
  transportErrors: Error[];
  startMs: number;
  close(): Promise<void>;
}

const children: McpChild[] = [];

async function startMcp(args: string[]): Promise<McpChild> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp", ...args],
    env: childEnv(),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d) => {
    stderr += d;
  });
  const transportErrors: Error[] = [];
  const client = new Client({ name: "cosmosgate-test", version: "1.0.0" });
  const started = Date.now();
  await client.connect(transport);
  transport.onerror = (e) => transportErrors.push(e);
  const child: McpChild = {
    client,
    transport,
    stderr: () => stderr,
    transportErrors,
    startMs: Date.now() - started,
    close: () => client.close(),
  };
  children.push(child);
  return child;
}

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.XDG_CONFIG_HOME = join(h.dir, "xdg");
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.COSMOSGATE_GATEWAY;
  delete env.COSMOSGATE_GRANT;
  return env;
}

const agentArgs = () => [
  "--agent",
  "reporter",
  "--grant",
  grant.id,
  "--gateway",
  h.controlUrl,
  "--key",
  keyFile,
  "--ca",
  caFile,
];

/** The single text of a tool result. */
function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text: string }[] }).content;
  expect(content).toHaveLength(1);
  expect(content[0].type).toBe("text");
  return content[0].text;
}

async function call(child: McpChild, name: string, args: Record<string, unknown> = {}) {
  const result = await child.client.callTool({ name, arguments: args });
  return { isError: result.isError === true, text: textOf(result) };
}

async function enrollAdmin(): Promise<string> {
  const invite = new URL(h.gw.firstAdminUrl!).searchParams.get("invite");
  const options = await post("/auth/webauthn/register/options", { invite });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: adminKey.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname: "desk key",
  });
  expect(verify.status, verify.text).toBe(200);
  return verify.cookie!;
}

/** Makes an agent's key with the real CLI (as where the agent runs); returns its file and public JWK. */
async function keygen(agent: string): Promise<{ file: string; publicKey: Record<string, unknown> }> {
  const res = await runCli(["agent", "keygen", agent], { env: childEnv() });
  expect(res.code, res.stderr).toBe(0);
  const file = join(h.dir, "xdg", "cosmosgate", "agents", `${agent}.jwk`);
  const { d: _private, ...publicKey } = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  return { file, publicKey };
}

/** Creates a grant for the agent's public key through the API and confirms it with the person's tap. */
async function createGrant(
  publicKey: unknown,
  request: { agent: string; actions: string[]; partitionKeys?: string[] } = {
    agent: "reporter",
    actions: ["metadata", "read", "query", "delete"],
  },
): Promise<GrantView> {
  const draft = await post(
    "/api/grants",
    { ...request, scopes: ["/dbs/shop/colls/orders"], lifetime: "1h", publicKey },
    admin,
  );
  expect(draft.status, draft.text).toBe(200);
  const { grant: pending, options } = draft.json as GrantDraft;
  expect(pending.status).toBe("pending");
  const confirmed = await post(
    `/api/grants/${encodeURIComponent(pending.id)}/confirm`,
    { response: adminKey.authenticate(options as PublicKeyCredentialRequestOptionsJSON) },
    admin,
  );
  expect(confirmed.status, confirmed.text).toBe(200);
  expect((confirmed.json as GrantView).status).toBe("active");
  return confirmed.json as GrantView;
}

beforeAll(async () => {
  h = await startHarness({ upstream: "embedded", policy: POLICY });
  adminKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  admin = await enrollAdmin();
  caFile = join(h.dir, "ca.pem");
  writeFileSync(caFile, h.gw.caPem!);

  // Data, written by an administrator with the SDK (not through the agent).
  const sdk = h.client("alice", ["cosmos-admins"]);
  const { database } = await sdk.databases.create({ id: "shop" });
  const { container } = await database.containers.create({
    id: "orders",
    partitionKey: { paths: ["/customer"] },
  });
  await container.items.create({ id: "o1", customer: "c1", total: 10, status: "open" });
  await container.items.create({ id: "o2", customer: "c2", total: 25, status: "open" });
  await container.items.create({ id: "o3", customer: "c1", total: 40, status: "paid" });

  // The agent's key pair, made where the agent runs; the person grants that public key.
  const key = await keygen("reporter");
  keyFile = key.file;
  grant = await createGrant(key.publicKey);
}, 120_000);

afterAll(async () => {
  for (const c of children) await c.close().catch(() => {});
  await h?.close();
});

describe("cosmosgate mcp over stdio, as an agent with a grant", () => {
  let mcp: McpChild;

  beforeAll(async () => {
    mcp = await startMcp(agentArgs());
  });

  it("starts fast and lists its tools, each described with its parameters and the approval rule for writes", async () => {
    expect(mcp.startMs).toBeLessThan(8_000);
    const { tools } = await mcp.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const tool of tools) {
      expect(tool.description!.length, tool.name).toBeGreaterThan(80);
      expect(tool.inputSchema.type).toBe("object");
    }
    const byName = new Map(tools.map((t) => [t.name, t]));
    const query = byName.get("query_items")!;
    expect(Object.keys(query.inputSchema.properties ?? {}).sort()).toEqual(
      [
        "container",
        "continuationToken",
        "database",
        "maxItems",
        "parameters",
        "partitionKey",
        "query",
      ].sort(),
    );
    expect(query.inputSchema.required?.sort()).toEqual(["container", "database", "query"]);
    for (const write of ["create_item", "upsert_item", "patch_item", "delete_item"]) {
      expect(byName.get(write)!.description).toMatch(/approv/i);
      expect(byName.get(write)!.annotations?.readOnlyHint).toBe(false);
    }
    expect(byName.get("delete_item")!.annotations?.destructiveHint).toBe(true);
    expect(byName.get("read_item")!.annotations?.readOnlyHint).toBe(true);
    expect(Object.keys(byName.get("delete_item")!.inputSchema.properties ?? {}).sort()).toEqual([
      "container",
      "database",
      "id",
      "partitionKey",
    ]);
    // Every property carries a description the model can read.
    for (const tool of tools) {
      for (const [name, prop] of Object.entries(tool.inputSchema.properties ?? {})) {
        expect((prop as { description?: string }).description, `${tool.name}.${name}`).toBeTruthy();
      }
    }
    // The server tells the model how approvals work.
    expect(mcp.client.getInstructions()).toMatch(/approv/i);
  });

  it("runs a query with parameters, across partitions and in one partition", async () => {
    const all = await call(mcp, "query_items", {
      database: "shop",
      container: "orders",
      query: "SELECT c.id, c.total FROM c WHERE c.total > @min",
      parameters: [{ name: "@min", value: 15 }],
    });
    expect(all.isError, all.text).toBe(false);
    const parsed = JSON.parse(all.text);
    expect(parsed.items.map((i: { id: string }) => i.id).sort()).toEqual(["o2", "o3"]);
    expect(parsed.count).toBe(2);

    const one = await call(mcp, "query_items", {
      database: "shop",
      container: "orders",
      query: "SELECT VALUE c.id FROM c",
      partitionKey: "c1",
    });
    expect(one.isError, one.text).toBe(false);
    expect(JSON.parse(one.text).items.sort()).toEqual(["o1", "o3"]);
  });

  it("reads an item, and says clearly when it does not exist", async () => {
    const read = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "o1",
      partitionKey: "c1",
    });
    expect(read.isError, read.text).toBe(false);
    const item = JSON.parse(read.text).item;
    expect(item).toMatchObject({ id: "o1", customer: "c1", total: 10 });
    expect(Object.keys(item)).toContain("_etag");
    expect(Object.keys(item)).not.toContain("_self");
    const missing = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "nope",
      partitionKey: "c1",
    });
    expect(missing.isError).toBe(true);
    expect(missing.text).toMatch(/No item with id "nope"/);
  });

  it("returns a tool error naming the grant for a write the grant does not allow, and writes nothing", async () => {
    const res = await call(mcp, "create_item", {
      database: "shop",
      container: "orders",
      item: { id: "evil", customer: "c9", total: 1 },
    });
    expect(res.isError).toBe(true);
    expect(res.text).toMatch(/403\/5301/);
    expect(res.text).toContain(grant.id);
    expect(res.text).toMatch(/outside what the person allowed/);
    const check = await h
      .client("alice", ["cosmos-admins"])
      .database("shop")
      .container("orders")
      .item("evil", "c9")
      .read();
    expect(check.statusCode).toBe(404);
  });

  it("answers bad arguments with a tool error, not a crash", async () => {
    const res = await mcp.client.callTool({ name: "read_item", arguments: { database: "shop" } });
    expect(res.isError).toBe(true);
    expect(textOf(res)).toMatch(/container|id|partitionKey/);
    // Still serving.
    expect((await call(mcp, "list_containers", { database: "shop" })).isError).toBe(false);
  });

  it("lists databases and containers with partition key paths (or says the grant does not cover it)", async () => {
    const containers = await call(mcp, "list_containers", { database: "shop" });
    expect(containers.isError, containers.text).toBe(false);
    expect(JSON.parse(containers.text).containers).toEqual([
      { id: "orders", partitionKeyPaths: ["/customer"] },
    ]);
    const dbs = await call(mcp, "list_databases");
    // The grant is on /dbs/shop/colls/orders: listing every database is outside it.
    if (dbs.isError) expect(dbs.text).toMatch(/403/);
    else expect(JSON.parse(dbs.text).databases).toContain("shop");
  });

  it("returns the approval ID and URL for a delete that needs approval; after the person's tap the same call succeeds once", async () => {
    const args = { database: "shop", container: "orders", id: "o2", partitionKey: "c2" };
    const first = await call(mcp, "delete_item", args);
    expect(first.isError, first.text).toBe(false);
    expect(first.text).toMatch(/^APPROVAL REQUIRED/);
    const id = /Approval ID: (\S+)/.exec(first.text)?.[1];
    const url = /Approve at: (\S+)/.exec(first.text)?.[1];
    expect(id).toBeTruthy();
    expect(url).toBe(`${h.controlUrl}/console/#/approvals/${id}`);
    expect(first.text).toMatch(/call delete_item again with exactly the same arguments/);
    // Nothing was deleted.
    const sdk = h.client("alice", ["cosmos-admins"]).database("shop").container("orders");
    expect((await sdk.item("o2", "c2").read()).statusCode).toBe(200);

    // approval_status asks the gateway with the agent's own token: pending, where to approve.
    const status = await call(mcp, "approval_status", { id });
    expect(status.isError, status.text).toBe(false);
    expect(status.text).toMatch(/^PENDING: /);
    expect(status.text).toMatch(/0 of 1 approval so far/);
    expect(status.text).toContain(url);
    expect(status.text).toMatch(/delete_item/);
    expect(status.text).toContain("/dbs/shop/colls/orders/docs/o2");
    const unknown = await call(mcp, "approval_status", { id: "apr_unknown" });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toMatch(/knows no approval "apr_unknown"/);

    // The person approves with a tap over exactly this operation.
    const view = await send("GET", `/api/approvals/${encodeURIComponent(id!)}`, admin);
    expect(view.status, view.text).toBe(200);
    expect((view.json as ApprovalView).operation).toMatchObject({
      method: "DELETE",
      resource: "/dbs/shop/colls/orders/docs/o2",
      agent: "agent:reporter",
    });
    const options = await post(`/api/approvals/${encodeURIComponent(id!)}/options`, {}, admin);
    expect(options.status, options.text).toBe(200);
    const approved = await post(
      `/api/approvals/${encodeURIComponent(id!)}/approve`,
      { response: adminKey.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON) },
      admin,
    );
    expect(approved.status, approved.text).toBe(200);

    // After the tap the tool says so, and tells the model to retry the same call now.
    const nowApproved = await call(mcp, "approval_status", { id });
    expect(nowApproved.isError, nowApproved.text).toBe(false);
    expect(nowApproved.text).toMatch(/^APPROVED: /);
    expect(nowApproved.text).toMatch(
      /Retry the same call now: call delete_item again with exactly the same arguments/,
    );

    const retried = await call(mcp, "delete_item", args);
    expect(retried.isError, retried.text).toBe(false);
    expect(JSON.parse(retried.text).deleted).toEqual({ id: "o2", partitionKey: "c2" });
    expect((await sdk.item("o2", "c2").read()).statusCode).toBe(404);
    const used = await call(mcp, "approval_status", { id });
    expect(used.text).toMatch(/^USED: /);

    // A different delete needs its own approval.
    const other = await call(mcp, "delete_item", { ...args, id: "o1", partitionKey: "c1" });
    expect(other.text).toMatch(/^APPROVAL REQUIRED/);
    expect(/Approval ID: (\S+)/.exec(other.text)?.[1]).not.toBe(id);
  });

  it("writes only MCP messages on stdout and keeps tokens out of its log", () => {
    expect(mcp.transportErrors).toEqual([]);
    const log = mcp.stderr();
    expect(log).toMatch(/cosmosgate mcp: serving agent reporter/);
    expect(log).toMatch(/delete_item \/dbs\/shop\/colls\/orders\/docs\/o2: waiting for approval/);
    expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // no JWT
    expect(log).not.toContain(JSON.parse(readFileSync(keyFile, "utf8")).d);
  });

  it("exits by itself when the client closes its stdin", async () => {
    const started = Date.now();
    await mcp.close();
    // StdioClientTransport waits 2 s for the exit before it sends SIGTERM.
    expect(Date.now() - started).toBeLessThan(1900);
    expect(mcp.stderr()).toMatch(/cosmosgate mcp: stopping \(stdin closed\)/);
  });
});

describe("cosmosgate mcp writing through a grant limited to one partition key", () => {
  it("creates, upserts and patches items in the granted partition, is refused elsewhere, and is audited as the agent for the person", async () => {
    const key = await keygen("writer");
    const writer = await createGrant(key.publicKey, {
      agent: "writer",
      actions: ["metadata", "read", "create", "upsert", "patch"],
      partitionKeys: ['["c1"]'],
    });
    const mcp = await startMcp([
      "--agent",
      "writer",
      "--grant",
      writer.id,
      "--gateway",
      h.controlUrl,
      "--ca",
      caFile,
      "--endpoint",
      h.endpoint,
    ]);
    const where = { database: "shop", container: "orders" };
    const created = await call(mcp, "create_item", {
      ...where,
      item: { id: "w1", customer: "c1", total: 5 },
    });
    expect(created.isError, created.text).toBe(false);
    expect(JSON.parse(created.text).created).toMatchObject({ id: "w1", customer: "c1", total: 5 });
    const again = await call(mcp, "create_item", { ...where, item: { id: "w1", customer: "c1", total: 5 } });
    expect(again.isError).toBe(true);
    expect(again.text).toMatch(/^Conflict \(409\)/);

    const upserted = await call(mcp, "upsert_item", {
      ...where,
      item: { id: "w1", customer: "c1", total: 6 },
    });
    expect(upserted.isError, upserted.text).toBe(false);
    expect(JSON.parse(upserted.text).replaced).toMatchObject({ id: "w1", total: 6 });

    const patched = await call(mcp, "patch_item", {
      ...where,
      id: "w1",
      partitionKey: "c1",
      operations: [
        { op: "set", path: "/status", value: "paid" },
        { op: "incr", path: "/total", value: 4 },
      ],
    });
    expect(patched.isError, patched.text).toBe(false);
    expect(JSON.parse(patched.text).patched).toMatchObject({ id: "w1", total: 10, status: "paid" });
    const noValue = await call(mcp, "patch_item", {
      ...where,
      id: "w1",
      partitionKey: "c1",
      operations: [{ op: "set", path: "/status" }],
    });
    expect(noValue.isError).toBe(true);
    expect(noValue.text).toMatch(/needs a `value`/);

    // Another partition: outside the grant, nothing written.
    const elsewhere = await call(mcp, "create_item", {
      ...where,
      item: { id: "w2", customer: "c2", total: 1 },
    });
    expect(elsewhere.isError).toBe(true);
    expect(elsewhere.text).toMatch(/403\/5301/);
    expect(elsewhere.text).toContain(writer.id);
    const sdk = h.client("alice", ["cosmos-admins"]).database("shop").container("orders");
    expect((await sdk.item("w2", "c2").read()).statusCode).toBe(404);
    expect((await sdk.item("w1", "c1").read()).resource).toMatchObject({ total: 10, status: "paid" });

    // The audit names the person and the agent, and the grant, for what the MCP server did.
    const mine = () =>
      readAuditRecords(h.gw.auditFile).filter((r) => r.grant === writer.id && r.type === "data.request");
    await waitUntil(
      () => mine().some((r) => r.resource === "/dbs/shop/colls/orders/docs/w1"),
      10_000,
      "audit",
    );
    expect(mine().length).toBeGreaterThanOrEqual(5);
    for (const r of mine()) expect(r).toMatchObject({ subject: "admin", actor: "agent:writer" });
  });
});

describe("cosmosgate mcp when things go wrong", () => {
  it("refuses to start without a grant, with a usage error on stderr and nothing on stdout", async () => {
    const res = await runCli(["mcp", "--agent", "reporter"], { env: childEnv() });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/--grant ID is required/);
  });

  it("gives a clear tool error when the gateway is down, and keeps serving", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const mcp = await startMcp([...agentArgs().slice(0, 4), "--gateway", down, "--key", keyFile]);
    const res = await call(mcp, "query_items", {
      database: "shop",
      container: "orders",
      query: "SELECT * FROM c",
    });
    expect(res.isError).toBe(true);
    expect(res.text).toContain(`Cannot reach the gateway at ${down}`);
    const again = await call(mcp, "list_databases");
    expect(again.isError).toBe(true);
    expect(mcp.transportErrors).toEqual([]);
  });

  it("gives a clear tool error when the data plane is down", async () => {
    const endpoint = `https://localhost:${await freePort()}`;
    const mcp = await startMcp([...agentArgs(), "--endpoint", endpoint]);
    const res = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "o1",
      partitionKey: "c1",
    });
    expect(res.isError).toBe(true);
    expect(res.text).toContain(`Cannot reach the gateway's data plane ${endpoint}`);
  });

  it("tells the model to ask for the gateway's CA when the data plane's certificate is not trusted", async () => {
    const mcp = await startMcp(agentArgs().slice(0, -2));
    const res = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "o1",
      partitionKey: "c1",
    });
    expect(res.isError).toBe(true);
    expect(res.text).toMatch(/--ca/);
    expect(res.text).toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it("stops the agent on its next call once the person revokes the grant, with a tool error saying so", async () => {
    const mcp = await startMcp(agentArgs());
    const before = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "o3",
      partitionKey: "c1",
    });
    expect(before.isError, before.text).toBe(false);
    const revoked = await send("DELETE", `/api/grants/${encodeURIComponent(grant.id)}`, admin, {});
    expect(revoked.status, revoked.text).toBe(200);
    const after = await call(mcp, "read_item", {
      database: "shop",
      container: "orders",
      id: "o3",
      partitionKey: "c1",
    });
    expect(after.isError).toBe(true);
    expect(after.text).toMatch(/revoked/);
    expect(after.text).toContain(grant.id);
    expect(after.text).toMatch(/Do not retry/);
    // A new server with the revoked grant cannot even get a token.
    const fresh = await startMcp(agentArgs());
    const refused = await call(fresh, "list_databases");
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(/refused to give agent reporter a token for grant/);
  });
});
