/** One audit record of a data-plane request (the first version of the event schema). */
export interface AuditEvent {
  /** Milliseconds since the epoch, from the injected clock. */
  time: number;
  /** Event type; "data.request" for data-plane requests. */
  type: string;
  /** Principal subject, or "" when authentication failed before one was known. */
  subject: string;
  subjectKind?: string;
  issuer?: string;
  /** WebAuthn credential ID when the token named one. */
  credential?: string;
  /** Token `jti` when present (never the token itself). */
  jti?: string;
  /** Operation name from cosmos/ (e.g. "item.read"). */
  operation?: string;
  method?: string;
  actions: string[];
  /** Decoded resource path, e.g. "/dbs/shop/colls/orders/docs/a1". */
  resource: string;
  /** JSON text of the partition key header value, when any. */
  partitionKey?: string;
  decision: "allow" | "deny" | "error";
  reason: string;
  /** "role#rule" that allowed the request. */
  rule?: string;
  status: number;
  substatus?: number;
  requestCharge?: number;
  durationMs: number;
  clientAddress?: string;
  userAgent?: string;
  activityId?: string;
}

/** An event as stored: with its sequence number and the chain hashes. */
export interface AuditRecord extends AuditEvent {
  seq: number;
  /** SHA-256 (hex) of the previous record, "" for the first one. */
  prevHash: string;
  /** SHA-256 (hex) of this record: over prevHash and the canonical JSON of the event with its seq. */
  hash: string;
}
