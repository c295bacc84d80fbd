import { describe, expect, it } from "vitest";
import type { JsonObject } from "./index.js";
import { applyPatch, PatchError, type PatchOperation } from "./patch.js";

const base = (): JsonObject => ({
  id: "e379aea5",
  name: "R-410 Road Bicycle",
  price: 455.95,
  inventory: { quantity: 15 },
  used: false,
  categoryId: "road-bikes",
  tags: ["r-series"],
});

function fails(
  ops: PatchOperation[],
  code: PatchError["code"],
  message: RegExp,
  doc = base(),
  pk = ["/categoryId"],
) {
  let err: unknown;
  try {
    applyPatch(doc, ops, { partitionKeyPaths: pk });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PatchError);
  expect((err as PatchError).code).toBe(code);
  expect((err as PatchError).status).toBe(400);
  expect((err as PatchError).message).toMatch(message);
}

describe("applyPatch", () => {
  it("runs the documented example", () => {
    const doc = base();
    const out = applyPatch(
      doc,
      [
        { op: "add", path: "/color", value: "silver" },
        { op: "remove", path: "/used" },
        { op: "set", path: "/price", value: 355.45 },
        { op: "incr", path: "/inventory/quantity", value: 10 },
        { op: "add", path: "/tags/-", value: "featured-bikes" },
        { op: "move", from: "/color", path: "/inventory/color" },
      ],
      { partitionKeyPaths: ["/categoryId"] },
    );
    expect(out).toEqual({
      id: "e379aea5",
      name: "R-410 Road Bicycle",
      price: 355.45,
      inventory: { quantity: 25, color: "silver" },
      categoryId: "road-bikes",
      tags: ["r-series", "featured-bikes"],
    });
    expect(doc).toEqual(base());
  });

  it("add inserts into arrays, set updates in place, replace needs an existing element", () => {
    const d = { id: "1", a: [1, 2, 3] };
    expect(applyPatch(d, [{ op: "add", path: "/a/1", value: 9 }]).a).toEqual([1, 9, 2, 3]);
    expect(applyPatch(d, [{ op: "add", path: "/a/3", value: 9 }]).a).toEqual([1, 2, 3, 9]);
    expect(applyPatch(d, [{ op: "set", path: "/a/1", value: 9 }]).a).toEqual([1, 9, 3]);
    expect(applyPatch(d, [{ op: "replace", path: "/a/0", value: 0 }]).a).toEqual([0, 2, 3]);
    expect(applyPatch(d, [{ op: "remove", path: "/a/0" }]).a).toEqual([2, 3]);
    expect(
      applyPatch(d, [
        { op: "add", path: "/b", value: { c: [1] } },
        { op: "add", path: "/b/c/0", value: 0 },
      ]).b,
    ).toEqual({ c: [0, 1] });
  });

  it("add and set replace an existing property; set and incr create a missing one", () => {
    expect(applyPatch(base(), [{ op: "add", path: "/price", value: 1 }]).price).toBe(1);
    expect(applyPatch(base(), [{ op: "set", path: "/new", value: null }]).new).toBeNull();
    expect(applyPatch(base(), [{ op: "incr", path: "/inventory/sold", value: -2 }]).inventory).toEqual({
      quantity: 15,
      sold: -2,
    });
    expect(applyPatch(base(), [{ op: "incr", path: "/price", value: 0.05 }]).price).toBeCloseTo(456);
    expect(applyPatch(base(), [{ op: "set", path: "/a~1b", value: 1 }])["a/b"]).toBe(1);
    expect(applyPatch(base(), [{ op: "set", path: "/ttl", value: 60 }]).ttl).toBe(60);
  });

  it("writes a property named __proto__ as an own property", () => {
    const out = applyPatch({ id: "1" }, [{ op: "set", path: "/__proto__", value: { x: 1 } }]);
    expect(JSON.stringify(out)).toBe('{"id":"1","__proto__":{"x":1}}');
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });

  it("move replaces an existing target and is a no-op onto itself", () => {
    const out = applyPatch({ id: "1", a: 1, b: 2 }, [{ op: "move", from: "/a", path: "/b" }]);
    expect(out).toEqual({ id: "1", b: 1 });
    expect(applyPatch({ id: "1", a: 1 }, [{ op: "move", from: "/a", path: "/a" }])).toEqual({
      id: "1",
      a: 1,
    });
  });

  it("applies operations in order, on a copy", () => {
    const d = { id: "1", n: 1 };
    const out = applyPatch(d, [
      { op: "incr", path: "/n", value: 1 },
      { op: "incr", path: "/n", value: 1 },
      { op: "replace", path: "/n", value: 10 },
    ]);
    expect(out.n).toBe(10);
    expect(d.n).toBe(1);
  });

  it("refuses what Cosmos DB refuses, with its messages", () => {
    const eleven = Array.from(
      { length: 11 },
      (_, i): PatchOperation => ({ op: "set", path: `/p${i}`, value: i }),
    );
    fails(eleven, "ERR_PATCH_INVALID", /^The number of patch operations can't exceed 10\.$/);
    fails([], "ERR_PATCH_INVALID", /check syntax of patch specification/);
    fails([{ op: "copy" as never, path: "/a" }], "ERR_PATCH_INVALID", /'op' must be one of/);
    fails([{ op: "set", path: "price", value: 1 }], "ERR_PATCH_INVALID", /JSON pointer/);
    fails([{ op: "set", path: "/", value: 1 }], "ERR_PATCH_INVALID", /JSON pointer/);
    fails([{ op: "set", path: "/price" }], "ERR_PATCH_INVALID", /'set' needs a 'value'/);
    fails(
      [{ op: "set", path: "/_ts", value: 1 }],
      "ERR_PATCH_INVALID",
      /^Invalid patch request: Can't patch system property _ts\.$/,
    );
    fails([{ op: "remove", path: "/_etag" }], "ERR_PATCH_INVALID", /system property _etag/);
    fails([{ op: "set", path: "/id", value: "x" }], "ERR_PATCH_INVALID", /system property id/);
    fails([{ op: "move", from: "/_rid", path: "/x" }], "ERR_PATCH_INVALID", /system property _rid/);
    fails(
      [{ op: "set", path: "/categoryId", value: "x" }],
      "ERR_PATCH_INVALID",
      /partition key path '\/categoryId' can't be patched/,
    );
    fails(
      [{ op: "remove", path: "/a" }],
      "ERR_PATCH_INVALID",
      /partition key path '\/a\/b'/,
      { id: "1", a: { b: 1 } },
      ["/a/b"],
    );
    fails(
      [{ op: "set", path: "/a/b/c", value: 1 }],
      "ERR_PATCH_INVALID",
      /partition key path/,
      { id: "1", a: { b: 1 } },
      ["/a/b"],
    );
    fails(
      [{ op: "replace", path: "/missing", value: 1 }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /^For Operation\(0\): Node\(\/missing\) to be replaced is absent\.$/,
    );
    fails(
      [
        { op: "remove", path: "/used" },
        { op: "remove", path: "/used" },
      ],
      "ERR_PATCH_PATH_NOT_FOUND",
      /^For Operation\(1\): Node\(\/used\) to be removed is absent\./,
    );
    fails(
      [{ op: "add", path: "/tags/5", value: 1 }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /^For Operation\(0\): Index\(5\) to operate on is out of array bounds\.$/,
    );
    fails(
      [{ op: "remove", path: "/tags/1" }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /Index\(1\) to operate on is out of array bounds/,
    );
    fails([{ op: "replace", path: "/tags/1", value: 1 }], "ERR_PATCH_PATH_NOT_FOUND", /Index\(1\)/);
    fails([{ op: "set", path: "/tags/x", value: 1 }], "ERR_PATCH_INVALID", /'x' is not a valid array index/);
    fails(
      [{ op: "add", path: "/a/b/c", value: 1 }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /^For Operation\(0\): Add Operation can only create a child object of an existing node \(array or object\) and can't create path recursively, no path found beyond: '\/a\/b\/c'\.$/,
    );
    fails(
      [{ op: "set", path: "/name/x", value: 1 }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /Given Operation can only create a child object/,
    );
    fails(
      [{ op: "incr", path: "/name", value: 1 }],
      "ERR_PATCH_TYPE",
      /^For Operation\(0\): Node\(\/name\) isn't a number\.$/,
    );
    fails([{ op: "incr", path: "/price", value: "1" }], "ERR_PATCH_TYPE", /increment value must be a number/);
    fails(
      [{ op: "move", from: "/nope", path: "/x" }],
      "ERR_PATCH_PATH_NOT_FOUND",
      /Node\(\/nope\) to be moved is absent/,
    );
    fails(
      [{ op: "move", from: "/inventory", path: "/inventory/q2" }],
      "ERR_PATCH_INVALID",
      /can't be a child of the 'from' location/,
    );
    fails(
      [{ op: "move", path: "/x" } as PatchOperation],
      "ERR_PATCH_INVALID",
      /'from' must be a JSON pointer/,
    );
  });
});
