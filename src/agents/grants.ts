import { createHash, randomBytes } from "node:crypto";
import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import { canonicalJson } from "../audit/chain.js";
import { parseDuration } from "../config/duration.js";
import { type Action, ALL_ACTIONS } from "../cosmos/types.js";
import type { CompiledPolicy } from "../policy/compilePolicy.js";
import { parsePath } from "../policy/parsePath.js";
import { COVERS, relateScope } from "../policy/relateScope.js";
import { resolveGrants } from "../policy/resolveGrants.js";
import type { PolicySubject } from "../policy/types.js";
import { AGENT_NAME, DEFAULT_GRANT_LIFETIME_MS, type GrantView } from "./contract.js";

/**
 * A refusal of the grants module: `statusCode` is the HTTP status (4xx), `code` the stable error code.
 * The control plane's error handler answers it as `{error, code, message}`.
 *
 * @example
 * ```ts
 * throw new GrantError(400, "ERR_GRANT_INVALID", "actions must be a non-empty list of action names.");
 * ```
 */
export class GrantError extends Error {
  readonly statusCode: number;
  readonly code: string;

  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = "GrantError";
    this.statusCode = statusCode;
    this.code = code;
  }
}

/** The public part of an EC P-256 key, as grants keep and show it. */
export interface PublicKeyJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

/** A grant as stored (times in ms since the epoch). */
export interface GrantRecord {
  id: string;
  /** The person's user id (ownership) and name (`sub` of the agent's tokens). */
  userId: string;
  person: string;
  agent: string;
  actions: Action[];
  scopes: string[];
  /** Partition key JSON texts (normalized: `["c1"]`), or null for any. */
  partitionKeys: string[] | null;
  publicKey: PublicKeyJwk;
  keyThumbprint: string;
  createdAt: number;
  expiresAt: number;
  budget: { requests: number | null; requestCharge: number | null };
  status: "pending" | "active" | "revoked";
  confirmedBy: string | null;
  confirmedAt: number | null;
  /** The `amr` of the confirming tap (carried by the agent's tokens). */
  confirmedAmr: string[] | null;
  revokedAt: number | null;
  revokedReason: string | null;
  /** {@link canonicalGrant} of this grant, as shown to the person and hashed for the tap. */
  canonical: string;
}

/** What {@link normalizeGrantRequest} makes of a `POST /api/grants` body. */
export interface NormalizedGrantRequest {
  agent: string;
  actions: Action[];
  scopes: string[];
  partitionKeys: string[] | null;
  lifetimeMs: number;
  budget: { requests: number | null; requestCharge: number | null };
  publicKey: PublicKeyJwk;
  keyThumbprint: string;
}

/** Most scopes, actions or partition keys one grant may name. */
export const MAX_GRANT_ITEMS = 100;
/** The shortest lifetime a grant may ask for. */
export const MIN_GRANT_LIFETIME_MS = 60_000;
/** What the canonical JSON declares itself as (so a grant's hash cannot be taken for anything else's). */
export const GRANT_CANONICAL_TYPE = "cosmosgate.agent-grant/1";

/**
 * A new grant id: `gr_` and 22 base64url characters (128 random bits).
 *
 * @example newGrantId() // "gr_q8Jx0vV6cK1pW2m3n4b5aQ"
 */
export function newGrantId(): string {
  return `gr_${randomBytes(16).toString("base64url")}`;
}

/** Whether a text has the shape of a grant id (checked before any lookup). */
export function isGrantId(value: unknown): value is string {
  return typeof value === "string" && /^gr_[A-Za-z0-9_-]{22}$/.test(value);
}

/**
 * Checks and normalizes what the person asks for: the agent's name ({@link AGENT_NAME}); short
 * action names (deduplicated, in the policy's order); resource scopes in the policy's syntax
 * (`/dbs/shop/colls/orders`, `*` as a whole id segment); partition keys as JSON (`'["c1"]'` or a
 * bare value `'"c1"'`, normalized to the array form); the lifetime (default 8 h, at least 1 min, at
 * most `maxLifetimeMs`); budgets (positive); and the agent's public key — an EC P-256 JWK without a
 * private part — with its RFC 7638 thumbprint.
 *
 * @throws {GrantError} 400 `ERR_GRANT_INVALID` naming the field and what to send.
 * @example
 * ```ts
 * const req = await normalizeGrantRequest(request.body, { maxLifetimeMs: 7 * 86_400_000 });
 * req.keyThumbprint; // the kid the agent's assertions must carry
 * ```
 */
