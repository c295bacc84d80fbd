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

  it("gives UDF code no host objects: no process, no require, nothing from the host even through eval", () => {
    const r = new UdfRunner([
      {
        id: "probe",
        body: "function () { return [typeof process, typeof require, typeof globalThis.Buffer, typeof setTimeout]; }",
      },
      { id: "escape", body: "function () { return this.constructor.constructor('return process')(); }" },
      { id: "evil", body: "function () { return eval('[typeof process, typeof require, 1 + 1]'); }" },
      { id: "mutate", body: "function (o) { o.x = 1; return o; }" },
    ]);
    expect(call(r, "probe", [])).toEqual(["undefined", "undefined", "undefined", "undefined"]);
    expect(queryError(() => call(r, "escape", [])).message).toMatch(/escape/);
    expect(call(r, "evil", [])).toEqual(["undefined", "undefined", 2]);
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

  it("never lets a thrown value leave the context (Node would read its stack outside any time limit)", () => {
    const spin = "{ get stack() { for (;;) {} }, get message() { for (;;) {} } }";
    const r = new UdfRunner([
      { id: "getter", body: `function () { throw ${spin}; }` },
      { id: "proxy", body: "function () { throw new Proxy({}, { get: function () { for (;;) {} } }); }" },
      {
        id: "json",
        body: "function () { JSON.stringify = function () { throw new Proxy({}, {}); }; return 1; }",
      },
      { id: "after", body: "function () { return 'still fine'; }" },
      // A body that breaks out of its expression and throws at definition time.
      { id: "inject", body: `function () {}); throw ${spin}; (function () {}` },
    ]);
    const started = Date.now();
    expect(queryError(() => call(r, "getter", [])).message).toMatch(/ran longer than 50 ms/);
    expect(queryError(() => call(r, "proxy", [])).message).toMatch(/ran longer than 50 ms/);
    expect(call(r, "json", [])).toBe(1); // the runner's own JSON functions were captured first
    expect(call(r, "after", [])).toBe("still fine");
    expect(r.resolve("inject")).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2_000); // bounded by the 50 ms limits, never a hang
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
