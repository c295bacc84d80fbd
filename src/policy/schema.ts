import { z } from "zod";
import { parseDuration } from "../config/duration.js";
import { BUILT_IN_ROLE_RULES } from "./builtins.js";
import { ACTION_NAMES, expandActionName } from "./expandActionName.js";
import { parsePath } from "./parsePath.js";

const SHORT_ACTIONS = ACTION_NAMES.filter((n) => !n.includes("/")).join(", ");
const ACTION_EXPECTED = `expected an action: ${SHORT_ACTIONS}, or a native data action such as Microsoft.DocumentDB/databaseAccounts/readMetadata`;

/** Every message is phrased "expected ..."; parsePolicy prefixes what was found and where. */
const ActionName = z
  .string({ error: ACTION_EXPECTED })
  .refine((name) => expandActionName(name) !== undefined, { error: ACTION_EXPECTED });

const Scope = z
  .string({ error: "expected a scope path such as / or /dbs/shop/colls/orders" })
  .superRefine((value, ctx) => {
    const parsed = parsePath(value, "scope");
    if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.expected });
  });

const Member = z
  .string({ error: "expected a member such as sub:alice or group:analysts" })
  .superRefine((value, ctx) => {
    const ok =
      (value.startsWith("sub:") && value.length > 4) || (value.startsWith("group:") && value.length > 6);
    if (!ok) {
      ctx.addIssue({
        code: "custom",
        message: "expected sub:VALUE (a token subject) or group:VALUE (a value of the issuer's roles claim)",
      });
    }
  });

/** One rule of a role: the actions it allows and the scope(s) it allows them on. */
export const PolicyRuleSchema = z.strictObject(
  {
    allow: z
      .array(ActionName, { error: "expected a list of actions, such as [metadata, read, query]" })
      .min(1, { error: "expected at least one action" }),
    on: z.union([Scope, z.array(Scope).min(1, { error: "expected at least one scope" })], {
      error: "expected a scope path such as /dbs/shop/colls/orders, or a list of them",
    }),
  },
  { error: "expected a rule with keys allow and on, such as {allow: [read], on: /dbs/shop}" },
);

const APPROVAL_LIFETIME_MIN_MS = 1000;
const APPROVAL_LIFETIME_MAX_MS = 7 * 24 * 60 * 60 * 1000;

/** Who may approve: "self" (the requesting person) or "group:G" (members of G, never the requester). */
const Approvers = z
  .string({ error: "expected self or group:NAME" })
  .refine((v) => v === "self" || (v.startsWith("group:") && v.length > 6), {
    error:
      "expected self (the person who asked, or for whom the agent asked) or group:NAME (members of that group other than the person who asked)",
  });

/**
 * One `approvals:` rule: requests doing any of `actions` on a resource one of the `on` scopes
 * covers, made by anyone (`for: everyone`, default) or by agents only (`for: agents`), wait for
 * `quorum` distinct people among `approvers` (default `self`, quorum 1) to approve them by a tap,
 * within `lifetime` (default 15m). Compiled by src/approvals/rules.ts.
 */
export const ApprovalRuleSchema = z
  .strictObject(
    {
      actions: z
        .array(ActionName, { error: "expected a list of actions, such as [delete, replace]" })
        .min(1, { error: "expected at least one action" }),
      on: z.union([Scope, z.array(Scope).min(1, { error: "expected at least one scope" })], {
        error: "expected a scope path such as /dbs/shop/colls/orders, or a list of them",
      }),
      for: z.enum(["agents", "everyone"], { error: "expected agents or everyone" }).optional(),
      approvers: Approvers.optional(),
      quorum: z
        .number({ error: "expected a number of distinct approvers, 1 to 10" })
        .int({ error: "expected a whole number of approvers, 1 to 10" })
        .min(1, { error: "expected at least 1 approver" })
        .max(10, { error: "expected at most 10 approvers" })
        .optional(),
      lifetime: z
        .string({ error: 'expected a duration such as "15m"' })
        .refine(
          (v) => {
            const ms = parseDuration(v);
            return ms !== undefined && ms >= APPROVAL_LIFETIME_MIN_MS && ms <= APPROVAL_LIFETIME_MAX_MS;
          },
          { error: 'expected a duration between "1s" and "7d", such as "15m"' },
        )
        .optional(),
    },
    {
      error:
        "expected an approval rule with keys actions, on, for, approvers, quorum and lifetime, such as {actions: [delete], on: /dbs/shop, approvers: self}",
    },
  )
  .superRefine((rule, ctx) => {
    if ((rule.approvers ?? "self") === "self" && (rule.quorum ?? 1) > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["quorum"],
        message:
          "expected quorum 1 with approvers: self (only the person who asked may approve); use approvers: group:NAME for a quorum",
      });
    }
  });

