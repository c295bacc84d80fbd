import type { IdentityStore, UserRecord } from "../../store/ports.js";
import { UserError } from "./errors.js";

/**
 * The user named `name`, or a {@link UserError} saying so.
 *
 * @throws {UserError} `ERR_USER_UNKNOWN` (404).
 *
 * @example
 * ```ts
 * const user = findUser(store, "ada");
 * ```
 */
export function findUser(store: IdentityStore, name: string): UserRecord {
  const user = typeof name === "string" ? store.getUserByName(name) : undefined;
  if (user === undefined) {
    throw new UserError(
      "ERR_USER_UNKNOWN",
      `no user is named ${JSON.stringify(String(name).slice(0, 80))}; list the users to find the right name.`,
    );
  }
  return user;
}