export async function normalizeGrantRequest(
  body: unknown,
  opts: { maxLifetimeMs: number },
): Promise<NormalizedGrantRequest> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalid("the request body must be a JSON object (a GrantRequest).");
  }
  const b = body as Record<string, unknown>;
  const agent = b.agent;
  if (typeof agent !== "string" || !AGENT_NAME.test(agent)) {
    throw invalid(
      "agent must be the agent's name: 1–64 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
    );
  }
  const actions = normalizeActions(b.actions);
  const scopes = normalizeScopes(b.scopes);
  const partitionKeys = normalizePartitionKeys(b.partitionKeys);
  const lifetimeMs = normalizeLifetime(b.lifetime, opts.maxLifetimeMs);
  const budget = normalizeBudget(b.budget);
  const { publicKey, keyThumbprint } = await normalizePublicKey(b.publicKey);
  return { agent, actions, scopes, partitionKeys, lifetimeMs, budget, publicKey, keyThumbprint };
}

function normalizeActions(value: unknown): Action[] {
  const list = stringList(value, "actions", 'short action names such as ["metadata", "read", "query"]');
  const known = new Set<string>(ALL_ACTIONS);
  for (const a of list) {
    if (!known.has(a)) {
      throw invalid(
        `actions: ${JSON.stringify(a.slice(0, 80))} is not a short action name; use ${ALL_ACTIONS.join(", ")}.`,
      );
    }
  }
  const wanted = new Set(list);
  return ALL_ACTIONS.filter((a) => wanted.has(a));
}

function normalizeScopes(value: unknown): string[] {
  const list = stringList(value, "scopes", 'resource scopes such as ["/dbs/shop/colls/orders"]');
  for (const s of list) {
    const parsed = parsePath(s, "scope");
    if (!parsed.ok) throw invalid(`scopes: ${JSON.stringify(s.slice(0, 200))}: ${parsed.expected}.`);
  }
  return [...new Set(list)].sort();
}

function normalizePartitionKeys(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  const list = stringList(value, "partitionKeys", `partition key values as JSON, such as ['["c1"]']`);
  const out = new Set<string>();
  for (const text of list) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalid(
        `partitionKeys: ${JSON.stringify(text.slice(0, 80))} is not JSON; send each key as the JSON of its value, e.g. '["c1"]'.`,
      );
    }
    const values = Array.isArray(parsed) ? parsed : [parsed];
    if (
      values.length === 0 ||
      values.length > 3 ||
      !values.every((v) => v === null || ["string", "number", "boolean"].includes(typeof v))
    ) {
      throw invalid(
        `partitionKeys: ${JSON.stringify(text.slice(0, 80))} must be a value or an array of 1–3 values (string, number, boolean or null).`,
      );
    }
    out.add(JSON.stringify(values));
  }
  return [...out].sort();
}

function normalizeLifetime(value: unknown, maxLifetimeMs: number): number {
  if (value === undefined || value === null || value === "") {
    return Math.min(DEFAULT_GRANT_LIFETIME_MS, maxLifetimeMs);
  }
  const ms = typeof value === "string" ? parseDuration(value) : undefined;
  if (ms === undefined || ms < MIN_GRANT_LIFETIME_MS) {
    throw invalid('lifetime must be a duration of at least 1 minute, such as "30m", "8h" or "2d".');
  }
  if (ms > maxLifetimeMs) {
    throw invalid(
      `lifetime ${JSON.stringify(value)} is longer than this gateway allows (agents.maxLifetime: ${describeMs(maxLifetimeMs)}).`,
    );
  }
  return ms;
}

function normalizeBudget(value: unknown): NormalizedGrantRequest["budget"] {
  if (value === undefined || value === null) return { requests: null, requestCharge: null };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalid("budget must be an object: {requests?, requestCharge?}.");
  }
  const b = value as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (k !== "requests" && k !== "requestCharge")
      throw invalid(`budget: unknown member ${JSON.stringify(k)}.`);
  }
  const requests = b.requests ?? null;
  const requestCharge = b.requestCharge ?? null;
  if (
    requests !== null &&
    (typeof requests !== "number" || !Number.isInteger(requests) || requests < 1 || requests > 1e12)
  ) {
    throw invalid("budget.requests must be a positive whole number of requests.");
  }
  if (
    requestCharge !== null &&
    (typeof requestCharge !== "number" ||
      !Number.isFinite(requestCharge) ||
      requestCharge <= 0 ||
      requestCharge > 1e15)
  ) {
    throw invalid("budget.requestCharge must be a positive number of request units (RU).");
  }
  return { requests, requestCharge };
}

