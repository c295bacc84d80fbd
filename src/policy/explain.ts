import type { Action } from "../cosmos/types.js";
import type { CompiledPolicy, CompiledRole } from "./compilePolicy.js";
import { PolicyError } from "./errors.js";
import { evaluate } from "./evaluate.js";
import { expandActionName } from "./expandActionName.js";
import { parsePath } from "./parsePath.js";
import { ANCESTOR, COVERS, relateScope } from "./relateScope.js";
import type { Decision } from "./types.js";

/** Arguments of `cosmosgate policy explain`. */
export interface ExplainInput {
  /** Token subject. */
  subject: string;
  /** Values of the issuer's roles claim. */
  groups?: readonly string[];
  /** A short action name (`read`) or a native data action naming exactly one action. */
  action: string;
  /** A resource path: `/`, `/dbs/shop`, `/dbs/shop/colls/orders/docs/a1`, a feed such as `/dbs/shop/colls`. */
  resource: string;
}

/** A rule named in an explanation. */
export interface ExplainRule {
  role: string;
  rule: number;
  allow: readonly string[];
  on: readonly string[];
}

export interface ExplainResult {
  principal: { sub: string; groups: readonly string[] };
  action: Action;
  resource: string;
  segments: readonly string[];
  decision: Decision;
  /** For an allow: `scope` when a scope covers the resource, `metadata-ancestor` for the discovery rule. */
  via?: "scope" | "metadata-ancestor";
  /** The rule that decided an allow. */
  matched?: ExplainRule;
  /** Roles the principal holds, each with the member entries that grant it (`sub:alice`, `group:analysts`). */
  roles: { name: string; builtIn: boolean; via: string[] }[];
  /** For a denial: rules of held roles that came close, and why they did not apply. */
  close: (ExplainRule & { why: string })[];
  /** For a denial: rules of roles not held that would allow the request, with those roles' members. */
  wouldAllow: (ExplainRule & { members: readonly string[] })[];
  policyVersion: string;
}

/**
 * Explains a decision for a person, for `cosmosgate policy explain --subject S --groups G --action A
 * --resource R`: the decision (computed by {@link evaluate}, so it is exactly what the gateway would
 * decide), the rule that matched, the roles held and through which member entries, and for a denial
 * the close rules (the action on another scope, or the scope without the action) and the roles that
 * would allow it. Not the hot path: the action and resource are parsed and validated here.
 *
 * @throws {PolicyError} `ERR_POLICY_BAD_ACTION` for an unknown action or one naming several actions,
 *   `ERR_POLICY_BAD_RESOURCE` for a malformed resource path.
 * @example
 * ```ts
 * const r = explain(policy, { subject: "alice", groups: ["analysts"], action: "delete",
 *   resource: "/dbs/shop/colls/orders/docs/a1" });
 * console.log(formatExplain(r));
 * ```
 */
export function explain(policy: CompiledPolicy, input: ExplainInput): ExplainResult {
  const actions = expandActionName(input.action);
  if (actions === undefined || actions.length !== 1) {
    const why = actions === undefined ? "is not an action" : `names ${actions.length} actions; give one`;
    throw new PolicyError(
      "ERR_POLICY_BAD_ACTION",
      `action "${input.action}" ${why}; expected a short name (metadata, read, create, upsert, replace, patch, delete, query, changeFeed, execute, conflicts, manage) or a native data action`,
    );
  }
  const action = actions[0];
  const parsed = parsePath(input.resource, "resource");
  if (!parsed.ok) {
    throw new PolicyError("ERR_POLICY_BAD_RESOURCE", `resource "${input.resource}": ${parsed.expected}`);
  }
  const segments = parsed.segments;
  const principal = { sub: input.subject, groups: [...(input.groups ?? [])] };
  const decision = evaluate(policy, principal, action, segments);

  const held = new Map<CompiledRole, string[]>();
  const via = (roles: readonly CompiledRole[] | undefined, entry: string) => {
    for (const role of roles ?? []) held.set(role, [...(held.get(role) ?? []), entry]);
  };
  via(policy.bySub.get(principal.sub), `sub:${principal.sub}`);
  for (const g of principal.groups) via(policy.byGroup.get(g), `group:${g}`);
  const heldRoles = [...held.keys()].sort((a, b) => a.order - b.order);

  const result: ExplainResult = {
    principal,
    action,
    resource: input.resource,
    segments,
    decision,
    roles: heldRoles.map((r) => ({ name: r.name, builtIn: r.builtIn, via: held.get(r) ?? [] })),
    close: [],
    wouldAllow: [],
    policyVersion: policy.version,
  };

  if (decision.matched) {
    const { role, rule, on } = decision.matched;
    const compiled = policy.roleByName.get(role)?.rules[rule];
    const pattern = compiled?.patterns[compiled.on.indexOf(on)];
    result.via = pattern && relateScope(pattern, segments) === COVERS ? "scope" : "metadata-ancestor";
    result.matched = { role, rule, allow: compiled?.allow ?? [], on: compiled?.on ?? [on] };
    return result;
  }

  for (const role of policy.roles) {
    for (const rule of role.rules) {
      const relations = rule.patterns.map((p) => relateScope(p, segments));
      const covers = relations.includes(COVERS) || (action === "metadata" && relations.includes(ANCESTOR));
      const allows = rule.actions.has(action);
      const ref = { role: role.name, rule: rule.index, allow: rule.allow, on: rule.on };
      if (!held.has(role)) {
        if (covers && allows) result.wouldAllow.push({ ...ref, members: role.members });
      } else if (allows) {
        result.close.push({
          ...ref,
          why: `allows [${action}], but its scope does not cover ${input.resource}`,
        });
      } else if (covers) {
        result.close.push({ ...ref, why: `covers ${input.resource}, but does not allow [${action}]` });
      }
    }
  }
  return result;
}
