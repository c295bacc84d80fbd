import { parseDuration } from "../config/duration.js";
import type { Action, CosmosOperation } from "../cosmos/types.js";
import { expandActionName } from "../policy/expandActionName.js";
import { parsePath } from "../policy/parsePath.js";
import { COVERS, relateScope, type ScopePattern } from "../policy/relateScope.js";
import type { ApprovalRule } from "../policy/schema.js";

/** An approval's lifetime when its rule names none: 15 minutes. */
export const DEFAULT_APPROVAL_LIFETIME_MS = 15 * 60 * 1000;

/** One `approvals:` rule of policy.yaml, compiled: defaults applied, scopes split, actions expanded. */
export interface CompiledApprovalRule {
  /** Index in policy.yaml's `approvals` list. */
  readonly index: number;
  /** The short actions it holds for approval. */
  readonly actions: ReadonlySet<Action>;
  /** Scopes as written, always a list. */
  readonly on: readonly string[];
  readonly patterns: readonly ScopePattern[];
  /** `for: agents`: only requests an agent makes (a principal with an actor). */
  readonly agentsOnly: boolean;
  /** "self" or "group:G", as written. */
  readonly approvers: string;
  /** The group of `group:G`; undefined for self. */
  readonly group: string | undefined;
  readonly quorum: number;
  readonly lifetimeMs: number;
}

/** The policy's approval rules, compiled apart from the roles so `evaluate` stays as it is. */
export interface CompiledApprovals {
  readonly rules: readonly CompiledApprovalRule[];
}

/** Who asks, as approval rules see it: an agent is a principal with an actor. */
export interface ApprovalSubject {
  actor?: { sub: string } | undefined;
}

/**
 * Compiles the `approvals:` list of a validated policy document; undefined when there is none, so
 * the data path can skip approvals with one field test.
 *
 * @example
 * ```ts
 * const approvals = compileApprovalRules([{ actions: ["delete"], on: "/dbs/shop" }]);
 * approvals?.rules[0].quorum; // 1
 * ```
 */
export function compileApprovalRules(
  rules: readonly ApprovalRule[] | undefined,
): CompiledApprovals | undefined {
  if (rules === undefined || rules.length === 0) return undefined;
  return Object.freeze({
    rules: Object.freeze(
      rules.map((rule, index): CompiledApprovalRule => {
        const on = typeof rule.on === "string" ? [rule.on] : [...rule.on];
        const approvers = rule.approvers ?? "self";
        return Object.freeze({
          index,
          actions: new Set(rule.actions.flatMap((a) => expandActionName(a) ?? [])),
          on: Object.freeze(on),
          patterns: Object.freeze(on.map(toPattern)),
          agentsOnly: rule.for === "agents",
          approvers,
          group: approvers.startsWith("group:") ? approvers.slice(6) : undefined,
          quorum: rule.quorum ?? 1,
          lifetimeMs:
            rule.lifetime === undefined
              ? DEFAULT_APPROVAL_LIFETIME_MS
              : (parseDuration(rule.lifetime) ?? DEFAULT_APPROVAL_LIFETIME_MS),
        });
      }),
    ),
  });
}

/**
 * The first rule (in policy order) that holds this request for approval: the subject is one it is
 * for, one of the request's actions (for a batch or bulk request, any operation's) is among the
 * rule's, and one of its scopes covers the resource. Undefined when none does.
 *
 * @example
 * ```ts
 * const rule = matchApproval(policy.approvals, principal, op);
 * if (rule) ... // the request waits for an approval
 * ```
 */
export function matchApproval(
  approvals: CompiledApprovals,
  subject: ApprovalSubject,
  op: Pick<CosmosOperation, "actions" | "batch" | "segments">,
): CompiledApprovalRule | undefined {
  const isAgent = subject.actor !== undefined;
  for (const rule of approvals.rules) {
    if (rule.agentsOnly && !isAgent) continue;
    if (!needsAny(rule.actions, op)) continue;
    for (const pattern of rule.patterns) {
      if (relateScope(pattern, op.segments) === COVERS) return rule;
    }
  }
  return undefined;
}

function needsAny(actions: ReadonlySet<Action>, op: Pick<CosmosOperation, "actions" | "batch">): boolean {
  if (op.batch !== undefined) return op.batch.some((b) => actions.has(b.action));
  return op.actions.some((a) => actions.has(a));
}

function toPattern(scope: string): ScopePattern {
  const parsed = parsePath(scope, "scope");
  // Validated by the policy schema; an invalid scope here would be a bug.
  if (!parsed.ok) throw new Error(`invalid approval scope ${scope}: ${parsed.expected}`);
  return Object.freeze(parsed.segments.map((s) => (s === "*" ? null : s)));
}