async function normalizePublicKey(
  value: unknown,
): Promise<{ publicKey: PublicKeyJwk; keyThumbprint: string }> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(
      'publicKey must be the agent\'s public key as a JWK object ({kty: "EC", crv: "P-256", x, y}); make one with `cosmosgate agent keygen NAME`.',
    );
  }
  const jwk = value as Record<string, unknown>;
  if ("d" in jwk || "p" in jwk || "k" in jwk) {
    throw invalid(
      "publicKey holds a private key: send only the public part (kty, crv, x, y). The private key must stay in the agent's key file.",
    );
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") {
    throw invalid('publicKey must be an EC P-256 key (kty "EC", crv "P-256"); agents sign with ES256.');
  }
  const b64 = /^[A-Za-z0-9_-]{43}$/;
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string" || !b64.test(jwk.x) || !b64.test(jwk.y)) {
    throw invalid("publicKey.x and publicKey.y must be the 32-byte coordinates, base64url (43 characters).");
  }
  const publicKey: PublicKeyJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  try {
    // Node checks that the point is on the curve.
    await importJWK(publicKey as JWK, "ES256");
  } catch {
    throw invalid("publicKey is not a valid P-256 public key (the point is not on the curve).");
  }
  return { publicKey, keyThumbprint: await calculateJwkThumbprint(publicKey as JWK, "sha256") };
}

function stringList(value: unknown, name: string, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0)
    throw invalid(`${name} must be a non-empty list of ${what}.`);
  if (value.length > MAX_GRANT_ITEMS) throw invalid(`${name} may list at most ${MAX_GRANT_ITEMS} entries.`);
  for (const v of value) {
    if (typeof v !== "string" || v.length === 0 || v.length > 1024) {
      throw invalid(`${name} must be a list of non-empty texts (${what}).`);
    }
  }
  return value as string[];
}

/** One (action, scope) of a grant that the person does not hold. */
export interface GrantProblem {
  action: Action;
  scope: string;
}

/**
 * What of a grant the person does not hold now: every (action, scope) pair must be covered by a rule
 * of a role the person holds (`subject`: their name and current groups) — the rule's scope equal to
 * the grant's or above it, a `*` in the rule matching any id, a `*` in the grant only matched by a
 * `*` in the rule. The policy's metadata discovery rule (metadata on the ancestors of a granted
 * scope) does not count: a grant on `/dbs/shop` needs metadata held on `/dbs/shop` or above.
 *
 * @returns the pairs not held, in the grant's order; empty when the grant is within the person's rights.
 * @example
 * ```ts
 * checkGrantAgainstPolicy(policy, { sub: "ada", groups: ["analysts"] }, ["read", "delete"], ["/dbs/shop/colls/orders"]);
 * // [{ action: "delete", scope: "/dbs/shop/colls/orders" }]
 * ```
 */
export function checkGrantAgainstPolicy(
  policy: CompiledPolicy,
  subject: PolicySubject,
  actions: readonly Action[],
  scopes: readonly string[],
): GrantProblem[] {
  const held = resolveGrants(policy, subject).grants;
  const problems: GrantProblem[] = [];
  for (const scope of scopes) {
    const parsed = parsePath(scope, "scope");
    if (!parsed.ok) {
      for (const action of actions) problems.push({ action, scope });
      continue;
    }
    for (const action of actions) {
      const covered = (held[action] ?? []).some((g) => relateScope(g.pattern, parsed.segments) === COVERS);
      if (!covered) problems.push({ action, scope });
    }
  }
  return problems;
}

/** What a person may put in a grant on one scope (`GET /api/grants/rights`). */
export interface HeldRight {
  /** A scope as the policy wrote it ("/dbs/shop/colls/orders", "/dbs/shop/colls/*", "/"). */
  scope: string;
  /** The short actions the person holds on it, in the policy's order. */
  actions: Action[];
}

/**
 * What the person holds now, scope by scope (from every rule of every role they hold, merged per
 * scope): what the console offers when a grant is made. A grant may name these scopes or scopes
 * beneath them, with these actions or fewer ({@link checkGrantAgainstPolicy} decides).
 *
 * @example heldRights(policy, { sub: "ada", groups: ["writers"] }) // [{ scope: "/dbs/shop/colls/orders", actions: ["metadata", "read"] }]
 */
export function heldRights(policy: CompiledPolicy, subject: PolicySubject): HeldRight[] {
  const held = resolveGrants(policy, subject).grants;
  const byScope = new Map<string, Set<Action>>();
  for (const action of ALL_ACTIONS) {
    for (const g of held[action] ?? []) {
      let set = byScope.get(g.on);
      if (set === undefined) {
        set = new Set();
        byScope.set(g.on, set);
      }
      set.add(action);
    }
  }
  return [...byScope]
    .map(([scope, set]) => ({ scope, actions: ALL_ACTIONS.filter((a) => set.has(a)) }))
    .sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0));
}

