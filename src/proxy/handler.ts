import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { type GrantEnforcer, grantOf, type LiveGrant } from "../agents/enforce.js";
import type { ApprovalGate, GateResult } from "../approvals/gate.js";
import type { AuditEvent } from "../audit/types.js";
import { rewriteAccount } from "../cosmos/account.js";
import { classify } from "../cosmos/classify.js";
import { classifyBatchBody } from "../cosmos/classifyBatchBody.js";
import { CosmosWireError, cosmosCodeForStatus } from "../cosmos/errors.js";
import type { Action, BatchOperation, CosmosOperation } from "../cosmos/types.js";
import { TokenError } from "../identity/errors.js";
import { parseAuthorization } from "../identity/tokens/authorization.js";
import type { Principal } from "../identity/types.js";
import { type CompiledPolicy, type Decision, evaluate } from "../policy/index.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.js";
import { sendError, sendJson } from "./respond.js";
import { type Upstream, UpstreamError, type UpstreamResponse } from "./upstream.js";

/** Substatus of a policy denial, as native Cosmos DB RBAC answers (never 3 or 1008: the SDK would retry). */
export const SUBSTATUS_DENIED = 5301;

export interface TokenVerifierPort {
  verifyCached(token: string): Principal | undefined;
  verify(token: string): Promise<Principal>;
}

export interface RevocationPort {
  revokedBy(p: Principal): "subject" | "session" | "credential" | undefined;
}

export interface AuditPort {
  append(event: AuditEvent): Promise<number>;
  /** False when a new request's record could not be stored in time; checked before forwarding. */
  accepting(): boolean;
  /** Why it is not accepting (retrying, overloaded, failed, closed): for the refusal's log and metrics. */
  state(): string;
}

/** The data plane's metrics hooks (server/metrics.ts); each call is a few field updates. */
export interface ProxyMetricsPort {
  /** A request was answered; `upstreamSeconds` is negative when it was not forwarded. */
  requestDone(
    actions: readonly string[] | undefined,
    decision: AuditEvent["decision"],
    status: number,
    seconds: number,
    upstreamSeconds: number,
  ): void;
  /** A request refused with 503 because the audit could not record it, by reason. */
  auditRefused(reason: string): void;
  /** A request served without its audit record being stored first (fail open). */
  auditFailOpen(): void;
}

/** The gateway's own keys, as the audit record describes them (nickname, AAGUID, kind). */
export interface CredentialPort {
  /** From memory: no I/O on the data path (see createCredentialDirectory in server/identity.ts). */
  describe(
    issuer: string,
    credentialId: string,
    now: number,
  ): { nickname: string; aaguid: string; deviceBound: boolean } | undefined;
}

export interface ProxyDeps {
  verifier: TokenVerifierPort;
  /** Revocation beats the verified-token cache: disabled users, revoked sessions, suspended keys. */
  revocation?: RevocationPort;
  /** The policy in force; replaced atomically when the file reloads. */
  policy: { current: CompiledPolicy };
  upstream: Upstream;
  audit: AuditPort;
  /** When the audit cannot record: `closed` (default) refuses with 503; `open` serves without waiting for the record. */
  auditOnFailure?: "closed" | "open";
  metrics?: ProxyMetricsPort;
  /** Describes the key a token names, for the audit record; without it the record has its ID only. */
  credentials?: CredentialPort;
  /** The gateway instance id written in every record (random per process start). */
  instance?: string;
  /** The URL clients use for the data plane; account locations are rewritten to it. */
  publicUrl: string;
  maxBodyBytes: number;
  log: Logger;
  clock?: () => number;
  /**
   * The approval gate (src/approvals/gate.ts): called after an allow, before forwarding, only when
   * the policy in force has `approvals:` rules.
   */
  approvals?: ApprovalGate;
  /**
   * Agent grants (src/agents/enforce.ts): the grant an agent's token names must be active, and the
   * agent gets only what both the person's policy and the grant allow. Without it, a token naming a
   * grant is refused.
   */
  grants?: GrantEnforcer;
}

/**
 * The data-plane pipeline for one request: authenticate → classify → authorize → forward → audit.
 * Every outcome is audited. Strict durability: the response is sent only after its audit record is
 * committed (buffered: once it is queued). Before forwarding, a request the audit could not record
 * is refused with 503 (`auditOnFailure: closed`, the default) or served anyway (`open`), counted in
 * metrics and logged at most every 10 s.
 *
 * @example https.createServer(tls, createDataPlaneHandler(deps))
 */
