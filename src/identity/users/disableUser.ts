import type { IdentityStore, UserRecord } from "../../store/ports.js";
import { UserError } from "./errors.js";
import { findUser } from "./findUser.js";
import type { UserEvents } from "./types.js";

/** What {@link disableUser} did. */
export interface DisableUserResult {
  user: UserRecord;
  /** Ids of the sessions it revoked. */
  revokedSessions: string[];
}

/**
 * Disables a user: they can no longer sign in (403 at verification), and every session of theirs is
 * revoked at once, so their tokens stop working as soon as the data plane sees the revocation.
 * Refuses to disable the last enabled administrator (nobody could re-enable anyone). Disabling a
 * disabled user is harmless (sessions are revoked again if any appeared).
 *
 * @throws {UserError} `ERR_USER_UNKNOWN` (404), `ERR_USER_LAST_ADMIN` (409).
 *
 * @example
 * ```ts
 * const { revokedSessions } = disableUser(store, "mallory", Date.now);
 * console.log(`disabled mallory; ${revokedSessions.length} session(s) revoked`);
 * ```
 */
export function disableUser(
  store: IdentityStore,
  name: string,
  clock: () => number,
  events?: UserEvents,
): DisableUserResult {
  const user = findUser(store, name);
  if (user.admin && !user.disabled) {
    const otherAdmins = store.listUsers().filter((u) => u.admin && !u.disabled && u.id !== user.id);
    if (otherAdmins.length === 0) {
      throw new UserError(
        "ERR_USER_LAST_ADMIN",
        `"${user.name}" is the last enabled administrator; invite or enable another administrator first.`,
      );
    }
  }
  const now = clock();
  store.setUserDisabled(user.id, true);
  const revokedSessions = store.revokeSessionsOf({ userId: user.id }, "user disabled", now);
  events?.({
    type: "user.disabled",
    subject: user.name,
    reason: `disabled; ${revokedSessions.length} session(s) revoked`,
    decision: "deny",
    details: { revokedSessions: revokedSessions.length, admin: user.admin, wasDisabled: user.disabled },
  });
  return { user: { ...user, disabled: true }, revokedSessions };
}
