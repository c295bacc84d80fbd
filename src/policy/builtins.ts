import { BUILT_IN_ROLES } from "../cosmos/actions.js";

/** A rule as written in a policy: actions allowed on one or more scopes. */
export interface BuiltInRule {
  readonly allow: readonly string[];
  readonly on: string;
}

/**
 * The two predefined roles, mirroring Cosmos DB's own built-in data-plane roles. A policy may grant
 * them under `members` but may not define roles with these names.
 *
 * @example
 * ```yaml
 * members:
 *   Cosmos DB Built-in Data Reader: ["group:auditors"]
 * ```
 */
export const BUILT_IN_ROLE_RULES: Readonly<Record<string, readonly BuiltInRule[]>> = Object.freeze(
  Object.fromEntries(
    Object.values(BUILT_IN_ROLES).map((role) => [role.name, [{ allow: role.actions, on: "/" }]]),
  ),
);
