import { describe, expect, it } from "vitest";
import { classify } from "../cosmos/classify.js";
import { classifyBatchBody } from "../cosmos/classifyBatchBody.js";
import { compilePolicy, PolicyError, parsePolicy } from "../policy/index.js";
import { compileApprovalRules, DEFAULT_APPROVAL_LIFETIME_MS, matchApproval } from "./rules.js";

const ROLES = `roles:
  writer:
    - allow: ["*"]
      on: /dbs/shop
members:
  writer: ["group:staff"]
`;

function problems(text: string): string[] {
  try {
    parsePolicy(text, "policy.yaml");
  } catch (err) {
    if (err instanceof PolicyError)
      return (err.problems ?? []).map((p) => `${p.line}:${p.col}: ${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

const item = (method: string, id = "o1", headers: Record<string, string> = {}) =>
  classify(method, `/dbs/shop/colls/orders/docs/${id}`, {
    "x-ms-documentdb-partitionkey": '["c1"]',
    ...headers,
  });

describe("policy approvals: rules", () => {
  it("parses and compiles a rule with its defaults: for everyone, approvers self, quorum 1, 15 minutes", () => {
    const policy = compilePolicy(
      parsePolicy(
        `${ROLES}approvals:\n  - actions: [delete]\n    on: /dbs/shop/colls/orders\n`,
        "policy.yaml",
      ),
    );
    const rule = policy.approvals?.rules[0];
    expect(rule).toMatchObject({
      index: 0,
      on: ["/dbs/shop/colls/orders"],
      agentsOnly: false,
      approvers: "self",
      group: undefined,
      quorum: 1,
      lifetimeMs: DEFAULT_APPROVAL_LIFETIME_MS,
    });
    expect([...(rule?.actions ?? [])]).toEqual(["delete"]);
  });

  it("compiles group approvers, quorum, for: agents, a lifetime, native action names and several scopes", () => {
    const approvals = compileApprovalRules([
      {
        actions: ["Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/replace", "delete"],
        on: ["/dbs/shop/colls/orders", "/dbs/crm/colls/*"],
        for: "agents",
        approvers: "group:leads",
        quorum: 2,
        lifetime: "90s",
      },
    ]);
    expect(approvals?.rules[0]).toMatchObject({
      agentsOnly: true,
      group: "leads",
      quorum: 2,
      lifetimeMs: 90_000,
    });
    expect([...(approvals?.rules[0].actions ?? [])].sort()).toEqual(["delete", "patch", "replace"]);
    expect(approvals?.rules[0].patterns).toEqual([
      ["dbs", "shop", "colls", "orders"],
      ["dbs", "crm", "colls", null],
    ]);
  });

  it("a policy without approvals compiles to none, and its version does not change", () => {
    const policy = compilePolicy(parsePolicy(ROLES, "policy.yaml"));
    expect(policy.approvals).toBeUndefined();
    expect(compileApprovalRules([])).toBeUndefined();
    // Adding approvals changes the version (the rules are part of the policy).
    const withRules = compilePolicy(
      parsePolicy(`${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop}\n`, "policy.yaml"),
    );
    expect(withRules.version).not.toBe(policy.version);
    // The roles' version is what it was before approvals existed (documents without the key).
    expect(policy.version).toBe(compilePolicy(JSON.parse(JSON.stringify(parsePolicy(ROLES, "p")))).version);
  });

  it("refuses malformed rules with the line, the key and what was expected", () => {
    const found = problems(`${ROLES}approvals:
  - actions: [dlete]
    on: shop
    for: robots
    approvers: alice
    quorum: 0
    lifetime: forever
    extra: 1
`);
    const text = found.join("\n");
    expect(text).toMatch(/approvals\[0\]\.actions\[0\]: .*expected an action/);
    expect(text).toMatch(/approvals\[0\]\.on: .*expected a path starting with "\/"/);
    expect(text).toMatch(/approvals\[0\]\.for: .*expected agents or everyone/);
    expect(text).toMatch(/approvals\[0\]\.approvers: .*expected self .* or group:NAME/);
    expect(text).toMatch(/approvals\[0\]\.quorum: .*at least 1/);
    expect(text).toMatch(/approvals\[0\]\.lifetime: .*between "1s" and "7d"/);
    expect(text).toMatch(/approvals\[0\]\.extra: found unknown key "extra"/);
    expect(found.every((p) => /^\d+:\d+: /.test(p))).toBe(true);
    expect(found.find((p) => p.includes(".for:"))).toMatch(/^10:10: /);
  });

  it("refuses a quorum above 1 with approvers: self, a lifetime out of bounds, and a list that is not one", () => {
    expect(
      problems(`${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop, quorum: 2}\n`).join(),
    ).toMatch(/quorum: found 2; expected quorum 1 with approvers: self/);
    expect(
      problems(`${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop, lifetime: 8d}\n`).join(),
    ).toMatch(/lifetime/);
    expect(
      problems(`${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop, lifetime: 500ms}\n`).join(),
    ).toMatch(/lifetime/);
    expect(problems(`${ROLES}approvals: {actions: [delete]}\n`).join()).toMatch(
      /approvals: .*list of approval rules/,
    );
    expect(
      problems(`${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop, approvers: "group:"}\n`).join(),
    ).toMatch(/approvers/);
    expect(
      problems(
        `${ROLES}approvals:\n  - {actions: [delete], on: /dbs/shop, approvers: group:leads, quorum: 3}\n`,
      ),
    ).toEqual([]);
  });

  it("matches by action and covering scope, in policy order; a resource above the scope does not match", () => {
    const approvals = compileApprovalRules([
      { actions: ["delete"], on: "/dbs/shop/colls/orders", approvers: "group:leads" },
      { actions: ["delete", "replace"], on: "/dbs/shop" },
    ])!;
    expect(matchApproval(approvals, {}, item("DELETE"))?.index).toBe(0);
    expect(matchApproval(approvals, {}, classify("DELETE", "/dbs/shop/colls/other/docs/x", {}))?.index).toBe(
      1,
    );
    expect(matchApproval(approvals, {}, item("PUT"))?.index).toBe(1);
    expect(matchApproval(approvals, {}, item("GET"))).toBeUndefined();
    expect(
      matchApproval(approvals, {}, classify("DELETE", "/dbs/crm/colls/orders/docs/o1", {})),
    ).toBeUndefined();
    // Deleting the database is `manage`, not `delete`; the account is above every scope.
    expect(matchApproval(approvals, {}, classify("DELETE", "/dbs/shop", {}))).toBeUndefined();
    expect(matchApproval(approvals, {}, classify("GET", "/dbs", {}))).toBeUndefined();
  });

  it("for: agents matches only principals with an actor; everyone matches both", () => {
    const approvals = compileApprovalRules([{ actions: ["delete"], on: "/dbs/shop", for: "agents" }])!;
    expect(matchApproval(approvals, {}, item("DELETE"))).toBeUndefined();
    expect(matchApproval(approvals, { actor: { sub: "agent:bot" } }, item("DELETE"))?.index).toBe(0);
    const all = compileApprovalRules([{ actions: ["delete"], on: "/dbs/shop", for: "everyone" }])!;
    expect(matchApproval(all, {}, item("DELETE"))?.index).toBe(0);
    expect(matchApproval(all, { actor: { sub: "agent:bot" } }, item("DELETE"))?.index).toBe(0);
  });

  it("a batch or bulk request matches when any of its operations needs approval", () => {
    const approvals = compileApprovalRules([{ actions: ["delete"], on: "/dbs/shop" }])!;
    const base = classify("POST", "/dbs/shop/colls/orders/docs", {
      "x-ms-cosmos-is-batch-request": "True",
      "x-ms-cosmos-batch-atomic": "True",
      "x-ms-documentdb-partitionkey": '["c1"]',
    });
    const reads = classifyBatchBody(base, Buffer.from(JSON.stringify([{ operationType: "Read", id: "a" }])));
    expect(matchApproval(approvals, {}, reads)).toBeUndefined();
    const withDelete = classifyBatchBody(
      base,
      Buffer.from(
        JSON.stringify([
          { operationType: "Read", id: "a" },
          { operationType: "Delete", id: "b" },
        ]),
      ),
    );
    expect(matchApproval(approvals, {}, withDelete)?.index).toBe(0);
  });
});
