import { createHash } from "node:crypto";
import { type CompiledApprovals, compileApprovalRules } from "../approvals/rules.js";
import { type Action, ALL_ACTIONS } from "../cosmos/types.js";
import { BUILT_IN_ROLE_RULES } from "./builtins.js";
import { PolicyError } from "./errors.js";
import { expandActionName } from "./expandActionName.js";
import { parsePath } from "./parsePath.js";
import type { ScopePattern } from "./relateScope.js";
import { type PolicyDocument, PolicySchema } from "./schema.js";
import { toProblems } from "./toProblems.js";
import type { Decision, PolicySubject } from "./types.js";

/** One scope of one rule, with its decisions built once at compile time (evaluate allocates nothing on allow). */
export interface Grant {
  readonly role: string;
  readonly rule: number;
  readonly on: string;
  readonly pattern: ScopePattern;
  /** Returned when the scope covers the resource. */
  readonly allow: Decision;
  /** Returned for `metadata` when the resource is an ancestor of the scope; set only on grants indexed under `metadata`. */
  readonly ancestor: Decision | undefined;
}

/** Grants indexed by action. Every action key is present (possibly an empty list). */
export type GrantIndex = Readonly<Record<Action, readonly Grant[]>>;

export interface CompiledRule {
  /** Index in the role's rule list, as in `roles.NAME[index]`. */
  readonly index: number;
  /** Action names as written. */
  readonly allow: readonly string[];
  /** Scopes as written, always a list. */
  readonly on: readonly string[];
  /** The short actions the rule grants. */
  readonly actions: ReadonlySet<Action>;
  readonly patterns: readonly ScopePattern[];
}

export interface CompiledRole {
  readonly name: string;
  readonly builtIn: boolean;
  /** Position in {@link CompiledPolicy.roles}; roles are listed built-ins first, then in document order. */
  readonly order: number;
  readonly rules: readonly CompiledRule[];
  /** Member entries as written (`sub:alice`, `group:analysts`). */
  readonly members: readonly string[];
  readonly grants: GrantIndex;
}

/** What a subject resolves to; cached per subject object. */
export interface SubjectGrants {
  readonly roles: readonly CompiledRole[];
  /** Role names joined for deny reasons, or "" when the subject holds none. */
  readonly held: string;
  readonly grants: GrantIndex;
}

/** A policy compiled for {@link evaluate}. Immutable apart from its per-subject cache. */
export interface CompiledPolicy {
  /** `sha256:` + 16 hex digits of the canonical JSON of the document; changes whenever the policy does. */
  readonly version: string;
  /** Every role, built-ins first, for display. */
  readonly roles: readonly CompiledRole[];
  readonly roleByName: ReadonlyMap<string, CompiledRole>;
  /** `sub:VALUE` members: VALUE → roles, in role order. */
  readonly bySub: ReadonlyMap<string, readonly CompiledRole[]>;
  /** `group:VALUE` members: VALUE → roles, in role order. */
  readonly byGroup: ReadonlyMap<string, readonly CompiledRole[]>;
  /**
   * Resolved grants per subject object. Principals come from a token cache and are reused, so this
   * hits; subjects must not be mutated after their first evaluation.
   */
  readonly cache: WeakMap<PolicySubject, SubjectGrants>;
  /**
   * The `approvals:` rules, compiled apart (src/approvals/rules.ts); undefined when the policy has
   * none, so the data path skips approvals with this one test.
   */
  readonly approvals?: CompiledApprovals;
}

/**
 * Compiles a policy document to fast matchers: per member key the roles it holds, per role the grants
 * indexed by action, each grant holding its scope as a segment array (`*` → `null`) and its prebuilt
 * allow decision. The document is validated again, so a hand-built document gets the same checks as
 * a parsed file.
 *
 * @throws {PolicyError} `ERR_POLICY_INVALID` when the document does not match {@link PolicySchema}.
 * @example
 * ```ts
 * const policy = compilePolicy(parsePolicy(text, "policy.yaml"));
 * policy.version; // "sha256:3f1c0a9e5b7d2c41"
 * evaluate(policy, principal, "read", ["dbs", "shop", "colls", "orders", "docs", "a1"]);
 * ```
 */