export function createDataPlaneHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const gate = new AuditGate(deps);
  return (req, res) => {
    handle(deps, req, res, gate).catch((err) => {
      // Nothing should reach here; a bug must not leak details or hang the client.
      deps.log.error(
        { err: { message: (err as Error).message, stack: (err as Error).stack } },
        "data-plane handler failed",
      );
      if (!res.writableEnded)
        sendError(res, 500, "the gateway failed to process the request; see the gateway log");
    });
  };
}

interface Outcome {
  status: number;
  substatus?: number;
  headers?: Record<string, string | string[] | undefined>;
  body: Buffer | string;
  decision: AuditEvent["decision"];
  reason: string;
  rule?: string;
  requestCharge?: number;
  activityId?: string;
  /** Milliseconds the upstream took, when the request was forwarded. */
  upstreamMs?: number;
}

async function handle(
  deps: ProxyDeps,
  req: IncomingMessage,
  res: ServerResponse,
  gate: AuditGate,
): Promise<void> {
  const clock = deps.clock ?? Date.now;
  const started = performance.now();
  // Before anything is forwarded: can the audit record this request? (A few field reads.)
  const audited = deps.audit.accepting();
  if (!audited && !gate.failOpen) {
    gate.refuse(req, res, started);
    return;
  }
  const time = clock();
  const method = req.method ?? "GET";
  const rawPath = req.url ?? "/";
  let principal: Principal | undefined;
  let op: CosmosOperation | undefined;
  let outcome: Outcome;

  try {
    principal = await authenticate(deps.verifier, req.headers.authorization);
    const revoked = deps.revocation?.revokedBy(principal);
    if (revoked) throw new TokenError("ERR_TOKEN_REVOKED", REVOKED_MESSAGE[revoked]);
    let classified = classify(method, rawPath, req.headers);
    op = classified;
    const body = await readBody(req, deps.maxBodyBytes);
    if (classified.atomic !== undefined) {
      classified = classifyBatchBody(classified, body ?? Buffer.alloc(0));
      op = classified;
    }
    // An agent's grant: active, its person and agent the token's (401 otherwise). A Map lookup.
    const grant =
      principal.grant === undefined && principal.actor === undefined
        ? undefined
        : grantOf(deps.grants, principal, time);
    outcome = await authorizeAndForward(deps, principal, classified, method, rawPath, req, body, grant);
  } catch (err) {
    outcome = failure(err);
    if (outcome.status >= 500)
      deps.log.warn({ code: (err as { code?: string }).code, op: op?.name }, outcome.reason);
  }

  // The key's description is a Map lookup (cached per credential ID); every record has the same
  // keys, so the canonical JSON's key-order cache serves all of them.
  const key =
    principal?.credential !== undefined
      ? deps.credentials?.describe(principal.issuer, principal.credential, time)
      : undefined;
  const event: AuditEvent = {
    time,
    type: "data.request",
    instance: deps.instance,
    subject: principal?.sub ?? "",
    subjectKind: principal?.kind,
    subjectName: principal?.name,
    issuer: principal?.issuer,
    tokenIssuer: principal?.tokenIssuer,
    credential: principal?.credential,
    credentialName: key?.nickname,
    aaguid: key?.aaguid,
    deviceBound: key?.deviceBound,
    session: principal?.session,
    actor: principal?.actor?.sub,
    grant: principal?.grant,
    jti: principal?.jti,
    operation: op?.name,
    method,
    actions: op?.actions ?? [],
    resource: op?.resource ?? "",
    partitionKey: op?.partitionKey ? JSON.stringify(op.partitionKey) : undefined,
    decision: outcome.decision,
    reason: outcome.reason,
    rule: outcome.rule,
    status: outcome.status,
    substatus: outcome.substatus,
    requestCharge: outcome.requestCharge,
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    clientAddress: req.socket.remoteAddress,
    userAgent: headerText(req.headers["x-ms-useragent"] ?? req.headers["user-agent"]),
    // The upstream's activity ID; for a request not forwarded, the one the client sent (if any).
    activityId: outcome.activityId ?? headerText(req.headers["x-ms-activity-id"]),
  };
  if (!audited) {
    // Fail open: the record is queued (or goes to the log sink) and the response does not wait.
    deps.audit.append(event).catch(ignore);
    gate.passedOpen();
  } else {
    try {
      // Strict: settles once the record is committed and fsync'd; buffered: once it is queued.
      await deps.audit.append(event);
    } catch (err) {
      if (!gate.failOpen) {
        // Fail closed: an unrecorded request gets no answer but a refusal (its record is in the log).
        gate.recordFailed(err, res, op, started);
        return;
      }
      gate.passedOpen();
    }
  }
  send(res, outcome);
  deps.metrics?.requestDone(
    op?.actions,
    outcome.decision,
    outcome.status,
    (performance.now() - started) / 1000,
    outcome.upstreamMs === undefined ? -1 : outcome.upstreamMs / 1000,
  );
}

