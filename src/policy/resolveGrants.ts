import { type Action, ALL_ACTIONS } from "../cosmos/types.js";
import type { CompiledPolicy, CompiledRole, Grant, SubjectGrants } from "./compilePolicy.js";
import type { PolicySubject } from "./types.js";

/**
 * Resolves what a subject holds: the roles its `sub` and `groups` are members of (in policy order,
 * each once) and their grants merged per action. {@link evaluate} calls this once per subject object
 * and caches the result in `policy.cache`.
 *
 * @example
 * ```ts
 * const g = resolveGrants(policy, { sub: "alice", groups: ["analysts"] });
 * g.roles.map((r) => r.name); // ["orders-reader", "shop-writer"]
 * g.grants.read.length; // how many scopes allow read
 * ```
 */
export function resolveGrants(policy: CompiledPolicy, subject: PolicySubject): SubjectGrants {
  const held: (CompiledRole | undefined)[] = [];
  const mark = (roles: readonly CompiledRole[] | undefined) => {
    if (roles) for (const role of roles) held[role.order] = role;
  };
  mark(policy.bySub.get(subject.sub));
  for (const group of subject.groups) mark(policy.byGroup.get(group));
  const roles = held.filter((r): r is CompiledRole => r !== undefined);

  const grants = {} as Record<Action, Grant[]>;
  for (const action of ALL_ACTIONS) {
    grants[action] =
      roles.length === 1 ? (roles[0].grants[action] as Grant[]) : roles.flatMap((r) => r.grants[action]);
  }
  return Object.freeze({ roles: Object.freeze(roles), held: roles.map((r) => r.name).join(", "), grants });
}
