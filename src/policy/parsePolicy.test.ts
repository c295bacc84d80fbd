import { describe, expect, it } from "vitest";
import { PolicyError } from "./errors.js";
import { parsePolicy } from "./parsePolicy.js";

/** The problem lines of the PolicyError thrown for `text`, without the heading. */
function problems(text: string): string[] {
  try {
    parsePolicy(text, "policy.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe("ERR_POLICY_INVALID");
    return (err as PolicyError).message
      .split("\n")
      .slice(1)
      .map((l) => l.trim());
  }
  throw new Error("expected parsePolicy to throw");
}

const EXAMPLE = `roles:
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
  shop-writer:
    - allow: [metadata, read, query, changeFeed, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/*
members:
  orders-reader: ["group:analysts"]        # a value of the issuer's roles claim
  shop-writer: ["sub:alice"]               # a token subject
  Cosmos DB Built-in Data Contributor: ["group:cosmos-admins"]
`;

describe("parsePolicy", () => {
  it("parses the example policy", () => {
    const doc = parsePolicy(EXAMPLE, "policy.yaml");
    expect(doc.roles["shop-writer"][0].on).toBe("/dbs/shop/colls/*");
    expect(doc.members["Cosmos DB Built-in Data Contributor"]).toEqual(["group:cosmos-admins"]);
  });

  it("treats an empty file, a comment-only file and empty sections as an empty policy", () => {
    expect(parsePolicy("", "p.yaml")).toEqual({ roles: {}, members: {} });
    expect(parsePolicy("# nothing yet\n", "p.yaml")).toEqual({ roles: {}, members: {} });
    expect(parsePolicy("roles:\nmembers:\n", "p.yaml")).toEqual({ roles: {}, members: {} });
  });

  it("accepts a list of scopes, native action names and deeper scopes", () => {
    const doc = parsePolicy(
      `roles:
  r:
    - allow: [Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/*, "*"]
      on: [/, /dbs/a/colls/b/docs/c, /dbs/*/users/u/permissions/p]
`,
      "p.yaml",
    );
    expect(doc.roles.r[0].on).toHaveLength(3);
  });

  it("reports an unknown top-level key and an unknown rule key at the key", () => {
    expect(
      problems(`roles:
  r:
    - allow: [read]
      on: /
      when: always
rolez: {}
`),
    ).toEqual([
      'policy.yaml:5:7: roles.r[0].when: found unknown key "when"; expected a rule with keys allow and on, such as {allow: [read], on: /dbs/shop}',
      'policy.yaml:6:1: rolez: found unknown key "rolez"; expected a mapping with keys roles, members and approvals',
    ]);
  });

  it("reports an unknown action with its key path and a suggestion", () => {
    expect(
      problems(`roles:
  shop-writer:
    - allow: [read, create, dlete]
      on: /dbs/shop
`),
    ).toEqual([
      'policy.yaml:3:29: roles.shop-writer[0].allow[2]: found "dlete"; expected an action: *, metadata, read, create, upsert, replace, patch, delete, query, changeFeed, execute, conflicts, manage, or a native data action such as Microsoft.DocumentDB/databaseAccounts/readMetadata (did you mean "delete"?)',
    ]);
  });

  it("reports bad scopes", () => {
    expect(
      problems(`roles:
  r:
    - allow: [read]
      on: [dbs/shop, /dbs/shop/collections/orders, /dbs/shop/colls, /dbs/shop/colls/ord*, /dbs/shop/]
    - allow: [read]
      on: 5
`),
    ).toEqual([
      'policy.yaml:4:12: roles.r[0].on[0]: found "dbs/shop"; expected a path starting with "/": /, /dbs/{db}, /dbs/{db}/colls/{coll} or deeper such as /dbs/{db}/colls/{coll}/docs/{id}',
      'policy.yaml:4:22: roles.r[0].on[1]: found "/dbs/shop/collections/orders"; expected "colls" or "users" after /dbs/shop',
      'policy.yaml:4:52: roles.r[0].on[2]: found "/dbs/shop/colls"; expected the scope to end with an id, such as /dbs/shop/colls/{id}, or /dbs/shop to cover all beneath it',
      'policy.yaml:4:69: roles.r[0].on[3]: found "/dbs/shop/colls/ord*"; expected "*" alone as a whole segment (it matches one id); partial wildcards are not supported',
      'policy.yaml:4:91: roles.r[0].on[4]: found "/dbs/shop/"; expected no trailing "/": /, /dbs/{db}, /dbs/{db}/colls/{coll} or deeper such as /dbs/{db}/colls/{coll}/docs/{id}',
      "policy.yaml:6:11: roles.r[1].on: found 5; expected a scope path such as /dbs/shop/colls/orders, or a list of them",
    ]);
  });

  it("reports members of an undefined role and malformed members", () => {
    expect(
      problems(`roles:
  reader:
    - allow: [read]
      on: /
members:
  reader: ["sub:alice", "alice", "group:"]
  readers: ["group:analysts"]
`),
    ).toEqual([
      'policy.yaml:6:25: members.reader[1]: found "alice"; expected sub:VALUE (a token subject) or group:VALUE (a value of the issuer\'s roles claim)',
      'policy.yaml:6:34: members.reader[2]: found "group:"; expected sub:VALUE (a token subject) or group:VALUE (a value of the issuer\'s roles claim)',
      'policy.yaml:7:3: members.readers: found undefined role "readers"; expected a role defined under roles or a built-in role: "reader", "Cosmos DB Built-in Data Reader", "Cosmos DB Built-in Data Contributor"',
    ]);
  });

  it("refuses to redefine a built-in role", () => {
    expect(
      problems(`roles:
  Cosmos DB Built-in Data Reader:
    - allow: [read]
      on: /
`),
    ).toEqual([
      'policy.yaml:2:3: roles["Cosmos DB Built-in Data Reader"]: found role "Cosmos DB Built-in Data Reader"; expected a role name other than a built-in role\'s; "Cosmos DB Built-in Data Reader" is predefined and cannot be redefined (grant it under members, or name your role differently)',
    ]);
  });

  it("reports wrong types and empty lists", () => {
    expect(
      problems(`roles:
  r:
    - allow: read
      on: /
    - allow: []
      on: []
  s: {allow: [read], on: /}
members:
  r: sub:alice
`),
    ).toEqual([
      'policy.yaml:3:14: roles.r[0].allow: found "read"; expected a list of actions, such as [metadata, read, query]',
      "policy.yaml:5:14: roles.r[1].allow: found an empty list; expected at least one action",
      "policy.yaml:6:11: roles.r[1].on: found an empty list; expected at least one scope",
      "policy.yaml:7:6: roles.s: found a mapping; expected a list of rules, each {allow, on}",
      'policy.yaml:9:6: members.r: found "sub:alice"; expected a list of members, such as [sub:alice, group:analysts]',
    ]);
  });

  it("reports a document that is not a mapping", () => {
    expect(problems("- roles\n")).toEqual([
      "policy.yaml:1:1: found a list; expected a mapping with keys roles, members and approvals",
    ]);
  });

  it("reports YAML syntax errors and duplicate keys with positions", () => {
    expect(problems("roles:\n  r: []\n  r: []\n")).toEqual([
      "policy.yaml:3:3: YAML: Map keys must be unique",
    ]);
    expect(problems("roles: [\n")[0]).toMatch(/^policy\.yaml:\d+:\d+: YAML: /);
  });

  it("lists every problem in the message heading and as data", () => {
    try {
      parsePolicy("foo: 1\nbar: 2\n", "conf/policy.yaml");
      expect.unreachable();
    } catch (err) {
      const e = err as PolicyError;
      expect(e.message.split("\n")[0]).toBe("invalid policy conf/policy.yaml (2 problems):");
      expect(e.problems.map((p) => [p.line, p.col, p.path])).toEqual([
        [1, 1, "foo"],
        [2, 1, "bar"],
      ]);
    }
  });
});
