import type { IdentityStore, UserRecord } from "../../store/ports.js";

/**
 * Every user, sorted by name.
 *
 * @example
 * ```ts
 * for (const u of listUsers(store)) console.log(u.name, u.admin ? "admin" : "", u.disabled ? "disabled" : "");
 * ```
 */
export function listUsers(store: IdentityStore): UserRecord[] {
  return [...store.listUsers()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