const ignore = (): void => {};

// One log line per kind of audit trouble at most this often (with the count since the last line).
const TROUBLE_LOG_EVERY_MS = 10_000;

const REFUSAL_BECAUSE: Record<string, string> = {
  retrying: "its store cannot be written at the moment (commits fail and are being retried)",
  overloaded: "it cannot keep up (more than audit.maxQueue records are waiting to be stored)",
  failed: "writing its store to disk failed (the gateway must be restarted once the disk is checked)",
  closed: "the gateway is shutting down",
};

/** What the data plane does when the audit cannot record: refuse (closed) or pass (open), counted and logged. */
class AuditGate {
  readonly failOpen: boolean;
  readonly #deps: ProxyDeps;
  readonly #clock: () => number;
  #refusedAt = Number.NEGATIVE_INFINITY;
  #refusedSince = 0;
  #openAt = Number.NEGATIVE_INFINITY;
  #openSince = 0;

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
    this.failOpen = deps.auditOnFailure === "open";
    this.#clock = deps.clock ?? Date.now;
  }

  /** Fail closed, before forwarding: 503, the upstream is never contacted. */
  refuse(req: IncomingMessage, res: ServerResponse, started: number): void {
    const deps = this.#deps;
    const state = deps.audit.state();
    req.resume();
    sendError(
      res,
      503,
      `the gateway's audit trail cannot record requests: ${REFUSAL_BECAUSE[state] ?? state}. The gateway refuses ` +
        "requests it cannot record (audit.onFailure: closed); this one was not forwarded: retry later. " +
        "Operator: see the gateway log, and check the disk that holds stateDir/audit.db (free space, I/O errors, " +
        "permissions) and whether another process holds a lock on it.",
    );
    deps.metrics?.auditRefused(state);
    deps.metrics?.requestDone(undefined, "error", 503, (performance.now() - started) / 1000, -1);
    this.#refusedSince++;
    const now = this.#clock();
    if (now - this.#refusedAt >= TROUBLE_LOG_EVERY_MS) {
      deps.log.error(
        { auditState: state, refused: this.#refusedSince },
        "audit cannot record requests: refusing data-plane requests with 503 (audit.onFailure: closed)",
      );
      this.#refusedAt = now;
      this.#refusedSince = 0;
    }
  }

  /** Fail closed, after forwarding: the record could not be stored, so the answer is withheld. */
  recordFailed(err: unknown, res: ServerResponse, op: CosmosOperation | undefined, started: number): void {
    const deps = this.#deps;
    deps.log.error(
      { code: (err as { code?: string }).code, problem: (err as Error).message, op: op?.name },
      "audit write failed; refusing the request (fail closed)",
    );
    sendError(
      res,
      503,
      "the gateway could not record this request in its audit trail, so it withholds the answer " +
        "(audit.onFailure: closed). The request may have reached the database: read before retrying a write. " +
        "Operator: see the gateway log.",
    );
    deps.metrics?.auditRefused("record_failed");
    deps.metrics?.requestDone(op?.actions, "error", 503, (performance.now() - started) / 1000, -1);
  }

  /** Fail open: the request is served without waiting for (or despite) its audit record. */
  passedOpen(): void {
    const deps = this.#deps;
    deps.metrics?.auditFailOpen();
    this.#openSince++;
    const now = this.#clock();
    if (now - this.#openAt >= TROUBLE_LOG_EVERY_MS) {
      deps.log.warn(
        { auditState: deps.audit.state(), served: this.#openSince },
        "audit cannot record requests in time: serving data-plane requests anyway (audit.onFailure: open); records that cannot be stored go to this log",
      );
      this.#openAt = now;
      this.#openSince = 0;
    }
  }
}

const REVOKED_MESSAGE = {
  subject: "token revoked: the user is disabled; ask an administrator",
  session: "token revoked: the session was signed out or revoked; sign in again (cosmosgate login)",
  credential: "token revoked: the key it was issued for was removed or suspended; sign in with another key",
} as const;

async function authenticate(verifier: TokenVerifierPort, header: string | undefined): Promise<Principal> {
  const token = parseAuthorization(header);
  return verifier.verifyCached(token) ?? (await verifier.verify(token));
}

async function authorizeAndForward(
  deps: ProxyDeps,
  principal: Principal,
  op: CosmosOperation,
  method: string,
  rawPath: string,
  req: IncomingMessage,
  body: Buffer | undefined,
  grant?: LiveGrant,
): Promise<Outcome> {
  const policy = deps.policy.current;
  let allowed: Decision | undefined;
  let deniedOps: BatchOperation[] | undefined;
  let forwardBody = body;

  if (op.batch) {
    const denials: { op: BatchOperation; decision: Decision }[] = [];
    for (const b of op.batch) {
      const d = evaluate(policy, principal, b.action, op.segments);
      // An agent: the person's decision AND the grant (its partition keys checked per operation).
      const outside =
        d.effect === "allow" && grant !== undefined
          ? grant.outside(b.action, op.segments, b.partitionKey ?? op.partitionKey)
          : undefined;
      if (d.effect === "deny") denials.push({ op: b, decision: d });
      else if (outside !== undefined) denials.push({ op: b, decision: { effect: "deny", reason: outside } });
      else allowed = d;
    }
    if (denials.length > 0 && (op.atomic || denials.length === op.batch.length)) {
      const first = denials[0];
      return deny(
        op.atomic
          ? `transactional batch refused as a whole: operation ${first.op.index} (${first.op.operationType}) is denied: ${first.decision.reason}`
          : `every operation of the bulk request is denied: ${first.decision.reason}`,
      );
    }
    if (denials.length > 0) {
      deniedOps = denials.map((d) => d.op);
      forwardBody = withoutOperations(body, deniedOps);
    }
  } else {
    for (const action of op.actions) {
      const d = evaluate(policy, principal, action as Action, op.segments);
      if (d.effect === "deny") return deny(d.reason);
      if (grant !== undefined) {
        const outside = grant.outside(action as Action, op.segments, op.partitionKey);
        if (outside !== undefined) return deny(outside);
      }
      allowed = d;
    }
    if (!allowed) return deny(`operation ${op.name} requires no known action; unknown means denied`);
  }

  // Approvals: only when the policy has approval rules (one field test otherwise).
  let approvalNote: string | undefined;
  if (policy.approvals !== undefined && deps.approvals !== undefined) {
    const gated = await deps.approvals(policy.approvals, principal, op, method, body);
    if (!gated.proceed) return approvalRefusal(gated);
    approvalNote = gated.note;
  }

  // An agent's budget: counted here, just before forwarding (403 once spent).
  if (grant !== undefined) {
    const spent = grant.admit();
    if (spent !== undefined) return deny(spent);
  }

  const upstreamStarted = performance.now();
  const upstreamRes = await deps.upstream.send({
    method,
    path: rawPath,
    headers: upstreamRequestHeaders(req.headers),
    body: forwardBody,
    op,
  });
  const upstreamMs = performance.now() - upstreamStarted;
  const requestCharge = numberHeader(upstreamRes.headers["x-ms-request-charge"]);
  if (grant !== undefined) grant.charged(requestCharge);
  let resBody: Buffer | string = upstreamRes.body;
  let status = upstreamRes.status;
  if (op.name === "account.read" && status === 200)
    resBody = rewriteAccount(upstreamRes.body, deps.publicUrl);
  if (deniedOps && status < 300) {
    resBody = mergeBulkResults(upstreamRes, op, deniedOps);
    status = 207;
  }
  const rule = allowed?.matched ? `${allowed.matched.role}#${allowed.matched.rule}` : undefined;
  return {
    status,
    substatus: numberHeader(upstreamRes.headers["x-ms-substatus"]),
    headers: upstreamRes.headers,
    body: resBody,
    decision: "allow",
    reason:
      (deniedOps
        ? `${allowed?.reason ?? "allowed"}; ${deniedOps.length} bulk operation(s) denied in place`
        : (allowed?.reason ?? "allowed")) + (approvalNote === undefined ? "" : `; ${approvalNote}`),
    rule,
    requestCharge,
    activityId: headerText(upstreamRes.headers["x-ms-activity-id"]),
    upstreamMs,
  };
}

function deny(reason: string): Outcome {
  return {
    status: 403,
    substatus: SUBSTATUS_DENIED,
    body: JSON.stringify({ code: "Forbidden", message: reason }),
    decision: "deny",
    reason,
  };
}

/** A request held for approval (403, substatus 5302 or 5301): Cosmos-shaped, with the approval's ID and URL. */
function approvalRefusal(r: Extract<GateResult, { proceed: false }>): Outcome {
  return {
    status: r.status,
    substatus: r.substatus,
    body: JSON.stringify({
      code: "Forbidden",
      message: r.message,
      ...(r.approval ? { approval: r.approval } : {}),
    }),
    decision: "deny",
    reason: r.message,
  };
}

function failure(err: unknown): Outcome {
  if (err instanceof TokenError) return errorOutcome(401, err.message, "deny");
  if (err instanceof CosmosWireError) return errorOutcome(err.status, err.message, "deny", err.substatus);
  if (err instanceof BodyTooLarge) return errorOutcome(413, err.message, "deny");
  if (err instanceof UpstreamError) return errorOutcome(503, err.message, "error");
  if (err instanceof SyntaxError) return errorOutcome(400, `malformed request body: ${err.message}`, "deny");
  return errorOutcome(500, "the gateway failed to process the request; see the gateway log", "error");
}

function errorOutcome(
  status: number,
  message: string,
  decision: Outcome["decision"],
  substatus?: number,
): Outcome {
  return {
    status,
    substatus,
    body: JSON.stringify({ code: cosmosCodeForStatus(status), message }),
    decision,
    reason: message,
  };
}

function send(res: ServerResponse, o: Outcome): void {
  if (!o.headers) {
    sendJson(res, o.status, o.body, o.substatus);
    return;
  }
  const body = typeof o.body === "string" ? Buffer.from(o.body) : o.body;
  res.writeHead(o.status, clientResponseHeaders(o.headers, body.length));
  res.end(body);
}

class BodyTooLarge extends Error {}

/** Reads the request body, bounded; undefined when there is none. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(
      new BodyTooLarge(`request body of ${declared} bytes exceeds the limit of ${limit} bytes`),
    );
  }
  if (req.method === "GET" || req.method === "HEAD" || req.method === "DELETE") {
    if (!declared && req.headers["transfer-encoding"] === undefined) return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new BodyTooLarge(`request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(chunks.length === 0 ? undefined : Buffer.concat(chunks, size)));
    req.once("error", reject);
  });
}

/** Bulk: the body without the denied operations (bulk is the one place the gateway re-serializes a body). */
function withoutOperations(body: Buffer | undefined, denied: readonly BatchOperation[]): Buffer {
  const all = JSON.parse(String(body ?? "[]")) as unknown[];
  const skip = new Set(denied.map((d) => d.index));
  return Buffer.from(JSON.stringify(all.filter((_, i) => !skip.has(i))));
}

/** Bulk: the upstream's results for the forwarded operations, with denials answered in place, in body order. */
function mergeBulkResults(
  res: UpstreamResponse,
  op: CosmosOperation,
  denied: readonly BatchOperation[],
): string {
  const forwarded = JSON.parse(String(res.body)) as unknown[];
  const skip = new Set(denied.map((d) => d.index));
  const out: unknown[] = [];
  let next = 0;
  for (let i = 0; i < (op.batch?.length ?? 0); i++) {
    if (skip.has(i)) out.push({ statusCode: 403, subStatusCode: SUBSTATUS_DENIED, requestCharge: 0 });
    else out.push(forwarded[next++]);
  }
  return JSON.stringify(out);
}

function numberHeader(v: string | string[] | undefined): number | undefined {
  const text = headerText(v);
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
