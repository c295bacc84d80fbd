import { UserError } from "./errors.js";
import { GROUP_NAME, MAX_GROUPS } from "./types.js";

/**
 * A user's groups as given (untrusted): a list of at most {@link MAX_GROUPS} names, each 1–128
 * characters without control characters. Returns them without duplicates, in the order given.
 *
 * @throws {UserError} `ERR_USER_INVALID` (400).
 *
 * @example
 * ```ts
 * checkGroups(["analysts", "ops", "analysts"]); // ["analysts", "ops"]
 * ```
 */
export function checkGroups(groups: unknown): string[] {
  if (
    !Array.isArray(groups) ||
    groups.length > MAX_GROUPS ||
    !groups.every((g) => typeof g === "string" && GROUP_NAME.test(g))
  ) {
    throw new UserError(
      "ERR_USER_INVALID",
      `groups must be a list of at most ${MAX_GROUPS} names, each 1–128 characters without control characters.`,
    );
  }
  return [...new Set(groups as string[])];
}
