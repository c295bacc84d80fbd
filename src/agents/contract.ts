/**
 * Agents on a short leash — the contract shared by the grant store, the token endpoint, the data
 * plane, approvals, the MCP server and the console. Types and constants only.
 *
 * Flow:
 * 1. The agent's key pair is made where the agent runs (`cosmosgate agent keygen NAME`: a private
 *    ES256 JWK in a 0600 file; the public JWK is printed).
 * 2. The person creates a grant in the console (`POST /api/grants`, cookie + CSRF) naming the
 *    agent, the public key and a subset of their own permissions; the server answers the grant's
 *    canonical JSON and WebAuthn request options whose challenge is `grantChallenge(canonical)`;
 *    the person's tap (`POST /api/grants/:id/confirm {response}`) activates it. The tap signs
 *    exactly what was shown.
 * 3. The agent gets short-lived tokens at `POST /oauth/token` with
 *    `grant_type=client_credentials`, `client_id=<grant id>`,
 *    `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a
 *    `client_assertion` JWT it signs with its key (RFC 7523 private_key_jwt: iss = sub = grant id,
 *    aud = the token endpoint URL, exp ≤ 5 min after iat, a jti used once; header alg ES256, kid =
 *    the public key's JWK thumbprint).
 * 4. The token: `sub` = the person, `act: {sub: "agent:NAME"}`, `grant` = grant id, `scope`, `cred`
 *    = the key that confirmed the grant, `groups` = the person's groups; `exp` ≤ 10 min and ≤ the
 *    grant's expiry. The data plane allows the intersection of the person's current permissions and
 *    the grant; revoking the person, that key or the grant stops the agent on the next request.
 * 5. Policy `approvals:` rules make some operations wait for a person's tap: 403 with
 *    {@link APPROVAL_REQUIRED_SUBSTATUS} and a message carrying the approval ID and URL; once
 *    approved (WebAuthn assertion over `operationChallenge`), the same request succeeds once.
 */

import type { JWK } from "jose";

/** The `client_assertion_type` of RFC 7523 private_key_jwt. */
export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** 403 substatus of a request that waits for an approval (not one the SDK retries). */
export const APPROVAL_REQUIRED_SUBSTATUS = 5302;

/** 403 substatus of a request outside the agent's grant, or over its budget. */
export const OUTSIDE_GRANT_SUBSTATUS = 5301;

/** Agent names: lower-case letters, digits, '-' and '_', 1–64 characters. */
export const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Grant lifetimes: default 8 h; `agents.maxLifetime` in cosmosgate.yaml bounds them (default 7 d). */
export const DEFAULT_GRANT_LIFETIME_MS = 8 * 60 * 60 * 1000;

/** What the person asks for (`POST /api/grants`). */
export interface GrantRequest {
  agent: string;
  /** Short action names (policy vocabulary), each one the person holds on every scope. */
  actions: string[];
  /** Resource scopes such as "/dbs/shop/colls/orders". */
  scopes: string[];
  /** Partition key values the agent may touch, each as the JSON of the key (e.g. '["c1"]'); absent = any. */
  partitionKeys?: string[];
  /** "30m", "8h", "2d"; default 8h; at most agents.maxLifetime. */
  lifetime?: string;
  budget?: { requests?: number; requestCharge?: number };
  /** The agent's public key: an EC P-256 JWK (no private part). */
  publicKey: JWK;
}

/** A grant as the API shows it. */
export interface GrantView {
  id: string;
  person: string;
  agent: string;
  actions: string[];
  scopes: string[];
  partitionKeys: string[] | null;
  /** RFC 7638 thumbprint of the agent's public key: the `kid` of its assertions. */
  keyThumbprint: string;
  createdAt: string;
  expiresAt: string;
  budget: { requests: number | null; requestCharge: number | null };
  used: { requests: number; requestCharge: number };
  status: "pending" | "active" | "expired" | "revoked" | "exhausted";
  /** The key whose tap confirmed it. */
  confirmedBy: string | null;
  confirmedAt: string | null;
  revokedAt: string | null;
  revokedReason: string | null;
  /**
   * The canonical JSON the confirming tap signs: only in `GET /api/grants/:id` of the person's own
   * pending grant (the console's `#/agents?confirm=ID` shows it for a grant the CLI made).
   */
  canonical?: string;
}

