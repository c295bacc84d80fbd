import { BUILT_IN_ROLES, NATIVE_DATA_ACTIONS, NATIVE_PREFIX } from "../cosmos/actions.js";
import { type Action, ALL_ACTIONS } from "../cosmos/types.js";
import type { CompiledPolicy } from "./compilePolicy.js";
import { expandActionName } from "./expandActionName.js";
import { parsePath } from "./parsePath.js";
import type { PolicyDocument } from "./schema.js";

/**
 * What a policy role becomes in Cosmos DB's native data-plane RBAC (the "SQL role definitions" of
 * an account), where it can, and what it cannot say. Pure functions over a parsed or compiled
 * role: no I/O.
 *
 * The native model: a role definition is a set of data actions plus the scopes it may be assigned
 * at (`AssignableScopes`); a role assignment gives one Microsoft Entra principal one definition at
 * one scope — the account (`/`), a database (`/dbs/DB`) or a container (`/dbs/DB/colls/C`) — and
 * covers everything beneath it. Assignments add up; there is no deny. A policy rule `{allow, on}`
 * is therefore exactly an assignment of a definition holding `allow` at each scope of `on`, as long
 * as the actions have data actions and the scopes are of those three shapes.
 *
 * Scopes are returned relative to the account, as `az cosmosdb sql role definition create --body`
 * and `az cosmosdb sql role assignment create --scope` take them (the CLI adds the account's ARM
 * id). The ARM REST API, ARM/Bicep templates and Azure PowerShell take them fully qualified
 * ({@link fullyQualifiedScope}): `/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.DocumentDB/databaseAccounts/ACCOUNT`
 * followed by the scope. Every view carries that as a note.
 */

/** A Cosmos DB SQL role definition, as `az cosmosdb sql role definition create --body` takes it. */
export interface NativeRoleDefinition {
  RoleName: string;
  Type: "CustomRole";
  /** Relative to the account: "/", "/dbs/DB" or "/dbs/DB/colls/C". */
  AssignableScopes: string[];
  Permissions: { DataActions: string[] }[];
}

/** What a role maps to. Structurally the console API's `NativeRoleView`. */
export interface NativeRole {
  /** The one custom role definition the role maps to, or null (none needed, a built-in fits, or several are needed). */
  definition: NativeRoleDefinition | null;
  /**
   * When the role grants different actions on different scopes: one definition per distinct set of
   * data actions (a native definition grants the same actions wherever it is assigned).
   */
  definitions?: NativeRoleDefinition[];
  /** The built-in role whose data actions the role's (expressible) rules grant exactly. */
  builtIn?: { name: string; id: string };
  /** Where to assign the definition(s) or the built-in role, relative to the account. */
  assignAt?: string[];
  /** What native RBAC cannot say; empty when the whole role is expressed. */
  notExpressible: string[];
  /** How to use the result (scope format, members, several definitions). */
  notes: string[];
}

/** A rule as written (parsed) or compiled: actions and one or more scopes. */
export interface RoleRuleSource {
  readonly allow: readonly string[];
  readonly on: string | readonly string[];
}

/** A role as written (parsed) or compiled (`CompiledRole` fits). */
export interface RoleSource {
  readonly name: string;
  readonly rules: readonly RoleRuleSource[];
  /** Member entries (`sub:alice`, `group:analysts`); when given and not empty, a note says how they map. */
  readonly members?: readonly string[];
}

/** The note every view carries: the scopes are relative to the account. */
export const SCOPE_NOTE =
  'Scopes are relative to the account ("/" is the account, then /dbs/DB and /dbs/DB/colls/C), as `az cosmosdb sql role definition create --body` and `az cosmosdb sql role assignment create --scope` take them. ' +
  "The ARM REST API, ARM/Bicep templates and Azure PowerShell want them fully qualified: " +
  "/subscriptions/SUBSCRIPTION/resourceGroups/GROUP/providers/Microsoft.DocumentDB/databaseAccounts/ACCOUNT followed by the scope.";