/**
 * The canonical JSON of a grant — what the person is shown and what the confirming tap signs (its
 * SHA-256 is the WebAuthn challenge, {@link grantChallenge}): sorted keys, no whitespace (audit/chain's
 * canonical JSON), with the gateway it is for, the person, the agent and its public key, the actions,
 * scopes and partition keys, the times (ISO 8601) and the budget. Status and usage are not part of it.
 *
 * @example
 * ```ts
 * const canonical = canonicalGrant(record, "https://gate.example.com");
 * // '{"actions":["metadata","read"],"agent":"report-bot",...,"type":"cosmosgate.agent-grant/1"}'
 * ```
 */
export function canonicalGrant(
  g: Pick<
    GrantRecord,
    | "id"
    | "person"
    | "agent"
    | "actions"
    | "scopes"
    | "partitionKeys"
    | "publicKey"
    | "keyThumbprint"
    | "createdAt"
    | "expiresAt"
    | "budget"
  >,
  gateway: string,
): string {
  return canonicalJson({
    type: GRANT_CANONICAL_TYPE,
    gateway,
    id: g.id,
    person: g.person,
    agent: g.agent,
    actions: [...g.actions],
    scopes: [...g.scopes],
    partitionKeys: g.partitionKeys === null ? null : [...g.partitionKeys],
    publicKey: { kty: g.publicKey.kty, crv: g.publicKey.crv, x: g.publicKey.x, y: g.publicKey.y },
    keyThumbprint: g.keyThumbprint,
    createdAt: new Date(g.createdAt).toISOString(),
    expiresAt: new Date(g.expiresAt).toISOString(),
    budget: { requests: g.budget.requests, requestCharge: g.budget.requestCharge },
  });
}

/**
 * The WebAuthn challenge of a grant's confirming tap: base64url(SHA-256(canonical)), over the UTF-8
 * bytes of exactly the text the API returned.
 *
 * @example grantChallenge('{"a":1}') // "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX-GI"
 */
export function grantChallenge(canonical: string): string {
  return createHash("sha256").update(canonical, "utf8").digest("base64url");
}

/** Usage of a grant: requests and request charge counted so far. */
export interface GrantUsage {
  requests: number;
  requestCharge: number;
}

/**
 * Whether a grant may be used at `now`, and if not why: `pending` (not confirmed), `revoked`,
 * `expired`, `exhausted` (a budget is spent), else `active`.
 */
export function grantStatus(g: GrantRecord, used: GrantUsage, now: number): GrantView["status"] {
  if (g.status === "revoked") return "revoked";
  if (now >= g.expiresAt) return "expired";
  if (g.status === "pending") return "pending";
  if (isExhausted(g.budget, used)) return "exhausted";
  return "active";
}

/** Whether a budget is spent. */
export function isExhausted(budget: GrantRecord["budget"], used: GrantUsage): boolean {
  return (
    (budget.requests !== null && used.requests >= budget.requests) ||
    (budget.requestCharge !== null && used.requestCharge >= budget.requestCharge)
  );
}

/**
 * A grant as the API shows it ({@link GrantView}).
 *
 * @example reply.send(grantView(record, store.usage(record.id), Date.now()))
 */
export function grantView(g: GrantRecord, used: GrantUsage, now: number): GrantView {
  return {
    id: g.id,
    person: g.person,
    agent: g.agent,
    actions: [...g.actions],
    scopes: [...g.scopes],
    partitionKeys: g.partitionKeys === null ? null : [...g.partitionKeys],
    keyThumbprint: g.keyThumbprint,
    createdAt: new Date(g.createdAt).toISOString(),
    expiresAt: new Date(g.expiresAt).toISOString(),
    budget: { ...g.budget },
    used: { requests: used.requests, requestCharge: Math.round(used.requestCharge * 100) / 100 },
    status: grantStatus(g, used, now),
    confirmedBy: g.confirmedBy,
    confirmedAt: g.confirmedAt === null ? null : new Date(g.confirmedAt).toISOString(),
    revokedAt: g.revokedAt === null ? null : new Date(g.revokedAt).toISOString(),
    revokedReason: g.revokedReason,
  };
}

/** The `act.sub` of an agent's tokens and the `actor` of its audit records: "agent:NAME". */
export function actorOf(agent: string): string {
  return `agent:${agent}`;
}

function invalid(message: string): GrantError {
  return new GrantError(400, "ERR_GRANT_INVALID", message);
}

function describeMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
