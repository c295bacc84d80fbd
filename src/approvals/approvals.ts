import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { ApprovalOperation, ApprovalView } from "../agents/contract.js";
import type { AuditEvent } from "../audit/types.js";
import type { ApprovalRecord, ApprovalStore, ApprovalVote } from "./approvalStore.js";
import { ENDED_APPROVAL_RETENTION_MS } from "./approvalStore.js";
import type { CompiledApprovalRule } from "./rules.js";
import type { ApprovalWebhookSummary } from "./webhook.js";

/** A person as approvals see them: a gateway user. */
export interface ApprovalPerson {
  id: string;
  name: string;
  groups: readonly string[];
}

/** Who asked, from the data plane's principal. */
export interface Requester {
  sub: string;
  kind: string;
  issuer: string;
  jti?: string;
  credential?: string;
  session?: string;
  actor?: { sub: string };
}

/** Where an audit record of an approval event comes from (a control-plane request). */
export interface EventOrigin {
  clientAddress?: string;
  userAgent?: string;
  session?: string;
}

/** The key that signed an approval, as the audit record describes it. */
export interface SigningKey {
  id: string;
  nickname: string;
  aaguid: string;
  deviceBound: boolean;
  /** COSE public key bytes: written to the record so the assertion can be verified from it alone. */
  publicKey: Uint8Array;
}

/** Options of {@link createApprovals}. */
export interface ApprovalsOptions {
  store: ApprovalStore;
  /** The control plane's public URL (no trailing slash): approvals are at {url}/console/#/approvals/ID. */
  controlPlaneUrl: string;
  /** Appends an audit record (the durable writer); its failure is logged, never thrown. */
  audit: (event: AuditEvent) => Promise<unknown>;
  /** The gateway instance written in every record. */
  instance?: string;
  log: Logger;
  clock?: () => number;
  /** Pending approvals one person may have at a time. Default 100. */
  maxPending?: number;
  /** Announces new pending approvals (approvals.webhook); never awaited. */
  webhook?: (summary: ApprovalWebhookSummary) => Promise<void>;
}

/** What the data path learns about a request that matched an approval rule. */
export type Acquired =
  | { kind: "use"; record: ApprovalRecord }
  | { kind: "pending"; record: ApprovalRecord; created: boolean }
  | { kind: "denied"; record: ApprovalRecord }
  | { kind: "too_many"; pending: number };

/** The approvals of one gateway: state in approvals.db, events to the audit, live updates to listeners. */
export interface Approvals {
  readonly store: ApprovalStore;
  /**
   * For the data path: the open approval of this exact operation (pending or approved), or a new
   * pending one. Synchronous between the look-up and the insert, so concurrent identical requests
   * share one approval.
   */
  acquire(
    rule: CompiledApprovalRule,
    operation: ApprovalOperation,
    hash: string,
    requester: Requester,
  ): Promise<Acquired>;
  /** Uses an approved approval (single use): true for exactly one caller; audited as approval.used. */
  use(record: ApprovalRecord, requester: Requester): Promise<boolean>;
  /** Resolves when the approval leaves `pending` (with its new state) or after `ms` (with undefined). */
  waitFor(id: string, ms: number, signal?: AbortSignal): Promise<ApprovalRecord | undefined>;
  /** An approval by id, expired first if its time is up. */
  get(id: string): ApprovalRecord | undefined;
  /** Open approvals and those ended in the last 7 days, newest first. */
  list(): ApprovalRecord[];
  /** The API's view of an approval. */
  view(record: ApprovalRecord): ApprovalView;
  /** May this person see the approval (the requester, or one of its approvers)? */
  mayView(person: ApprovalPerson, record: ApprovalRecord): boolean;
  /** Is this person one of the approval's approvers (self: the requester; group:G: members but the requester)? */
  isApprover(person: ApprovalPerson, record: ApprovalRecord): boolean;
  /** Records a verified tap; audited as approval.approved with the assertion. */
  approve(
    record: ApprovalRecord,
    person: ApprovalPerson,
    key: SigningKey,
    assertion: { authenticatorData: string; clientDataJSON: string; signature: string; userHandle?: string },
    origin: EventOrigin,
  ): Promise<ReturnType<ApprovalStore["addVote"]>>;
  /** Denies an open approval; audited as approval.denied. Undefined when it was not open. */
  deny(
    record: ApprovalRecord,
    person: ApprovalPerson,
    reason: string,
    origin: EventOrigin,
  ): Promise<ApprovalRecord | undefined>;
  /** Expires what is due now (audited as approval.expired); also runs on a timer. */
  expireDue(): Promise<void>;
  /** Calls `listener` with every approval that appears or changes; returns the unsubscribe. */
  subscribe(listener: (record: ApprovalRecord) => void): () => void;
  close(): Promise<void>;
}

