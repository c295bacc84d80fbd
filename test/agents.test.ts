/**
 * Agents on a short leash, end to end: a real gateway (both planes, the embedded store), real
 * WebAuthn ceremonies by software authenticators, and the real @azure/cosmos SDK with
 * AgentCredential. A person makes a grant narrower than their rights and confirms it with a tap
 * over its canonical JSON; the agent gets tokens with its own key (RFC 7523 private_key_jwt) and is
 * allowed only the intersection of the grant and the person's current rights. Security tests try
 * the attack and assert the refusal.
 */
import { createHash, createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import Database from "better-sqlite3";
import { decodeJwt, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GrantDraft, GrantView } from "../src/agents/contract.js";
import { canonicalJson } from "../src/audit/chain.js";
import type { AuditRecord } from "../src/audit/types.js";
import {
  AgentCredential,
  createClientAssertion,
  JWT_BEARER_ASSERTION,
} from "../src/client/agentCredential.js";
import { type AgentKey, createAgentKeyFile } from "../src/client/agentKey.js";
import { GatewayCredentialError } from "../src/client/errors.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { readAuditRecords, waitUntil } from "./helpers/auditProbe.js";
import { runCli } from "./helpers/cli.js";
import { type ControlPlaneResponse, controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { sdkError } from "./helpers/sdkError.js";

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
  shop-writer:
    - allow: [metadata, read, query, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/orders
    - allow: [metadata, read, query]
      on: /dbs/shop/colls/customers
members:
  admin: ["group:cosmos-admins"]
  shop-writer: ["group:writers"]
`;

let h: Harness;
let httpsAgent: HttpsAgent;
let keyDir: string;
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
const clients: CosmosClient[] = [];

let adminKey: SoftAuthenticator;
let admin: string; // the administrator's cookie
let adaKey: SoftAuthenticator;
let adaPhone: SoftAuthenticator;
let ada: string; // ada's cookie
let agentKey: AgentKey;
let agentKeyFile: string;

const newKey = () => createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound: true });
const tokenEndpoint = () => `${h.controlUrl}/oauth/token`;

async function enrollWithLink(url: string, key: SoftAuthenticator, nickname: string): Promise<string> {
  const invite = new URL(url).searchParams.get("invite");
  const options = await post("/auth/webauthn/register/options", { invite });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname,
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

/** Creates a grant as ada (or `cookie`) and returns the draft. */
async function draft(body: Record<string, unknown>, cookie = ada): Promise<GrantDraft> {
  const res = await post(
    "/api/grants",
    { agent: "report-bot", publicKey: agentKey.publicJwk, lifetime: "1h", ...body },
    cookie,
  );
  expect(res.status, res.text).toBe(200);
  return res.json as GrantDraft;
}

/** Creates and confirms a grant with `key`'s tap; returns the active grant. */
async function grant(body: Record<string, unknown>, key = adaKey, cookie = ada): Promise<GrantView> {
  const d = await draft(body, cookie);
  const res = await post(
    `/api/grants/${d.grant.id}/confirm`,
    { response: key.authenticate(d.options as PublicKeyCredentialRequestOptionsJSON) },
    cookie,
  );
  expect(res.status, res.text).toBe(200);
  expect(res.json.status).toBe("active");
  return res.json as GrantView;
}

/** The agent's Cosmos DB client under a grant, with AgentCredential reading its key file. */
function agentClient(grantId: string, credential?: AgentCredential): CosmosClient {
  const c = new CosmosClient({
    endpoint: h.endpoint,
    aadCredentials:
      credential ?? new AgentCredential({ gateway: h.controlUrl, grant: grantId, keyFile: agentKeyFile }),
    agent: httpsAgent,
    connectionPolicy: {
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
  clients.push(c);
  return c;
}

/** POSTs a token request as a form. */
async function tokenRequest(params: Record<string, string>): Promise<ControlPlaneResponse> {
  const res = await fetch(tokenEndpoint(), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) };
}

const assertionParams = (grantId: string, assertion: string) => ({
  grant_type: "client_credentials",
  client_id: grantId,
  client_assertion_type: JWT_BEARER_ASSERTION,
  client_assertion: assertion,
});

async function audited(match: (r: AuditRecord) => boolean, what: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await waitUntil(
    () => {
      found = readAuditRecords(h.gw.auditFile).find(match);
      return found !== undefined;
    },
    10_000,
    what,
  );
  return found!;
}

const orders = (c: CosmosClient) => c.database("shop").container("orders");

describe("agents act for a person under a grant confirmed by a tap", () => {
  beforeAll(async () => {
    h = await startHarness({ upstream: "embedded", policy: POLICY });
    httpsAgent = new HttpsAgent({ ca: h.gw.caPem, keepAlive: true });
    keyDir = mkdtempSync(join(tmpdir(), "cosmosgate-agent-keys-"));
    agentKeyFile = join(keyDir, "report-bot.jwk");
    agentKey = await createAgentKeyFile(agentKeyFile);

    adminKey = newKey();
    admin = await enrollWithLink(h.gw.firstAdminUrl!, adminKey, "admin key");
    const invite = await post("/api/people/invite", { name: "ada", groups: ["writers"] }, admin);
    expect(invite.status, invite.text).toBe(200);
    adaKey = newKey();
    ada = await enrollWithLink(invite.json.url, adaKey, "ada desk key");
    // A second key for ada (removed later, to show it stops the grants it confirmed).
    adaPhone = newKey();
    const options = await post("/auth/webauthn/register/options", {}, ada);
    const added = await post(
      "/auth/webauthn/register/verify",
      {
        response: adaPhone.register(options.json as PublicKeyCredentialCreationOptionsJSON),
        nickname: "ada phone",
      },
      ada,
    );
    expect(added.status, added.text).toBe(200);

    // Data, written with an administrator's token from the test issuer.
    const root = h.client("root", ["cosmos-admins"]);
    const { database } = await root.databases.createIfNotExists({ id: "shop" });
    const { container: o } = await database.containers.createIfNotExists({
      id: "orders",
      partitionKey: { paths: ["/customer"] },
    });
    const { container: c } = await database.containers.createIfNotExists({
      id: "customers",
      partitionKey: { paths: ["/id"] },
    });
    for (let i = 1; i <= 4; i++)
      await o.items.create({ id: `o${i}`, customer: i <= 2 ? "c1" : "c2", total: i * 10 });
    await c.items.create({ id: "c1", name: "Contoso" });
  });

  afterAll(async () => {
    for (const c of clients) c.dispose();
    httpsAgent?.destroy();
    await h?.close();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it("a grant is confirmed by a tap whose challenge is SHA-256 of exactly the canonical JSON shown", async () => {
    const d = await draft({ actions: ["query", "metadata", "read"], scopes: ["/dbs/shop/colls/orders"] });
    expect(d.grant).toMatchObject({
      person: "ada",
      agent: "report-bot",
      actions: ["metadata", "read", "query"],
      scopes: ["/dbs/shop/colls/orders"],
      partitionKeys: null,
      keyThumbprint: agentKey.thumbprint,
      status: "pending",
      confirmedBy: null,
    });
    // Canonical: sorted keys, no whitespace, and it names everything the grant gives.
    expect(canonicalJson(JSON.parse(d.canonical))).toBe(d.canonical);
    expect(JSON.parse(d.canonical)).toMatchObject({
      id: d.grant.id,
      gateway: h.controlUrl,
      person: "ada",
      agent: "report-bot",
      actions: ["metadata", "read", "query"],
      publicKey: agentKey.publicJwk,
      expiresAt: d.grant.expiresAt,
    });
    const options = d.options as PublicKeyCredentialRequestOptionsJSON;
    expect(options.challenge).toBe(createHash("sha256").update(d.canonical, "utf8").digest("base64url"));

    const confirmed = await post(
      `/api/grants/${d.grant.id}/confirm`,
      { response: adaKey.authenticate(options) },
      ada,
    );
    expect(confirmed.status, confirmed.text).toBe(200);
    const adaDesk = h.gw.identity.store.listCredentials(h.gw.identity.store.getUserByName("ada")!.id)[0];
    expect(confirmed.json).toMatchObject({ id: d.grant.id, status: "active", confirmedBy: adaDesk.id });
    // Confirmed once: the same tap again is refused, and the grant is unchanged.
    const again = await post(
      `/api/grants/${d.grant.id}/confirm`,
      { response: adaKey.authenticate(options) },
      ada,
    );
    expect(again.status).toBe(409);

    const listed = await send("GET", "/api/grants", ada);
    expect(listed.json.grants.map((g: GrantView) => g.id)).toContain(d.grant.id);
    expect(
      await audited((r) => r.type === "grant.created" && r.grant === d.grant.id, "grant.created"),
    ).toMatchObject({ subject: "ada", actor: "agent:report-bot", resource: `/grants/${d.grant.id}` });
    expect(
      await audited((r) => r.type === "grant.confirmed" && r.grant === d.grant.id, "grant.confirmed"),
    ).toMatchObject({
      subject: "ada",
      credential: adaDesk.id,
      credentialName: "ada desk key",
      details: { challenge: options.challenge, actions: "metadata,read,query" },
    });
  });

  it("the agent works through the real SDK within the grant; outside it, 403/5301 naming the grant; records name both", async () => {
    const g = await grant({ actions: ["metadata", "read", "query"], scopes: ["/dbs/shop/colls/orders"] });
    const credential = new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile });
    const client = agentClient(g.id, credential);
    const { resource } = await orders(client).item("o1", "c1").read();
    expect(resource?.total).toBe(10);
    const { resources } = await orders(client)
      .items.query({ query: "SELECT * FROM c WHERE c.total > @t", parameters: [{ name: "@t", value: 15 }] })
      .fetchAll();
    expect(resources.map((r) => r.id).sort()).toEqual(["o2", "o3", "o4"]);

    // The token: the person, the agent (act), the grant, its scope, the confirming key; no session.
    const token = (await credential.getToken()).token;
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: "ada",
      act: { sub: "agent:report-bot" },
      grant: g.id,
      scope: "metadata read query",
      cred: g.confirmedBy,
      groups: ["writers"],
    });
    expect(claims.sid).toBeUndefined();
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(600);

    // ada may create orders and read customers; the grant gives neither.
    const create = await sdkError(() => orders(client).items.create({ id: "x1", customer: "c1" }));
    expect(create.code).toBe(403);
    expect(create.substatus).toBe(5301);
    expect(create.message).toContain(g.id);
    expect(create.message).toMatch(/\[create\] is not granted/);
    const other = await sdkError(() =>
      client.database("shop").container("customers").item("c1", "c1").read(),
    );
    expect(other.code).toBe(403);
    expect(other.message).toMatch(/not within the grant's scopes/);

    const read = await audited(
      (r) =>
        r.type === "data.request" &&
        r.grant === g.id &&
        r.operation === "item.read" &&
        r.decision === "allow",
      "the agent's read",
    );
    expect(read).toMatchObject({
      subject: "ada",
      subjectKind: "agent",
      actor: "agent:report-bot",
      credential: g.confirmedBy,
      resource: "/dbs/shop/colls/orders/docs/o1",
    });
    const denied = await audited(
      (r) => r.type === "data.request" && r.grant === g.id && r.operation === "item.create",
      "the agent's refused create",
    );
    expect(denied).toMatchObject({
      subject: "ada",
      actor: "agent:report-bot",
      decision: "deny",
      substatus: 5301,
    });
    expect(
      await audited((r) => r.type === "agent.token_issued" && r.grant === g.id, "agent.token_issued"),
    ).toMatchObject({ subject: "ada", subjectKind: "agent", actor: "agent:report-bot", jti: claims.jti });
  });

  it("a grant asking more than the person holds is refused, and nothing is stored", async () => {
    const before = (await send("GET", "/api/grants", ada)).json.grants.length;
    for (const ask of [
      { actions: ["delete"], scopes: ["/dbs/shop/colls/customers"] },
      { actions: ["read"], scopes: ["/"] },
      { actions: ["read"], scopes: ["/dbs/shop"] },
      { actions: ["read"], scopes: ["/dbs/shop/colls/*"] },
      { actions: ["manage"], scopes: ["/dbs/shop/colls/orders"] },
    ]) {
      const res = await post(
        "/api/grants",
        { agent: "report-bot", publicKey: agentKey.publicJwk, ...ask },
        ada,
      );
      expect(res.status, JSON.stringify(ask)).toBe(403);
      expect(res.json.code).toBe("ERR_GRANT_EXCEEDS_RIGHTS");
    }
    // Malformed asks: a private key, an unknown action, a lifetime over the maximum.
    const bad = [
      { publicKey: { ...agentKey.publicJwk, d: "AAAA" } },
      { actions: ["drop"] },
      { lifetime: "30d" },
      { agent: "Report Bot" },
    ];
    for (const b of bad) {
      const res = await post(
        "/api/grants",
        {
          agent: "report-bot",
          publicKey: agentKey.publicJwk,
          actions: ["read"],
          scopes: ["/dbs/shop/colls/orders"],
          ...b,
        },
        ada,
      );
      expect(res.status, JSON.stringify(b)).toBe(400);
    }
    // Without the page's CSRF token, or signed out: refused.
    const noCsrf = await post(
      "/api/grants",
      {
        agent: "report-bot",
        publicKey: agentKey.publicJwk,
        actions: ["read"],
        scopes: ["/dbs/shop/colls/orders"],
      },
      ada,
      { csrf: false },
    );
    expect(noCsrf.status).toBe(403);
    expect((await post("/api/grants", {})).status).toBe(401);
    expect((await send("GET", "/api/grants", ada)).json.grants.length).toBe(before);
  });

  it("a tap over a different canonical grant, or by another person's key, is refused", async () => {
    const a = await draft({ actions: ["read"], scopes: ["/dbs/shop/colls/orders"] });
    const b = await draft({ actions: ["read", "delete"], scopes: ["/dbs/shop/colls/orders"] });
    const aOptions = a.options as PublicKeyCredentialRequestOptionsJSON;
    const bOptions = b.options as PublicKeyCredentialRequestOptionsJSON;
    // B's tap presented as A's.
    const swapped = await post(
      `/api/grants/${a.grant.id}/confirm`,
      { response: adaKey.authenticate(bOptions) },
      ada,
    );
    expect(swapped.status).toBe(403);
    expect(swapped.json.code).toBe("ERR_TAP_REQUIRED");
    // A tap over a tampered canonical JSON of A (delete added): another challenge.
    const tampered = JSON.parse(a.canonical);
    tampered.actions = ["read", "delete"];
    const forged = await post(
      `/api/grants/${a.grant.id}/confirm`,
      {
        response: adaKey.authenticate(aOptions, {
          challenge: createHash("sha256").update(canonicalJson(tampered)).digest("base64url"),
        }),
      },
      ada,
    );
    expect(forged.status).toBe(403);
    // The administrator's key over A's options (and A's own id): not ada's key.
    const foreign = await post(
      `/api/grants/${a.grant.id}/confirm`,
      { response: adminKey.authenticate({ ...aOptions, allowCredentials: [] }) },
      ada,
    );
    expect(foreign.status).toBe(403);
    // Another person cannot confirm ada's grant at all.
    expect(
      (
        await post(
          `/api/grants/${a.grant.id}/confirm`,
          { response: adminKey.authenticate({ ...aOptions, allowCredentials: [] }) },
          admin,
        )
      ).status,
    ).toBe(404);
    expect((await send("GET", `/api/grants/${a.grant.id}`, ada)).json.status).toBe("pending");
    // The right tap works; the options can be asked for again while pending.
    const again = await post(`/api/grants/${a.grant.id}/options`, {}, ada);
    expect(again.json.challenge).toBe(aOptions.challenge);
    const ok = await post(
      `/api/grants/${a.grant.id}/confirm`,
      { response: adaKey.authenticate(aOptions) },
      ada,
    );
    expect(ok.status, ok.text).toBe(200);
  });

  it("what a person holds (for the console), and who sees and revokes which grants", async () => {
    const rights = await send("GET", "/api/grants/rights", ada);
    expect(rights.status, rights.text).toBe(200);
    expect(rights.json.rights).toEqual([
      { scope: "/dbs/shop/colls/customers", actions: ["metadata", "read", "query"] },
      {
        scope: "/dbs/shop/colls/orders",
        actions: ["metadata", "read", "create", "upsert", "replace", "patch", "delete", "query"],
      },
    ]);
    const g = await grant({ actions: ["read"], scopes: ["/dbs/shop/colls/orders"] });
    // Another person: not found, not revocable; an administrator sees everyone's with ?all=1.
    const bobInvite = await post("/api/people/invite", { name: "bob", groups: ["writers"] }, admin);
    const bob = await enrollWithLink(bobInvite.json.url, newKey(), "bob key");
    expect((await send("GET", `/api/grants/${g.id}`, bob)).status).toBe(404);
    expect((await send("DELETE", `/api/grants/${g.id}`, bob, {})).status).toBe(404);
    expect((await send("GET", "/api/grants?all=1", bob)).status).toBe(403);
    expect((await send("GET", "/api/grants", bob)).json.grants).toEqual([]);
    const all = await send("GET", "/api/grants?all=1", admin);
    expect(all.json.grants.map((x: GrantView) => x.id)).toContain(g.id);
    expect((await send("GET", "/api/grants", admin)).json.grants).toEqual([]);
    const revoked = await send("DELETE", `/api/grants/${g.id}`, admin, {});
    expect(revoked.json).toMatchObject({
      status: "revoked",
      revokedReason: "revoked by administrator admin",
    });
    expect((await send("DELETE", `/api/grants/${g.id}`, ada, {})).status).toBe(409);
    expect((await send("GET", "/api/grants/gr_nope", ada)).status).toBe(404);
  });

  it("revoking the grant stops the agent on its next request, with the token it already holds", async () => {
    const g = await grant({ actions: ["metadata", "read"], scopes: ["/dbs/shop/colls/orders"] });
    const credential = new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile });
    const client = agentClient(g.id, credential);
    await orders(client).item("o1", "c1").read();
    const revoked = await send("DELETE", `/api/grants/${g.id}`, ada, {});
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json).toMatchObject({ status: "revoked", revokedReason: "revoked by ada" });
    const after = await sdkError(() => orders(client).item("o1", "c1").read());
    expect(after.code).toBe(401);
    expect(after.message).toMatch(/revoked/);
    // And no new token.
    const fresh = new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile });
    const refused = await fresh.getToken().catch((e) => e);
    expect(refused).toBeInstanceOf(GatewayCredentialError);
    expect(refused.code).toBe("ERR_AGENT_REFUSED");
    expect(
      await audited((r) => r.type === "grant.revoked" && r.grant === g.id, "grant.revoked"),
    ).toMatchObject({
      subject: "ada",
      actor: "agent:report-bot",
      details: { revokedBy: "ada", wasStatus: "active" },
    });
  });

  it("the data plane allows only the intersection: the person losing a right stops the agent though the grant has it", async () => {
    const g = await grant({ actions: ["metadata", "read", "query"], scopes: ["/dbs/shop/colls/orders"] });
    const client = agentClient(g.id);
    await orders(client).item("o1", "c1").read();
    const { writeFileSync } = await import("node:fs");
    const version = h.gw.policy.current.version;
    writeFileSync(
      h.policyFile,
      POLICY.replace("allow: [metadata, read, query, create", "allow: [metadata, query, create"),
    );
    await waitUntil(() => h.gw.policy.current.version !== version, 10_000, "the policy reload");
    try {
      const err = await sdkError(() => orders(client).item("o1", "c1").read());
      expect(err.code).toBe(403);
      expect(err.message).toMatch(/principal \[ada\] holds no role that allows \[read\]/);
    } finally {
      const changed = h.gw.policy.current.version;
      writeFileSync(h.policyFile, POLICY);
      await waitUntil(() => h.gw.policy.current.version !== changed, 10_000, "the policy restore");
    }
    await orders(client).item("o1", "c1").read();
  });

  it("a partition-key restriction: that key only, no cross-partition requests", async () => {
    const g = await grant({
      actions: ["metadata", "read", "query"],
      scopes: ["/dbs/shop/colls/orders"],
      partitionKeys: ['["c1"]'],
    });
    expect(g.partitionKeys).toEqual(['["c1"]']);
    const client = agentClient(g.id);
    await orders(client).item("o1", "c1").read();
    const other = await sdkError(() => orders(client).item("o3", "c2").read());
    expect(other.code).toBe(403);
    expect(other.message).toMatch(/partition key \["c2"\] is not one the grant allows/);
    const cross = await sdkError(() => orders(client).items.query("SELECT * FROM c").fetchAll());
    expect(cross.code).toBe(403);
    const { resources } = await orders(client)
      .items.query("SELECT * FROM c", { partitionKey: "c1" })
      .fetchAll();
    expect(resources.map((r) => r.id).sort()).toEqual(["o1", "o2"]);
  });

  it("budgets: the request after the last one allowed is refused (403/5301), and so are new tokens", async () => {
    const g = await grant({
      actions: ["metadata", "read"],
      scopes: ["/dbs/shop/colls/orders"],
      budget: { requests: 3 },
    });
    const credential = new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile });
    const token = (await credential.getToken()).token;
    const read = () =>
      h.raw("GET", "/dbs/shop/colls/orders/docs/o1", {
        authorization: `type=aad&ver=1.0&sig=${token}`,
        "x-ms-documentdb-partitionkey": '["c1"]',
        "x-ms-version": "2020-07-15",
      });
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    const spent = await read();
    expect(spent.status).toBe(403);
    expect(spent.headers["x-ms-substatus"]).toBe("5301");
    expect(spent.json().message).toMatch(/spent its budget of 3 requests/);
    const view = (await send("GET", `/api/grants/${g.id}`, ada)).json as GrantView;
    expect(view).toMatchObject({ status: "exhausted", used: { requests: 3 } });
    const refused = await new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile })
      .getToken()
      .catch((e) => e);
    expect(refused.code).toBe("ERR_AGENT_REFUSED");
    expect(refused.message).toMatch(/budget/);

    // A request-charge budget: counted from the answers' x-ms-request-charge.
    const rc = await grant({
      actions: ["metadata", "read"],
      scopes: ["/dbs/shop/colls/orders"],
      budget: { requestCharge: 2 },
    });
    const rcClient = agentClient(rc.id);
    let refusedAt = 0;
    for (let i = 1; i <= 10 && refusedAt === 0; i++) {
      const r = await orders(rcClient)
        .item("o1", "c1")
        .read()
        .then(() => 0)
        .catch((e: { code: number }) => e.code);
      if (r !== 0) refusedAt = i;
    }
    expect(refusedAt).toBeGreaterThan(1);
    const used = ((await send("GET", `/api/grants/${rc.id}`, ada)).json as GrantView).used.requestCharge;
    expect(used).toBeGreaterThanOrEqual(2);
  });

  it("disabling the person stops the agent on its next request; no token while disabled", async () => {
    const g = await grant({ actions: ["metadata", "read"], scopes: ["/dbs/shop/colls/orders"] });
    const client = agentClient(g.id);
    await orders(client).item("o1", "c1").read();
    expect((await post("/api/people/ada/disable", {}, admin)).status).toBe(200);
    try {
      const err = await sdkError(() => orders(client).item("o1", "c1").read());
      expect(err.code).toBe(401);
      const refused = await new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile })
        .getToken()
        .catch((e) => e);
      expect(refused.code).toBe("ERR_AGENT_REFUSED");
      expect(refused.message).toMatch(/disabled/);
    } finally {
      expect((await post("/api/people/ada/enable", {}, admin)).status).toBe(200);
      ada = await signIn(adaKey, "ada");
    }
  });

  it("removing the key that confirmed the grant stops the agent on its next request", async () => {
    const g = await grant({ actions: ["metadata", "read"], scopes: ["/dbs/shop/colls/orders"] }, adaPhone);
    const phoneId = g.confirmedBy!;
    expect(phoneId).toBe(adaPhone.credentials[0].id);
    const client = agentClient(g.id);
    await orders(client).item("o1", "c1").read();
    const options = await post(`/api/me/keys/${encodeURIComponent(phoneId)}/remove/options`, {}, ada);
    const removed = await send("DELETE", `/api/me/keys/${encodeURIComponent(phoneId)}`, ada, {
      response: adaKey.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
    });
    expect(removed.status, removed.text).toBe(200);
    const err = await sdkError(() => orders(client).item("o1", "c1").read());
    expect(err.code).toBe(401);
    const refused = await new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile })
      .getToken()
      .catch((e) => e);
    expect(refused.code).toBe("ERR_AGENT_REFUSED");
    expect(refused.message).toMatch(/removed or suspended/);
  });

  it("an expired grant is refused on the data plane and at the token endpoint", async () => {
    const g = await grant({ actions: ["metadata", "read"], scopes: ["/dbs/shop/colls/orders"] });
    const client = agentClient(g.id);
    await orders(client).item("o1", "c1").read();
    // Time passes: another connection (as another process would) moves its expiry into the past.
    const db = new Database(join(h.gw.stateDir, "agents.db"));
    try {
      db.prepare("UPDATE grants SET expires_at = ? WHERE id = ?").run(Date.now() - 1000, g.id);
    } finally {
      db.close();
    }
    const err = await sdkError(() => orders(client).item("o1", "c1").read());
    expect(err.code).toBe(401);
    expect(err.message).toMatch(/expired/);
    const view = (await send("GET", `/api/grants/${g.id}`, ada)).json as GrantView;
    expect(view.status).toBe("expired");
    const refused = await new AgentCredential({ gateway: h.controlUrl, grant: g.id, keyFile: agentKeyFile })
      .getToken()
      .catch((e) => e);
    expect(refused.code).toBe("ERR_AGENT_REFUSED");
  });

  it("the command line: `agent keygen` (0600 key, public JWK printed) and `agent token` under a grant", async () => {
    const made = await runCli(["agent", "keygen", "cli-bot", "--dir", keyDir, "--json"], {
      timeoutMs: 60_000,
    });
    expect(made.code, made.stderr).toBe(0);
    const out = JSON.parse(made.stdout);
    expect(out).toMatchObject({
      agent: "cli-bot",
      file: join(keyDir, "cli-bot.jwk"),
      publicKey: { kty: "EC", crv: "P-256" },
    });
    expect(out.publicKey.d).toBeUndefined();
    expect(statSync(out.file).mode & 0o777).toBe(0o600);
    const again = await runCli(["agent", "keygen", "cli-bot", "--dir", keyDir], { timeoutMs: 60_000 });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);

    const g = await grant({
      agent: "cli-bot",
      publicKey: out.publicKey,
      actions: ["metadata", "read"],
      scopes: ["/dbs/shop/colls/orders"],
    });
    const printed = await runCli(
      ["agent", "token", "cli-bot", "--grant", g.id, "--gateway", h.controlUrl, "--key", out.file],
      { timeoutMs: 60_000 },
    );
    expect(printed.code, printed.stderr).toBe(0);
    const token = printed.stdout.trim();
    expect(decodeJwt(token)).toMatchObject({ sub: "ada", act: { sub: "agent:cli-bot" }, grant: g.id });
    const res = await h.raw("GET", "/dbs/shop/colls/orders/docs/o1", {
      authorization: `type=aad&ver=1.0&sig=${token}`,
      "x-ms-documentdb-partitionkey": '["c1"]',
      "x-ms-version": "2020-07-15",
    });
    expect(res.status).toBe(200);
    // With the other agent's key, the grant is refused.
    const wrong = await runCli(
      ["agent", "token", "cli-bot", "--grant", g.id, "--gateway", h.controlUrl, "--key", agentKeyFile],
      { timeoutMs: 60_000 },
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/refused agent grant .*kid/);
  }, 120_000);

  describe("client assertion attacks → 401 invalid_client", () => {
    let g: GrantView;
    const now = () => Math.floor(Date.now() / 1000);
    const valid = (over: Partial<Parameters<typeof createClientAssertion>[0]> = {}) =>
      createClientAssertion({ key: agentKey, grant: g.id, audience: tokenEndpoint(), ...over });
    const refused = async (assertion: string, what: RegExp, clientId = g.id) => {
      const res = await tokenRequest(assertionParams(clientId, assertion));
      expect(res.status, res.text).toBe(401);
      expect(res.json.error).toBe("invalid_client");
      expect(res.json.error_description).toMatch(what);
      expect(res.text).not.toContain(assertion);
    };

    beforeAll(async () => {
      g = await grant({ actions: ["metadata", "read"], scopes: ["/dbs/shop/colls/orders"] });
    });

    it("a valid assertion gets a token; the same assertion again (replayed jti) is refused", async () => {
      const assertion = await valid();
      const ok = await tokenRequest(assertionParams(g.id, assertion));
      expect(ok.status, ok.text).toBe(200);
      expect(ok.json).toMatchObject({ token_type: "Bearer", scope: "metadata read" });
      expect(ok.json.expires_in).toBeLessThanOrEqual(600);
      await refused(assertion, /already used/);
      // A new assertion with the same jti: refused too.
      const jti = randomUUID();
      expect((await tokenRequest(assertionParams(g.id, await valid({ jti })))).status).toBe(200);
      await refused(await valid({ jti }), /already used/);
    });

    it("wrong kid, another key, expired, too long, wrong aud, wrong iss/sub", async () => {
      const wrongKid = await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "not-the-thumbprint" })
        .setIssuer(g.id)
        .setSubject(g.id)
        .setAudience(tokenEndpoint())
        .setIssuedAt()
        .setExpirationTime("1m")
        .setJti(randomUUID())
        .sign(agentKey.privateKey);
      await refused(wrongKid, /kid/);
      // Another key, claiming the grant's kid.
      const other = await generateKeyPair("ES256");
      await refused(
        await createClientAssertion({
          key: { privateKey: other.privateKey as CryptoKey, thumbprint: agentKey.thumbprint },
          grant: g.id,
          audience: tokenEndpoint(),
        }),
        /signature/,
      );
      await refused(await valid({ now: now() - 400, lifetime: 300 }), /expired/);
      await refused(await valid({ lifetime: 3600 }), /too long/);
      await refused(
        await valid({ audience: "https://evil.example/oauth/token" }),
        /aud must be the token endpoint/,
      );
      await refused(await valid({ audience: h.endpoint }), /aud/);
      // Another grant's id as iss/sub while claiming this grant.
      const g2 = await grant({ actions: ["read"], scopes: ["/dbs/shop/colls/orders"] });
      await refused(
        await createClientAssertion({ key: agentKey, grant: g2.id, audience: tokenEndpoint() }),
        /iss/,
      );
    });

    it("HS256 with the public key as a secret, and alg none", async () => {
      const header = (h: object) => Buffer.from(JSON.stringify(h)).toString("base64url");
      const payload = Buffer.from(
        JSON.stringify({
          iss: g.id,
          sub: g.id,
          aud: tokenEndpoint(),
          iat: now(),
          exp: now() + 60,
          jti: randomUUID(),
        }),
      ).toString("base64url");
      const hsInput = `${header({ alg: "HS256", kid: agentKey.thumbprint })}.${payload}`;
      const secret = JSON.stringify(agentKey.publicJwk);
      const hs = `${hsInput}.${createHmac("sha256", secret).update(hsInput).digest("base64url")}`;
      await refused(hs, /ES256/);
      await refused(`${header({ alg: "none", kid: agentKey.thumbprint })}.${payload}.`, /ES256/);
      // A JWK embedded in the header (to make the gateway verify with the attacker's key).
      const attacker = await generateKeyPair("ES256", { extractable: true });
      const { exportJWK } = await import("jose");
      const embedded = await new SignJWT({})
        .setProtectedHeader({
          alg: "ES256",
          kid: agentKey.thumbprint,
          jwk: await exportJWK(attacker.publicKey),
        })
        .setIssuer(g.id)
        .setSubject(g.id)
        .setAudience(tokenEndpoint())
        .setIssuedAt()
        .setExpirationTime("1m")
        .setJti(randomUUID())
        .sign(attacker.privateKey);
      await refused(embedded, /jwk/);
    });

    it("unknown client_id, missing assertion type, a client secret; refusals are audited", async () => {
      const assertion = await valid();
      await refused(assertion, /not a grant/, "gr_AAAAAAAAAAAAAAAAAAAAAA");
      const noType = await tokenRequest({
        grant_type: "client_credentials",
        client_id: g.id,
        client_assertion: assertion,
      });
      expect(noType.status).toBe(400);
      const secret = await tokenRequest({ ...assertionParams(g.id, await valid()), client_secret: "s" });
      expect(secret.status).toBe(400);
      expect(
        await audited(
          (r) =>
            r.type === "signin.failed" && r.grant === g.id && r.details?.code === "ERR_ASSERTION_REPLAYED",
          "a refused assertion",
        ),
      ).toMatchObject({ decision: "deny", details: { via: "client_credentials" } });
    });
  });
});