export function compilePolicy(doc: PolicyDocument): CompiledPolicy {
  const checked = PolicySchema.safeParse(doc);
  if (!checked.success) {
    const problems = toProblems(checked.error.issues, doc, undefined, undefined);
    const lines = problems.map((p) => `  ${p.path === "" ? "" : `${p.path}: `}${p.message}`);
    throw new PolicyError("ERR_POLICY_INVALID", `invalid policy document:\n${lines.join("\n")}`, problems);
  }
  const { roles, members } = checked.data;

  const definitions: [name: string, builtIn: boolean, rules: readonly RuleSource[]][] = [
    ...Object.entries(BUILT_IN_ROLE_RULES).map(([n, r]): [string, boolean, readonly RuleSource[]] => [
      n,
      true,
      r,
    ]),
    ...Object.entries(roles).map(([n, r]): [string, boolean, readonly RuleSource[]] => [n, false, r]),
  ];
  const compiled: CompiledRole[] = definitions.map(([name, builtIn, rules], order) =>
    compileRole(name, builtIn, order, rules, members[name] ?? []),
  );

  const bySub = new Map<string, CompiledRole[]>();
  const byGroup = new Map<string, CompiledRole[]>();
  for (const role of compiled) {
    for (const member of role.members) {
      const isSub = member.startsWith("sub:");
      const map = isSub ? bySub : byGroup;
      const value = member.slice(isSub ? 4 : 6);
      const list = map.get(value) ?? [];
      if (!list.includes(role)) list.push(role);
      map.set(value, list);
    }
  }

  return Object.freeze({
    version: `sha256:${createHash("sha256").update(canonicalJson(checked.data)).digest("hex").slice(0, 16)}`,
    roles: Object.freeze(compiled),
    roleByName: new Map(compiled.map((r) => [r.name, r])),
    bySub,
    byGroup,
    cache: new WeakMap<PolicySubject, SubjectGrants>(),
    approvals: compileApprovalRules(checked.data.approvals),
  });
}

/** A rule as written, built-in or from the document. */
type RuleSource = { readonly allow: readonly string[]; readonly on: string | readonly string[] };

function compileRole(
  name: string,
  builtIn: boolean,
  order: number,
  rules: readonly RuleSource[],
  members: readonly string[],
): CompiledRole {
  const index = emptyIndex();
  const compiledRules = rules.map((rule, i): CompiledRule => {
    const on = typeof rule.on === "string" ? [rule.on] : [...rule.on];
    const actions = new Set<Action>(rule.allow.flatMap((a) => expandActionName(a) ?? []));
    const allow = Object.freeze([...rule.allow]);
    const patterns = on.map(toPattern);
    on.forEach((scope, s) => {
      const grant = makeGrant(name, i, scope, patterns[s], allow);
      for (const action of actions) {
        // Only metadata grants carry the ancestor decision, so evaluate's loop needs no action test.
        index[action].push(
          action === "metadata" ? Object.freeze({ ...grant, ancestor: ancestorDecision(grant) }) : grant,
        );
      }
    });
    return { index: i, allow, on: Object.freeze(on), actions, patterns };
  });
  return Object.freeze({
    name,
    builtIn,
    order,
    rules: Object.freeze(compiledRules),
    members: Object.freeze([...members]),
    grants: index,
  });
}

function makeGrant(
  role: string,
  rule: number,
  on: string,
  pattern: ScopePattern,
  allow: readonly string[],
): Grant {
  const matched = Object.freeze({ role, rule, on, allow: allow as string[] });
  return Object.freeze({
    role,
    rule,
    on,
    pattern,
    allow: Object.freeze({
      effect: "allow",
      reason: `allowed by role ${role} rule ${rule} (on ${on})`,
      matched,
    }),
    ancestor: undefined,
  });
}

function ancestorDecision({ role, rule, on, allow }: Grant): Decision {
  return Object.freeze({
    effect: "allow",
    reason: `allowed by role ${role} rule ${rule} (on ${on}; metadata above a granted scope is readable for SDK discovery)`,
    matched: allow.matched,
  });
}

function toPattern(scope: string): ScopePattern {
  const parsed = parsePath(scope, "scope");
  // Validated by the schema above; an invalid scope here would be a bug.
  if (!parsed.ok) throw new PolicyError("ERR_POLICY_INVALID", `invalid scope ${scope}: ${parsed.expected}`);
  return Object.freeze(parsed.segments.map((s) => (s === "*" ? null : s)));
}

function emptyIndex(): Record<Action, Grant[]> {
  // Same keys in the same order for every index, so all share one hidden class.
  const index = {} as Record<Action, Grant[]>;
  for (const action of ALL_ACTIONS) index[action] = [];
  return index;
}

/** JSON with object keys sorted, so the version does not depend on key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}
