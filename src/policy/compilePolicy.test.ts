import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compilePolicy.js";
import { PolicyError } from "./errors.js";
import { expandActionName } from "./expandActionName.js";
import type { PolicyDocument } from "./schema.js";

const doc: PolicyDocument = {
  roles: { a: [{ allow: ["read"], on: "/dbs/x" }], b: [{ allow: ["query"], on: ["/dbs/y", "/dbs/z"] }] },
  members: { a: ["sub:alice", "group:g"], b: ["group:g"], "Cosmos DB Built-in Data Reader": ["sub:alice"] },
};

describe("compilePolicy", () => {
  it("lists built-in roles first, then the document's, with members", () => {
    const p = compilePolicy(doc);
    expect(p.roles.map((r) => [r.name, r.builtIn, r.members])).toEqual([
      ["Cosmos DB Built-in Data Reader", true, ["sub:alice"]],
      ["Cosmos DB Built-in Data Contributor", true, []],
      ["a", false, ["sub:alice", "group:g"]],
      ["b", false, ["group:g"]],
    ]);
    expect(p.roles[3].rules[0].on).toEqual(["/dbs/y", "/dbs/z"]);
    expect(p.bySub.get("alice")?.map((r) => r.name)).toEqual(["Cosmos DB Built-in Data Reader", "a"]);
    expect(p.byGroup.get("g")?.map((r) => r.name)).toEqual(["a", "b"]);
  });

  it("versions the document independent of key order", () => {
    const v = compilePolicy(doc).version;
    expect(v).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(compilePolicy({ members: doc.members, roles: doc.roles }).version).toBe(v);
    expect(compilePolicy({ ...doc, members: {} }).version).not.toBe(v);
  });

  it("validates hand-built documents", () => {
    const bad = { roles: { a: [{ allow: ["dlete"], on: "/" }] }, members: {} } as PolicyDocument;
    expect(() => compilePolicy(bad)).toThrow(PolicyError);
    try {
      compilePolicy(bad);
    } catch (err) {
      expect((err as PolicyError).problems[0].path).toBe("roles.a[0].allow[0]");
    }
  });
});

describe("expandActionName", () => {
  it("maps short names, native names, their wildcards and *", () => {
    const n = "Microsoft.DocumentDB/databaseAccounts/";
    expect(expandActionName("read")).toEqual(["read"]);
    expect(expandActionName(`${n}readMetadata`)).toEqual(["metadata"]);
    expect(expandActionName(`${n}sqlDatabases/containers/readChangeFeed`)).toEqual(["changeFeed"]);
    expect(expandActionName(`${n}sqlDatabases/containers/items/*`)).toEqual([
      "read",
      "create",
      "upsert",
      "replace",
      "patch",
      "delete",
    ]);
    expect(expandActionName(`${n}sqlDatabases/containers/*`)).toHaveLength(10);
    expect(expandActionName(`${n}sqlDatabases/containers/*`)).not.toContain("metadata");
    expect(expandActionName("*")).toContain("manage");
    expect(expandActionName("Read")).toBeUndefined();
    expect(expandActionName("toString")).toBeUndefined();
  });
});
