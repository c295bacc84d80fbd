/**
 * `GET /api/agent/approvals/:id`: an agent reads the state of the approvals it asked for, with its
 * own access token (a real grant confirmed by a real tap, real private_key_jwt tokens) — and nothing
 * else: other people's and other agents' approvals are 404, no token / a cookie / a person's token
 * are refused, and a revoked grant stops it.
 */
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentApprovalStatus, GrantDraft, GrantView } from "../src/agents/contract.js";
import { APPROVAL_REQUIRED_SUBSTATUS } from "../src/agents/contract.js";
import { AgentCredential } from "../src/client/agentCredential.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

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
`;

let h: Harness;
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
let adminKey: SoftAuthenticator;
let admin: string;
let grant: GrantView;
let agentToken: string;

const statusOf = (id: string, headers: Record<string, string> = {}) =>
  fetch(`${h.controlUrl}/api/agent/approvals/${encodeURIComponent(id)}`, { headers }).then(async (r) => ({
    status: r.status,
    authenticate: r.headers.get("www-authenticate"),
    // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
    json: (await r.json()) as any,
  }));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A delete of `id` (partition c1) on the data plane with `token`: its approval's ID. */
async function approvalFor(token: string, id: string): Promise<string> {
  const res = await h.raw("DELETE", `/dbs/shop/colls/orders/docs/${id}`, {
    authorization: `type=aad&ver=1.0&sig=${token}`,
    "x-ms-documentdb-partitionkey": '["c1"]',
    "x-ms-version": "2020-07-15",
  });
  expect(res.status, res.body).toBe(403);
  expect(Number(res.headers["x-ms-substatus"])).toBe(APPROVAL_REQUIRED_SUBSTATUS);
  const approval = /approval ID (apr_[A-Za-z0-9_-]+)/.exec(res.json().message)?.[1];
  expect(approval, res.body).toBeTruthy();
  return approval!;
}

beforeAll(async () => {
  h = await startHarness({ upstream: "embedded", policy: POLICY });
  adminKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  const invite = new URL(h.gw.firstAdminUrl!).searchParams.get("invite");
  const options = await post("/auth/webauthn/register/options", { invite });
  const verify = await post("/auth/webauthn/register/verify", {
    response: adminKey.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname: "desk key",
  });
  expect(verify.status, verify.text).toBe(200);
  admin = verify.cookie!;

  const sdk = h.client("alice", ["cosmos-admins"]);
  const { database } = await sdk.databases.create({ id: "shop" });
  const { container } = await database.containers.create({
    id: "orders",
    partitionKey: { paths: ["/customer"] },
  });
  for (const id of ["o1", "o2", "o3"]) await container.items.create({ id, customer: "c1" });

  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const draft = await post(
    "/api/grants",
    {
      agent: "reporter",
      actions: ["metadata", "read", "delete"],
      scopes: ["/dbs/shop/colls/orders"],
      lifetime: "1h",
      publicKey: await exportJWK(publicKey),
    },
    admin,
  );
  expect(draft.status, draft.text).toBe(200);
  const { grant: pending, options: tap } = draft.json as GrantDraft;
  const confirmed = await post(
    `/api/grants/${encodeURIComponent(pending.id)}/confirm`,
    { response: adminKey.authenticate(tap as PublicKeyCredentialRequestOptionsJSON) },
    admin,
  );
  expect(confirmed.status, confirmed.text).toBe(200);
  grant = confirmed.json as GrantView;
  const credential = new AgentCredential({
    gateway: h.controlUrl,
    grant: grant.id,
    key: await exportJWK(privateKey),
  });
  agentToken = (await credential.getToken()).token;
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe("GET /api/agent/approvals/:id", () => {
  it("answers the agent's own approval: its state, the operation without the body, approvers as a count", async () => {
    const id = await approvalFor(agentToken, "o1");
    const res = await statusOf(id, bearer(agentToken));
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const body = res.json as AgentApprovalStatus;
    expect(Object.keys(body).sort()).toEqual(
      ["approvals", "expiresAt", "id", "operation", "quorum", "status", "url"].sort(),
    );
    expect(body).toMatchObject({
      id,
      status: "pending",
      quorum: 1,
      approvals: 0,
      url: `${h.controlUrl}/console/#/approvals/${id}`,
      operation: {
        method: "DELETE",
        resource: "/dbs/shop/colls/orders/docs/o1",
        operation: expect.any(String),
        partitionKey: '["c1"]',
      },
    });
    expect(Object.keys(body.operation).sort()).toEqual(["method", "operation", "partitionKey", "resource"]);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());

    // The person approves with a tap: the agent sees it approved, with a count and no identities.
    const options = await post(`/api/approvals/${id}/options`, {}, admin);
    expect(options.status, options.text).toBe(200);
    const approved = await post(
      `/api/approvals/${id}/approve`,
      { response: adminKey.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON) },
      admin,
    );
    expect(approved.status, approved.text).toBe(200);
    const after = await statusOf(id, bearer(agentToken));
    expect(after.json).toMatchObject({ status: "approved", approvals: 1 });
    expect(JSON.stringify(after.json)).not.toMatch(/admin|credential|desk key/);
  });

  it("answers 404 for another person's or another agent's approval, and for unknown ids", async () => {
    const bobsAgent = await h.issuer.sign({
      sub: "bob",
      groups: ["cosmos-admins"],
      claims: { act: { sub: "agent:reporter" } },
    });
    const otherAgent = await h.issuer.sign({
      sub: "admin",
      groups: ["cosmos-admins"],
      claims: { act: { sub: "agent:other" } },
    });
    const bobs = await approvalFor(bobsAgent, "o2");
    const others = await approvalFor(otherAgent, "o3");
    for (const id of [bobs, others, "apr_unknown", "x".repeat(200)]) {
      const res = await statusOf(id, bearer(agentToken));
      expect(res.status, id).toBe(404);
      expect(res.json.code).toBe("ERR_APPROVAL_NOT_FOUND");
    }
  });

  it("refuses requests without an agent's token: none, a cookie, a person's token, a federated act, a forged one", async () => {
    const own = await approvalFor(agentToken, "o2");
    const none = await statusOf(own);
    expect(none.status).toBe(401);
    expect(none.authenticate).toMatch(/^Bearer /);
    const cookie = await statusOf(own, { cookie: `cg_session=${admin}` });
    expect(cookie.status).toBe(401);
    expect(cookie.json.code).toBe("ERR_AGENT_TOKEN");

    const person = await h.issuer.sign({ sub: "admin", groups: ["cosmos-admins"] });
    const asPerson = await statusOf(own, bearer(person));
    expect(asPerson.status).toBe(403);
    expect(asPerson.json.code).toBe("ERR_NOT_AN_AGENT");
    // An outside issuer's token naming the same person and agent is not a grant of this gateway.
    const federatedAgent = await h.issuer.sign({
      sub: "admin",
      groups: ["cosmos-admins"],
      claims: { act: { sub: "agent:reporter" } },
    });
    expect((await statusOf(own, bearer(federatedAgent))).status).toBe(403);

    const [head, payload, sig] = agentToken.split(".");
    const forged = `${head}.${payload}.${sig.slice(0, -4)}AAAA`;
    expect((await statusOf(own, bearer(forged))).status).toBe(401);
    expect((await statusOf(own, { authorization: "Bearer" })).status).toBe(401);
  });

  it("stops answering once the person revokes the grant (401, the same unexpired token)", async () => {
    const own = await approvalFor(agentToken, "o3");
    expect((await statusOf(own, bearer(agentToken))).status).toBe(200);
    const revoked = await send("DELETE", `/api/grants/${encodeURIComponent(grant.id)}`, admin, {});
    expect(revoked.status, revoked.text).toBe(200);
    const after = await statusOf(own, bearer(agentToken));
    expect(after.status).toBe(401);
    expect(after.json.message).toMatch(/revoked/);
  });
});
