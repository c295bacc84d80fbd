/**
 * Approvals end to end: a real gateway (both planes, the embedded store), the real @azure/cosmos SDK
 * for the agent and the people, real WebAuthn taps by software authenticators in the console API,
 * the SSE stream, the webhook and the audit trail. Security tests try the attack (a tap over another
 * operation, a replayed or reused approval, the same person twice in a quorum, an approver outside
 * the group, the requester approving their own group approval) and assert the refusal.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { verifySignature } from "@simplewebauthn/server/helpers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPROVAL_REQUIRED_SUBSTATUS, type ApprovalView } from "../src/agents/contract.js";
import { approvalChallenge } from "../src/approvals/operation.js";
import type { AuditRecord } from "../src/audit/types.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { readAuditRecords, waitUntil } from "./helpers/auditProbe.js";
import { controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { sdkError } from "./helpers/sdkError.js";

const SECRET = "confidential-note-7d1f0c";

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
  shop-writer:
    - allow: ["*"]
      on: /dbs/shop
members:
  admin: ["group:cosmos-admins"]
  shop-writer: ["group:staff", "group:leads"]
approvals:
  - actions: [delete]
    on: /dbs/shop/colls/orders
    for: agents
    approvers: self
  - actions: [replace]
    on: /dbs/shop/colls/orders
    approvers: group:leads
    quorum: 2
  - actions: [delete]
    on: /dbs/shop/colls/short
    for: agents
    lifetime: 2s
`;

interface Person {
  name: string;
  key: SoftAuthenticator;
  cookie: string;
}

let h: Harness;
let hook: Server;
const hooked: unknown[] = [];
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
const people: Record<string, Person> = {};
let httpsAgent: HttpsAgent;
const clients: CosmosClient[] = [];

/** An @azure/cosmos client whose tokens are for `sub` (and the agent acting for them, when given). */
function client(sub: string, groups: string[], agent?: string): CosmosClient {
  const c = new CosmosClient({
    endpoint: h.endpoint,
    aadCredentials: {
      getToken: async () => ({
        token: await h.issuer.sign({ sub, groups, claims: agent ? { act: { sub: agent } } : {} }),
        expiresOnTimestamp: Date.now() + 600_000,
      }),
    },
    agent: httpsAgent,
    connectionPolicy: {
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
  clients.push(c);
  return c;
}

/** The approval ID and URL the 403's message names. */
function approvalOf(message: string): { id: string; url: string } {
  const id = /approval ID (apr_[A-Za-z0-9_-]+)/.exec(message)?.[1];
  const url = /Approve it at (\S+) /.exec(message)?.[1];
  if (!id || !url) throw new Error(`no approval ID and URL in: ${message}`);
  return { id, url };
}

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

async function invite(name: string, groups: string[]): Promise<Person> {
  const res = await post("/api/people/invite", { name, groups }, people.admin.cookie);
  expect(res.status, res.text).toBe(200);
  const key = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  const p = { name, key, cookie: await enroll(res.json.url, key) };
  people[name] = p;
  return p;
}

const view = async (p: Person, id: string) =>
  send("GET", `/api/approvals/${encodeURIComponent(id)}`, p.cookie);

/** Asks for options and taps: the approval's real WebAuthn ceremony. */
async function approve(p: Person, id: string, tap?: (o: PublicKeyCredentialRequestOptionsJSON) => unknown) {
  const options = await post(`/api/approvals/${id}/options`, {}, p.cookie);
  if (options.status !== 200) return options;
  const response = tap
    ? tap(options.json)
    : p.key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON);
  return post(`/api/approvals/${id}/approve`, { response }, p.cookie);
}

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

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      hooked.push(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", () => r()));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  h = await startHarness({
    upstream: "embedded",
    policy: POLICY,
    extraConfig: `approvals:\n  webhook: ${hookUrl}\n  webhookTimeout: 2s\n`,
  });
  httpsAgent = new HttpsAgent({ ca: h.gw.caPem, keepAlive: true });
  const adminKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  people.admin = { name: "admin", key: adminKey, cookie: await enroll(h.gw.firstAdminUrl!, adminKey) };
  await invite("ada", ["staff"]);
  await invite("bob", ["leads"]);
  await invite("cy", ["leads"]);
  await invite("dan", ["staff"]);

  const root = client("root", ["cosmos-admins"]);
  const { database } = await root.databases.createIfNotExists({ id: "shop" });
  for (const id of ["orders", "short"]) {
    const { container } = await database.containers.createIfNotExists({ id, partitionKey: "/customer" });
    for (const doc of ["o1", "o2", "o3", "o4", "o5"])
      await container.items.create({ id: doc, customer: "c1", note: SECRET, total: 10 });
  }
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.dispose();
  httpsAgent?.destroy();
  await h?.close();
  await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
});

