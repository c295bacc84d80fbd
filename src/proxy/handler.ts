import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
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
}

export interface ProxyDeps {
  verifier: TokenVerifierPort;
  /** Revocation beats the verified-token cache: disabled users, revoked sessions, suspended keys. */
  revocation?: RevocationPort;
  /** The policy in force; replaced atomically when the file reloads. */
  policy: { current: CompiledPolicy };
  upstream: Upstream;
  audit: AuditPort;
  /** The URL clients use for the data plane; account locations are rewritten to it. */
  publicUrl: string;
  maxBodyBytes: number;
  log: Logger;
  clock?: () => number;
}

/**
 * The data-plane pipeline for one request: authenticate → classify → authorize → forward → audit.
 * Every outcome is audited; the response is sent only after its audit record is committed.
 *
 * @example https.createServer(tls, createDataPlaneHandler(deps))
 */
export function createDataPlaneHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch((err) => {
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
}

async function handle(deps: ProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const clock = deps.clock ?? Date.now;
  const started = performance.now();
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
    outcome = await authorizeAndForward(deps, principal, classified, method, rawPath, req, body);
  } catch (err) {
    outcome = failure(err);
    if (outcome.status >= 500)
      deps.log.warn({ code: (err as { code?: string }).code, op: op?.name }, outcome.reason);
  }

  const event: AuditEvent = {
    time,
    type: "data.request",
    subject: principal?.sub ?? "",
    subjectKind: principal?.kind,
    issuer: principal?.issuer,
    credential: principal?.credential,
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
    activityId: outcome.activityId,
  };
  try {
    await deps.audit.append(event);
  } catch (err) {
    // Fail closed: an unrecorded request gets no answer but a refusal.
    deps.log.error(
      { code: (err as { code?: string }).code },
      "audit write failed; refusing the request (fail closed)",
    );
    sendError(
      res,
      503,
      "the gateway cannot record this request in its audit trail, so it refuses it; retry later",
    );
    return;
  }
  send(res, outcome);
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
): Promise<Outcome> {
  const policy = deps.policy.current;
  let allowed: Decision | undefined;
  let deniedOps: BatchOperation[] | undefined;
  let forwardBody = body;

  if (op.batch) {
    const denials: { op: BatchOperation; decision: Decision }[] = [];
    for (const b of op.batch) {
      const d = evaluate(policy, principal, b.action, op.segments);
      if (d.effect === "deny") denials.push({ op: b, decision: d });
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
      allowed = d;
    }
    if (!allowed) return deny(`operation ${op.name} requires no known action; unknown means denied`);
  }

  const upstreamRes = await deps.upstream.send({
    method,
    path: rawPath,
    headers: upstreamRequestHeaders(req.headers),
    body: forwardBody,
    op,
  });
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
    reason: deniedOps
      ? `${allowed?.reason ?? "allowed"}; ${deniedOps.length} bulk operation(s) denied in place`
      : (allowed?.reason ?? "allowed"),
    rule,
    requestCharge: numberHeader(upstreamRes.headers["x-ms-request-charge"]),
    activityId: headerText(upstreamRes.headers["x-ms-activity-id"]),
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
