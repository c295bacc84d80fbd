import { describe, expect, it } from "vitest";
import { BUILT_IN_ROLES, NATIVE_PREFIX } from "../cosmos/actions.js";
import { ALL_ACTIONS } from "../cosmos/types.js";
import { compilePolicy } from "./compilePolicy.js";
import {
  fullyQualifiedScope,
  MEMBERS_NOTE,
  nativeDataActions,
  nativeScope,
  SCOPE_NOTE,
  toNativeRole,
  toNativeRoles,
} from "./nativeRbac.js";
import { parsePolicy } from "./parsePolicy.js";

const C = `${NATIVE_PREFIX}sqlDatabases/containers/`;
const I = `${C}items/`;
const META = `${NATIVE_PREFIX}readMetadata`;
const READER = { name: "Cosmos DB Built-in Data Reader", id: "00000000-0000-0000-0000-000000000001" };
const CONTRIBUTOR = {
  name: "Cosmos DB Built-in Data Contributor",
  id: "00000000-0000-0000-0000-000000000002",
};

describe("nativeScope", () => {
  it("keeps the account, a database and a container, relative to the account", () => {
    expect(nativeScope("/")).toEqual({ ok: true, scope: "/" });
    expect(nativeScope("/dbs/shop")).toEqual({ ok: true, scope: "/dbs/shop" });
    expect(nativeScope("/dbs/shop/colls/orders")).toEqual({ ok: true, scope: "/dbs/shop/colls/orders" });
  });

  it("refuses wildcards, users and permissions, and anything deeper than a container, saying why", () => {
    for (const [scope, why] of [
      ["/dbs/*", /wildcard \*/],
      ["/dbs/shop/colls/*", /wildcard \*/],
      ["/dbs/shop/colls/orders/docs/*", /wildcard \*/],
      ["/dbs/shop/users/ada", /user or permission/],
      ["/dbs/shop/users/ada/permissions/p1", /user or permission/],
      ["/dbs/shop/colls/orders/docs/a1", /deeper than a container/],
      ["/dbs/shop/colls/orders/sprocs/bulk", /deeper than a container/],
      ["/dbs/shop/colls/orders/pkranges/0", /deeper than a container/],
      ["dbs/shop", /not a valid scope/],
    ] as const) {
      const r = nativeScope(scope);
      expect(r.ok, scope).toBe(false);
      if (!r.ok) expect(r.why, scope).toMatch(why);
    }
  });

  it("prefixes an account's ARM id for the REST API and templates", () => {
    const account =
      "/subscriptions/s1/resourceGroups/g1/providers/Microsoft.DocumentDB/databaseAccounts/acct/";
    expect(fullyQualifiedScope(account, "/")).toBe(
      "/subscriptions/s1/resourceGroups/g1/providers/Microsoft.DocumentDB/databaseAccounts/acct",
    );
    expect(fullyQualifiedScope(account, "/dbs/shop/colls/orders")).toBe(
      "/subscriptions/s1/resourceGroups/g1/providers/Microsoft.DocumentDB/databaseAccounts/acct/dbs/shop/colls/orders",
    );
  });
});

describe("nativeDataActions", () => {
  it("maps each short action through the action table, in table order, without duplicates", () => {
    expect(nativeDataActions(["query", "read", "metadata"])).toEqual([META, `${I}read`, `${C}executeQuery`]);
    expect(nativeDataActions(["patch", "replace"])).toEqual([`${I}replace`]);
    expect(nativeDataActions(["execute", "conflicts", "changeFeed"])).toEqual([
      `${C}readChangeFeed`,
      `${C}executeStoredProcedure`,
      `${C}manageConflicts`,
    ]);
  });

  it("leaves manage out (it has no data action)", () => {
    expect(nativeDataActions(["manage"])).toEqual([]);
    expect(nativeDataActions(["manage", "read"])).toEqual([`${I}read`]);
  });

  it("compacts every item action to items/*, and every container action too to containers/* (as the built-in roles write them)", () => {
    expect(nativeDataActions(["read", "create", "upsert", "replace", "delete", "query"])).toEqual([
      `${I}*`,
      `${C}executeQuery`,
    ]);
    expect(nativeDataActions(ALL_ACTIONS)).toEqual([META, `${C}*`, `${I}*`]);
    expect(nativeDataActions(BUILT_IN_ROLES[CONTRIBUTOR.name].actions)).toEqual([
      ...BUILT_IN_ROLES[CONTRIBUTOR.name].dataActions,
    ]);
    expect(nativeDataActions(BUILT_IN_ROLES[READER.name].actions)).toEqual([
      ...BUILT_IN_ROLES[READER.name].dataActions,
    ]);
  });
});

