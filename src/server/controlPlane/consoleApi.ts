/**
 * The web console's JSON API under the control plane: the one contract the server routes implement
 * and `console/` (the Preact app) consumes. Types only — the console imports them with `import type`,
 * so no server code reaches the browser.
 *
 * Conventions:
 * - Cookie session (`cg_session`, HttpOnly, SameSite=Strict). Not signed in → 401 `ERR_NOT_SIGNED_IN`.
 * - Every write (POST, PUT, PATCH, DELETE) under `/api/` and `/auth/` made with a session cookie
 *   must carry the header `x-cosmosgate-csrf: <MeView.csrfToken>` (and `content-type:
 *   application/json`); without it → 403 `ERR_CSRF`.
 * - Administrator-only routes answer 403 `ERR_FORBIDDEN` to other people.
 * - Errors: `{code, message}` with a status; `message` says what to do. (The body also carries
 *   `error`, the same code, as the pages and the CLI read it.)
 * - Times are ISO 8601 strings unless named `...Ms` or `seq`.
 */

import type { AuditRecord } from "../../audit/types.js";

/** The header that carries the per-session CSRF token on writes. */
export const CSRF_HEADER = "x-cosmosgate-csrf";

/** An API error body (`error` repeats `code`). */
export interface ApiErrorBody {
  code: string;
  message: string;
  error?: string;
}

// ---------------------------------------------------------------- me ----

/** `GET /api/me`. */
export interface MeView {
  name: string;
  groups: string[];
  admin: boolean;
  /** The key this session signed in with. */
  credential: string;
  sessionExpiresAt: string;
  /** Send as `x-cosmosgate-csrf` on every write. */
  csrfToken: string;
}

/** A key as `GET /api/me/keys` and the people API list it. */
export interface KeyView {
  id: string;
  nickname: string;
  /** True for a hardware-bound key (not backup-eligible). */
  deviceBound: boolean;
  type: "hardware-bound" | "synced";
  aaguid: string;
  /** The authenticator model's name from its AAGUID when known (built-in list or FIDO metadata), else null. */
  authenticator: string | null;
  createdAt: string;
  /** null when never used to sign in. */
  lastUsedAt: string | null;
  useCount: number;
  suspended: boolean;
  /** Why it was suspended (e.g. a suspected clone), when suspended. */
  suspendedReason?: string;
  /** The key this session signed in with (own keys only). */
  current: boolean;
}

/** `GET /api/me/keys`. */
export interface KeysView {
  keys: KeyView[];
}

/**
 * Removing a key needs a tap: `POST /api/me/keys/:id/remove/options` → WebAuthn request options
 * (JSON, for `startAuthentication`) whose challenge is bound to removing that key from this session;
 * then `DELETE /api/me/keys/:id` with body {@link RemoveKeyRequest}. Without a valid assertion
 * (missing, malformed, expired, already used, bound to another key or session) → 403
 * `ERR_TAP_REQUIRED`; the last usable key → 409 `ERR_LAST_KEY` (from the options already). No recent
 * sign-in is needed: the tap is the proof.
 */
export interface RemoveKeyRequest {
  /** The assertion `startAuthentication` returned, by any of the person's usable keys. */
  response: unknown;
}

/** `DELETE /api/me/keys/:id`. */
export interface RemoveKeyResult {
  removed: string;
  /** True when the removed key was this session's: the cookie is cleared. */
  signedOut: boolean;
}

/** `POST /api/me/token` `{}` → an access token for this session, for scripts and the SDK. */
export interface SessionTokenView {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  /** The data plane's URL, to use as the SDK's endpoint. */
  endpoint: string;
}

// ------------------------------------------------------------ people ----

/** A person as administrators see them. */
export interface PersonView {
  name: string;
  groups: string[];
  admin: boolean;
  disabled: boolean;
  createdAt: string;
  keys: KeyView[];
  /** The last time one of their keys signed in, or null. */
  lastSeenAt: string | null;
  /** An enrollment invite not yet used, if any. */
  pendingInvite: { expiresAt: string } | null;
}

/**
 * `GET /api/people` (administrators), by name. People invited who have not enrolled yet are listed
 * too: no keys, `pendingInvite` set (they cannot be disabled or regrouped until they enroll: 404).
 */