const LIST_ENDED_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Builds the approvals service over its store: approvals are created by the data path's gate,
 * decided in the control plane, expired by a timer set for the next expiry (and checked again on
 * every read), and every change is audited (approval.requested, .approved with the assertion,
 * .denied, .expired, .used), announced to subscribers (the SSE stream, held requests) and — for a
 * new pending approval — to the webhook.
 *
 * @example
 * ```ts
 * const approvals = createApprovals({ store, controlPlaneUrl, audit: (e) => writer.append(e), log });
 * ```
 */
export function createApprovals(opts: ApprovalsOptions): Approvals {
  const { store, log } = opts;
  const clock = opts.clock ?? Date.now;
  const maxPending = opts.maxPending ?? 100;
  const listeners = new Set<(record: ApprovalRecord) => void>();
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let closed = false;
  let lastPrune = 0;

  const url = (id: string) => `${opts.controlPlaneUrl}/console/#/approvals/${encodeURIComponent(id)}`;

  let scrubbing: NodeJS.Immediate | undefined;
  /** After an approval ended: its body is gone from the file; empty the WAL too (soon, once). */
  const scrub = () => {
    if (scrubbing !== undefined || closed) return;
    scrubbing = setImmediate(() => {
      scrubbing = undefined;
      if (closed) return;
      try {
        store.scrub();
      } catch (err) {
        log.warn({ problem: (err as Error).message }, "approvals: could not checkpoint approvals.db");
      }
    });
  };

  const notify = (record: ApprovalRecord) => {
    if (record.status !== "pending" && record.status !== "approved") scrub();
    for (const listener of [...listeners]) {
      try {
        listener(record);
      } catch (err) {
        log.error({ problem: (err as Error).message }, "approvals: a listener failed");
      }
    }
  };

  const record = async (event: AuditEvent) => {
    try {
      await opts.audit(event);
    } catch (err) {
      log.error({ problem: (err as Error).message, type: event.type }, "audit of an approval event failed");
    }
  };

  const base = (type: string, a: ApprovalRecord, time: number): AuditEvent => ({
    time,
    type,
    instance: opts.instance,
    subject: "",
    operation: a.operation.operation,
    method: a.operation.method,
    actions: [...a.operation.actions],
    resource: a.operation.resource,
    partitionKey: a.operation.partitionKey ?? undefined,
    decision: "allow",
    reason: "",
    status: 0,
    durationMs: 0,
  });

  /** The audit fields naming who asked: the person (and their token and key). */
  const asked = (requester: Requester): Partial<AuditEvent> => ({
    subject: requester.sub,
    subjectKind: requester.kind,
    issuer: requester.issuer,
    jti: requester.jti,
    credential: requester.credential,
    session: requester.session,
  });

  /** The audit fields naming who decided (approved or denied), from the console. */
  const decided = (person: ApprovalPerson, origin: EventOrigin): Partial<AuditEvent> => ({
    subject: person.name,
    subjectKind: "user",
    session: origin.session,
    clientAddress: origin.clientAddress,
    userAgent: origin.userAgent,
  });

  const facts = (a: ApprovalRecord): Record<string, string | number | boolean> => ({
    approval: a.id,
    operationHash: a.operationHash,
    person: a.operation.person,
    ...(a.operation.agent !== null ? { agent: a.operation.agent } : {}),
    ...(a.operation.bodySha256 !== "" ? { bodySha256: a.operation.bodySha256 } : {}),
    rule: a.rule,
    approvers: a.approvers,
    quorum: a.quorum,
    expiresAt: new Date(a.expiresAt).toISOString(),
  });

  const schedule = () => {
    if (closed) return;
    let next: number | undefined;
    try {
      next = store.nextExpiry();
    } catch (err) {
      log.error({ problem: (err as Error).message }, "approvals: could not read the next expiry");
      return;
    }
    if (next === undefined) {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (timer !== undefined && timerAt <= next) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = next;
    // setTimeout's bound is about 24.8 days; approvals live at most 7.
    const delay = Math.min(Math.max(0, next - clock()) + 5, 2 ** 31 - 1);
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      void expireDue();
    }, delay);
    timer.unref();
  };

  const expireDue = async () => {
    if (closed) return;
    const now = clock();
    let expired: ApprovalRecord[];
    try {
      expired = store.expireDue(now);
      if (now - lastPrune > 60 * 60 * 1000) {
        lastPrune = now;
        store.prune(now - ENDED_APPROVAL_RETENTION_MS);
      }
    } catch (err) {
      log.error({ problem: (err as Error).message }, "approvals: could not expire approvals");
      return;
    }
    for (const a of expired) {
      notify(a);
      await record({
        ...base("approval.expired", a, now),
        subject: "cosmosgate",
        subjectKind: "system",
        decision: "deny",
        reason: `approval ${a.id} expired ${expiredHow(a)}; its operation's body is deleted`,
        details: { ...facts(a), approvals: a.votes.length, approvedBy: a.votes.map((v) => v.by).join(",") },
      });
    }
    schedule();
  };

  /** Expired approvals are taken out before any read, so nobody sees or uses one past its time. */
  const sweep = () => {
    if (timerAt <= clock()) void expireDue();
  };

  const isApprover = (person: ApprovalPerson, a: ApprovalRecord): boolean => {
    if (a.approvers === "self") return person.name === a.operation.person;
    if (!a.approvers.startsWith("group:")) return false;
    // The person who asked (or for whom an agent asked) never approves their own request for a group.
    return person.name !== a.operation.person && person.groups.includes(a.approvers.slice(6));
  };

  const service: Approvals = {
    store,

    async acquire(rule, operation, hash, requester) {
      await expireIfDue();
      const now = clock();
      const open = store.findOpen(hash, now);
      if (open !== undefined) {
        return open.status === "approved"
          ? { kind: "use", record: open }
          : { kind: "pending", record: open, created: false };
      }
      const denied = store.findDenied(hash, now);
      if (denied !== undefined) return { kind: "denied", record: denied };
      const pending = store.countPending(operation.person, now);
      if (pending >= maxPending) return { kind: "too_many", pending };
      const created = store.create({
        id: newApprovalId(),
        operation,
        operationHash: hash,
        approvers: rule.approvers,
        quorum: rule.quorum,
        rule: rule.index,
        createdAt: now,
        expiresAt: now + rule.lifetimeMs,
      });
      schedule();
      notify(created);
      opts.webhook?.(webhookSummary(created, url(created.id))).catch(() => {});
      await record({
        ...base("approval.requested", created, now),
        ...asked(requester),
        reason: `${operation.operation} on ${operation.resource} needs approval by ${describeApprovers(created)} (policy approvals rule ${rule.index}); approval ${created.id} is pending`,
        details: { ...facts(created), url: url(created.id) },
      });
      return { kind: "pending", record: created, created: true };
    },

    async use(a, requester) {
      const now = clock();
      if (!store.consume(a.id, now)) return false;
      const used = store.get(a.id) ?? a;
      notify(used);
      await record({
        ...base("approval.used", used, now),
        ...asked(requester),
        reason: `approval ${a.id} (approved by ${a.votes.map((v) => v.by).join(", ")}) used by the request it was given for; it cannot be used again`,
        details: { ...facts(used), approvedBy: a.votes.map((v) => v.by).join(",") },
      });
      return true;
    },

    waitFor(id, ms, signal) {
      return new Promise((resolve) => {
        let done = false;
        const finish = (value: ApprovalRecord | undefined) => {
          if (done) return;
          done = true;
          clearTimeout(t);
          unsubscribe();
          signal?.removeEventListener("abort", onAbort);
          resolve(value);
        };
        const onAbort = () => finish(undefined);
        const unsubscribe = service.subscribe((a) => {
          if (a.id === id && a.status !== "pending") finish(a);
        });
        const t = setTimeout(() => finish(undefined), ms);
        signal?.addEventListener("abort", onAbort, { once: true });
        // It may have changed before we listened.
        const now = store.get(id);
        if (now === undefined || now.status !== "pending") finish(now);
      });
    },

    get(id) {
      sweep();
      const a = store.get(id);
      if (a !== undefined && (a.status === "pending" || a.status === "approved") && a.expiresAt <= clock()) {
        // Its timer has not fired yet: shown as expired (the timer records it).
        void expireDue();
        return { ...a, status: "expired", operation: { ...a.operation, body: null } };
      }
      return a;
    },

    list() {
      sweep();
      const now = clock();
      return store
        .list(now - LIST_ENDED_MS, 500)
        .map((a) =>
          (a.status === "pending" || a.status === "approved") && a.expiresAt <= now
            ? { ...a, status: "expired" as const, operation: { ...a.operation, body: null } }
            : a,
        );
    },

    view(a) {
      return {
        id: a.id,
        operation: a.operation,
        operationHash: a.operationHash,
        status: a.status,
        approvers: a.approvers,
        quorum: a.quorum,
        approvals: a.votes.map((v) => ({
          by: v.by,
          credential: v.credential,
          at: new Date(v.at).toISOString(),
        })),
        denial:
          a.denial === null
            ? null
            : { by: a.denial.by, at: new Date(a.denial.at).toISOString(), reason: a.denial.reason },
        createdAt: new Date(a.createdAt).toISOString(),
        expiresAt: new Date(a.expiresAt).toISOString(),
        url: url(a.id),
        rule: a.rule,
      };
    },

    mayView(person, a) {
      return person.name === a.operation.person || isApprover(person, a);
    },

    isApprover,

    async approve(a, person, key, assertion, origin) {
      const now = clock();
      const vote: ApprovalVote = {
        userId: person.id,
        by: person.name,
        credential: key.id,
        at: now,
        authenticatorData: assertion.authenticatorData,
        clientDataJSON: assertion.clientDataJSON,
        signature: assertion.signature,
      };
      const result = store.addVote(a.id, vote, now);
      if (!result.ok) return result;
      const r = result.record;
      notify(r);
      await record({
        ...base("approval.approved", r, now),
        ...decided(person, origin),
        credential: key.id,
        credentialName: key.nickname,
        aaguid: key.aaguid,
        deviceBound: key.deviceBound,
        reason: result.complete
          ? `approved by ${r.votes.map((v) => v.by).join(", ")} (${r.votes.length} of ${r.quorum}): the same request may now run once`
          : `approved by ${person.name} (${r.votes.length} of ${r.quorum}): waiting for ${r.quorum - r.votes.length} more`,
        details: {
          ...facts(r),
          approvals: r.votes.length,
          complete: result.complete,
          // The assertion, as the authenticator sent it: with the public key, it proves the tap.
          credential: key.id,
          authenticatorData: assertion.authenticatorData,
          clientDataJSON: assertion.clientDataJSON,
          signature: assertion.signature,
          ...(assertion.userHandle !== undefined ? { userHandle: assertion.userHandle } : {}),
          publicKey: Buffer.from(key.publicKey).toString("base64url"),
        },
      });
      return result;
    },

    async deny(a, person, reason, origin) {
      const now = clock();
      const denied = store.deny(a.id, person.name, reason, now);
      if (denied === undefined) return undefined;
      notify(denied);
      await record({
        ...base("approval.denied", denied, now),
        ...decided(person, origin),
        decision: "deny",
        reason: `denied by ${person.name}${reason === "" ? "" : `: ${reason}`}; the same operation is refused until ${new Date(a.expiresAt).toISOString()}`,
        details: { ...facts(denied), ...(reason === "" ? {} : { denialReason: reason }) },
      });
      schedule();
      return denied;
    },

    expireDue,

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      closed = true;
      if (scrubbing !== undefined) clearImmediate(scrubbing);
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      listeners.clear();
      store.close();
    },
  };

  async function expireIfDue(): Promise<void> {
    if (timerAt <= clock()) await expireDue();
  }

  // Approvals that expired while the gateway was stopped.
  void expireDue();
  return service;
}

