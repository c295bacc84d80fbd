/**
 * Event-specific facts of an audit record (a signing key's kid, a policy file, a failure code):
 * flat, plain JSON scalars only. Never a token, a key or a document body.
 */
export type AuditDetails = Record<string, string | number | boolean>;

/**
 * One audit record: a data-plane request or an identity, key, policy or start-up event. The
 * documented schema, field by field and event type by event type, is docs/audit.md. Every field
 * other than the required ones is absent (not null) when it does not apply.
 */
export interface AuditEvent {
  /** Milliseconds since the epoch, from the injected clock. */
  time: number;
  /** Event type, dot.case: "data.request", "signin.failed", ... (see {@link AUDIT_EVENT_TYPES}). */
  type: string;
  /** Id of the gateway process that wrote the record: random per start. Absent on CLI records. */
  instance?: string;
  /**
   * Who: the principal's subject (data plane), the user an identity event is about, "cosmosgate"
   * for the gateway's own events, "cli:<os user>" for command-line changes, or "" when unknown.
   */
  subject: string;
  /** "user", "agent", "service" (token principals), "system" (the gateway), "operator" (CLI). */
  subjectKind?: string;
  /** The principal's display name, when its token carries one. */
  subjectName?: string;
  issuer?: string;
  /**
   * The issuer of the token itself, set only when it differs from `issuer`: this gateway, for a
   * token made by token exchange (RFC 8693) from a federated token of `issuer`.
   */
  tokenIssuer?: string;
  /** WebAuthn credential ID (the key) when one is known. */
  credential?: string;
  /** The key's nickname, as its owner named it. */
  credentialName?: string;
  /** The key's authenticator model (AAGUID). */
  aaguid?: string;
  /** True for a hardware-bound key, false for a synced passkey. */
  deviceBound?: boolean;
  /** Sign-in session id. */
  session?: string;
  /** The agent acting for `subject` ("agent:NAME", the token's `act.sub`), when an agent asked. */
  actor?: string;
  /** The agent grant the request or event is about (`gr_…`). */
  grant?: string;
  /** Token `jti` when present (never the token itself). */
  jti?: string;
  /** Operation name from cosmos/ (e.g. "item.read"). */
  operation?: string;
  method?: string;
  actions: string[];
  /**
   * What the event is about: a decoded Cosmos DB path ("/dbs/shop/colls/orders/docs/a1"), a user
   * ("/users/ada"), a signing key ("/keys/KID"), "/policy", "/gateway", or "".
   */
  resource: string;
  /** JSON text of the partition key header value, when any. */
  partitionKey?: string;
  decision: "allow" | "deny" | "error";
  reason: string;
  /** "role#rule" that allowed the request. */
  rule?: string;
  /** HTTP status of a data-plane response; 0 for events that are not requests. */
  status: number;
  substatus?: number;
  requestCharge?: number;
  durationMs: number;
  clientAddress?: string;
  userAgent?: string;
  activityId?: string;
  /** Event-specific facts; see docs/audit.md for each type's. */
  details?: AuditDetails;
}

/** An event as stored: with its sequence number and the chain hashes. */
export interface AuditRecord extends AuditEvent {
  seq: number;
  /** SHA-256 (hex) of the previous record, "" for the first one. */
  prevHash: string;
  /** SHA-256 (hex) of this record: over prevHash and the canonical JSON of the event with its seq. */
  hash: string;
}

/**
 * The event types the gateway and the command line write (docs/audit.md describes each). Other
 * dot.case types may appear too (session.started, signing_key.removed, ...): readers must accept
 * any string.
 */
export const AUDIT_EVENT_TYPES = [
  "data.request",
  "gateway.started",
  "config.loaded",
  "policy.loaded",
  "policy.refused",
  "user.invited",
  "user.enrolled",
  "user.disabled",
  "user.enabled",
  "user.groups_changed",
  "signin.succeeded",
  "signin.failed",
  "credential.added",
  "credential.renamed",
  "credential.removed",
  "credential.suspended",
  "credential.reenabled",
  "credential.clone_suspected",
  "token.issued",
  "token.refreshed",
  "token.revoked",
  "refresh_token.reused",
  "signing_key.created",
  "signing_key.activated",
  "signing_key.retired",
  "grant.created",
  "grant.confirmed",
  "grant.revoked",
  "agent.token_issued",
  "approval.requested",
  "approval.approved",
  "approval.denied",
  "approval.expired",
  "approval.used",
  "audit.checkpoint",
  "audit.pruned",
] as const;

/** One of {@link AUDIT_EVENT_TYPES}. */
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];
