import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Action, ALL_ACTIONS } from "../cosmos/types.js";
import { BUILT_IN_ROLE_RULES } from "./builtins.js";
import { compilePolicy } from "./compilePolicy.js";
import { evaluate } from "./evaluate.js";
import { expandActionName } from "./expandActionName.js";
import type { PolicyDocument } from "./schema.js";

const NATIVE = [
  "*",
  "Microsoft.DocumentDB/databaseAccounts/readMetadata",
  "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/*",
  "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery",
];
const ids = fc.constantFrom("a", "b", "c");
const scope = fc
  .array(fc.tuple(ids, fc.boolean()), { maxLength: 3 })
  .map((parts) => {
    const types = ["dbs", "colls", "docs"];
    return `/${parts.map(([id, wild], i) => `${types[i]}/${wild ? "*" : id}`).join("/")}`.replace(
      /^\/$/,
      "/",
    );
  })
  .map((s) => (s === "/" ? "/" : s.replace(/\/$/, "")));
const resource = fc.array(ids, { maxLength: 3 }).chain((parts) =>
  fc.boolean().map((feed) => {
    const types = ["dbs", "colls", "docs"];
    const segments = parts.flatMap((id, i) => [types[i], id]);
    return feed && parts.length < 3 ? [...segments, types[parts.length]] : segments;
  }),
);
const rule = fc.record({
  allow: fc.array(fc.oneof(fc.constantFrom(...ALL_ACTIONS), fc.constantFrom(...NATIVE)), {
    minLength: 1,
    maxLength: 4,
  }),
  on: fc.oneof(scope, fc.array(scope, { minLength: 1, maxLength: 2 })),
});
const roleNames = ["r1", "r2", "r3", ...Object.keys(BUILT_IN_ROLE_RULES)];
const member = fc.constantFrom("sub:alice", "sub:bob", "group:g1", "group:g2");
const doc: fc.Arbitrary<PolicyDocument> = fc.record({
  roles: fc.record({
    r1: fc.array(rule, { maxLength: 3 }),
    r2: fc.array(rule, { maxLength: 3 }),
    r3: fc.array(rule, { maxLength: 3 }),
  }),
  members: fc.dictionary(fc.constantFrom(...roleNames), fc.array(member, { maxLength: 3 })),
});
const subject = fc.record({
  sub: fc.constantFrom("alice", "bob", "carol"),
  groups: fc.subarray(["g1", "g2", "g3"]),
});

/** Every action the held roles' allow lists name, computed from the document, not the compiled policy. */
function heldActions(d: PolicyDocument, s: { sub: string; groups: readonly string[] }): Set<Action> {
  const keys = new Set([`sub:${s.sub}`, ...s.groups.map((g) => `group:${g}`)]);
  const out = new Set<Action>();
  for (const [role, members] of Object.entries(d.members)) {
    if (!members.some((m) => keys.has(m))) continue;
    const rules = d.roles[role] ?? BUILT_IN_ROLE_RULES[role];
    for (const r of rules) for (const a of r.allow) for (const x of expandActionName(a) ?? []) out.add(x);
  }
  return out;
}

describe("evaluate (properties)", () => {
  it("never allows an action absent from every allow list of the roles the subject holds", () => {
    let allowed = 0;
    fc.assert(
      fc.property(doc, subject, fc.constantFrom(...ALL_ACTIONS), resource, (d, s, action, segments) => {
        const decision = evaluate(compilePolicy(d), s, action, segments);
        if (decision.effect === "allow") {
          allowed++;
          expect(heldActions(d, s).has(action)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
    expect(allowed).toBeGreaterThan(50); // the generators do produce allows, so the property bites
  });

  it("allows non-metadata actions only inside a granted scope", () => {
    fc.assert(
      fc.property(doc, subject, fc.constantFrom(...ALL_ACTIONS), resource, (d, s, action, segments) => {
        const decision = evaluate(compilePolicy(d), s, action, segments);
        if (decision.effect !== "allow" || action === "metadata") return;
        const on = decision.matched?.on ?? "";
        const pattern = on === "/" ? [] : on.slice(1).split("/");
        expect(pattern.length).toBeLessThanOrEqual(segments.length);
        pattern.forEach((p, i) => {
          if (p !== "*") expect(segments[i]).toBe(p);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it("gives the same decision for a fresh and a cached subject", () => {
    fc.assert(
      fc.property(doc, subject, fc.constantFrom(...ALL_ACTIONS), resource, (d, s, action, segments) => {
        const policy = compilePolicy(d);
        const first = evaluate(policy, s, action, segments);
        expect(evaluate(policy, s, action, segments)).toEqual(first);
        expect(evaluate(policy, { ...s }, action, segments)).toEqual(first);
      }),
      { numRuns: 500 },
    );
  });
});
