import type { IdentityStore, UserRecord } from "../../store/ports.js";
import { checkGroups } from "./checkGroups.js";
import { findUser } from "./findUser.js";
import type { UserEvents } from "./types.js";

/** What {@link setUserGroups} did. */
export interface SetUserGroupsResult {
  user: UserRecord;
  added: string[];
  removed: string[];
  /** Ids of the sessions it revoked (only when a group was removed). */
  revokedSessions: string[];
}

/**
 * Replaces a user's groups (policy `group:` members). Tokens issued from now on carry the new list.
 * When a group is taken away, every session of the user is revoked at once, so tokens that still
 * name the old group stop working from the data plane's next request instead of living out their
 * lifetime; adding groups alone revokes nothing (the next token, at the latest on refresh, has them).
 * Setting the same groups changes nothing and emits nothing.
 *
 * @throws {UserError} `ERR_USER_UNKNOWN` (404), `ERR_USER_INVALID` (400) for a bad group list.
 *
 * @example
 * ```ts
 * const { removed, revokedSessions } = setUserGroups(store, "ada", ["analysts"], Date.now);
 * ```
 */
export function setUserGroups(
  store: IdentityStore,
  name: string,
  groups: unknown,
  clock: () => number,
  events?: UserEvents,
): SetUserGroupsResult {
  const next = checkGroups(groups);
  const user = findUser(store, name);
  const before = new Set(user.groups);
  const after = new Set(next);
  const added = next.filter((g) => !before.has(g));
  const removed = user.groups.filter((g) => !after.has(g));
  if (added.length === 0 && removed.length === 0 && next.length === user.groups.length) {
    return { user, added, removed, revokedSessions: [] };
  }
  store.setUserGroups(user.id, next);
  const revokedSessions =
    removed.length > 0 ? store.revokeSessionsOf({ userId: user.id }, "groups changed", clock()) : [];
  events?.({
    type: "user.groups_changed",
    subject: user.name,
    reason:
      `groups set to ${next.length > 0 ? next.join(", ") : "none"}` +
      (removed.length > 0 ? `; ${revokedSessions.length} session(s) revoked` : ""),
    decision: "allow",
    details: {
      groups: next.join(","),
      added: added.join(","),
      removed: removed.join(","),
      revokedSessions: revokedSessions.length,
    },
  });
  return { user: { ...user, groups: next }, added, removed, revokedSessions };
}
