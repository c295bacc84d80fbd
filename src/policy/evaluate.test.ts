import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compilePolicy.js";
import { evaluate } from "./evaluate.js";
import { evaluateAll } from "./evaluateAll.js";
import { parsePolicy } from "./parsePolicy.js";
import type { PolicySubject } from "./types.js";

const policy = compilePolicy(
  parsePolicy(
    `roles:
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
  shop-writer:
    - allow: [metadata, read, query, changeFeed, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/*
  any-db-audit:
    - allow: [read]
      on: [/dbs/*/colls/audit, /dbs/crm/colls/log/docs/x]
  no-metadata:
    - allow: [query]
      on: /dbs/hr/colls/people
  operator:
    - allow: ["*"]
      on: /dbs/ops
members:
  orders-reader: ["group:analysts"]
  shop-writer: ["sub:alice"]
  any-db-audit: ["group:auditors", "sub:carol"]
  no-metadata: ["sub:dave"]
  operator: ["sub:erin"]
  Cosmos DB Built-in Data Reader: ["group:readers"]
  Cosmos DB Built-in Data Contributor: ["group:cosmos-admins"]
`,
    "policy.yaml",
  ),
);

const ITEM = ["dbs", "shop", "colls", "orders", "docs", "a1"];
const who = (sub: string, ...groups: string[]): PolicySubject => ({ sub, groups });