describe("approvals through the real SDK and the console API", () => {
  const agentOrders = () => client("ada", ["staff"], "agent:copilot").database("shop").container("orders");

  it("an agent's delete gets 403/5302 with the approval ID and URL; the approval shows the exact operation", async () => {
    const e = await sdkError(() => agentOrders().item("o1", "c1").delete());
    expect(e.code).toBe(403);
    expect(e.substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
    const { id, url } = approvalOf(e.message);
    expect(url).toBe(`${h.controlUrl}/console/#/approvals/${id}`);
    const res = await view(people.ada, id);
    expect(res.status, res.text).toBe(200);
    const a = res.json as ApprovalView;
    expect(a).toMatchObject({
      id,
      status: "pending",
      approvers: "self",
      quorum: 1,
      rule: 0,
      approvals: [],
      denial: null,
      url,
      operation: {
        method: "DELETE",
        resource: "/dbs/shop/colls/orders/docs/o1",
        operation: "item.delete",
        actions: ["delete"],
        partitionKey: '["c1"]',
        body: null,
        bodySha256: "",
        person: "ada",
        agent: "agent:copilot",
      },
    });
    expect(a.operationHash).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(a.expiresAt) - Date.parse(a.createdAt)).toBe(15 * 60_000);
    // Ada's own request (no agent) is not held: the rule is for agents.
    // (Not run here: it would delete o1. Checked with o5 below.)
    const list = await send("GET", "/api/approvals", people.ada.cookie);
    expect((list.json.approvals as ApprovalView[]).map((x) => x.id)).toContain(id);
    // Nobody else sees it: approvers "self" is ada alone.
    expect((await view(people.bob, id)).status).toBe(404);
    expect(
      ((await send("GET", "/api/approvals", people.bob.cookie)).json.approvals as ApprovalView[]).map(
        (x) => x.id,
      ),
    ).not.toContain(id);
    expect((await send("GET", `/api/approvals/${id}`)).status).toBe(401);
    // The agent cannot reach the console API with its token: only a person's session can approve.
    const agentToken = await h.issuer.sign({
      sub: "ada",
      groups: ["staff"],
      claims: { act: { sub: "agent:copilot" } },
    });
    for (const [method, path] of [
      ["GET", `/api/approvals/${id}`],
      ["POST", `/api/approvals/${id}/options`],
      ["POST", `/api/approvals/${id}/approve`],
    ]) {
      const res = await fetch(`${h.controlUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" },
        body: method === "POST" ? "{}" : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    // The webhook announced it, without a body.
    await waitUntil(() => hooked.some((x) => (x as { id: string }).id === id), 5000, "the webhook");
    expect(hooked.find((x) => (x as { id: string }).id === id)).toMatchObject({
      type: "approval.requested",
      id,
      url,
      person: "ada",
      agent: "agent:copilot",
      operation: { method: "DELETE", resource: "/dbs/shop/colls/orders/docs/o1", partitionKey: '["c1"]' },
    });
  });

  it("a person's own delete is not held by a for: agents rule", async () => {
    await client("ada", ["staff"]).database("shop").container("orders").item("o5", "c1").delete();
  });

  it("a tap over another operation is refused; the right tap approves; the retried delete runs once", async () => {
    const orders = agentOrders();
    const first = approvalOf((await sdkError(() => orders.item("o1", "c1").delete())).message);
    const other = approvalOf((await sdkError(() => orders.item("o2", "c1").delete())).message);
    expect(other.id).not.toBe(first.id);
    const none = await approve(people.ada, first.id, () => undefined);
    expect(none.status).toBe(403); // no assertion at all
    expect(none.json.code).toBe("ERR_TAP_REQUIRED");
    // Options for o2's approval, the tap sent to o1's: the challenge names o2's operation.
    const optionsOther = await post(`/api/approvals/${other.id}/options`, {}, people.ada.cookie);
    const crossed = await post(
      `/api/approvals/${first.id}/approve`,
      { response: people.ada.key.authenticate(optionsOther.json) },
      people.ada.cookie,
    );
    expect(crossed.status, crossed.text).toBe(403);
    expect(crossed.json.code).toBe("ERR_TAP_REQUIRED");
    expect(crossed.json.message).toMatch(/ERR_WEBAUTHN_CHALLENGE/);
    // A made-up challenge (a tap over something else entirely) too.
    const forged = await approve(people.ada, first.id, (o) =>
      people.ada.key.authenticate(o, {
        challenge: Buffer.from("something else entirely!!").toString("base64url"),
      }),
    );
    expect(forged.status).toBe(403);
    expect((await view(people.ada, first.id)).json.status).toBe("pending");

    const ok = await approve(people.ada, first.id);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ id: first.id, status: "approved", approvals: [{ by: "ada" }] });
    // Approving twice: refused (it is no longer pending).
    expect((await approve(people.ada, first.id)).status).toBe(409);

    // The approval is for o1 only: o2's delete still waits (its own approval).
    expect(approvalOf((await sdkError(() => orders.item("o2", "c1").delete())).message).id).toBe(other.id);
    // The same delete, retried: runs once.
    await orders.item("o1", "c1").delete();
    const root = client("root", ["cosmos-admins"]).database("shop").container("orders");
    expect((await root.item("o1", "c1").read()).statusCode).toBe(404);
    expect((await view(people.ada, first.id)).json.status).toBe("used");
    // A replay of the approval: the next identical request needs a new approval.
    const replay = await sdkError(() => orders.item("o1", "c1").delete());
    expect(replay.substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
    expect(approvalOf(replay.message).id).not.toBe(first.id);
    // Another agent of the same person cannot ride on ada's approvals.
    await approve(people.ada, other.id);
    const otherAgent = client("ada", ["staff"], "agent:other").database("shop").container("orders");
    const rode = await sdkError(() => otherAgent.item("o2", "c1").delete());
    expect(approvalOf(rode.message).id).not.toBe(other.id);
    await orders.item("o2", "c1").delete();

    // The audit: requested, approved with the assertion (a verifiable proof), used; then data.request names it.
    const approved = await audited(
      (r) => r.type === "approval.approved" && r.details?.approval === first.id,
      "approval.approved",
    );
    expect(approved).toMatchObject({
      subject: "ada",
      subjectKind: "user",
      resource: "/dbs/shop/colls/orders/docs/o1",
      operation: "item.delete",
      method: "DELETE",
      partitionKey: '["c1"]',
      credentialName: "desk key",
      details: { approval: first.id, person: "ada", agent: "agent:copilot", complete: true, quorum: 1 },
    });
    const d = approved.details as Record<string, string>;
    const clientData = JSON.parse(Buffer.from(d.clientDataJSON, "base64url").toString());
    expect(clientData.challenge).toBe(approvalChallenge(first.id, d.operationHash));
    expect(clientData.type).toBe("webauthn.get");
    const signed = Buffer.concat([
      Buffer.from(d.authenticatorData, "base64url"),
      createHash("sha256").update(Buffer.from(d.clientDataJSON, "base64url")).digest(),
    ]);
    expect(
      await verifySignature({
        signature: new Uint8Array(Buffer.from(d.signature, "base64url")),
        data: new Uint8Array(signed),
        credentialPublicKey: new Uint8Array(Buffer.from(d.publicKey, "base64url")),
      }),
    ).toBe(true);
    expect(
      await audited((r) => r.type === "approval.requested" && r.details?.approval === first.id, "requested"),
    ).toMatchObject({
      subject: "ada",
      subjectKind: "agent",
      decision: "allow",
      details: { url: first.url },
    });
    expect(
      await audited((r) => r.type === "approval.used" && r.details?.approval === first.id, "used"),
    ).toMatchObject({
      subject: "ada",
      details: { approvedBy: "ada" },
    });
    const requests = readAuditRecords(h.gw.auditFile).filter(
      (r) =>
        r.type === "data.request" && r.resource === "/dbs/shop/colls/orders/docs/o1" && r.method === "DELETE",
    );
    expect(requests.find((r) => r.status === 403)).toMatchObject({ decision: "deny", substatus: 5302 });
    expect(requests.find((r) => r.status === 204)?.reason).toContain(`approval ${first.id} used`);
  });

  it("quorum 2 of group leads: two distinct people; the same person twice, the requester and outsiders are refused", async () => {
    const orders = client("ada", ["staff"]).database("shop").container("orders");
    const doc = { id: "o3", customer: "c1", note: SECRET, total: 99 };
    const e = await sdkError(() => orders.item("o3", "c1").replace(doc));
    expect(e.substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
    const { id } = approvalOf(e.message);
    const shown = (await view(people.bob, id)).json as ApprovalView;
    // The approval page shows the document exactly.
    expect(shown.operation).toMatchObject({
      method: "PUT",
      operation: "item.replace",
      body: doc,
      agent: null,
    });
    expect(shown).toMatchObject({ approvers: "group:leads", quorum: 2 });

    // Dan is not in leads: he cannot see it nor ask for options.
    expect((await view(people.dan, id)).status).toBe(404);
    expect((await post(`/api/approvals/${id}/options`, {}, people.dan.cookie)).status).toBe(404);
    const danKeyId = h.gw.identity.store.listCredentials(h.gw.identity.store.getUserByName("dan")!.id)[0].id;
    const bobOptions = (await post(`/api/approvals/${id}/options`, {}, people.bob.cookie)).json;
    const danTap = await post(
      `/api/approvals/${id}/approve`,
      { response: people.dan.key.authenticate(bobOptions, { credentialId: danKeyId }) },
      people.dan.cookie,
    );
    expect(danTap.status).toBe(404);
    // Ada asked: she may see it, not approve it.
    const self = await post(`/api/approvals/${id}/options`, {}, people.ada.cookie);
    expect(self.status).toBe(403);
    expect(self.json.code).toBe("ERR_NOT_AN_APPROVER");
    // Bob approves once (1 of 2): still refused.
    const b1 = await approve(people.bob, id);
    expect(b1.status, b1.text).toBe(200);
    expect(b1.json).toMatchObject({ status: "pending", approvals: [{ by: "bob" }] });
    expect((await sdkError(() => orders.item("o3", "c1").replace(doc))).message).toContain(
      "(1 of 2 approvals so far)",
    );
    // Bob again: refused before his key is asked.
    const b2 = await approve(people.bob, id);
    expect(b2.status).toBe(409);
    expect(b2.json.code).toBe("ERR_ALREADY_APPROVED");
    // Bob's tap sent as if it were cy's approval: cy's session, bob's key → refused.
    const optionsCy = await post(`/api/approvals/${id}/options`, {}, people.cy.cookie);
    const stolen = await post(
      `/api/approvals/${id}/approve`,
      {
        response: people.bob.key.authenticate(optionsCy.json, {
          credentialId: h.gw.identity.store.listCredentials(h.gw.identity.store.getUserByName("bob")!.id)[0]
            .id,
        }),
      },
      people.cy.cookie,
    );
    expect(stolen.status).toBe(403);
    // Cy approves: the quorum is met.
    const c1 = await approve(people.cy, id);
    expect(c1.json).toMatchObject({ status: "approved" });
    expect((c1.json as ApprovalView).approvals.map((x) => x.by).sort()).toEqual(["bob", "cy"]);

    // A changed body needs a new approval; the approved body runs once.
    const changed = await sdkError(() => orders.item("o3", "c1").replace({ ...doc, total: 100 }));
    expect(approvalOf(changed.message).id).not.toBe(id);
    const { resource } = await orders.item("o3", "c1").replace(doc);
    expect(resource?.total).toBe(99);
    expect(approvalOf((await sdkError(() => orders.item("o3", "c1").replace(doc))).message).id).not.toBe(id);
    // Another item, or another partition key, is another operation.
    expect((await sdkError(() => orders.item("o4", "c1").replace({ ...doc, id: "o4" }))).substatus).toBe(
      5302,
    );
  });

  it("a denial is audited and refuses the same operation with 403/5301 naming it", async () => {
    const orders = client("ada", ["staff"]).database("shop").container("orders");
    const doc = { id: "o4", customer: "c1", note: SECRET, total: 1 };
    const { id } = approvalOf((await sdkError(() => orders.item("o4", "c1").replace(doc))).message);
    // Dan, outside the group, cannot deny.
    expect((await post(`/api/approvals/${id}/deny`, { reason: "no" }, people.dan.cookie)).status).toBe(404);
    const denied = await post(
      `/api/approvals/${id}/deny`,
      { reason: "totals are frozen" },
      people.bob.cookie,
    );
    expect(denied.status, denied.text).toBe(200);
    expect(denied.json).toMatchObject({
      status: "denied",
      denial: { by: "bob", reason: "totals are frozen" },
    });
    expect(denied.json.operation.body).toBeNull();
    const again = await sdkError(() => orders.item("o4", "c1").replace(doc));
    expect(again).toMatchObject({ code: 403, substatus: 5301 });
    expect(again.message).toContain(`approval ${id}`);
    expect(again.message).toContain("denied by bob (totals are frozen)");
    expect((await approve(people.cy, id)).status).toBe(409);
    expect(
      await audited((r) => r.type === "approval.denied" && r.details?.approval === id, "denied"),
    ).toMatchObject({
      subject: "bob",
      decision: "deny",
      details: { denialReason: "totals are frozen", person: "ada" },
    });
  });

  it("approvals expire at their lifetime: audited, the body deleted, no longer approvable", async () => {
    const short = client("ada", ["staff"], "agent:copilot").database("shop").container("short");
    const { id } = approvalOf((await sdkError(() => short.item("o1", "c1").delete())).message);
    const expired = await audited(
      (r) => r.type === "approval.expired" && r.details?.approval === id,
      "approval.expired",
    );
    expect(expired).toMatchObject({
      subject: "cosmosgate",
      subjectKind: "system",
      decision: "deny",
      resource: "/dbs/shop/colls/short/docs/o1",
    });
    expect((await view(people.ada, id)).json.status).toBe("expired");
    const late = await post(`/api/approvals/${id}/options`, {}, people.ada.cookie);
    expect(late.status).toBe(409);
    expect(late.json.code).toBe("ERR_APPROVAL_NOT_PENDING");
    expect(approvalOf((await sdkError(() => short.item("o1", "c1").delete())).message).id).not.toBe(id);
  });

  it("the SSE stream delivers a new pending approval to the person who may approve it", async () => {
    const controller = new AbortController();
    const res = await fetch(`${h.controlUrl}/api/approvals/stream`, {
      headers: { cookie: `cg_session=${people.ada.cookie}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = "";
    const seen = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
        if (
          /"id":"apr_[^"]+","operation":\{[^}]*"resource":"\/dbs\/shop\/colls\/orders\/docs\/o4"[^}]*"agent":"agent:copilot"/.test(
            text,
          )
        )
          return;
      }
    })();
    const e = await sdkError(() => agentOrders().item("o4", "c1").delete());
    const { id } = approvalOf(e.message);
    await Promise.race([
      seen,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no event in: ${text}`)), 5000)),
    ]);
    controller.abort();
    const event = text.split("\n\n").find((block) => block.includes(`"id":"${id}"`))!;
    expect(event).toMatch(/^event: approval$/m);
    const data = JSON.parse(
      event
        .split("\n")
        .find((l) => l.startsWith("data: "))!
        .slice(6),
    ) as ApprovalView;
    expect(data).toMatchObject({
      id,
      status: "pending",
      operation: { operation: "item.delete", partitionKey: '["c1"]' },
    });
    // Not signed in: no stream.
    expect((await fetch(`${h.controlUrl}/api/approvals/stream`)).status).toBe(401);
  });

  it("writes without the CSRF token are refused", async () => {
    const { id } = approvalOf((await sdkError(() => agentOrders().item("o3", "c1").delete())).message);
    const res = await post(`/api/approvals/${id}/deny`, {}, people.ada.cookie, { csrf: false });
    expect(res.status).toBe(403);
    expect(res.json.code).toBe("ERR_CSRF");
    expect((await view(people.ada, id)).json.status).toBe("pending");
  });

  it("no document body is in the audit trail or the log; approvals.db keeps bodies only while open", async () => {
    const bytes = [h.gw.auditFile, `${h.gw.auditFile}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString("latin1"))
      .join("");
    expect(bytes).toContain("approval.approved");
    expect(bytes.includes(SECRET)).toBe(false);
    expect(h.logs.join("").includes(SECRET)).toBe(false);
    // Open approvals with bodies: the replace of o3 (changed body) and o4 are pending; deny them all.
    for (const a of (await send("GET", "/api/approvals", people.ada.cookie)).json
      .approvals as ApprovalView[]) {
      if (a.status === "pending" || a.status === "approved")
        expect((await post(`/api/approvals/${a.id}/deny`, {}, people.ada.cookie)).status).toBe(200);
    }
    const file = join(h.gw.stateDir, "approvals.db");
    await waitUntil(
      () =>
        ![file, `${file}-wal`]
          .filter((f) => existsSync(f))
          .some((f) => readFileSync(f).toString("latin1").includes(SECRET)),
      5000,
      "bodies gone from approvals.db",
    );
  });
});