/**
 * The zod schema of `policy.yaml`. Objects are strict (unknown keys are errors), action names and scope
 * paths are checked, roles may not reuse a built-in role's name, and every role under `members` must
 * be defined under `roles` or be built in. Missing or empty `roles` / `members` are empty. Use {@link parsePolicy} to read a file with positions in errors.
 *
 * @example
 * ```ts
 * const doc = PolicySchema.parse({
 *   roles: { "orders-reader": [{ allow: ["read", "query"], on: "/dbs/shop/colls/orders" }] },
 *   members: { "orders-reader": ["group:analysts"] },
 * });
 * ```
 */
export const PolicySchema = z
  .strictObject(
    {
      roles: z
        .record(
          z.string(),
          z.array(PolicyRuleSchema, { error: "expected a list of rules, each {allow, on}" }),
          {
            error: "expected a mapping of role names to lists of rules",
          },
        )
        .nullish()
        .transform((roles) => roles ?? {}),
      members: z
        .record(
          z.string(),
          z.array(Member, { error: "expected a list of members, such as [sub:alice, group:analysts]" }),
          { error: "expected a mapping of role names to lists of members" },
        )
        .nullish()
        .transform((members) => members ?? {}),
      approvals: z
        .array(ApprovalRuleSchema, {
          error: "expected a list of approval rules, each {actions, on, approvers, quorum}",
        })
        .optional(),
    },
    { error: "expected a mapping with keys roles, members and approvals" },
  )
  .superRefine(crossCheck, { when: () => true });

/** A validated policy document. */
export type PolicyDocument = z.output<typeof PolicySchema>;
/** One validated rule. */
export type PolicyRule = z.output<typeof PolicyRuleSchema>;
/** One validated `approvals:` rule, as written (defaults are applied when compiled). */
export type ApprovalRule = z.output<typeof ApprovalRuleSchema>;

/**
 * Checks that span keys. Runs even when other parts failed (`when`), so it must not trust the shape.
 * Issues about a key carry `params.at = "key"` so positions point at the key, not its value.
 */
function crossCheck(doc: unknown, ctx: z.RefinementCtx): void {
  if (!isMapping(doc)) return;
  const roles = isMapping(doc.roles) ? doc.roles : {};
  for (const name of Object.keys(roles)) {
    if (Object.hasOwn(BUILT_IN_ROLE_RULES, name)) {
      ctx.addIssue({
        code: "custom",
        path: ["roles", name],
        params: { at: "key", found: `role "${name}"` },
        message: `expected a role name other than a built-in role's; "${name}" is predefined and cannot be redefined (grant it under members, or name your role differently)`,
      });
    }
  }
  if (!isMapping(doc.members)) return;
  const defined = Object.keys(roles).filter((n) => !Object.hasOwn(BUILT_IN_ROLE_RULES, n));
  for (const name of Object.keys(doc.members)) {
    if (Object.hasOwn(roles, name) || Object.hasOwn(BUILT_IN_ROLE_RULES, name)) continue;
    const known = [...defined, ...Object.keys(BUILT_IN_ROLE_RULES)].map((n) => `"${n}"`).join(", ");
    ctx.addIssue({
      code: "custom",
      path: ["members", name],
      params: { at: "key", found: `undefined role "${name}"` },
      message: `expected a role defined under roles or a built-in role: ${known}`,
    });
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
