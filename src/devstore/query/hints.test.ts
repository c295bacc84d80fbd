import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pkPathSegments } from "./hints.js";
import { type Json, type JsonObject, type PrepareOptions, prepareQuery } from "./index.js";

const hints = (q: string, opts?: PrepareOptions) =>
  prepareQuery(q, { partitionKeyPaths: ["/pk"], ...opts }).hints;

describe("partition key hints", () => {
  it("come from equality and IN on the pk path, either side, with parameters", () => {
    expect(hints("SELECT * FROM c WHERE c.pk = 'a'").partitionKeys).toEqual([["a"]]);
    expect(hints("SELECT * FROM c WHERE 'a' = c.pk AND c.x > 1").partitionKeys).toEqual([["a"]]);
    expect(hints('SELECT * FROM c WHERE c["pk"] = 5').partitionKeys).toEqual([[5]]);
    expect(hints("SELECT * FROM c WHERE c.pk IN ('a', 'b', 'a')").partitionKeys).toEqual([["a"], ["b"]]);
    expect(
      hints("SELECT * FROM c WHERE c.pk = @p", { parameters: [{ name: "@p", value: "z" }] }).partitionKeys,
    ).toEqual([["z"]]);
    expect(hints("SELECT * FROM c WHERE c.pk = null").partitionKeys).toEqual([[null]]);
  });

  it("respect the FROM alias", () => {
    expect(hints("SELECT * FROM root r WHERE r.pk = 'a'").partitionKeys).toEqual([["a"]]);
    expect(
      hints("SELECT r.id FROM products r JOIN t IN r.tags WHERE t.pk = 'a'").partitionKeys,
    ).toBeUndefined();
    expect(
      hints("SELECT VALUE t FROM c JOIN t IN c.tags WHERE c.pk = 'a' AND t = 'x'").partitionKeys,
    ).toEqual([["a"]]);
    expect(hints("SELECT * FROM c.inner i WHERE i.pk = 'a'").partitionKeys).toBeUndefined();
    expect(hints("SELECT VALUE t FROM t IN c.tags WHERE t.pk = 'a'").partitionKeys).toBeUndefined();
  });

  it("intersect constraints, and an empty intersection means no partition", () => {
    expect(hints("SELECT * FROM c WHERE c.pk IN ('a', 'b') AND c.pk = 'b'").partitionKeys).toEqual([["b"]]);
    expect(hints("SELECT * FROM c WHERE c.pk = 'a' AND c.pk = 'b'").partitionKeys).toEqual([]);
    expect(hints("SELECT * FROM c WHERE c.pk = 1 AND c.pk = '1'").partitionKeys).toEqual([]);
  });

  it("are not given for OR, NOT IN, ranges, non-primitive values or a missing WHERE", () => {
    expect(hints("SELECT * FROM c WHERE c.pk = 'a' OR c.pk = 'b'").partitionKeys).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.pk NOT IN ('a')").partitionKeys).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.pk > 'a'").partitionKeys).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.pk = {a: 1}").partitionKeys).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE NOT (c.pk = 'a')").partitionKeys).toBeUndefined();
    expect(hints("SELECT * FROM c").partitionKeys).toBeUndefined();
    expect(hints("SELECT VALUE 1").partitionKeys).toBeUndefined();
    expect(prepareQuery("SELECT * FROM c WHERE c.pk = 'a'").hints.partitionKeys).toBeUndefined();
  });

  it("cover hierarchical keys as a prefix", () => {
    const opts = { partitionKeyPaths: ["/t", "/u/v"] };
    expect(hints("SELECT * FROM c WHERE c.t = 'x' AND c.u.v IN (1, 2)", opts).partitionKeys).toEqual([
      ["x", 1],
      ["x", 2],
    ]);
    expect(hints("SELECT * FROM c WHERE c.t = 'x'", opts).partitionKeys).toEqual([["x"]]);
    expect(hints("SELECT * FROM c WHERE c.u.v = 1", opts).partitionKeys).toBeUndefined();
  });

  it("come from a FROM subquery over the container", () => {
    expect(
      hints("SELECT VALUE COUNT(1) FROM (SELECT DISTINCT VALUE c.x FROM c WHERE c.pk = 'a')").partitionKeys,
    ).toEqual([["a"]]);
  });

  it("parse pk paths as JSON pointers", () => {
    expect(pkPathSegments("/a~1b/c~0d")).toEqual(["a/b", "c~d"]);
    expect(
      hints("SELECT * FROM c WHERE c['a/b'] = 1", { partitionKeyPaths: ["/a~1b"] }).partitionKeys,
    ).toEqual([[1]]);
  });
});

describe("id hints", () => {
  it("list string ids only", () => {
    expect(hints("SELECT * FROM c WHERE c.id = '1'").ids).toEqual(["1"]);
    expect(hints("SELECT * FROM c WHERE c.id IN ('1', '3') AND c.x = 1").ids).toEqual(["1", "3"]);
    expect(hints("SELECT * FROM c WHERE c.id IN ('1', '3') AND c.id = '3'").ids).toEqual(["3"]);
    expect(hints("SELECT * FROM c WHERE c.id = '1' AND c.id = '2'").ids).toEqual([]);
    expect(hints("SELECT * FROM c WHERE c.id IN ('1', 2)").ids).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.id > '1'").ids).toBeUndefined();
    expect(hints("SELECT * FROM c.sub s WHERE s.id = '1'").ids).toBeUndefined();
  });
});

