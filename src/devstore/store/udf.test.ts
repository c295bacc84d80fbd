import { describe, expect, it } from "vitest";
import { QueryError } from "../query/index.js";
import { UdfRunner } from "./udf.js";

function call(r: UdfRunner, name: string, args: unknown[]): unknown {
  const fn = r.resolve(name);
  if (fn === undefined) throw new Error(`no udf ${name}`);
  return fn(args as never);
}

function queryError(fn: () => unknown): QueryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof QueryError) return err;
    throw err;
  }
  throw new Error("expected a QueryError");
}

describe("UdfRunner", () => {
  it("runs UDF bodies with JSON arguments and results", () => {
    const r = new UdfRunner([
      { id: "tax", body: "function (price, rate) { return price * (1 + rate); }" },
      { id: "tags", body: "function tags(doc) { return { n: doc.tags.length, first: doc.tags[0] }; }" },
      { id: "nothing", body: "function () {}" },
    ]);
    expect(call(r, "tax", [100, 0.5])).toBe(150);
    expect(call(r, "tags", [{ tags: ["a", "b"] }])).toEqual({ n: 2, first: "a" });
    expect(call(r, "nothing", [])).toBeUndefined();
    expect(r.resolve("missing")).toBeUndefined();
  });

  it("gives UDF code no host objects: no process, no require, no code generation from strings", () => {
    const r = new UdfRunner([
      {
        id: "probe",
        body: "function () { return [typeof process, typeof require, typeof globalThis.Buffer, typeof setTimeout]; }",
      },
      { id: "escape", body: "function () { return this.constructor.constructor('return process')(); }" },
      { id: "evil", body: "function () { return eval('1 + 1'); }" },
      { id: "mutate", body: "function (o) { o.x = 1; return o; }" },
    ]);
    expect(call(r, "probe", [])).toEqual(["undefined", "undefined", "undefined", "undefined"]);
    expect(queryError(() => call(r, "escape", [])).message).toMatch(/escape/);
    expect(queryError(() => call(r, "evil", [])).code).toBe("ERR_QUERY_UDF");
    // Arguments are copies: the caller's object is untouched.
    const arg = { y: 2 };
    expect(call(r, "mutate", [arg])).toEqual({ y: 2, x: 1 });
    expect(arg).toEqual({ y: 2 });
  });

  it("stops a UDF that runs too long, and reports one that throws", () => {
    const r = new UdfRunner([
      { id: "spin", body: "function () { for (;;) {} }" },
      { id: "boom", body: "function () { throw new Error('kaput'); }" },
    ]);
    expect(queryError(() => call(r, "spin", [])).message).toMatch(/longer than 50 ms/);
    expect(queryError(() => call(r, "boom", [])).message).toMatch(/kaput/);
  });

  it("treats a body that is not a function as an unknown UDF", () => {
    const r = new UdfRunner([
      { id: "broken", body: "function ( {" },
      { id: "loop", body: "(function(){ for(;;){} })()" },
    ]);
    expect(r.resolve("broken")).toBeUndefined();
    expect(r.resolve("loop")).toBeUndefined();
  });
});
