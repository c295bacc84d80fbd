import type { IdentityStore, UserRecord } from "../../store/ports.js";
import { findUser } from "./findUser.js";
import type { UserEvents } from "./types.js";

/**
 * Re-enables a disabled user: they can sign in again with their (non-suspended) keys. Sessions
 * revoked when they were disabled stay revoked. (`_clock` keeps the signature the same as
 * {@link disableUser}'s; the store records no enable time.)
 *
 * @throws {UserError} `ERR_USER_UNKNOWN` (404).
 *
 * @example
 * ```ts
 * enableUser(store, "ada", Date.now);
 * ```
 */
export function enableUser(
  store: IdentityStore,
  name: string,
  _clock: () => number,
  events?: UserEvents,
): UserRecord {
  const user = findUser(store, name);
  store.setUserDisabled(user.id, false);
  events?.({
    type: "user.enabled",
    subject: user.name,
    reason: user.disabled ? "enabled" : "enabled (it was not disabled)",
    decision: "allow",
    details: { admin: user.admin, wasDisabled: user.disabled },
  });
  return { ...user, disabled: false };
}
