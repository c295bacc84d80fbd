import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compilePolicy.js";
import { PolicyError } from "./errors.js";
import { explain } from "./explain.js";
import { formatExplain } from "./formatExplain.js";
import { parsePolicy } from "./parsePolicy.js";

const policy = compilePolicy(
  parsePolicy(
    `roles:
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
    - allow: [delete]
      on: /dbs/shop/colls/carts
  shop-writer:
    - allow: [metadata, read, query, changeFeed, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/*
members:
  orders-reader: ["group:analysts", "sub:bob"]
  shop-writer: ["sub:alice"]
  Cosmos DB Built-in Data Contributor: ["group:cosmos-admins"]
`,
    "policy.yaml",
  ),
);

describe("explain", () => {
  it("explains a denial: roles held and via which entries, close rules, roles that would allow", () => {
    const r = explain(policy, {
      subject: "bob",
      groups: ["analysts"],
      action: "delete",
      resource: "/dbs/shop/colls/orders/docs/a1",
    });
    expect(r.decision.effect).toBe("deny");
    expect(r.roles).toEqual([{ name: "orders-reader", builtIn: false, via: ["sub:bob", "group:analysts"] }]);
    expect(r.close.map((c) => [c.rule, c.why])).toEqual([
      [0, "covers /dbs/shop/colls/orders/docs/a1, but does not allow [delete]"],
      [1, "allows [delete], but its scope does not cover /dbs/shop/colls/orders/docs/a1"],
    ]);
    expect(r.wouldAllow.map((w) => [w.role, w.members])).toEqual([
      ["Cosmos DB Built-in Data Contributor", ["group:cosmos-admins"]],
      ["shop-writer", ["sub:alice"]],
    ]);
    expect(formatExplain(r)).toBe(
      [
        "DENY delete on /dbs/shop/colls/orders/docs/a1",
        "  principal  bob (groups: analysts)",
        "  reason     principal [bob] holds no role that allows [delete] on [/dbs/shop/colls/orders/docs/a1]; roles held: orders-reader",
        "  roles held",
        "    orders-reader  via sub:bob, group:analysts",
        "  close rules",
        "    role orders-reader rule 0: allow [metadata, read, query, changeFeed] on /dbs/shop/colls/orders: covers /dbs/shop/colls/orders/docs/a1, but does not allow [delete]",
        "    role orders-reader rule 1: allow [delete] on /dbs/shop/colls/carts: allows [delete], but its scope does not cover /dbs/shop/colls/orders/docs/a1",
        "  would be allowed by (roles not held)",
        "    role Cosmos DB Built-in Data Contributor rule 0: allow [metadata, read, create, upsert, replace, patch, delete, query, changeFeed, execute, conflicts] on /; members: group:cosmos-admins",
        "    role shop-writer rule 0: allow [metadata, read, query, changeFeed, create, upsert, replace, patch, delete] on /dbs/shop/colls/*; members: sub:alice",
        `  policy     ${policy.version}`,
      ].join("\n"),
    );
  });

  it("explains an allow with the matching rule", () => {
    const r = explain(policy, {
      subject: "alice",
      action: "patch",
      resource: "/dbs/shop/colls/carts/docs/c1",
    });
    expect(r.via).toBe("scope");
    expect(r.matched).toEqual({
      role: "shop-writer",
      rule: 0,
      allow: ["metadata", "read", "query", "changeFeed", "create", "upsert", "replace", "patch", "delete"],
      on: ["/dbs/shop/colls/*"],
    });
    expect(formatExplain(r).split("\n").slice(0, 4)).toEqual([
      "ALLOW patch on /dbs/shop/colls/carts/docs/c1",
      "  principal  alice (no groups)",
      "  reason     allowed by role shop-writer rule 0 (on /dbs/shop/colls/*)",
      "  matched    role shop-writer rule 0: allow [metadata, read, query, changeFeed, create, upsert, replace, patch, delete] on /dbs/shop/colls/*",
    ]);
  });

  it("marks the metadata discovery rule", () => {
    const r = explain(policy, {
      subject: "bob",
      action: "Microsoft.DocumentDB/databaseAccounts/readMetadata",
      resource: "/",
    });
    expect(r.action).toBe("metadata");
    expect(r.via).toBe("metadata-ancestor");
    expect(formatExplain(r)).toContain("(metadata discovery: resource is above the scope)");
  });

  it("explains a principal with no role", () => {
    const r = explain(policy, { subject: "mallory", groups: [], action: "read", resource: "/dbs/shop" });
    expect(r.roles).toEqual([]);
    expect(r.close).toEqual([]);
    expect(formatExplain(r)).toContain("  roles held (none)");
  });

  it("rejects unknown or ambiguous actions and malformed resources", () => {
    const bad = (action: string, resource: string) => {
      try {
        explain(policy, { subject: "a", action, resource });
      } catch (err) {
        return [(err as PolicyError).code, (err as PolicyError).message];
      }
      return undefined;
    };
    expect(bad("dlete", "/")?.[0]).toBe("ERR_POLICY_BAD_ACTION");
    expect(bad("*", "/")?.[1]).toMatch(/names 12 actions; give one/);
    expect(bad("read", "dbs/shop")?.[0]).toBe("ERR_POLICY_BAD_RESOURCE");
    expect(bad("read", "/dbs/*")).toEqual([
      "ERR_POLICY_BAD_RESOURCE",
      'resource "/dbs/*": expected an id after /dbs; "*" is only for policy scopes',
    ]);
    expect(() => explain(policy, { subject: "a", action: "x", resource: "/" })).toThrow(PolicyError);
  });
});
