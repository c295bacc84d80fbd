import type { Action } from "../cosmos/types.js";
import type { CompiledPolicy } from "./compilePolicy.js";
import { ANCESTOR, COVERS, relateScope } from "./relateScope.js";
import { resolveGrants } from "./resolveGrants.js";
import type { Decision, PolicySubject } from "./types.js";

/**
 * Decides whether `subject` may perform `action` on the resource `segments`. Deny by default.
 *
 * A rule allows an action on a resource when the action is in its `allow` list and one of its `on`
 * scopes covers the resource: the scope's segments are a prefix of the resource's, `*` matching
 * exactly one segment. One exception, for SDK metadata discovery: `metadata` on a resource is also
 * allowed when the subject holds `metadata` on a scope beneath that resource (the resource is an
 * ancestor of a granted scope — the account `[]` included), because the SDK reads the account and
 * the database and container above what it was granted. This applies to `metadata` only; `read`,
 * `query` and the rest need a covering scope. Such decisions say so in their reason.
 *
 * Hot path (< 1 µs): the subject's grants are resolved once per subject object and cached; an allow
 * returns a decision prebuilt at compile time (no allocation); no regex, no splitting.
 *
 * @param segments the already-split, decoded resource path: `[]` for the account,
 *   `["dbs", "shop", "colls", "orders", "docs", "a1"]` for an item.
 * @example
 * ```ts
 * const d = evaluate(policy, principal, "read", ["dbs", "shop", "colls", "orders", "docs", "a1"]);
 * d.effect; // "allow"
 * d.reason; // "allowed by role orders-reader rule 0 (on /dbs/shop/colls/orders)"
 * evaluate(policy, principal, "delete", ["dbs", "shop", "colls", "orders", "docs", "a1"]).reason;
 * // "principal [alice] holds no role that allows [delete] on [/dbs/shop/colls/orders/docs/a1]; roles held: orders-reader"
 * ```
 */
export function evaluate(
  policy: CompiledPolicy,
  subject: PolicySubject,
  action: Action,
  segments: readonly string[],
): Decision {
  let resolved = policy.cache.get(subject);
  if (resolved === undefined) {
    resolved = resolveGrants(policy, subject);
    policy.cache.set(subject, resolved);
  }
  const grants = resolved.grants[action];
  if (grants !== undefined) {
    let ancestor: Decision | undefined;
    for (let i = 0; i < grants.length; i++) {
      const grant = grants[i];
      const relation = relateScope(grant.pattern, segments);
      if (relation === COVERS) return grant.allow;
      if (relation === ANCESTOR && ancestor === undefined) ancestor = grant.ancestor;
    }
    // grant.ancestor is set only on metadata grants, so this is the metadata discovery rule.
    if (ancestor !== undefined) return ancestor;
  }
  const resource = segments.length === 0 ? "/" : `/${segments.join("/")}`;
  return {
    effect: "deny",
    reason:
      resolved.held === ""
        ? `principal [${subject.sub}] holds no role (denied [${action}] on [${resource}])`
        : `principal [${subject.sub}] holds no role that allows [${action}] on [${resource}]; roles held: ${resolved.held}`,
  };
}
