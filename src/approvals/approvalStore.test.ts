import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { classify } from "../cosmos/classify.js";
import { type ApprovalStore, openApprovalStore } from "./approvalStore.js";
import { approvalOperation, operationHash } from "./operation.js";

let dir: string;
let store: ApprovalStore;
const T0 = 1_800_000_000_000;
const SECRET = "the-confidential-document-text";

function newApproval(
  id: string,
  opts: { quorum?: number; approvers?: string; id?: string; ttl?: number } = {},
) {
  const operation = approvalOperation({
    method: "PUT",
    op: classify("PUT", `/dbs/shop/colls/orders/docs/${opts.id ?? "o1"}`, {
      "x-ms-documentdb-partitionkey": '["c1"]',
    }),
    body: Buffer.from(JSON.stringify({ id: opts.id ?? "o1", note: SECRET })),
    person: "ada",
    agent: "agent:bot",
  });
  return store.create({
    id,
    operation,
    operationHash: operationHash(operation),
    approvers: opts.approvers ?? "self",
    quorum: opts.quorum ?? 1,
    rule: 0,
    createdAt: T0,
    expiresAt: T0 + (opts.ttl ?? 60_000),
  });
}

const vote = (userId: string, at = T0 + 1) => ({
  userId,
  by: userId,
  credential: `cred-${userId}`,
  at,
  authenticatorData: "ad",
  clientDataJSON: "cd",
  signature: "sig",
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-approvals-"));
  store = openApprovalStore(join(dir, "approvals.db"));
});
afterEach(() => {
  try {
    store.close();
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

describe("approvals.db", () => {
  it("is mode 0600, and an approval keeps its operation with the body while it is open", () => {
    expect(statSync(join(dir, "approvals.db")).mode & 0o777).toBe(0o600);
    const a = newApproval("apr_1");
    expect(a).toMatchObject({
      status: "pending",
      quorum: 1,
      approvers: "self",
      votes: [],
      denial: null,
      endedAt: null,
    });
    expect(a.operation.body).toEqual({ id: "o1", note: SECRET });
    expect(store.findOpen(a.operationHash, T0 + 10)?.id).toBe("apr_1");
    expect(store.findOpen(a.operationHash, T0 + 60_000)).toBeUndefined();
    expect(store.countPending("ada", T0)).toBe(1);
    expect(store.nextExpiry()).toBe(T0 + 60_000);
  });

  it("a quorum needs distinct people: the same person twice is refused; the quorum approves", () => {
    newApproval("apr_q", { quorum: 2, approvers: "group:leads" });
    const first = store.addVote("apr_q", vote("u1"), T0 + 1);
    expect(first).toMatchObject({ ok: true, complete: false, record: { status: "pending" } });
    expect(store.addVote("apr_q", vote("u1", T0 + 2), T0 + 2)).toMatchObject({
      ok: false,
      why: "already_voted",
    });
    const second = store.addVote("apr_q", vote("u2"), T0 + 3);
    expect(second).toMatchObject({ ok: true, complete: true, record: { status: "approved" } });
    if (second.ok) expect(second.record.votes.map((v) => v.by)).toEqual(["u1", "u2"]);
    expect(store.addVote("apr_q", vote("u3"), T0 + 4)).toMatchObject({ ok: false, why: "not_pending" });
    expect(store.addVote("apr_none", vote("u3"), T0 + 4)).toMatchObject({ ok: false, why: "not_found" });
  });

  it("an expired approval takes no votes and cannot be used", () => {
    newApproval("apr_e", { ttl: 10 });
    expect(store.addVote("apr_e", vote("u1"), T0 + 10)).toMatchObject({ ok: false, why: "expired" });
    newApproval("apr_f", { ttl: 10, id: "o2" });
    store.addVote("apr_f", vote("u1"), T0 + 5);
    expect(store.consume("apr_f", T0 + 10)).toBe(false);
  });

  it("an approved approval is used once; using deletes the body", () => {
    newApproval("apr_u");
    expect(store.consume("apr_u", T0 + 1)).toBe(false); // pending: not usable
    store.addVote("apr_u", vote("ada"), T0 + 1);
    expect(store.consume("apr_u", T0 + 2)).toBe(true);
    expect(store.consume("apr_u", T0 + 3)).toBe(false);
    const used = store.get("apr_u");
    expect(used).toMatchObject({ status: "used", endedAt: T0 + 2 });
    expect(used?.operation.body).toBeNull();
    expect(used?.operation.bodySha256).toMatch(/^[0-9a-f]{64}$/);
    expect(store.findOpen(used!.operationHash, T0 + 3)).toBeUndefined();
  });

  it("deny records who and why, deletes the body, and the denial is found for the same operation until expiry", () => {
    const a = newApproval("apr_d");
    const denied = store.deny("apr_d", "bob", "not on a Friday", T0 + 5);
    expect(denied).toMatchObject({
      status: "denied",
      denial: { by: "bob", at: T0 + 5, reason: "not on a Friday" },
    });
    expect(denied?.operation.body).toBeNull();
    expect(store.deny("apr_d", "bob", "again", T0 + 6)).toBeUndefined();
    expect(store.findDenied(a.operationHash, T0 + 10)?.id).toBe("apr_d");
    expect(store.findDenied(a.operationHash, T0 + 60_000)).toBeUndefined();
  });

  it("expireDue expires open approvals whose time is up, deletes their bodies, and prune removes old ended ones", () => {
    newApproval("apr_x1", { ttl: 100 });
    newApproval("apr_x2", { ttl: 100_000, id: "o2" });
    const expired = store.expireDue(T0 + 100);
    expect(expired.map((a) => [a.id, a.status, a.operation.body])).toEqual([["apr_x1", "expired", null]]);
    expect(store.expireDue(T0 + 100)).toEqual([]);
    expect(store.nextExpiry()).toBe(T0 + 100_000);
    expect(
      store
        .list(T0, 10)
        .map((a) => a.id)
        .sort(),
    ).toEqual(["apr_x1", "apr_x2"]);
    expect(store.list(T0 + 101, 10).map((a) => a.id)).toEqual(["apr_x2"]);
    expect(store.prune(T0 + 101)).toBe(1);
    expect(store.get("apr_x1")).toBeUndefined();
    expect(store.get("apr_x2")).toBeDefined();
  });

  it("once an approval ends and the WAL is checkpointed, its body is nowhere in the files", () => {
    newApproval("apr_s");
    store.scrub();
    const bytes = () =>
      ["approvals.db", "approvals.db-wal"]
        .map((f) => {
          try {
            return readFileSync(join(dir, f)).toString("latin1");
          } catch {
            return "";
          }
        })
        .join("");
    expect(bytes()).toContain(SECRET);
    store.addVote("apr_s", vote("ada"), T0 + 1);
    expect(store.consume("apr_s", T0 + 2)).toBe(true);
    store.scrub();
    expect(bytes()).not.toContain(SECRET);
  });
});
