/**
 * Short action names ↔ Cosmos DB native data actions, and the two built-in data roles.
 * Policy speaks in short names; each maps to a native data action so a policy can be exported to
 * native RBAC where the native model can express it.
 */
import { type Action, ALL_ACTIONS } from "./types.js";

/** Prefix of every Cosmos DB native data action. */
export const NATIVE_PREFIX = "Microsoft.DocumentDB/databaseAccounts/";

const CONTAINERS = `${NATIVE_PREFIX}sqlDatabases/containers/`;
const ITEMS = `${CONTAINERS}items/`;

/**
 * The native data action each short action exports as. `patch` exports as `items/replace` (native
 * RBAC has no patch action); `manage` has none (native RBAC refuses management on the data plane).
 */
export const NATIVE_DATA_ACTIONS: Readonly<Record<Action, string | undefined>> = Object.freeze({
  metadata: `${NATIVE_PREFIX}readMetadata`,
  read: `${ITEMS}read`,
  create: `${ITEMS}create`,
  upsert: `${ITEMS}upsert`,
  replace: `${ITEMS}replace`,
  patch: `${ITEMS}replace`,
  delete: `${ITEMS}delete`,
  query: `${CONTAINERS}executeQuery`,
  changeFeed: `${CONTAINERS}readChangeFeed`,
  execute: `${CONTAINERS}executeStoredProcedure`,
  conflicts: `${CONTAINERS}manageConflicts`,
  manage: undefined,
});

/** What native `.../containers/items/*` grants. */
export const ITEM_ACTIONS: readonly Action[] = Object.freeze([
  "read",
  "create",
  "upsert",
  "replace",
  "patch",
  "delete",
] as Action[]);

/** What native `.../containers/*` grants: every item and container data action (not `manage`). */
export const CONTAINER_ACTIONS: readonly Action[] = Object.freeze([
  ...ITEM_ACTIONS,
  "query",
  "changeFeed",
  "execute",
  "conflicts",
] as Action[]);

/** A Cosmos DB built-in data role, as cosmosgate mirrors it. */
export interface BuiltInRole {
  /** The native role definition id (the last path segment of its resource id). */
  id: string;
  name: string;
  /** Short actions the role grants. */
  actions: readonly Action[];
  /** The native data actions of the role, as Cosmos DB defines it. */
  dataActions: readonly string[];
}

/** The two built-in data roles, keyed by their names. */
export const BUILT_IN_ROLES: Readonly<Record<string, BuiltInRole>> = Object.freeze({
  "Cosmos DB Built-in Data Reader": Object.freeze({
    id: "00000000-0000-0000-0000-000000000001",
    name: "Cosmos DB Built-in Data Reader",
    actions: Object.freeze(["metadata", "read", "query", "changeFeed"] as Action[]),
    dataActions: Object.freeze([
      `${NATIVE_PREFIX}readMetadata`,
      `${ITEMS}read`,
      `${CONTAINERS}executeQuery`,
      `${CONTAINERS}readChangeFeed`,
    ]),
  }),
  "Cosmos DB Built-in Data Contributor": Object.freeze({
    id: "00000000-0000-0000-0000-000000000002",
    name: "Cosmos DB Built-in Data Contributor",
    actions: Object.freeze(["metadata", ...CONTAINER_ACTIONS] as Action[]),
    dataActions: Object.freeze([`${NATIVE_PREFIX}readMetadata`, `${CONTAINERS}*`, `${ITEMS}*`]),
  }),
});

const SHORT = new Set<string>(ALL_ACTIONS);

// Native strings are looked up lower-cased: Azure action strings are case-insensitive.
const NATIVE_TO_SHORT = new Map<string, readonly Action[]>([
  [`${NATIVE_PREFIX}readMetadata`.toLowerCase(), Object.freeze(["metadata"] as Action[])],
  [`${ITEMS}read`.toLowerCase(), Object.freeze(["read"] as Action[])],
  [`${ITEMS}create`.toLowerCase(), Object.freeze(["create"] as Action[])],
  [`${ITEMS}upsert`.toLowerCase(), Object.freeze(["upsert"] as Action[])],
  // Native replace also permits patch, which has no native action of its own.
  [`${ITEMS}replace`.toLowerCase(), Object.freeze(["replace", "patch"] as Action[])],
  [`${ITEMS}delete`.toLowerCase(), Object.freeze(["delete"] as Action[])],
  [`${CONTAINERS}executeQuery`.toLowerCase(), Object.freeze(["query"] as Action[])],
  [`${CONTAINERS}readChangeFeed`.toLowerCase(), Object.freeze(["changeFeed"] as Action[])],
  [`${CONTAINERS}executeStoredProcedure`.toLowerCase(), Object.freeze(["execute"] as Action[])],
  [`${CONTAINERS}manageConflicts`.toLowerCase(), Object.freeze(["conflicts"] as Action[])],
  [`${ITEMS}*`.toLowerCase(), ITEM_ACTIONS],
  [`${CONTAINERS}*`.toLowerCase(), CONTAINER_ACTIONS],
]);

/**
 * Parses an action as written in policy: a short name (case-sensitive: `read`, `changeFeed`, ...)
 * or a native data action string (case-insensitive, as in Azure), including the native wildcards
 * `.../containers/*` and `.../containers/items/*`. Native `items/replace` yields `replace` and
 * `patch`. Returns `undefined` for anything else (including native `items/unmask`, which cosmosgate
 * does not model), so the caller can report the name with its own error.
 *
 * @example
 * ```ts
 * parseAction("read"); // ["read"]
 * parseAction("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"); // ["query"]
 * parseAction("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/*"); // item actions
 * parseAction("Read"); // undefined
 * ```
 */
export function parseAction(name: string): readonly Action[] | undefined {
  if (SHORT.has(name)) return [name as Action];
  return NATIVE_TO_SHORT.get(name.toLowerCase());
}

/**
 * The distinct native data actions that express a set of short actions, for export to native RBAC.
 * `manage` has no native equivalent and is reported in `unexpressible`.
 *
 * @example
 * ```ts
 * toNativeDataActions(["replace", "patch", "manage"]);
 * // { dataActions: [".../items/replace"], unexpressible: ["manage"] }
 * ```
 */
export function toNativeDataActions(actions: readonly Action[]): {
  dataActions: string[];
  unexpressible: Action[];
} {
  const dataActions: string[] = [];
  const unexpressible: Action[] = [];
  for (const a of actions) {
    const native = NATIVE_DATA_ACTIONS[a];
    if (native === undefined) {
      if (!unexpressible.includes(a)) unexpressible.push(a);
    } else if (!dataActions.includes(native)) {
      dataActions.push(native);
    }
  }
  return { dataActions, unexpressible };
}
