import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { APPROVAL_REQUIRED_SUBSTATUS } from "../agents/contract.js";
import type { AuditEvent } from "../audit/types.js";
import { classify } from "../cosmos/classify.js";
import { openApprovalStore } from "./approvalStore.js";
import { type Approvals, createApprovals, type Requester } from "./approvals.js";
import { type ApprovalGate, createApprovalGate, type GateResult } from "./gate.js";
import { type CompiledApprovals, compileApprovalRules } from "./rules.js";
import type { ApprovalWebhookSummary } from "./webhook.js";

let dir: string;
let approvals: Approvals;
let events: AuditEvent[];
let hooks: ApprovalWebhookSummary[];

const ada: Requester = {
  sub: "ada",
  kind: "agent",
  issuer: "https://issuer",
  jti: "j1",
  actor: { sub: "agent:bot" },
};
const adaHerself: Requester = { sub: "ada", kind: "user", issuer: "https://issuer", jti: "j2" };
const adaPerson = { id: "u-ada", name: "ada", groups: ["staff"] };
const bob = { id: "u-bob", name: "bob", groups: ["leads"] };
const cy = { id: "u-cy", name: "cy", groups: ["leads"] };
const key = {
  id: "k1",
  nickname: "desk",
  aaguid: "0000",
  deviceBound: true,
  publicKey: new Uint8Array([1, 2, 3]),
};
const assertion = { authenticatorData: "AD", clientDataJSON: "CD", signature: "SIG" };

function start(
  rules: Parameters<typeof compileApprovalRules>[0],
  opts: { holdMs?: number; maxPending?: number } = {},
) {
  approvals = createApprovals({
    store: openApprovalStore(join(dir, "approvals.db")),
    controlPlaneUrl: "http://localhost:8080",
    audit: async (e) => {
      events.push(e);
    },
    instance: "inst",
    log: pino({ level: "silent" }),
    maxPending: opts.maxPending,
    webhook: async (s) => {
      hooks.push(s);
    },
  });
  return {
    gate: createApprovalGate({ approvals, holdMs: opts.holdMs }),
    compiled: compileApprovalRules(rules)!,
  };
}

const del = (id = "o1", pk = '["c1"]') =>
  classify("DELETE", `/dbs/shop/colls/orders/docs/${id}`, { "x-ms-documentdb-partitionkey": pk });

async function ask(gate: ApprovalGate, rules: CompiledApprovals, who = ada, id = "o1", pk = '["c1"]') {
  return gate(rules, who, del(id, pk), "DELETE", undefined);
}