describe("approvals.holdSeconds", () => {
  let held: Harness;
  afterAll(async () => {
    await held?.close();
  });

  it("holds the request open until it is approved, then runs it", async () => {
    held = await startHarness({
      upstream: "embedded",
      policy: POLICY,
      extraConfig: "approvals:\n  holdSeconds: 20\n",
    });
    const controlPort = Number(new URL(held.controlUrl).port);
    const api = controlPlaneClient(() => controlPort);
    const adminKey = createSoftAuthenticator({ rpId: "localhost", origin: held.controlUrl });
    const options = await api.post("/auth/webauthn/register/options", {
      invite: new URL(held.gw.firstAdminUrl!).searchParams.get("invite"),
    });
    const admin = (
      await api.post("/auth/webauthn/register/verify", {
        response: adminKey.register(options.json),
        nickname: "k",
      })
    ).cookie!;
    const inv = await api.post("/api/people/invite", { name: "ada", groups: ["staff"] }, admin);
    const adaKey = createSoftAuthenticator({ rpId: "localhost", origin: held.controlUrl });
    const reg = await api.post("/auth/webauthn/register/options", {
      invite: new URL(inv.json.url).searchParams.get("invite"),
    });
    const ada = (
      await api.post("/auth/webauthn/register/verify", { response: adaKey.register(reg.json), nickname: "k" })
    ).cookie!;

    const root = held.client("root", ["cosmos-admins"]);
    const { database } = await root.databases.createIfNotExists({ id: "shop" });
    const { container } = await database.containers.createIfNotExists({
      id: "orders",
      partitionKey: "/customer",
    });
    await container.items.create({ id: "h1", customer: "c1" });

    const token = await held.issuer.sign({
      sub: "ada",
      groups: ["staff"],
      claims: { act: { sub: "agent:copilot" } },
    });
    const started = Date.now();
    const request = held.raw("DELETE", "/dbs/shop/colls/orders/docs/h1", {
      authorization: `type=aad&ver=1.0&sig=${token}`,
      "x-ms-documentdb-partitionkey": '["c1"]',
      "x-ms-version": "2020-07-15",
    });
    // The approval appears while the request is held; ada approves it.
    let id: string | undefined;
    await waitUntil(
      async () => {
        const list = await api.send("GET", "/api/approvals", ada);
        id = (list.json?.approvals as ApprovalView[] | undefined)?.find((a) => a.status === "pending")?.id;
        return id !== undefined;
      },
      10_000,
      "the held request's approval",
    );
    const opts = await api.post(`/api/approvals/${id}/options`, {}, ada);
    const ok = await api.post(
      `/api/approvals/${id}/approve`,
      { response: adaKey.authenticate(opts.json) },
      ada,
    );
    expect(ok.status, ok.text).toBe(200);
    const res = await request;
    expect(res.status, res.body).toBe(204);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