/** The note of a role with members. */
export const MEMBERS_NOTE =
  "Members are not part of a role definition: assign it to Microsoft Entra principals (object IDs) with `az cosmosdb sql role assignment create`. " +
  "The gateway's own passkey users and the values of group: entries have no Entra identity.";

const CONTAINERS = `${NATIVE_PREFIX}sqlDatabases/containers/`;
const ITEMS = `${CONTAINERS}items/`;
/** The item data actions native `items/*` stands for (patch has none: it is items/replace). */
const NATIVE_ITEM_ACTIONS = ["read", "create", "upsert", "replace", "delete"].map((a) => `${ITEMS}${a}`);
/** The container data actions native `containers/*` adds to `items/*`. */
const NATIVE_CONTAINER_ACTIONS = [
  "executeQuery",
  "readChangeFeed",
  "executeStoredProcedure",
  "manageConflicts",
].map((a) => `${CONTAINERS}${a}`);

/** Where a native scope can be assigned: the account, a database or a container. */
export type NativeScope = { ok: true; scope: string } | { ok: false; why: string };

/**
 * The native scope of a policy scope: `/` → `/`, `/dbs/DB` → `/dbs/DB`, `/dbs/DB/colls/C` →
 * `/dbs/DB/colls/C`; anything else (a `*` wildcard, a user or permission, an item, stored
 * procedure, trigger, UDF, conflict or partition key range) cannot be a native scope, and `why`
 * says so.
 *
 * @example
 * ```ts
 * nativeScope("/dbs/shop/colls/orders"); // { ok: true, scope: "/dbs/shop/colls/orders" }
 * nativeScope("/dbs/shop/colls/*").ok; // false
 * ```
 */
export function nativeScope(scope: string): NativeScope {
  const parsed = parsePath(scope, "scope");
  if (!parsed.ok) return { ok: false, why: `${scope} is not a valid scope (${parsed.expected})` };
  const s = parsed.segments;
  if (s.some((seg) => seg === "*")) {
    return {
      ok: false,
      why: `the scope ${scope} uses the wildcard *: a native role assignment names one account, database or container (assign the role at each one the wildcard stands for)`,
    };
  }
  if (s.length === 0) return { ok: true, scope: "/" };
  if (s.length === 2) return { ok: true, scope: `/dbs/${s[1]}` };
  if (s.length === 4 && s[2] === "colls") return { ok: true, scope: `/dbs/${s[1]}/colls/${s[3]}` };
  if (s[2] === "users") {
    return {
      ok: false,
      why: `the scope ${scope} is a Cosmos DB user or permission (resource tokens), not a native RBAC scope`,
    };
  }
  return {
    ok: false,
    why: `the scope ${scope} is deeper than a container: native RBAC assigns roles to the account, a database or a container, not to single items, stored procedures, triggers, UDFs, conflicts or partition key ranges`,
  };
}

/**
 * The account-relative scope prefixed with an account's ARM resource id, as the ARM REST API and
 * templates take it.
 *
 * @example
 * ```ts
 * fullyQualifiedScope("/subscriptions/s/resourceGroups/g/providers/Microsoft.DocumentDB/databaseAccounts/a", "/dbs/shop");
 * // ".../databaseAccounts/a/dbs/shop"
 * ```
 */
export function fullyQualifiedScope(accountId: string, scope: string): string {
  const account = accountId.replace(/\/+$/, "");
  return scope === "/" ? account : `${account}${scope}`;
}

/**
 * The native data actions of a set of short actions, in the order of the action table, compacted
 * as the built-in roles write them: every item action → `items/*`; every item and container action
 * → `containers/*` and `items/*`. `manage` has none and is left out.
 *
 * @example
 * ```ts
 * nativeDataActions(["read", "query"]);
 * // [".../containers/items/read", ".../containers/executeQuery"]
 * ```
 */