describe("toNativeRole", () => {
  it("a role with one set of actions on container scopes is one custom definition assignable there", () => {
    const r = toNativeRole({
      name: "orders-writer",
      rules: [{ allow: ["metadata", "read", "create"], on: ["/dbs/shop/colls/orders", "/dbs/crm"] }],
    });
    expect(r.definition).toEqual({
      RoleName: "orders-writer",
      Type: "CustomRole",
      AssignableScopes: ["/dbs/shop/colls/orders", "/dbs/crm"],
      Permissions: [{ DataActions: [META, `${I}read`, `${I}create`] }],
    });
    expect(r.builtIn).toBeUndefined();
    expect(r.definitions).toBeUndefined();
    expect(r.assignAt).toEqual(["/dbs/shop/colls/orders", "/dbs/crm"]);
    expect(r.notExpressible).toEqual([]);
    expect(r.notes).toEqual([SCOPE_NOTE]);
  });

  it("the account scope is /", () => {
    const r = toNativeRole({ name: "reader-ish", rules: [{ allow: ["read"], on: "/" }] });
    expect(r.definition?.AssignableScopes).toEqual(["/"]);
  });

  it("recognizes the built-in Data Reader, at the account or a narrower scope, and needs no definition", () => {
    const atAccount = toNativeRole({
      name: "readers",
      rules: [{ allow: ["metadata", "read", "query", "changeFeed"], on: "/" }],
    });
    expect(atAccount.definition).toBeNull();
    expect(atAccount.builtIn).toEqual(READER);
    expect(atAccount.assignAt).toEqual(["/"]);
    expect(atAccount.notExpressible).toEqual([]);
    expect(atAccount.notes.join("\n")).toMatch(/Equals the built-in role "Cosmos DB Built-in Data Reader"/);

    // Native action names, split over two rules on the same scope: still the Reader.
    const narrow = toNativeRole({
      name: "orders-reader",
      rules: [
        { allow: [META, `${I}read`], on: "/dbs/shop/colls/orders" },
        { allow: [`${C}executeQuery`, "changeFeed"], on: "/dbs/shop/colls/orders" },
      ],
    });
    expect(narrow.builtIn).toEqual(READER);
    expect(narrow.assignAt).toEqual(["/dbs/shop/colls/orders"]);
  });

  it("recognizes the built-in Data Contributor (every data action), even written as native wildcards", () => {
    const r = toNativeRole({ name: "writers", rules: [{ allow: [META, `${C}*`], on: "/dbs/shop" }] });
    expect(r.builtIn).toEqual(CONTRIBUTOR);
    expect(r.definition).toBeNull();
    expect(r.notExpressible).toEqual([]);
  });

  it('"*" is the Data Contributor plus manage, which native RBAC cannot say', () => {
    const r = toNativeRole({ name: "admin", rules: [{ allow: ["*"], on: "/" }] });
    expect(r.builtIn).toEqual(CONTRIBUTOR);
    expect(r.notExpressible).toHaveLength(1);
    expect(r.notExpressible[0]).toMatch(/^rule 0 allows manage on \/: .*no data action/);
  });

  it("a role of manage only maps to nothing, and says why", () => {
    const r = toNativeRole({ name: "ops", rules: [{ allow: ["manage"], on: "/dbs/shop" }] });
    expect(r.definition).toBeNull();
    expect(r.builtIn).toBeUndefined();
    expect(r.assignAt).toBeUndefined();
    expect(r.notExpressible).toEqual([expect.stringMatching(/manage on \/dbs\/shop/)]);
  });

  it("lists wildcard, user and too-deep scopes as not expressible and keeps the rest", () => {
    const r = toNativeRole({
      name: "mixed",
      rules: [
        { allow: ["read"], on: ["/dbs/shop/colls/*", "/dbs/shop/colls/orders"] },
        { allow: ["read"], on: "/dbs/shop/colls/orders/docs/a1" },
        { allow: ["read"], on: "/dbs/shop/users/ada" },
      ],
    });
    expect(r.definition?.AssignableScopes).toEqual(["/dbs/shop/colls/orders"]);
    expect(r.definition?.Permissions).toEqual([{ DataActions: [`${I}read`] }]);
    expect(r.notExpressible).toEqual([
      expect.stringMatching(/^rule 0: the scope \/dbs\/shop\/colls\/\* uses the wildcard/),
      expect.stringMatching(
        /^rule 1: the scope \/dbs\/shop\/colls\/orders\/docs\/a1 is deeper than a container/,
      ),
      expect.stringMatching(/^rule 2: the scope \/dbs\/shop\/users\/ada is a Cosmos DB user or permission/),
    ]);
  });

  it("says that patch without replace widens (native has no patch), and so does replace without patch", () => {
    const patchOnly = toNativeRole({ name: "patcher", rules: [{ allow: ["patch"], on: "/dbs/shop" }] });
    expect(patchOnly.definition?.Permissions).toEqual([{ DataActions: [`${I}replace`] }]);
    expect(patchOnly.notExpressible).toEqual([
      expect.stringMatching(
        /^patch on \/dbs\/shop: native RBAC has no patch action; it maps to items\/replace.*wider/,
      ),
    ]);
    const replaceOnly = toNativeRole({ name: "replacer", rules: [{ allow: ["replace"], on: "/dbs/shop" }] });
    expect(replaceOnly.notExpressible).toEqual([
      expect.stringMatching(/^replace without patch on \/dbs\/shop: native items\/replace also allows patch/),
    ]);
    // Both on the same scope (from two rules): exact.
    const both = toNativeRole({
      name: "both",
      rules: [
        { allow: ["patch"], on: "/dbs/shop" },
        { allow: ["replace"], on: "/dbs/shop" },
      ],
    });
    expect(both.notExpressible).toEqual([]);
    expect(both.definition?.Permissions).toEqual([{ DataActions: [`${I}replace`] }]);
  });

  it("needs one definition per distinct set of actions when scopes get different ones", () => {
    const r = toNativeRole({
      name: "shop-writer",
      rules: [
        { allow: ["metadata", "read", "query"], on: ["/dbs/shop", "/dbs/crm"] },
        { allow: ["create"], on: "/dbs/shop/colls/orders" },
        { allow: ["metadata", "read", "query"], on: "/dbs/hr" },
      ],
    });
    expect(r.definition).toBeNull();
    expect(r.builtIn).toBeUndefined();
    expect(r.definitions).toEqual([
      {
        RoleName: "shop-writer (1 of 2)",
        Type: "CustomRole",
        AssignableScopes: ["/dbs/shop", "/dbs/crm", "/dbs/hr"],
        Permissions: [{ DataActions: [META, `${I}read`, `${C}executeQuery`] }],
      },
      {
        RoleName: "shop-writer (2 of 2)",
        Type: "CustomRole",
        AssignableScopes: ["/dbs/shop/colls/orders"],
        Permissions: [{ DataActions: [`${I}create`] }],
      },
    ]);
    expect(r.assignAt).toEqual(["/dbs/shop", "/dbs/crm", "/dbs/hr", "/dbs/shop/colls/orders"]);
    expect(r.notes.join("\n")).toMatch(/Needs 2 role definitions/);
    expect(r.notExpressible).toEqual([]);
  });

  it("reports a deny rule and an unknown action, were a policy to carry them", () => {
    const r = toNativeRole({
      name: "future",
      rules: [{ allow: ["read", "dlete"], on: "/", deny: ["delete"] } as never],
    });
    expect(r.notExpressible).toEqual([
      expect.stringMatching(/^rule 0 denies: native RBAC only allows/),
      'rule 0: the action "dlete" has no native data action',
    ]);
    expect(r.definition?.Permissions).toEqual([{ DataActions: [`${I}read`] }]);
  });

  it("an empty role grants nothing", () => {
    const r = toNativeRole({ name: "empty", rules: [] });
    expect(r).toEqual({
      definition: null,
      notExpressible: [],
      notes: [SCOPE_NOTE, "The role grants nothing: there is nothing to create natively."],
    });
  });

  it("notes how members map when the role has some", () => {
    const r = toNativeRole({ name: "r", rules: [{ allow: ["read"], on: "/" }], members: ["group:analysts"] });
    expect(r.notes).toEqual([SCOPE_NOTE, MEMBERS_NOTE]);
  });
});

