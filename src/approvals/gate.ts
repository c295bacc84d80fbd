import { APPROVAL_REQUIRED_SUBSTATUS } from "../agents/contract.js";
import type { CosmosOperation } from "../cosmos/types.js";
import type { ApprovalRecord } from "./approvalStore.js";
import type { Approvals, Requester } from "./approvals.js";
import { describeApprovers } from "./approvals.js";
import { approvalOperation, operationHash } from "./operation.js";
import { type CompiledApprovals, matchApproval } from "./rules.js";

/** Substatus of a request refused because its approval was denied (a denial, as policy's). */
const DENIED_SUBSTATUS = 5301;

/** What the gate decides: go on (with a note for the audit record), or refuse with a Cosmos-shaped 403. */
export type GateResult =
  | { proceed: true; note?: string }
  | {
      proceed: false;
      status: 403;
      substatus: number;
      message: string;
      approval?: { id: string; url: string };
    };

const PROCEED: GateResult = Object.freeze({ proceed: true });

/** Options of {@link createApprovalGate}. */
export interface GateOptions {
  approvals: Approvals;
  /** approvals.holdSeconds in ms: how long a request waits for its approval before the 403. */
  holdMs?: number;
}

/** The data path's approval check: called after an allow, before forwarding. */
export type ApprovalGate = (
  rules: CompiledApprovals,
  requester: Requester,
  op: CosmosOperation,
  method: string,
  body: Buffer | undefined,
  signal?: AbortSignal,
) => Promise<GateResult>;

/**
 * The approval gate of the data path. For a request some `approvals:` rule holds (matched after
 * the policy allowed it): the canonical operation and its hash; an approved, unused, unexpired
 * approval of that exact operation is used (single use) and the request proceeds; otherwise the
 * pending approval of that operation is reused or a new one made, and — after waiting up to
 * `holdMs` for it to be decided — the request is refused with 403 / {@link APPROVAL_REQUIRED_SUBSTATUS}
 * and a message naming the approval's ID and URL. A denied approval refuses the same operation
 * (403 / 5301) until the approval would have expired.
 *
 * Requests no rule matches cost one loop over the rules; the gateway does not call the gate at all
 * when the policy has no approval rules.
 *
 * @example
 * ```ts
 * const gate = createApprovalGate({ approvals, holdMs: 0 });
 * const r = await gate(policy.approvals, principal, op, "DELETE", undefined);
 * if (!r.proceed) reply403(r.substatus, r.message);
 * ```
 */
export function createApprovalGate(opts: GateOptions): ApprovalGate {
  const { approvals } = opts;
  const holdMs = opts.holdMs ?? 0;
  return async (rules, requester, op, method, body, signal) => {
    const rule = matchApproval(rules, requester, op);
    if (rule === undefined) return PROCEED;
    const operation = approvalOperation({
      method,
      op,
      body,
      person: requester.sub,
      agent: requester.actor?.sub,
    });
    const hash = operationHash(operation);
    const acquired = await approvals.acquire(rule, operation, hash, requester);
    switch (acquired.kind) {
      case "too_many":
        return tooMany(operation.operation, operation.resource, operation.person, acquired.pending);
      case "denied":
        return denied(acquired.record, approvals);
      case "use":
        if (await approvals.use(acquired.record, requester)) return used(acquired.record);
        // Another request used it first: this one needs an approval of its own.
        return decide(await approvals.acquire(rule, operation, hash, requester), requester, signal);
      case "pending":
        return decide(acquired, requester, signal);
    }
  };

  /** A pending approval: wait for it (approvals.holdSeconds), use it if it got approved, else refuse. */
  async function decide(
    acquired: Awaited<ReturnType<Approvals["acquire"]>>,
    requester: Requester,
    signal: AbortSignal | undefined,
  ): Promise<GateResult> {
    if (acquired.kind === "too_many")
      return tooMany("operation", "this resource", requester.sub, acquired.pending);
    if (acquired.kind === "denied") return denied(acquired.record, approvals);
    let a = acquired.record;
    if (a.status === "pending" && holdMs > 0 && signal?.aborted !== true) {
      a = (await approvals.waitFor(a.id, holdMs, signal)) ?? approvals.store.get(a.id) ?? a;
    }
    if (a.status === "approved" && (await approvals.use(a, requester))) return used(a);
    if (a.status === "denied") return denied(a, approvals);
    const current = a.status === "pending" ? a : (approvals.store.get(a.id) ?? a);
    if (current.status !== "pending" && current.status !== "approved") {
      // Used by another request, or expired, while this one waited: it needs a new approval.
      return {
        proceed: false,
        status: 403,
        substatus: APPROVAL_REQUIRED_SUBSTATUS,
        message: `approval ${a.id} is ${current.status}: this request needs a new approval; retry it to ask for one.`,
        approval: { id: a.id, url: approvals.view(a).url },
      };
    }
    const url = approvals.view(current).url;
    return {
      proceed: false,
      status: 403,
      substatus: APPROVAL_REQUIRED_SUBSTATUS,
      message: approvalRequiredMessage(current, url),
      approval: { id: current.id, url },
    };
  }
}

function tooMany(operation: string, resource: string, person: string, pending: number): GateResult {
  return {
    proceed: false,
    status: 403,
    substatus: APPROVAL_REQUIRED_SUBSTATUS,
    message: `this ${operation} on ${resource} needs approval, but ${person} already has ${pending} pending approvals (approvals.maxPending): decide or deny some of them, or wait for them to expire, then retry.`,
  };
}

function used(a: ApprovalRecord): GateResult {
  return {
    proceed: true,
    note: `approval ${a.id} used (approved by ${a.votes.map((v) => v.by).join(", ")})`,
  };
}

function denied(a: ApprovalRecord, approvals: Approvals): GateResult {
  const by = a.denial === null ? "an approver" : a.denial.by;
  const reason = a.denial?.reason ? ` (${a.denial.reason})` : "";
  return {
    proceed: false,
    status: 403,
    substatus: DENIED_SUBSTATUS,
    message: `approval ${a.id} for this ${a.operation.operation} on ${a.operation.resource} was denied by ${by}${reason}; the same operation is refused until ${new Date(a.expiresAt).toISOString()}. Change the request or ask the approver.`,
    approval: { id: a.id, url: approvals.view(a).url },
  };
}

/**
 * The 403's message: names the approval ID and the URL where it is approved, who may approve, and
 * that the same request, retried once approved, runs once. Clients (the MCP server) find the ID
 * after "approval ID " and the URL after "Approve it at " (followed by a space). The 403's body
 * also carries them as `approval: {id, url}` beside Cosmos DB's `code` and `message`.
 */
export function approvalRequiredMessage(a: ApprovalRecord, url: string): string {
  const got = a.votes.length > 0 ? ` (${a.votes.length} of ${a.quorum} approvals so far)` : "";
  return (
    `approval required: this ${a.operation.operation} on ${a.operation.resource} needs approval by ` +
    `${describeApprovers(a)}: approval ID ${a.id}${got}. Approve it at ${url} and then retry the same ` +
    `request: it runs once; any change to the request needs a new approval. The approval expires at ${new Date(a.expiresAt).toISOString()}.`
  );
}