function expiredHow(a: ApprovalRecord): string {
  if (a.votes.length === 0) return "without an approval";
  if (a.votes.length >= a.quorum) return "approved but never used";
  return `with ${a.votes.length} of ${a.quorum} approvals`;
}

/** Approval IDs: "apr_" and 16 random base64url characters (96 bits). */
export function newApprovalId(): string {
  return `apr_${randomBytes(12).toString("base64url")}`;
}

/** "you (the person who asked)" or "2 members of group G". */
export function describeApprovers(a: Pick<ApprovalRecord, "approvers" | "quorum" | "operation">): string {
  if (a.approvers === "self") return `${a.operation.person} (the person who asked)`;
  const group = a.approvers.slice(6);
  return a.quorum === 1
    ? `a member of group ${group} other than ${a.operation.person}`
    : `${a.quorum} distinct members of group ${group} other than ${a.operation.person}`;
}

function webhookSummary(a: ApprovalRecord, url: string): ApprovalWebhookSummary {
  const { body: _body, ...operation } = a.operation;
  return {
    type: "approval.requested",
    id: a.id,
    url,
    status: a.status,
    operation,
    operationHash: a.operationHash,
    person: a.operation.person,
    agent: a.operation.agent,
    approvers: a.approvers,
    quorum: a.quorum,
    createdAt: new Date(a.createdAt).toISOString(),
    expiresAt: new Date(a.expiresAt).toISOString(),
  };
}
