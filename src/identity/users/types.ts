/** A user-administration event for the audit log (same shape as the WebAuthn events). */
export interface UserEvent {
  type: string;
  subject?: string;
  reason: string;
  decision?: "allow" | "deny";
  /** Event-specific facts (groups, who invited, sessions revoked); never a secret. */
  details?: Record<string, string | number | boolean>;
}

/** Where user-administration functions send their events. */
export type UserEvents = (e: UserEvent) => void;

/** A user name: 1–64 characters of A–Z a–z 0–9 . _ @ - (it is also the token `sub`). */
export const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** Default invite lifetime: 24 hours. */
export const DEFAULT_INVITE_TTL_MS = 24 * 60 * 60 * 1000;
