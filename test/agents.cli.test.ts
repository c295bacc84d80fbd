/**
 * The CLI's agent and approval commands against a real gateway: `agent grant` makes a pending grant
 * with the `cosmosgate login` session's access token (Authorization: Bearer), the person's tap —
 * made here with a software authenticator through the console API, standing in for the browser at
 * #/agents?confirm=ID — activates it and the command finishes with its ID; `agent list`/`revoke`,
 * `approvals list`/`approve`. Attacks: agent tokens, revoked sessions, federated and random bearers
 * are refused with 401 and change nothing; cookie requests still need the CSRF token.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalView, GrantView } from "../src/agents/contract.js";
import {
  runAgentGrant,
  runAgentList,
  runAgentRevoke,
  runApprovalsApprove,
  runApprovalsList,
} from "../src/cli/agentGrants.js";
import { captureIo } from "../src/cli/testing.js";
import { AgentCredential } from "../src/client/agentCredential.js";
import { agentKeyPath, createAgentKeyFile } from "../src/client/agentKey.js";
import { writeCredentials } from "../src/client/credentialsFile.js";
import { normalizeGatewayUrl } from "../src/client/urls.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { waitUntil } from "./helpers/auditProbe.js";
import { runCli } from "./helpers/cli.js";
import { controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
  shop-writer:
    - allow: [metadata, read, query, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/orders
members:
  admin: ["group:cosmos-admins"]
  shop-writer: ["group:writers"]
approvals:
  - actions: [delete]
    on: /dbs/shop/colls/orders
    for: everyone
    approvers: self
`;

let h: Harness;
let dir: string;
let env: Record<string, string | undefined>;
let httpsAgent: HttpsAgent;
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
let adaKey: SoftAuthenticator;
let ada: string; // ada's console cookie
let adaToken: string; // ada's `cosmosgate login` access token
const clients: CosmosClient[] = [];

async function enroll(url: string, key: SoftAuthenticator): Promise<string> {
  const invite = new URL(url).searchParams.get("invite");
  const options = await post("/auth/webauthn/register/options", { invite });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname: "desk key",
  });
  expect(verify.status, verify.text).toBe(200);
  return verify.cookie!;
}

async function signIn(key: SoftAuthenticator, username: string): Promise<string> {
  const options = await post("/auth/webauthn/login/options", { username });
  const res = await post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
  expect(res.status, res.text).toBe(200);
  return res.cookie!;
}

/** An access token for the session of `cookie`, as `cosmosgate login` stores one. */
async function sessionToken(cookie: string): Promise<string> {
  const res = await post("/api/me/token", {}, cookie);
  expect(res.status, res.text).toBe(200);
  return res.json.access_token as string;
}