export interface PeopleView {
  people: PersonView[];
}

/** `POST /api/people/invite` (administrators). */
export interface InviteRequest {
  name: string;
  groups: string[];
  admin?: boolean;
}

/** The answer to an invite: the one-time enrollment link (shown once; only its hash is kept). */
export interface InviteView {
  name: string;
  url: string;
  expiresAt: string;
}

// Also (administrators), each answering the updated PersonView:
//   POST /api/people/:name/disable   {}  — signs them out everywhere (not the last administrator: 409)
//   POST /api/people/:name/enable    {}
//   PUT  /api/people/:name/groups    {groups: string[]}  — at most 64, 1–128 characters each; taking
//        a group away signs them out everywhere (tokens naming it stop at once)
//   POST /api/people/:name/keys/:id/reenable  {}  — a suspended key works again
// A name that is not a user name is 400 `ERR_BAD_REQUEST`; an unknown person or key 404.

// ------------------------------------------------------------- audit ----

/**
 * Filters of the audit routes, as query parameters. `actor` is a subject, `key` a credential ID,
 * `action` a short action name, `resource` a resource path — exact ("/dbs/shop/colls/orders"),
 * everything below a path ending in "/" ("/dbs/shop/colls/orders/"), or a prefix ending in "*"
 * ("/dbs/shop/colls/ord*"), as `cosmosgate audit search --resource` —, `decision` allow|deny|error,
 * `type` an event type or a prefix ending in "*" ("credential.*"), `from`/`to` ISO times or relative
 * ("1h", "7d"; `from` included, `to` not). People who are not administrators see only their own
 * records: `actor` is forced to themselves, and asking for someone else is 403 `ERR_FORBIDDEN`.
 * An unknown, repeated or malformed parameter is 400 `ERR_BAD_QUERY`, its message naming it.
 */
export interface AuditQuery {
  actor?: string;
  key?: string;
  action?: string;
  resource?: string;
  decision?: "allow" | "deny" | "error";
  type?: string;
  from?: string;
  to?: string;
}

/**
 * `GET /api/audit/records?...&limit=100&before=SEQ` — newest first (by time, then seq); `limit` 1 to
 * 500. `before` is the `next` of the previous page (a record this person may see, else 400).
 */
export interface AuditPage {
  records: AuditRecord[];
  /** Pass as `before` for the next (older) page; null at the end. */
  next: number | null;
}

/**
 * `GET /api/audit/timeline?...&buckets=48` — allowed and denied counts over time (at most 200
 * buckets; default window: the last 24 hours). `deny` counts every refused record: decision `deny`
 * or `error`. The first and last buckets may start before `from` / end after `to`; only records
 * inside [from, to) are counted.
 */
export interface TimelineView {
  from: string;
  to: string;
  bucketMs: number;
  buckets: { start: string; allow: number; deny: number }[];
}

/** `GET /api/audit/records/:seq` — one record, its place in the chain and whether it verifies. */
export interface AuditRecordDetail {
  record: AuditRecord;
  chain: {
    seq: number;
    hash: string;
    prevHash: string;
    /** The record's hash recomputed from its content matches. */
    hashOk: boolean;
    /** prevHash equals the previous record's hash (true for the first record kept). */
    linkOk: boolean;
    /** Records in the trail now. */
    length: number;
  };
  /** The first signed checkpoint at or after this record, and whether its signature verifies. */
  checkpoint: { seq: number; time: string; kid: string; signatureOk: boolean; coversRecord: boolean } | null;
}

// `GET /api/audit/records/:seq` → AuditRecordDetail; someone else's record is 404 to a non-administrator.
// `GET /api/audit/keys?from&to` → the key-usage report as JSON (src/audit/keysReport.ts KeysReport;
//   default window: the last 30 days); administrators: every key; others: the keys the identity
//   store says are theirs, with `overall` and `totals` summed over those keys only.
// `GET /api/audit/export?format=csv|jsonl&<AuditQuery>` → a file download of the current filter
//   (default jsonl; content-disposition: attachment), records in chain (seq) order; at most 2 at
//   once per session (429 `ERR_TOO_MANY_EXPORTS`).
// `GET /api/audit/stream?<AuditQuery>` → text/event-stream; each new matching record is an event
//   `record` (`id:` its seq) whose data is the AuditRecord JSON (live tail); comment lines as
//   heartbeat; `Last-Event-ID` resumes (up to the last 1000 records); an event `end` (data
//   `{reason}`) before the server closes it (session over, shutdown). At most 3 streams per session
//   (429 `ERR_TOO_MANY_STREAMS`).

