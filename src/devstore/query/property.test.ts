import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Json, type JsonObject, prepareQuery } from "./index.js";
import { TopK } from "./topk.js";
import { orderCompare } from "./values.js";

const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double({ min: -10, max: 10, noNaN: true }),
  fc.constantFrom("", "a", "B", "b", "ab"),
  fc.boolean(),
  fc.constant(null),
);
const maybe: fc.Arbitrary<Json | undefined> = fc.oneof(
  { weight: 5, arbitrary: scalar },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom("k", "l"), scalar, { maxKeys: 2 }) },
);
const docs = fc
  .array(fc.record({ x: maybe, y: maybe, tags: fc.array(scalar, { maxLength: 3 }) }), { maxLength: 40 })
  .map((rs) =>
    rs.map((r, i) => {
      const d: JsonObject = { id: String(i), tags: r.tags };
      if (r.x !== undefined) d.x = r.x;
      if (r.y !== undefined) d.y = r.y;
      return d;
    }),
  );
const source = (ds: JsonObject[]) => ds.map((doc, i) => ({ doc, pos: i * 3 + 1 }));
const values = (q: string, ds: JsonObject[]) => [...prepareQuery(q).run(source(ds))].map((r) => r.value);

describe("ORDER BY with TOP / OFFSET LIMIT (bounded heap) equals a full sort and slice", () => {
  const dir = fc.constantFrom("", " ASC", " DESC");
  it("single and multiple sort keys", () => {
    fc.assert(
      fc.property(docs, dir, dir, fc.boolean(), fc.nat(12), fc.nat(12), (ds, d1, d2, two, k, off) => {
        const order = `ORDER BY c.x${d1}${two ? `, c.y${d2}` : ""}`;
        const full = values(`SELECT VALUE c.id FROM c ${order}`, ds);
        expect(values(`SELECT TOP ${k} VALUE c.id FROM c ${order}`, ds)).toEqual(full.slice(0, k));
        expect(values(`SELECT VALUE c.id FROM c ${order} OFFSET ${off} LIMIT ${k}`, ds)).toEqual(
          full.slice(off, off + k),
        );
        expect(values(`SELECT TOP ${k} VALUE c.id FROM c ${order} OFFSET ${off} LIMIT ${k + 1}`, ds)).toEqual(
          full.slice(0, k).slice(off, off + k + 1),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("the full sort follows the Cosmos cross-type order and is stable", () => {
    fc.assert(
      fc.property(docs, fc.boolean(), (ds, desc) => {
        const got = values(`SELECT VALUE c.id FROM c ORDER BY c.x${desc ? " DESC" : ""}`, ds);
        const expected = ds
          .map((d, i) => ({ i, x: d.x }))
          .sort((a, b) => (desc ? orderCompare(b.x, a.x) || b.i - a.i : orderCompare(a.x, b.x) || a.i - b.i))
          .map((e) => String(e.i));
        expect(got).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe("paging with resume equals a one-shot run", () => {
  const queries = [
    "SELECT VALUE c.id FROM c",
    "SELECT c.id, c.x FROM c WHERE c.x > 0",
    "SELECT TOP 7 VALUE c.id FROM c WHERE IS_DEFINED(c.y)",
    "SELECT VALUE c.x FROM c WHERE c.x != 'a'",
    "SELECT VALUE c.id FROM c ORDER BY c.x DESC",
    "SELECT TOP 5 VALUE c.id FROM c ORDER BY c.y",
    "SELECT DISTINCT VALUE c.x FROM c",
    "SELECT VALUE c.id FROM c ORDER BY c.x OFFSET 2 LIMIT 9",
    "SELECT VALUE [c.id, t] FROM c JOIN t IN c.tags",
    "SELECT c.x, COUNT(1) AS n FROM c GROUP BY c.x",
  ];
  it("for streamable and non-streamable queries", () => {
    fc.assert(
      fc.property(docs, fc.constantFrom(...queries), fc.integer({ min: 1, max: 6 }), (ds, text, pageSize) => {
        const q = prepareQuery(text);
        const all = source(ds);
        const oneShot = [...q.run(all)].map((r) => r.value);
        const paged: Json[] = [];
        let emitted = 0;
        let lastPos = -1;
        for (let guard = 0; guard < 1000; guard++) {
          const src = q.streamable ? all.filter((d) => d.pos > lastPos) : all;
          const page: { value: Json; pos: number }[] = [];
          for (const r of q.run(src, { emitted })) {
            page.push(r);
            if (page.length === pageSize) break;
          }
          paged.push(...page.map((r) => r.value));
          emitted += page.length;
          if (page.length > 0) lastPos = page[page.length - 1].pos;
          if (page.length < pageSize) break;
        }
        expect(paged).toEqual(oneShot);
      }),
      { numRuns: 300 },
    );
  });
});

describe("three-valued logic", () => {
  const v = fc.oneof(scalar, fc.constant(undefined as Json | undefined));
  const lit = (x: Json | undefined) => (x === undefined ? "undefined" : JSON.stringify(x));
  const one = (expr: string) => {
    const r = [...prepareQuery(`SELECT VALUE ${expr}`).run([])];
    return r.length ? r[0].value : undefined;
  };
  it("obeys De Morgan and double negation (Kleene logic, non-booleans are undefined)", () => {
    fc.assert(
      fc.property(v, v, (a, b) => {
        const A = `(${lit(a)})`;
        const B = `(${lit(b)})`;
        expect(one(`NOT (${A} AND ${B})`)).toEqual(one(`(NOT ${A}) OR (NOT ${B})`));
        expect(one(`NOT (${A} OR ${B})`)).toEqual(one(`(NOT ${A}) AND (NOT ${B})`));
        expect(one(`NOT (NOT ${A})`)).toEqual(typeof a === "boolean" ? a : undefined);
        expect(one(`${A} AND ${B}`)).toEqual(one(`${B} AND ${A}`));
      }),
      { numRuns: 300 },
    );
  });

  it("comparisons are defined only between values of the same primitive type", () => {
    fc.assert(
      fc.property(v, v, (a, b) => {
        const r = one(`${lit(a)} < ${lit(b)}`);
        const same =
          a !== undefined &&
          b !== undefined &&
          typeof a === typeof b &&
          (typeof a !== "object" || (a === null && b === null));
        if (same) expect(typeof r).toBe("boolean");
        else expect(r).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe("TopK", () => {
  it("keeps the k smallest in order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -50, max: 50 })), fc.nat(20), (xs, k) => {
        const t = new TopK<number>(k, (a, b) => a - b);
        for (const x of xs) t.push(x);
        expect(t.sorted()).toEqual([...xs].sort((a, b) => a - b).slice(0, k));
        expect(t.size).toBe(Math.min(k, xs.length));
      }),
    );
  });
});
