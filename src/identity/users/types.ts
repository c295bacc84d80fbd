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

/** A group name: 1–128 characters, no control characters. */
export const GROUP_NAME = /^\P{Cc}{1,128}$/u;

/** At most this many groups per user (or invite). */
export const MAX_GROUPS = 64;