function refused(r: GateResult) {
  if (r.proceed) throw new Error("expected a refusal");
  return r;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-gate-"));
  events = [];
  hooks = [];
});
afterEach(async () => {
  await approvals?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the approval gate", () => {
  it("a request no rule holds proceeds with no approval and no record", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/crm" }]);
    expect(await ask(gate, compiled)).toEqual({ proceed: true });
    expect(events).toEqual([]);
    expect(approvals.list()).toEqual([]);
  });

  it("needs approval: 403/5302 naming the ID and URL; the same request reuses the pending approval", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }]);
    const first = refused(await ask(gate, compiled));
    expect(first.substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
    const id = first.approval!.id;
    expect(id).toMatch(/^apr_[A-Za-z0-9_-]{16}$/);
    expect(first.approval!.url).toBe(`http://localhost:8080/console/#/approvals/${id}`);
    expect(first.message).toContain(`approval ID ${id}`);
    expect(first.message).toContain(`Approve it at ${first.approval!.url} `);
    const again = refused(await ask(gate, compiled));
    expect(again.approval!.id).toBe(id);
    expect(events.map((e) => e.type)).toEqual(["approval.requested"]);
    expect(events[0]).toMatchObject({
      subject: "ada",
      subjectKind: "agent",
      resource: "/dbs/shop/colls/orders/docs/o1",
      operation: "item.delete",
      partitionKey: '["c1"]',
      details: { approval: id, person: "ada", agent: "agent:bot", approvers: "self", quorum: 1 },
    });
    // The webhook got the summary, without a body.
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({
      id,
      person: "ada",
      agent: "agent:bot",
      operation: { operation: "item.delete" },
    });
    expect("body" in hooks[0].operation).toBe(false);
  });

  it("once approved, the same request proceeds once; a second retry needs a new approval", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }]);
    const id = refused(await ask(gate, compiled)).approval!.id;
    const a = approvals.get(id)!;
    expect(approvals.isApprover(adaPerson, a)).toBe(true);
    expect(approvals.isApprover(bob, a)).toBe(false);
    expect((await approvals.approve(a, adaPerson, key, assertion, {})).ok).toBe(true);
    const ok = await ask(gate, compiled);
    expect(ok).toEqual({ proceed: true, note: `approval ${id} used (approved by ada)` });
    const next = refused(await ask(gate, compiled));
    expect(next.approval!.id).not.toBe(id);
    expect(events.map((e) => e.type)).toEqual([
      "approval.requested",
      "approval.approved",
      "approval.used",
      "approval.requested",
    ]);
    const approved = events[1];
    expect(approved).toMatchObject({
      subject: "ada",
      credential: "k1",
      details: {
        complete: true,
        authenticatorData: "AD",
        clientDataJSON: "CD",
        signature: "SIG",
        publicKey: "AQID",
      },
    });
  });

  it("another item, partition key or principal is another operation: the approval does not carry over", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }]);
    const id = refused(await ask(gate, compiled)).approval!.id;
    await approvals.approve(approvals.get(id)!, adaPerson, key, assertion, {});
    expect(refused(await ask(gate, compiled, ada, "o2")).approval!.id).not.toBe(id);
    expect(refused(await ask(gate, compiled, ada, "o1", '["c2"]')).approval!.id).not.toBe(id);
    // Ada herself (no agent) is not the agent that asked.
    expect(refused(await ask(gate, compiled, adaHerself)).approval!.id).not.toBe(id);
    expect((await ask(gate, compiled)).proceed).toBe(true);
  });

  it("group approvers with a quorum: distinct members, never the person who asked", async () => {
    const { gate, compiled } = start([
      { actions: ["delete"], on: "/dbs/shop", approvers: "group:leads", quorum: 2 },
    ]);
    const id = refused(await ask(gate, compiled)).approval!.id;
    const a = approvals.get(id)!;
    // Ada asked: even in the group she could not approve.
    expect(approvals.isApprover({ ...adaPerson, groups: ["leads"] }, a)).toBe(false);
    expect(approvals.isApprover({ ...bob, groups: [] }, a)).toBe(false);
    expect(approvals.mayView(adaPerson, a)).toBe(true);
    expect(approvals.mayView({ id: "u-z", name: "zed", groups: [] }, a)).toBe(false);
    expect(await approvals.approve(a, bob, key, assertion, {})).toMatchObject({ ok: true, complete: false });
    expect(await approvals.approve(a, bob, key, assertion, {})).toMatchObject({
      ok: false,
      why: "already_voted",
    });
    expect(refused(await ask(gate, compiled)).message).toContain("(1 of 2 approvals so far)");
    expect(await approvals.approve(a, cy, key, assertion, {})).toMatchObject({ ok: true, complete: true });
    expect((await ask(gate, compiled)).proceed).toBe(true);
  });

  it("a denied approval refuses the same operation (403/5301) until its expiry; another operation may ask", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop", approvers: "group:leads" }]);
    const id = refused(await ask(gate, compiled)).approval!.id;
    const denied = await approvals.deny(approvals.get(id)!, bob, "not today", {});
    expect(denied?.status).toBe("denied");
    const again = refused(await ask(gate, compiled));
    expect(again.substatus).toBe(5301);
    expect(again.message).toContain(`approval ${id}`);
    expect(again.message).toContain("denied by bob (not today)");
    expect(refused(await ask(gate, compiled, ada, "o2")).substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
    expect(events.find((e) => e.type === "approval.denied")).toMatchObject({
      subject: "bob",
      decision: "deny",
      details: { approval: id, denialReason: "not today" },
    });
  });

  it("approvals expire at their lifetime (audited); the request then asks for a new one", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop", lifetime: "1s" }]);
    const id = refused(await ask(gate, compiled)).approval!.id;
    await approvals.approve(approvals.get(id)!, adaPerson, key, assertion, {});
    const expired = new Promise<void>((resolve) => {
      const off = approvals.subscribe((a) => {
        if (a.id === id && a.status === "expired") {
          off();
          resolve();
        }
      });
    });
    await expired;
    expect(approvals.get(id)).toMatchObject({ status: "expired", operation: { body: null } });
    const record = events.find((e) => e.type === "approval.expired");
    expect(record).toMatchObject({
      subject: "cosmosgate",
      subjectKind: "system",
      decision: "deny",
      details: { approval: id, approvedBy: "ada" },
    });
    expect(refused(await ask(gate, compiled)).approval!.id).not.toBe(id);
  });

  it("holdMs: the request waits for the approval and proceeds when it is approved in time", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }], { holdMs: 5000 });
    const off = approvals.subscribe((a) => {
      if (a.status === "pending") {
        off();
        setTimeout(() => void approvals.approve(approvals.get(a.id)!, adaPerson, key, assertion, {}), 50);
      }
    });
    const started = Date.now();
    const r = await ask(gate, compiled);
    expect(r.proceed).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("holdMs: a request not decided in time gets the 403 after the hold", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }], { holdMs: 150 });
    const started = Date.now();
    const r = refused(await ask(gate, compiled));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(r.substatus).toBe(APPROVAL_REQUIRED_SUBSTATUS);
  });

  it("concurrent identical requests share one pending approval; an approval is used by one request only", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }]);
    const all = await Promise.all([1, 2, 3, 4].map(() => ask(gate, compiled)));
    const ids = new Set(all.map((r) => refused(r).approval!.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    await approvals.approve(approvals.get(id)!, adaPerson, key, assertion, {});
    const runs = await Promise.all([1, 2, 3, 4].map(() => ask(gate, compiled)));
    expect(runs.filter((r) => r.proceed)).toHaveLength(1);
    expect(events.filter((e) => e.type === "approval.used")).toHaveLength(1);
  });

  it("maxPending bounds the pending approvals one person may have", async () => {
    const { gate, compiled } = start([{ actions: ["delete"], on: "/dbs/shop" }], { maxPending: 2 });
    refused(await ask(gate, compiled, ada, "a"));
    refused(await ask(gate, compiled, ada, "b"));
    const third = refused(await ask(gate, compiled, ada, "c"));
    expect(third.approval).toBeUndefined();
    expect(third.message).toMatch(/already has 2 pending approvals \(approvals.maxPending\)/);
    expect(approvals.list()).toHaveLength(2);
  });
});