export function nativeDataActions(actions: Iterable<Action>): string[] {
  const set = nativeSet(actions);
  const items = NATIVE_ITEM_ACTIONS.every((a) => set.has(a));
  const containers = items && NATIVE_CONTAINER_ACTIONS.every((a) => set.has(a));
  const out: string[] = [];
  if (set.has(`${NATIVE_PREFIX}readMetadata`)) out.push(`${NATIVE_PREFIX}readMetadata`);
  if (containers) out.push(`${CONTAINERS}*`);
  if (items) out.push(`${ITEMS}*`);
  for (const a of set) {
    if (a === `${NATIVE_PREFIX}readMetadata`) continue;
    if (items && NATIVE_ITEM_ACTIONS.includes(a)) continue;
    if (containers && NATIVE_CONTAINER_ACTIONS.includes(a)) continue;
    out.push(a);
  }
  return out;
}

/** The individual native data actions of short actions (no wildcards), in table order. */
function nativeSet(actions: Iterable<Action>): Set<string> {
  const given = new Set(actions);
  const out = new Set<string>();
  for (const a of ALL_ACTIONS) {
    const native = given.has(a) ? NATIVE_DATA_ACTIONS[a] : undefined;
    if (native !== undefined) out.add(native);
  }
  return out;
}

/**
 * Maps a role (parsed from `policy.yaml` or compiled) to native RBAC:
 *
 * - each rule's actions at each scope of its `on` become data actions at that native scope; the
 *   actions of all rules at one scope add up, as native assignments do;
 * - when every scope ends up with the same data actions, that is one custom role definition
 *   assignable at those scopes — or, when those actions are exactly a built-in role's, that
 *   built-in role (`definition` null, `builtIn` set);
 * - when scopes get different actions, one definition per distinct set (`definitions`);
 * - `notExpressible` lists what native RBAC cannot say: `manage` (no data action), a deny rule (the
 *   schema has none today; native RBAC has no deny either), a scope with `*`, a user/permission
 *   scope or one deeper than a container, `patch` without `replace` (native has no patch: it maps
 *   to `items/replace`, which is wider) and `replace` without `patch` (native replace also
 *   allows patch), an action name the table does not know.
 *
 * @example
 * ```ts
 * toNativeRole({ name: "orders-reader", rules: [{ allow: ["metadata", "read", "query", "changeFeed"], on: "/dbs/shop/colls/orders" }] });
 * // { definition: null, builtIn: { name: "Cosmos DB Built-in Data Reader", id: "...0001" }, assignAt: ["/dbs/shop/colls/orders"], notExpressible: [], notes: [...] }
 * ```
 */
