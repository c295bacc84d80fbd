import { randomBytes } from "node:crypto";
import type { IdentityStore } from "../../store/ports.js";
import { checkGroups } from "./checkGroups.js";
import { UserError } from "./errors.js";
import { hashInviteSecret } from "./hashInviteSecret.js";
import { DEFAULT_INVITE_TTL_MS, USER_NAME, type UserEvents } from "./types.js";

/** Options of {@link inviteUser}. */
export interface InviteUserOptions {
  /** The new user's login name (1–64 of A–Z a–z 0–9 . _ @ -). */
  name: string;
  /** Groups the user joins (policy `group:` members). */
  groups: string[];
  /** Whether the user will be an administrator. */
  admin: boolean;
  /** How long the invite stays valid; default 24 hours, at most 30 days. */
  expiresInMs?: number;
  /** Who issued the invite (a user name), for the record. */
  createdBy?: string;
  /** Milliseconds since the epoch. */
  clock: () => number;
  events?: UserEvents;
}

/** A fresh invite: give `secret` to the person (in the enrollment link); it is shown only once. */
export interface InviteResult {
  /** 32 random bytes, base64url. Only its SHA-256 is stored. */
  secret: string;
  expiresAt: number;
}

const MAX_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Invites a new user: stores an invite (only the SHA-256 of its secret) that lets one person enroll
 * a key and become `name`, with `groups` and `admin`. The user is created when the invite is
 * redeemed by a successful registration. A name that already exists is refused (to add a key, the
 * user signs in and adds it).
 *
 * @throws {UserError} `ERR_USER_INVALID` (400), `ERR_USER_EXISTS` (409).
 *
 * @example
 * ```ts
 * const { secret, expiresAt } = inviteUser(store, { name: "ada", groups: ["analysts"], admin: false, clock: Date.now });
 * console.log(`${publicUrl}/enroll#invite=${secret} (valid until ${new Date(expiresAt).toISOString()})`);
 * ```
 */
export function inviteUser(store: IdentityStore, opts: InviteUserOptions): InviteResult {
  const { name, groups, admin, createdBy, clock } = opts;
  const ttl = opts.expiresInMs ?? DEFAULT_INVITE_TTL_MS;
  if (typeof name !== "string" || !USER_NAME.test(name)) {
    throw new UserError(
      "ERR_USER_INVALID",
      `user name ${JSON.stringify(String(name).slice(0, 80))} is not valid; use 1–64 characters of A–Z, a–z, 0–9, ".", "_", "@", "-".`,
    );
  }
  const uniqueGroups = checkGroups(groups);
  if (typeof admin !== "boolean") throw new UserError("ERR_USER_INVALID", "admin must be true or false.");
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_MS) {
    throw new UserError("ERR_USER_INVALID", "the invite lifetime must be between 1 ms and 30 days.");
  }
  if (store.getUserByName(name) !== undefined) {
    throw new UserError(
      "ERR_USER_EXISTS",
      `a user named "${name}" already exists; choose another name, or have ${name} sign in and add a key.`,
    );
  }
  const now = clock();
  const secret = randomBytes(32).toString("base64url");
  const expiresAt = now + ttl;
  store.createInvite({
    secretHash: hashInviteSecret(secret),
    userName: name,
    groups: uniqueGroups,
    admin,
    createdAt: now,
    expiresAt,
    ...(createdBy !== undefined ? { createdBy } : {}),
  });
  opts.events?.({
    type: "user.invited",
    subject: name,
    reason: `invited${admin ? " as an administrator" : ""}${createdBy !== undefined ? ` by ${createdBy}` : ""}, valid until ${new Date(expiresAt).toISOString()}`,
    decision: "allow",
    // Never the secret (nor its hash): the invite is known by its user name and expiry.
    details: {
      groups: uniqueGroups.join(","),
      admin,
      expiresAt: new Date(expiresAt).toISOString(),
      ...(createdBy !== undefined ? { createdBy } : {}),
    },
  });
  return { secret, expiresAt };
}
