import { describe, expect, it } from "vitest";
import type { Expr } from "./ast.js";
import { tokenize } from "./lexer.js";
import { parseQuery } from "./parser.js";

/** Renders an expression with full parentheses, to check precedence and associativity. */
function show(e: Expr): string {
  switch (e.k) {
    case "lit":
      return e.v === undefined ? "undefined" : JSON.stringify(e.v);
    case "param":
    case "ref":
      return e.name;
    case "prop":
      return `${show(e.obj)}.${e.name}`;
    case "index":
      return `${show(e.obj)}[${show(e.index)}]`;
    case "unary":
      return `(${e.op} ${show(e.e)})`;
    case "binary":
      return `(${show(e.l)} ${e.op} ${show(e.r)})`;
    case "between":
      return `(${show(e.e)} ${e.not ? "NOT " : ""}BETWEEN ${show(e.lo)} AND ${show(e.hi)})`;
    case "in":
      return `(${show(e.e)} ${e.not ? "NOT " : ""}IN ${e.list.map(show).join(",")})`;
    case "like":
      return `(${show(e.e)} ${e.not ? "NOT " : ""}LIKE ${show(e.pattern)}${e.escape ? ` ESCAPE ${e.escape}` : ""})`;
    case "cond":
      return `(${show(e.c)} ? ${show(e.t)} : ${show(e.f)})`;
    case "coalesce":
      return `(${show(e.l)} ?? ${show(e.r)})`;
    case "call":
      return `${e.udf ? "udf." : ""}${e.name}(${e.args.map(show).join(",")})`;
    default:
      return e.k;
  }
}

const where = (cond: string) => {
  const q = parseQuery(`SELECT * FROM c WHERE ${cond}`);
  return show(q.where as Expr);
};

describe("parser precedence", () => {
  it.each([
    ["a OR b AND c", "(a OR (b AND c))"],
    ["NOT a AND b", "((NOT a) AND b)"],
    ["a = 1 OR b = 2 AND c = 3", "((a = 1) OR ((b = 2) AND (c = 3)))"],
    ["1 + 2 * 3 - 4", "((1 + (2 * 3)) - 4)"],
    ["a < b = c > d", "((a < b) = (c > d))"],
    ["a & b = c", "(a & (b = c))"],
    ["a | b ^ c & d", "(a | (b ^ (c & d)))"],
    ["a || b = c", "(a || (b = c))"],
    ["a || b LIKE 'x%'", '((a || b) LIKE "x%")'],
    ["a BETWEEN 1 AND 2 AND b", "((a BETWEEN 1 AND 2) AND b)"],
    ["a NOT IN (1, 2) OR b NOT LIKE 'x' ESCAPE '!'", '((a NOT IN 1,2) OR (b NOT LIKE "x" ESCAPE !))'],
    ["a ?? b ?? c", "((a ?? b) ?? c)"],
    ["a ? b : c ? d : e", "(a ? b : (c ? d : e))"],
    ["a ?? b ? c : d", "((a ?? b) ? c : d)"],
    ["-a.b[0] * 2", "((- a.b[0]) * 2)"],
    ["-3 * 2", "(-3 * 2)"],
    ["~a = -1", "((~ a) = -1)"],
    ["c['x']['y'] = c[@p]", "(c.x.y = c[@p])"],
    ["udf.f(1) AND LEFT(a, 2) = RIGHT(b, 2)", "(udf.f(1) AND (LEFT(a,2) = RIGHT(b,2)))"],
    ["NOT (a = 1)", "(NOT (a = 1))"],
    ["NOT NOT a", "(NOT (NOT a))"],
  ])("%s", (text, expected) => {
    expect(where(text)).toBe(expected);
  });
});

describe("parser clauses", () => {
  it("reads every clause", () => {
    const q = parseQuery(
      "SELECT DISTINCT TOP 5 c.a AS x, c.b y FROM root c JOIN t IN c.tags JOIN (SELECT VALUE 1) one WHERE c.a > 1 GROUP BY c.a, c.b ORDER BY c.a DESC, c.b OFFSET @o LIMIT 10",
    );
    expect(q.distinct).toBe(true);
    expect(q.top).toMatchObject({ k: "lit", v: 5 });
    expect(q.select).toMatchObject({ k: "list", items: [{ alias: "x" }, { alias: "y" }] });
    expect(q.from?.map((s) => (s.k === "iter" ? `${s.alias} IN` : (s.alias ?? "-")))).toEqual([
      "c",
      "t IN",
      "one",
    ]);
    expect(q.groupBy).toHaveLength(2);
    expect(q.orderBy?.map((o) => o.desc)).toEqual([true, false]);
    expect(q.offset).toMatchObject({ k: "param", name: "@o" });
    expect(q.limit).toMatchObject({ k: "lit", v: 10 });
  });

  it("accepts keywords in any case but JSON literals in lower case only", () => {
    const kinds = tokenize("select Value NULL null True true udf Udf").map((t) => `${t.type}:${t.value}`);
    expect(kinds).toEqual([
      "keyword:SELECT",
      "keyword:VALUE",
      "ident:NULL",
      "keyword:null",
      "ident:True",
      "keyword:true",
      "keyword:udf",
      "ident:Udf",
      "eof:",
    ]);
  });

  it("tracks lines and columns", () => {
    const t = tokenize("SELECT\n  c.x -- note\n  FROM c");
    expect(t.map((x) => [x.text, x.line, x.col])).toEqual([
      ["SELECT", 1, 1],
      ["c", 2, 3],
      [".", 2, 4],
      ["x", 2, 5],
      ["FROM", 3, 3],
      ["c", 3, 8],
      ["", 3, 9],
    ]);
  });
});
