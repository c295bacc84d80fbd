/** The policy's short action names and the common audit event types, for the filters' choices. */
import type { Action } from "../../src/cosmos/types";

/** Every short action, checked against the server's `Action` type (a missing or unknown one fails to compile). */
const ACTION_SET: Record<Action, true> = {
  metadata: true,
  read: true,
  create: true,
  upsert: true,
  replace: true,
  patch: true,
  delete: true,
  query: true,
  changeFeed: true,
  execute: true,
  conflicts: true,
  manage: true,
};

export const ACTIONS = Object.keys(ACTION_SET) as Action[];

/** Common event types (docs/audit.md); the filter takes any. */
export const EVENT_TYPES = [
  "data.request",
  "signin.succeeded",
  "signin.failed",
  "token.issued",
  "token.refreshed",
  "token.revoked",
  "credential.added",
  "credential.renamed",
  "credential.removed",
  "credential.suspended",
  "credential.reenabled",
  "credential.clone_suspected",
  "user.invited",
  "user.enrolled",
  "user.disabled",
  "user.enabled",
  "policy.loaded",
  "gateway.started",
  "audit.checkpoint",
];

const ITEM_ACTIONS: Action[] = ["read", "create", "upsert", "replace", "patch", "delete"];
const CONTAINER_ACTIONS: Action[] = [...ITEM_ACTIONS, "query", "changeFeed", "execute", "conflicts"];
/** Native data actions (after "Microsoft.DocumentDB/databaseAccounts/", lower-case) → short actions (src/cosmos/actions.ts). */
const NATIVE: Record<string, Action[]> = {
  readmetadata: ["metadata"],
  "sqldatabases/containers/items/read": ["read"],
  "sqldatabases/containers/items/create": ["create"],
  "sqldatabases/containers/items/upsert": ["upsert"],
  "sqldatabases/containers/items/replace": ["replace", "patch"],
  "sqldatabases/containers/items/delete": ["delete"],
  "sqldatabases/containers/items/*": ITEM_ACTIONS,
  "sqldatabases/containers/executequery": ["query"],
  "sqldatabases/containers/readchangefeed": ["changeFeed"],
  "sqldatabases/containers/executestoredprocedure": ["execute"],
  "sqldatabases/containers/manageconflicts": ["conflicts"],
  "sqldatabases/containers/*": CONTAINER_ACTIONS,
};

/** The short actions a policy's action name grants (`*`, a short name or a native data action); [] if unknown. */
export function expandAction(name: string): Action[] {
  if (name === "*") return ACTIONS;
  if ((ACTIONS as string[]).includes(name)) return [name as Action];
  const lower = name.toLowerCase();
  const prefix = "microsoft.documentdb/databaseaccounts/";
  return lower.startsWith(prefix) ? (NATIVE[lower.slice(prefix.length)] ?? []) : [];
}