// ------------------------------------------------------------ policy ----

/** One rule of a role. */
export interface RuleView {
  /** Allowed actions, as written (short names, `*`, or native data actions). */
  allow: string[];
  /** Scope, e.g. "/dbs/shop/colls/orders". A rule with several scopes is one RuleView per scope. */
  on: string;
  /** The rule's index in its role, as an explanation's `matched.rule` names it. */
  rule?: number;
}

/**
 * A Cosmos DB SQL role definition, as `az cosmosdb sql role definition create --body` takes it.
 * Scopes are relative to the account ("/", "/dbs/DB", "/dbs/DB/colls/C"), as the az CLI takes them;
 * the ARM REST API and templates want them prefixed with the account's ARM id (see `notes`).
 */
export interface NativeRoleDefinitionView {
  RoleName: string;
  Type: "CustomRole";
  AssignableScopes: string[];
  Permissions: { DataActions: string[] }[];
}

/** What a role becomes in Cosmos DB's native RBAC, where it can be expressed (src/policy/nativeRbac.ts). */
export interface NativeRoleView {
  /**
   * The one Cosmos DB SQL role definition the role maps to, or null: when a built-in role fits
   * (`builtIn`), when nothing is expressible, or when several definitions are needed (`definitions`).
   */
  definition: NativeRoleDefinitionView | null;
  /**
   * Set when the role grants different actions on different scopes: one definition per distinct set
   * of data actions (a native definition grants the same actions wherever it is assigned).
   */
  definitions?: NativeRoleDefinitionView[];
  /** Built-in role it equals, e.g. "Cosmos DB Built-in Data Reader" (ID 00000000-0000-0000-0000-000000000001). */
  builtIn?: { name: string; id: string };
  /** Where to assign the definition(s) or the built-in role, relative to the account. */
  assignAt?: string[];
  /** What cannot be expressed natively (e.g. "manage has no data action"), empty when all of it can. */
  notExpressible: string[];
  /** How to use the result: scope format (az CLI vs ARM), members, several definitions. */
  notes?: string[];
}

/** A role of the loaded policy. */
export interface RoleView {
  name: string;
  builtIn: boolean;
  rules: RuleView[];
  /** Member entries as written: "sub:alice", "group:analysts". Administrators only (else []). */
  members: string[];
  native: NativeRoleView;
}

/** `GET /api/policy`. */
export interface PolicyView {
  version: string;
  file: string;
  /** When the file in force was loaded. */
  loadedAt: string;
  roles: RoleView[];
}

/**
 * `POST /api/policy/explain` — "can this person do this action on this resource?". Administrators
 * may ask for anyone (`person`, a user name, or `sub` + `groups` for a federated subject); others
 * only for themselves. The answer is the policy module's ExplainResult (src/policy/explain.ts).
 */
export interface ExplainRequest {
  person?: string;
  sub?: string;
  groups?: string[];
  action: string;
  resource: string;
}

// ------------------------------------------------------------ status ----

/** `GET /api/status` (administrators). */
export interface StatusView {
  version: string;
  startedAt: string;
  upstream: {
    type: "embedded" | "cosmos";
    /** The account endpoint (for embedded: "embedded store, <file>"). */
    endpoint: string;
    healthy: boolean;
    latencyMs: number | null;
    problem?: string;
  };
  signingKeys: {
    kid: string;
    state: "next" | "current" | "retired";
    createdAt: string;
    activatesAt: string;
    retiresAt: string;
  }[];
  /** When the next key becomes current (the next rotation), if known. */
  nextRotation: string | null;
  audit: {
    durability: "strict" | "buffered";
    onFailure: "closed" | "open";
    state: "ok" | "retrying" | "overloaded" | "failed" | "closed";
    accepting: boolean;
    queueDepth: number;
    maxQueue: number;
    records: number;
    lastCheckpoint: { seq: number; time: string } | null;
  };
  /** Trusted external issuers by name and iss. */
  issuers: { name: string; issuer: string }[];
}
