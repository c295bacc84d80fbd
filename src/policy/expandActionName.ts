import { NATIVE_DATA_ACTIONS, NATIVE_PREFIX, parseAction } from "../cosmos/actions.js";
import { type Action, ALL_ACTIONS } from "../cosmos/types.js";

/**
 * Every action name a policy accepts, for messages and suggestions: `*`, the short names, then the
 * native data actions (the table itself lives in cosmos/actions.ts, the one place that knows the
 * Cosmos DB data-action strings).
 */
export const ACTION_NAMES: readonly [string, ...string[]] = [
  "*",
  ...ALL_ACTIONS,
  ...new Set(Object.values(NATIVE_DATA_ACTIONS).filter((n): n is string => n !== undefined)),
  `${NATIVE_PREFIX}sqlDatabases/containers/items/*`,
  `${NATIVE_PREFIX}sqlDatabases/containers/*`,
];

/**
 * Expands an action name as written in a policy — a short name (`read`, case-sensitive), `*`
 * (every action, `manage` included) or a native Cosmos DB data action
 * (`Microsoft.DocumentDB/databaseAccounts/...`, case-insensitive as in Azure; wildcards `items/*`
 * and `containers/*`; native `items/replace` also grants `patch`) — to the short actions it grants.
 *
 * @returns the actions, or `undefined` if the name is unknown.
 * @example
 * ```ts
 * expandActionName("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"); // ["query"]
 * expandActionName("*").includes("manage"); // true
 * expandActionName("dlete"); // undefined
 * ```
 */
export function expandActionName(name: string): readonly Action[] | undefined {
  return name === "*" ? ALL_ACTIONS : parseAction(name);
}