describe("toNativeRoles", () => {
  const text = `roles:
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
  admin:
    - allow: ["*"]
      on: /
members:
  orders-reader: ["group:analysts"]
  Cosmos DB Built-in Data Contributor: ["sub:carol"]
`;

  it("maps every role of a compiled policy, built-ins first, each equal to itself", () => {
    const roles = toNativeRoles(compilePolicy(parsePolicy(text, "policy.yaml")));
    expect(roles.map((r) => r.name)).toEqual([READER.name, CONTRIBUTOR.name, "orders-reader", "admin"]);
    expect(roles[0].native.builtIn).toEqual(READER);
    expect(roles[0].native.notes).not.toContain(MEMBERS_NOTE); // no members in this policy
    expect(roles[1].native.builtIn).toEqual(CONTRIBUTOR);
    expect(roles[1].native.notes).toContain(MEMBERS_NOTE);
    expect(roles[2].native).toMatchObject({ builtIn: READER, assignAt: ["/dbs/shop/colls/orders"] });
    expect(roles[3].native.notExpressible).toEqual([expect.stringMatching(/manage/)]);
  });

  it("maps the roles of a parsed document, with their members", () => {
    const roles = toNativeRoles(parsePolicy(text, "policy.yaml"));
    expect(roles.map((r) => r.name)).toEqual(["orders-reader", "admin"]);
    expect(roles[0].native.notes).toContain(MEMBERS_NOTE);
    expect(roles[1].native.notes).not.toContain(MEMBERS_NOTE);
  });
});
