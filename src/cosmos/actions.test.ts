import { describe, expect, it } from "vitest";
import {
  BUILT_IN_ROLES,
  CONTAINER_ACTIONS,
  ITEM_ACTIONS,
  NATIVE_DATA_ACTIONS,
  parseAction,
  toNativeDataActions,
} from "./actions.js";
import { ALL_ACTIONS } from "./types.js";

const P = "Microsoft.DocumentDB/databaseAccounts/";

describe("NATIVE_DATA_ACTIONS", () => {
  it("maps every short action to its native data action", () => {
    expect(NATIVE_DATA_ACTIONS).toEqual({
      metadata: `${P}readMetadata`,
      read: `${P}sqlDatabases/containers/items/read`,
      create: `${P}sqlDatabases/containers/items/create`,
      upsert: `${P}sqlDatabases/containers/items/upsert`,
      replace: `${P}sqlDatabases/containers/items/replace`,
      patch: `${P}sqlDatabases/containers/items/replace`,
      delete: `${P}sqlDatabases/containers/items/delete`,
      query: `${P}sqlDatabases/containers/executeQuery`,
      changeFeed: `${P}sqlDatabases/containers/readChangeFeed`,
      execute: `${P}sqlDatabases/containers/executeStoredProcedure`,
      conflicts: `${P}sqlDatabases/containers/manageConflicts`,
      manage: undefined,
    });
    expect(Object.keys(NATIVE_DATA_ACTIONS).sort()).toEqual([...ALL_ACTIONS].sort());
  });
});

describe("parseAction", () => {
  it("accepts every short name, case-sensitively", () => {
    for (const a of ALL_ACTIONS) expect(parseAction(a)).toEqual([a]);
    expect(parseAction("Read")).toBeUndefined();
    expect(parseAction("changefeed")).toBeUndefined();
    expect(parseAction("")).toBeUndefined();
    expect(parseAction("*")).toBeUndefined();
  });

  it("maps full native strings back to short names (case-insensitive, as Azure)", () => {
    expect(parseAction(`${P}readMetadata`)).toEqual(["metadata"]);
    expect(parseAction(`${P}sqlDatabases/containers/items/read`)).toEqual(["read"]);
    expect(parseAction(`${P}sqlDatabases/containers/items/create`)).toEqual(["create"]);
    expect(parseAction(`${P}sqlDatabases/containers/items/upsert`)).toEqual(["upsert"]);
    expect(parseAction(`${P}sqlDatabases/containers/items/replace`)).toEqual(["replace", "patch"]);
    expect(parseAction(`${P}sqlDatabases/containers/items/delete`)).toEqual(["delete"]);
    expect(parseAction(`${P}sqlDatabases/containers/executeQuery`)).toEqual(["query"]);
    expect(parseAction(`${P}sqlDatabases/containers/readChangeFeed`)).toEqual(["changeFeed"]);
    expect(parseAction(`${P}sqlDatabases/containers/executeStoredProcedure`)).toEqual(["execute"]);
    expect(parseAction(`${P}sqlDatabases/containers/manageConflicts`)).toEqual(["conflicts"]);
    expect(parseAction(`${P}readmetadata`.toUpperCase())).toEqual(["metadata"]);
  });

  it("expands the two native wildcards", () => {
    expect(parseAction(`${P}sqlDatabases/containers/items/*`)).toEqual([
      "read",
      "create",
      "upsert",
      "replace",
      "patch",
      "delete",
    ]);
    expect(parseAction(`${P}sqlDatabases/containers/*`)).toEqual([
      "read",
      "create",
      "upsert",
      "replace",
      "patch",
      "delete",
      "query",
      "changeFeed",
      "execute",
      "conflicts",
    ]);
    expect(parseAction(`${P}sqlDatabases/containers/*`)).not.toContain("manage");
    expect(parseAction(`${P}sqlDatabases/containers/*`)).not.toContain("metadata");
  });

  it("refuses unknown and unmodelled native actions", () => {
    expect(parseAction(`${P}sqlDatabases/containers/items/unmask`)).toBeUndefined();
    expect(parseAction(`${P}*`)).toBeUndefined();
    expect(parseAction(`${P}sqlDatabases/containers/items/patch`)).toBeUndefined();
    expect(parseAction("sqlDatabases/containers/items/read")).toBeUndefined();
  });

  it("returns frozen shared sets for wildcards", () => {
    expect(Object.isFrozen(ITEM_ACTIONS)).toBe(true);
    expect(Object.isFrozen(CONTAINER_ACTIONS)).toBe(true);
  });
});

describe("BUILT_IN_ROLES", () => {
  it("mirrors Cosmos DB Built-in Data Reader", () => {
    const r = BUILT_IN_ROLES["Cosmos DB Built-in Data Reader"];
    expect(r.id).toBe("00000000-0000-0000-0000-000000000001");
    expect(r.actions).toEqual(["metadata", "read", "query", "changeFeed"]);
    expect(r.dataActions).toEqual([
      `${P}readMetadata`,
      `${P}sqlDatabases/containers/items/read`,
      `${P}sqlDatabases/containers/executeQuery`,
      `${P}sqlDatabases/containers/readChangeFeed`,
    ]);
  });

  it("mirrors Cosmos DB Built-in Data Contributor: every data action, not manage", () => {
    const r = BUILT_IN_ROLES["Cosmos DB Built-in Data Contributor"];
    expect(r.id).toBe("00000000-0000-0000-0000-000000000002");
    expect([...r.actions].sort()).toEqual(ALL_ACTIONS.filter((a) => a !== "manage").sort());
    expect(r.dataActions).toEqual([
      `${P}readMetadata`,
      `${P}sqlDatabases/containers/*`,
      `${P}sqlDatabases/containers/items/*`,
    ]);
  });

  it("agrees with parseAction on the native definitions", () => {
    for (const role of Object.values(BUILT_IN_ROLES)) {
      const expanded = new Set(role.dataActions.flatMap((d) => parseAction(d) ?? []));
      expect([...expanded].sort()).toEqual([...role.actions].sort());
    }
  });
});

describe("toNativeDataActions", () => {
  it("dedupes (patch and replace share items/replace) and reports manage as unexpressible", () => {
    expect(toNativeDataActions(["replace", "patch", "read", "manage", "manage"])).toEqual({
      dataActions: [`${P}sqlDatabases/containers/items/replace`, `${P}sqlDatabases/containers/items/read`],
      unexpressible: ["manage"],
    });
    expect(toNativeDataActions([])).toEqual({ dataActions: [], unexpressible: [] });
  });
});