export function toNativeRole(role: RoleSource): NativeRole {
  const notExpressible: string[] = [];
  const notes: string[] = [SCOPE_NOTE];
  // Native scope → the short actions granted there (manage excluded), in first-seen scope order.
  const byScope = new Map<string, Set<Action>>();

  role.rules.forEach((rule, i) => {
    const label = `rule ${i}`;
    if (Object.hasOwn(rule, "deny")) {
      notExpressible.push(
        `${label} denies: native RBAC only allows (assignments add up; there is no deny and no NotDataActions)`,
      );
    }
    const scopes = typeof rule.on === "string" ? [rule.on] : [...rule.on];
    const actions = new Set<Action>();
    for (const name of rule.allow) {
      const expanded = expandActionName(name);
      if (expanded === undefined)
        notExpressible.push(`${label}: the action "${name}" has no native data action`);
      else for (const a of expanded) actions.add(a);
    }
    if (actions.has("manage")) {
      notExpressible.push(
        `${label} allows manage on ${scopes.join(", ")}: management (creating or deleting databases and containers, throughput, users and permissions, stored procedure definitions) has no data action; native RBAC leaves it to Azure control-plane roles`,
      );
      actions.delete("manage");
    }
    if (actions.size === 0) return;
    for (const scope of scopes) {
      const native = nativeScope(scope);
      if (!native.ok) {
        notExpressible.push(`${label}: ${native.why}`);
        continue;
      }
      let granted = byScope.get(native.scope);
      if (granted === undefined) {
        granted = new Set();
        byScope.set(native.scope, granted);
      }
      for (const a of actions) granted.add(a);
    }
  });

  for (const [scope, granted] of byScope) {
    if (granted.has("patch") && !granted.has("replace")) {
      notExpressible.push(
        `patch on ${scope}: native RBAC has no patch action; it maps to items/replace, which also allows replacing whole items (wider than the policy)`,
      );
    } else if (granted.has("replace") && !granted.has("patch")) {
      notExpressible.push(
        `replace without patch on ${scope}: native items/replace also allows patch (wider than the policy)`,
      );
    }
  }

  // Scopes with the same data actions share a definition.
  const groups = new Map<string, { actions: string[]; individual: Set<string>; scopes: string[] }>();
  for (const [scope, granted] of byScope) {
    const individual = nativeSet(granted);
    const key = [...individual].join("\n");
    const group = groups.get(key);
    if (group === undefined)
      groups.set(key, { actions: nativeDataActions(granted), individual, scopes: [scope] });
    else group.scopes.push(scope);
  }

  if (role.members !== undefined && role.members.length > 0) notes.push(MEMBERS_NOTE);
  const list = [...groups.values()];
  const result: NativeRole = { definition: null, notExpressible, notes };
  if (list.length === 0) {
    if (notExpressible.length === 0)
      notes.push("The role grants nothing: there is nothing to create natively.");
    return result;
  }
  result.assignAt = list.flatMap((g) => g.scopes);
  if (list.length === 1) {
    const [group] = list;
    const builtIn = Object.values(BUILT_IN_ROLES).find((b) =>
      sameSet(nativeSet(b.actions), group.individual),
    );
    if (builtIn !== undefined) {
      result.builtIn = { name: builtIn.name, id: builtIn.id };
      notes.push(
        `Equals the built-in role "${builtIn.name}" (${builtIn.id}): assign it at ${group.scopes.join(", ")} instead of creating a definition.`,
      );
      return result;
    }
    result.definition = definitionOf(role.name, group.scopes, group.actions);
    return result;
  }
  result.definitions = list.map((g, k) =>
    definitionOf(`${role.name} (${k + 1} of ${list.length})`, g.scopes, g.actions),
  );
  notes.push(
    `Needs ${list.length} role definitions: a native definition grants the same data actions at every scope it is assigned to, and this role grants different actions on different scopes. Assign each at its AssignableScopes.`,
  );
  return result;
}

/**
 * {@link toNativeRole} for every role of a policy: a compiled one (built-in roles first, with their
 * members) or a parsed document (its roles only, with their members).
 *
 * @example
 * ```ts
 * for (const { name, native } of toNativeRoles(holder.current)) console.log(name, native.definition);
 * ```
 */
export function toNativeRoles(
  policy: CompiledPolicy | PolicyDocument,
): { name: string; native: NativeRole }[] {
  if (Array.isArray((policy as CompiledPolicy).roles)) {
    return (policy as CompiledPolicy).roles.map((r) => ({ name: r.name, native: toNativeRole(r) }));
  }
  const doc = policy as PolicyDocument;
  return Object.entries(doc.roles).map(([name, rules]) => ({
    name,
    native: toNativeRole({ name, rules, members: doc.members[name] ?? [] }),
  }));
}

function definitionOf(name: string, scopes: string[], dataActions: string[]): NativeRoleDefinition {
  return {
    RoleName: name,
    Type: "CustomRole",
    AssignableScopes: [...scopes],
    Permissions: [{ DataActions: [...dataActions] }],
  };
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const v of a) if (!b.has(v)) return false;
  return true;
}