/** A raw control-plane request with a bearer (and optionally a cookie and CSRF token). */
async function bearer(
  method: string,
  path: string,
  token: string,
  body?: unknown,
  extra: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(`${h.controlUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...extra,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

/** The browser's part of #/agents?confirm=ID: read the canonical JSON, ask for options, tap, confirm. */
async function confirmInBrowser(id: string, key = adaKey, cookie = ada): Promise<GrantView> {
  const shown = await send("GET", `/api/grants/${id}`, cookie);
  expect(shown.status, shown.text).toBe(200);
  expect(shown.json.status).toBe("pending");
  const canonical = shown.json.canonical as string;
  expect(JSON.parse(canonical)).toMatchObject({ id, agent: "report-bot" });
  const options = await post(`/api/grants/${id}/options`, {}, cookie);
  expect(options.status, options.text).toBe(200);
  expect(options.json.challenge).toBe(createHash("sha256").update(canonical, "utf8").digest("base64url"));
  const res = await post(
    `/api/grants/${id}/confirm`,
    { response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON) },
    cookie,
  );
  expect(res.status, res.text).toBe(200);
  return res.json as GrantView;
}

const grantBody = (extra: Record<string, unknown> = {}) => ({
  agent: "report-bot",
  actions: ["read", "query"],
  scopes: ["/dbs/shop/colls/orders"],
  lifetime: "1h",
  ...extra,
});

let publicKey: { kty: "EC"; crv: "P-256"; x: string; y: string };

beforeAll(async () => {
  h = await startHarness({ upstream: "embedded", policy: POLICY });
  httpsAgent = new HttpsAgent({ ca: h.gw.caPem, keepAlive: true });
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-agents-cli-"));
  const credentials = join(dir, "credentials.json");
  env = { XDG_CONFIG_HOME: dir, COSMOSGATE_CREDENTIALS: credentials, COSMOSGATE_GATEWAY: h.controlUrl };
  publicKey = (await createAgentKeyFile(agentKeyPath("report-bot", { env }))).publicJwk;

  const adminKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  const admin = await enroll(h.gw.firstAdminUrl!, adminKey);
  const invite = await post("/api/people/invite", { name: "ada", groups: ["writers"] }, admin);
  expect(invite.status, invite.text).toBe(200);
  adaKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  ada = await enroll(invite.json.url, adaKey);

  // `cosmosgate login`'s stored session for ada (a real session's access token).
  const cliCookie = await signIn(adaKey, "ada");
  adaToken = await sessionToken(cliCookie);
  const gateway = normalizeGatewayUrl(h.controlUrl);
  await writeCredentials(credentials, {
    version: 1,
    gateways: {
      [gateway]: {
        gateway,
        tokenEndpoint: `${h.controlUrl}/oauth/token`,
        accessToken: adaToken,
        expiresAt: Date.now() + 9 * 60_000,
        refreshToken: "not-used-in-this-test",
      },
    },
  });

  const root = h.client("root", ["cosmos-admins"]);
  const { database } = await root.databases.createIfNotExists({ id: "shop" });
  const { container } = await database.containers.createIfNotExists({
    id: "orders",
    partitionKey: "/customer",
  });
  await container.items.create({ id: "o1", customer: "c1", total: 10 });
  await container.items.create({ id: "o2", customer: "c1", total: 20 });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.dispose();
  httpsAgent?.destroy();
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("cosmosgate agent grant/list/revoke with the login session's bearer token", () => {
  it("agent grant makes a pending grant, opens the confirm page, and finishes with the ID after the tap", async () => {
    const io = captureIo();
    const opened: string[] = [];
    const running = runAgentGrant(
      "report-bot",
      { allow: ["read,query"], on: ["/dbs/shop/colls/orders"], ttl: "2h", budgetRequests: "50" },
      io,
      {
        env,
        pollMs: 50,
        tty: false,
        openBrowser: async (u) => {
          opened.push(u);
          return undefined;
        },
      },
    );
    let failed: unknown;
    running.catch((e: unknown) => {
      failed = e;
    });
    await waitUntil(() => opened.length === 1 || failed !== undefined, 10_000, "the browser to be opened");
    expect(failed).toBeUndefined();
    const url = new URL(opened[0]!);
    expect(`${url.origin}${url.pathname}`).toBe(`${h.controlUrl}/console/`);
    const id = /^#\/agents\?confirm=(gr_[A-Za-z0-9_-]+)$/.exec(url.hash)?.[1];
    expect(id, url.hash).toBeDefined();
    expect(io.stderr).toContain(`Open this URL: ${opened[0]}`);

    // Pending, with exactly what was asked, the agent's key from its keygen file.
    const pending = await send("GET", `/api/grants/${id}`, ada);
    expect(pending.json).toMatchObject({
      status: "pending",
      person: "ada",
      actions: ["read", "query"],
      scopes: ["/dbs/shop/colls/orders"],
      budget: { requests: 50, requestCharge: null },
    });
    expect(JSON.parse(pending.json.canonical).publicKey).toEqual(publicKey);

    const confirmed = await confirmInBrowser(id!);
    expect(confirmed.status).toBe("active");
    const active = await running;
    expect(active.id).toBe(id);
    expect(io.stdout).toBe(`${id}\n`);
    expect(io.stderr).toContain(`cosmosgate mcp --agent report-bot --grant ${id} --gateway ${h.controlUrl}`);
    expect(io.stderr).toContain(`cosmosgate agent token report-bot --grant ${id} --gateway ${h.controlUrl}`);

    // The agent can use it.
    const token = await new AgentCredential({
      gateway: h.controlUrl,
      grant: id!,
      keyFile: agentKeyPath("report-bot", { env }),
    }).getToken("x");
    expect(token.token.length).toBeGreaterThan(20);
  });

  it("agent grant times out, and stops when the grant is discarded (revoked) in the browser", async () => {
    const io = captureIo();
    const opened: string[] = [];
    const running = runAgentGrant(
      "report-bot",
      { allow: ["read"], on: ["/dbs/shop/colls/orders"], open: false },
      io,
      {
        env,
        pollMs: 50,
        tty: false,
        openBrowser: async (u) => {
          opened.push(u);
          return undefined;
        },
      },
    );
    const outcome = running.then(
      () => "finished",
      (e: Error) => e.message,
    );
    await waitUntil(() => /confirm=gr_/.test(io.stderr), 10_000, "the URL to be printed");
    expect(opened).toEqual([]); // --no-open
    const id = /confirm=(gr_[A-Za-z0-9_-]+)/.exec(io.stderr)![1]!;
    expect((await send("DELETE", `/api/grants/${id}`, ada, {})).status).toBe(200);
    expect(await outcome).toMatch(new RegExp(`grant ${id} is revoked`));

    const late = captureIo();
    await expect(
      runAgentGrant(
        "report-bot",
        { allow: ["read"], on: ["/dbs/shop/colls/orders"], open: false, timeout: "1s" },
        late,
        {
          env,
          pollMs: 50,
          tty: true,
        },
      ),
    ).rejects.toThrow(/timed out after 1s/);
    expect(late.stderr).toMatch(/\r[|/\\-] waiting for your tap in the browser/);
  });

  it("agent grant asking more than the person holds is refused with the server's reason", async () => {
    await expect(
      runAgentGrant("report-bot", { allow: ["delete"], on: ["/dbs/shop"], open: false }, captureIo(), {
        env,
        pollMs: 50,
        tty: false,
      }),
    ).rejects.toThrow(/ERR_GRANT_EXCEEDS_RIGHTS/);
  });

  it("agent list and agent revoke work with the bearer token (the real command line too)", async () => {
    const made = await bearer("POST", "/api/grants", adaToken, { ...grantBody(), publicKey });
    expect(made.status, made.text).toBe(200);
    const id = made.json.grant.id as string;
    // Bearer requests carry no ambient credential: no CSRF token is needed, nor accepted as a substitute.
    const listed = captureIo();
    const grants = await runAgentList({}, listed, { env });
    expect(grants.map((g) => g.id)).toContain(id);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+pending\\s+agent report-bot`));

    const child = await runCli(["agent", "list", "--json"], {
      env: env as NodeJS.ProcessEnv,
      timeoutMs: 30_000,
    });
    expect(child.code, child.stderr).toBe(0);
    expect((JSON.parse(child.stdout) as GrantView[]).map((g) => g.id)).toContain(id);

    const revoked = captureIo();
    const g = await runAgentRevoke(id, {}, revoked, { env });
    expect(g.status).toBe("revoked");
    expect(revoked.stdout).toContain(`Revoked grant ${id}`);
    expect((await send("GET", `/api/grants/${id}`, ada)).json.status).toBe("revoked");
    await expect(runAgentRevoke(id, {}, captureIo(), { env })).rejects.toThrow(/ERR_GRANT_REVOKED/);
  });

  it("the bearer cannot do the tap's steps: options and confirm stay in the browser (cookie)", async () => {
    const made = await bearer("POST", "/api/grants", adaToken, { ...grantBody(), publicKey });
    const id = made.json.grant.id as string;
    expect((await bearer("POST", `/api/grants/${id}/options`, adaToken, {})).status).toBe(401);
    const options = made.json.options as PublicKeyCredentialRequestOptionsJSON;
    const tap = await bearer("POST", `/api/grants/${id}/confirm`, adaToken, {
      response: adaKey.authenticate(options),
    });
    expect(tap.status).toBe(401);
    expect((await send("GET", `/api/grants/${id}`, ada)).json.status).toBe("pending");
    expect((await send("DELETE", `/api/grants/${id}`, ada, {})).status).toBe(200);
  });
});