describe("evaluate", () => {
  it("denies by default, naming the principal, action and resource", () => {
    const d = evaluate(policy, who("bob"), "read", ITEM);
    expect(d).toEqual({
      effect: "deny",
      reason: "principal [bob] holds no role (denied [read] on [/dbs/shop/colls/orders/docs/a1])",
    });
    expect(
      evaluate(compilePolicy({ roles: {}, members: {} }), who("x", "analysts"), "metadata", []).effect,
    ).toBe("deny");
  });

  it("allows by a group member entry and explains which rule", () => {
    const d = evaluate(policy, who("bob", "analysts"), "read", ITEM);
    expect(d).toEqual({
      effect: "allow",
      reason: "allowed by role orders-reader rule 0 (on /dbs/shop/colls/orders)",
      matched: {
        role: "orders-reader",
        rule: 0,
        on: "/dbs/shop/colls/orders",
        allow: ["metadata", "read", "query", "changeFeed"],
      },
    });
  });

  it("denies an action the held role does not allow, listing roles held", () => {
    expect(evaluate(policy, who("bob", "analysts"), "delete", ITEM).reason).toBe(
      "principal [bob] holds no role that allows [delete] on [/dbs/shop/colls/orders/docs/a1]; roles held: orders-reader",
    );
  });

  it("matches sub members by subject and group members by group, not crosswise", () => {
    expect(evaluate(policy, who("alice"), "delete", ITEM).effect).toBe("allow");
    expect(evaluate(policy, who("bob", "alice"), "delete", ITEM).effect).toBe("deny");
    expect(evaluate(policy, who("analysts"), "read", ITEM).effect).toBe("deny");
  });

  it("covers everything beneath a scope, with * matching exactly one segment", () => {
    const alice = who("alice");
    expect(evaluate(policy, alice, "patch", ["dbs", "shop", "colls", "customers", "docs", "c9"]).effect).toBe(
      "allow",
    );
    expect(evaluate(policy, alice, "query", ["dbs", "shop", "colls", "customers"]).effect).toBe("allow");
    expect(evaluate(policy, alice, "delete", ["dbs", "crm", "colls", "customers", "docs", "c9"]).effect).toBe(
      "deny",
    );
    const carol = who("carol");
    expect(evaluate(policy, carol, "read", ["dbs", "a", "colls", "audit", "docs", "1"]).effect).toBe("allow");
    expect(evaluate(policy, carol, "read", ["dbs", "b", "colls", "audit"]).effect).toBe("allow");
    expect(evaluate(policy, carol, "read", ["dbs", "b", "colls", "audits"]).effect).toBe("deny");
    expect(evaluate(policy, carol, "read", ["dbs", "crm", "colls", "log", "docs", "x"]).reason).toBe(
      "allowed by role any-db-audit rule 0 (on /dbs/crm/colls/log/docs/x)",
    );
    expect(evaluate(policy, carol, "read", ["dbs", "crm", "colls", "log", "docs", "y"]).effect).toBe("deny");
  });

  it("does not let a scope cover its parent (other than metadata discovery)", () => {
    const alice = who("alice");
    expect(evaluate(policy, alice, "read", ["dbs", "shop"]).effect).toBe("deny");
    expect(evaluate(policy, alice, "query", []).effect).toBe("deny");
  });

  it("grants the built-in roles account-wide, without manage", () => {
    const reader = who("r", "readers");
    expect(evaluate(policy, reader, "read", ["dbs", "any", "colls", "thing", "docs", "1"]).reason).toBe(
      "allowed by role Cosmos DB Built-in Data Reader rule 0 (on /)",
    );
    expect(evaluate(policy, reader, "create", ["dbs", "any", "colls", "thing"]).effect).toBe("deny");
    const admin = who("a", "cosmos-admins");
    for (const action of ["create", "delete", "execute", "conflicts", "patch"] as const) {
      expect(evaluate(policy, admin, action, ["dbs", "x", "colls", "y"]).effect).toBe("allow");
    }
    expect(evaluate(policy, admin, "manage", ["dbs", "x"]).effect).toBe("deny");
  });

  it("grants manage only through *", () => {
    const erin = who("erin");
    expect(evaluate(policy, erin, "manage", ["dbs", "ops", "colls", "jobs"]).effect).toBe("allow");
    expect(evaluate(policy, erin, "manage", ["dbs", "shop"]).effect).toBe("deny");
  });

  it("combines several roles", () => {
    const bob = who("carol", "analysts");
    expect(evaluate(policy, bob, "query", ITEM.slice(0, 4)).effect).toBe("allow");
    expect(evaluate(policy, bob, "read", ["dbs", "z", "colls", "audit"]).effect).toBe("allow");
    expect(evaluate(policy, bob, "delete", ITEM).reason).toBe(
      "principal [carol] holds no role that allows [delete] on [/dbs/shop/colls/orders/docs/a1]; roles held: orders-reader, any-db-audit",
    );
  });

  describe("metadata discovery above a granted scope", () => {
    const bob = who("bob", "analysts");

    it("allows metadata on the account, the database and the container's feed above the scope", () => {
      for (const segments of [[], ["dbs"], ["dbs", "shop"], ["dbs", "shop", "colls"]]) {
        const d = evaluate(policy, bob, "metadata", segments);
        expect(d.effect).toBe("allow");
        expect(d.reason).toBe(
          "allowed by role orders-reader rule 0 (on /dbs/shop/colls/orders; metadata above a granted scope is readable for SDK discovery)",
        );
      }
    });

    it("prefers a covering scope, and still covers metadata beneath", () => {
      expect(evaluate(policy, bob, "metadata", ["dbs", "shop", "colls", "orders"]).reason).toBe(
        "allowed by role orders-reader rule 0 (on /dbs/shop/colls/orders)",
      );
      expect(evaluate(policy, bob, "metadata", ["dbs", "shop", "colls", "orders", "pkranges"]).effect).toBe(
        "allow",
      );
    });

    it("does not reveal siblings or other databases", () => {
      expect(evaluate(policy, bob, "metadata", ["dbs", "shop", "colls", "customers"]).effect).toBe("deny");
      expect(evaluate(policy, bob, "metadata", ["dbs", "crm"]).effect).toBe("deny");
    });

    it("works through wildcards", () => {
      expect(evaluate(policy, who("carol"), "metadata", ["dbs", "x"]).effect).toBe("deny"); // no metadata granted
      expect(evaluate(policy, who("alice"), "metadata", ["dbs", "shop"]).effect).toBe("allow");
    });

    it("does not apply to read, query or any other action", () => {
      for (const action of ["read", "query", "changeFeed"] as const) {
        expect(evaluate(policy, bob, action, []).effect).toBe("deny");
        expect(evaluate(policy, bob, action, ["dbs", "shop"]).effect).toBe("deny");
      }
      // dave holds query (no metadata) on /dbs/hr/colls/people: nothing above it is readable.
      expect(evaluate(policy, who("dave"), "metadata", []).effect).toBe("deny");
      expect(evaluate(policy, who("dave"), "query", ["dbs", "hr"]).effect).toBe("deny");
    });
  });

  it("reuses prebuilt allow decisions and caches per subject", () => {
    const alice = who("alice");
    const a = evaluate(policy, alice, "read", ITEM);
    expect(evaluate(policy, alice, "read", ITEM)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(policy.cache.has(alice)).toBe(true);
  });

  it("denies an action it does not know", () => {
    expect(evaluate(policy, who("erin"), "nope" as never, ["dbs", "ops"]).effect).toBe("deny");
  });
});

describe("evaluateAll", () => {
  it("returns the first denial or the last allow", () => {
    const bob = who("bob", "analysts");
    expect(evaluateAll(policy, bob, ["read", "delete", "create"], ITEM).reason).toContain("[delete]");
    const all = evaluateAll(policy, who("alice"), ["read", "create"], ITEM);
    expect(all.effect).toBe("allow");
    expect(evaluateAll(policy, bob, ["read", "query"], ITEM).effect).toBe("allow");
  });

  it("denies an empty action list", () => {
    expect(evaluateAll(policy, who("alice"), [], ITEM).effect).toBe("deny");
  });
});