describe("SQL hints", () => {
  it("translate simple comparisons to json_extract", () => {
    expect(hints("SELECT * FROM c WHERE c.status = 'open' AND c.qty >= 5").sql).toEqual({
      where: "json_extract(body, '$.status') = ? AND json_extract(body, '$.qty') >= ?",
      params: ["open", 5],
    });
    expect(hints("SELECT * FROM c WHERE 5 < c.a.b[2]").sql).toEqual({
      where: "json_extract(body, '$.a.b[2]') > ?",
      params: [5],
    });
    expect(hints("SELECT * FROM c WHERE c.x BETWEEN 1 AND 2").sql).toEqual({
      where: "json_extract(body, '$.x') >= ? AND json_extract(body, '$.x') <= ?",
      params: [1, 2],
    });
    expect(hints("SELECT * FROM c WHERE c.x IN ('a', 2)").sql).toEqual({
      where: "json_extract(body, '$.x') IN (?, ?)",
      params: ["a", 2],
    });
    expect(hints("SELECT * FROM c WHERE c.done = true").sql).toEqual({
      where: "json_extract(body, '$.done') = ?",
      params: [1],
    });
    expect(hints("SELECT * FROM c.sub s WHERE s.x = 1").sql).toEqual({
      where: "json_extract(body, '$.sub.x') = ?",
      params: [1],
    });
  });

  it("skip what json_extract cannot decide soundly", () => {
    expect(hints("SELECT * FROM c WHERE c.x = null").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.x > true").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.x > 'é'").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c['odd key'] = 1").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.x = {a: 1}").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.x = 1 OR c.y = 2").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE c.x = c.y").sql).toBeUndefined();
    expect(hints("SELECT * FROM c WHERE LOWER(c.x) = 'a'").sql).toBeUndefined();
  });
});

// Soundness against a real SQLite: every document the evaluator returns must pass the hints.
describe("hints are sound supersets (property)", () => {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE docs (pos INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  const scalar = fc.oneof(
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(0.5, -1.5, 1e20),
    fc.constantFrom("", "a", "b", "B", "ab", "é", "z\u{1F600}", "1", "true"),
    fc.boolean(),
    fc.constant(null),
  );
  const value: fc.Arbitrary<Json | undefined> = fc.oneof(
    { weight: 6, arbitrary: scalar },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom("x", "y"), scalar, { maxKeys: 2 }) },
  );
  const doc = fc.record({ pk: value, id: value, x: value, y: value }).map((r) => {
    const o: JsonObject = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) o[k] = v;
    return o;
  });
  const literal = scalar.map((v) => (typeof v === "string" ? JSON.stringify(v) : String(v)));
  const field = fc.constantFrom("c.pk", "c.id", "c.x", "c.y", "c['x']");
  const conjunct = fc.oneof(
    fc
      .tuple(field, fc.constantFrom("=", "!=", "<", "<=", ">", ">="), literal)
      .map(([f, op, l]) => `${f} ${op} ${l}`),
    fc.tuple(literal, fc.constantFrom("=", "<", ">="), field).map(([l, op, f]) => `${l} ${op} ${f}`),
    fc
      .tuple(field, fc.array(literal, { minLength: 1, maxLength: 3 }))
      .map(([f, ls]) => `${f} IN (${ls.join(", ")})`),
    fc.tuple(field, literal, literal).map(([f, a, b]) => `${f} BETWEEN ${a} AND ${b}`),
    fc.tuple(field, literal).map(([f, l]) => `NOT (${f} = ${l})`),
  );
  const where = fc.array(conjunct, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(" AND "));

  it("every matching document passes the partition, id and SQL hints", () => {
    fc.assert(
      fc.property(fc.array(doc, { maxLength: 12 }), where, (docs, w) => {
        const q = prepareQuery(`SELECT * FROM c WHERE ${w}`, { partitionKeyPaths: ["/pk"] });
        const matched = [...q.run(docs.map((d, pos) => ({ doc: d, pos })))].map((r) => r.value as JsonObject);
        const { partitionKeys, ids, sql } = q.hints;
        for (const m of matched) {
          if (partitionKeys)
            expect(partitionKeys.some((k) => JSON.stringify(k[0]) === JSON.stringify(m.pk))).toBe(true);
          if (ids) expect(ids).toContain(m.id);
        }
        if (sql) {
          db.exec("DELETE FROM docs");
          const ins = db.prepare("INSERT INTO docs (pos, body) VALUES (?, ?)");
          for (const [i, d] of docs.entries()) ins.run(i, JSON.stringify(d));
          const rows = db.prepare(`SELECT pos FROM docs WHERE ${sql.where}`).all(...sql.params) as {
            pos: number;
          }[];
          const passing = new Set(rows.map((r) => r.pos));
          const matchedPos = [...q.run(docs.map((d, pos) => ({ doc: d, pos })))].map((r) => r.pos);
          for (const p of matchedPos) expect(passing.has(p)).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });
});
