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
export const BUILT_IN_ROLE_RULES: Readonly<Record<string, readonly BuiltInRule[]>> = Object.freeze({
  "Cosmos DB Built-in Data Reader": [{ allow: ["metadata", "read", "query", "changeFeed"], on: "/" }],
  "Cosmos DB Built-in Data Contributor": [
    {
      allow: [
        "metadata",
        "read",
        "create",
        "upsert",
        "replace",
        "patch",
        "delete",
        "query",
        "changeFeed",
        "execute",
        "conflicts",
      ],
      on: "/",
    },
  ],
});