describe("refused bearers change nothing", () => {
  let active: GrantView;
  let agentToken: string;

  beforeAll(async () => {
    const made = await post("/api/grants", { ...grantBody(), publicKey }, ada);
    expect(made.status, made.text).toBe(200);
    active = await confirmInBrowser(made.json.grant.id);
    agentToken = (
      await new AgentCredential({
        gateway: h.controlUrl,
        grant: active.id,
        keyFile: agentKeyPath("report-bot", { env }),
      }).getToken("x")
    ).token;
  });

  async function grantsOfAda(): Promise<GrantView[]> {
    return (await send("GET", "/api/grants", ada)).json.grants as GrantView[];
  }

  async function expectRefused(token: string) {
    const before = await grantsOfAda();
    for (const [method, path, body] of [
      ["GET", "/api/grants", undefined],
      ["GET", `/api/grants/${active.id}`, undefined],
      ["GET", "/api/grants/rights", undefined],
      ["POST", "/api/grants", { ...grantBody(), publicKey }],
      ["DELETE", `/api/grants/${active.id}`, {}],
      ["GET", "/api/approvals", undefined],
    ] as const) {
      const res = await bearer(method, path, token, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(401);
      expect(res.text).not.toContain(active.id);
    }
    const after = await grantsOfAda();
    expect(after).toEqual(before);
    expect(after.find((g) => g.id === active.id)?.status).toBe("active");
  }

  it("an agent's token (act, grant) is refused", async () => {
    await expectRefused(agentToken);
    const res = await bearer("GET", "/api/grants", agentToken);
    expect(res.json.code).toBe("ERR_BEARER_REFUSED");
    expect(res.json.message).toMatch(/agent/);
  });

  it("a token of a revoked session is refused", async () => {
    const cookie = await signIn(adaKey, "ada");
    const token = await sessionToken(cookie);
    expect((await bearer("GET", "/api/grants", token)).status).toBe(200);
    expect((await post("/auth/logout", {}, cookie)).status).toBeLessThan(400);
    await expectRefused(token);
    expect((await bearer("GET", "/api/grants", token)).json.message).toMatch(/revoked/);
  });

  it("a federated token (another trusted issuer) and a data-plane-only principal are refused", async () => {
    await expectRefused(await h.issuer.sign({ sub: "ada", groups: ["writers"] }));
  });

  it("random and malformed bearers are refused", async () => {
    await expectRefused("abc.def.ghi");
    await expectRefused("not-a-jwt");
    const tampered = `${adaToken.slice(0, -4)}${adaToken.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    await expectRefused(tampered);
    const res = await fetch(`${h.controlUrl}/api/grants`, { headers: { authorization: "Basic YWRhOng=" } });
    expect(res.status).toBe(401);
  });

  it("a cookie write still needs the CSRF token, even when a valid bearer rides along", async () => {
    const before = await grantsOfAda();
    const noCsrf = await post("/api/grants", { ...grantBody(), publicKey }, ada, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json.code).toBe("ERR_CSRF");
    // Cookie + bearer: a cookie request.
    const both = await bearer(
      "POST",
      "/api/grants",
      adaToken,
      { ...grantBody(), publicKey },
      {
        cookie: `cg_session=${ada}`,
      },
    );
    expect(both.status, both.text).toBe(403);
    expect(both.json.code).toBe("ERR_CSRF");
    const del = await bearer(
      "DELETE",
      `/api/grants/${active.id}`,
      adaToken,
      {},
      {
        cookie: `cg_session=${ada}`,
      },
    );
    expect(del.status).toBe(403);
    // A forged cookie with a valid bearer is still a cookie request: not signed in.
    const forged = await bearer("GET", "/api/grants", adaToken, undefined, {
      cookie: "cg_session=forged.value",
    });
    expect(forged.status).toBe(401);
    expect(await grantsOfAda()).toEqual(before);
  });
});

describe("cosmosgate approvals list/approve", () => {
  it("lists a pending approval and waits for the browser's tap, printing the decision", async () => {
    const c = new CosmosClient({
      endpoint: h.endpoint,
      aadCredentials: {
        getToken: async () => ({ token: adaToken, expiresOnTimestamp: Date.now() + 300_000 }),
      },
      agent: httpsAgent,
      connectionPolicy: {
        retryOptions: {
          maxRetryAttemptCount: 0,
          fixedRetryIntervalInMilliseconds: 0,
          maxWaitTimeInSeconds: 1,
        },
      },
    });
    clients.push(c);
    const item = c.database("shop").container("orders").item("o1", "c1");
    let message = "";
    try {
      await item.delete();
    } catch (err) {
      message = (err as Error).message;
    }
    const id = /approval ID (apr_[A-Za-z0-9_-]+)/.exec(message)?.[1];
    expect(id, message).toBeDefined();

    const listed = captureIo();
    const open = await runApprovalsList({}, listed, { env });
    expect(open.map((a) => a.id)).toContain(id);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+pending\\s+DELETE /dbs/shop/colls/orders/docs/o1`));

    const io = captureIo();
    const opened: string[] = [];
    const running = runApprovalsApprove(id!, {}, io, {
      env,
      pollMs: 50,
      tty: false,
      openBrowser: async (u) => {
        opened.push(u);
        return undefined;
      },
    });
    await waitUntil(() => opened.length === 1, 10_000, "the approval page to be opened");
    expect(opened[0]).toBe(`${h.controlUrl}/console/#/approvals/${id}`);
    // The bearer cannot approve: the tap happens in the browser.
    expect((await bearer("POST", `/api/approvals/${id}/options`, adaToken, {})).status).toBe(401);
    const options = await post(`/api/approvals/${id}/options`, {}, ada);
    expect(options.status, options.text).toBe(200);
    const ok = await post(
      `/api/approvals/${id}/approve`,
      { response: adaKey.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON) },
      ada,
    );
    expect(ok.status, ok.text).toBe(200);
    const decided: ApprovalView = await running;
    expect(decided.status).toBe("approved");
    expect(io.stdout).toBe(`${id} approved by ada\n`);
    await item.delete();
  });
});