/** `POST /api/grants` → the pending grant, exactly what the tap will sign, and the tap's options. */
export interface GrantDraft {
  grant: GrantView;
  /** The canonical JSON the challenge is the SHA-256 of (show it to the person). */
  canonical: string;
  /** WebAuthn request options (for startAuthentication); challenge = base64url(SHA-256(canonical)). */
  options: unknown;
}

// Grants API (cookie session + CSRF on writes; or, for the CLI, `Authorization: Bearer` with the
// access token of a live `cosmosgate login` session, no CSRF — on POST /api/grants, GET, DELETE and
// rights; never for options/confirm: taps happen in the browser):
//   POST   /api/grants                 GrantRequest → GrantDraft
//   POST   /api/grants/:id/confirm     {response} → GrantView (active)
//   GET    /api/grants                 → {grants: GrantView[]} (own; administrators: ?all=1 for everyone's)
//   DELETE /api/grants/:id             → GrantView (revoked; own grants, or any for administrators)
//   GET    /api/grants/:id             → GrantView (own, or any for administrators)
//   POST   /api/grants/:id/options     {} → the tap's WebAuthn options again (pending, ≤ 10 min old)
//   GET    /api/grants/rights          → {rights: {scope: string, actions: string[]}[]}: what the person
//                                        holds now, scope by scope (a grant may name these scopes or
//                                        scopes beneath them, with these actions or fewer)
// Agents' tokens: POST /oauth/token grant_type=client_credentials (see the flow above) →
//   {access_token, token_type: "Bearer", expires_in, scope}; refusals 401 {error: "invalid_client"}.

/** The operation an approval is for, exactly as shown to approvers and hashed for the tap. */
export interface ApprovalOperation {
  method: string;
  /** The resource path, e.g. /dbs/shop/colls/orders/docs/o1. */
  resource: string;
  /** Operation name (cosmos/classify), e.g. item.delete. */
  operation: string;
  actions: string[];
  /** JSON of the partition key, or null. */
  partitionKey: string | null;
  /** The request body as sent (a document, a patch), parsed when JSON, else null. */
  body: unknown;
  /** SHA-256 (hex) of the raw body bytes, "" when none. */
  bodySha256: string;
  /** Who asked: the person, and the agent when an agent asked for them. */
  person: string;
  agent: string | null;
}

/** An approval as the API shows it. */
export interface ApprovalView {
  id: string;
  operation: ApprovalOperation;
  /** SHA-256 (hex) of the canonical operation: what identifies "the same request". */
  operationHash: string;
  status: "pending" | "approved" | "denied" | "expired" | "used";
  /** Who may approve: "self" (the person) or "group:G". */
  approvers: string;
  quorum: number;
  approvals: { by: string; credential: string; at: string }[];
  denial: { by: string; at: string; reason: string } | null;
  createdAt: string;
  expiresAt: string;
  /** Where an approver acts: {controlPlane}/console/#/approvals/ID. */
  url: string;
  /** The policy rule that asked for it (index in policy.yaml approvals). */
  rule: number;
}

// Approvals API (cookie session + CSRF on writes; the CLI's `cosmosgate login` bearer token may
// read: GET /api/approvals and GET /api/approvals/:id):
//   GET  /api/approvals                  → {approvals: ApprovalView[]} (those I may approve, and mine)
//   GET  /api/approvals/:id              → ApprovalView (approvers and the requester)
//   POST /api/approvals/:id/options      {} → WebAuthn request options; challenge =
//                                        base64url(SHA-256("cosmosgate-approval:" + id + ":" + operationHash))
//   POST /api/approvals/:id/approve      {response} → ApprovalView
//   POST /api/approvals/:id/deny         {reason?} → ApprovalView
//   GET  /api/approvals/stream           text/event-stream: `approval` events (ApprovalView JSON) as
//                                        approvals I may act on appear or change.

/**
 * What an agent may know of an approval it asked for: `GET /api/agent/approvals/:id` with
 * `Authorization: Bearer <the agent's access token>` (no cookie). Answered only for an approval whose
 * person is the token's `sub` and whose agent is its `act.sub`, under an active grant; anything else
 * is 404; no token 401, a token without a grant 403, a revoked/expired grant 401. No body, and
 * approvers only as a count.
 */
export interface AgentApprovalStatus {
  id: string;
  status: ApprovalView["status"];
  quorum: number;
  /** How many distinct people have approved so far. */
  approvals: number;
  expiresAt: string;
  url: string;
  operation: Pick<ApprovalOperation, "method" | "resource" | "operation" | "partitionKey">;
}
