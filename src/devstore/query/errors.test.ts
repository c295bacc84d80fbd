import { describe, expect, it } from "vitest";
import { type JsonObject, type PrepareOptions, prepareCondition, prepareQuery, QueryError } from "./index.js";

const DOCS: JsonObject[] = [
  { id: "1", tags: ["a", "b"], x: 1 },
  { id: "2", tags: [], x: 2 },
];

function failure(text: string, opts?: PrepareOptions): QueryError {
  try {
    [...prepareQuery(text, opts).run(DOCS.map((doc, pos) => ({ doc, pos })))];
  } catch (e) {
    expect(e).toBeInstanceOf(QueryError);
    return e as QueryError;
  }
  throw new Error(`expected ${text} to fail`);
}

type Case = [query: string, code: QueryError["code"], message: RegExp, opts?: PrepareOptions];

describe("query errors", () => {
  const cases: Case[] = [
    // syntax
    [
      "SELECT * FORM c",
      "ERR_QUERY_SYNTAX",
      /^Syntax error, incorrect syntax near 'FORM' at line 1, column 10\.$/,
    ],
    ["SELECT *\nFROM c\nWHERE c.x = = 1", "ERR_QUERY_SYNTAX", /near '=' at line 3, column 13\./],
    [
      "SELECT c.value FROM c",
      "ERR_QUERY_SYNTAX",
      /near 'value' at line 1, column 10\. 'value' is a reserved word: write \["value"\]/,
    ],
    ["SELECT c.select FROM c", "ERR_QUERY_SYNTAX", /near 'select'/],
    ["SELECT * FROM c WHERE", "ERR_QUERY_SYNTAX", /near the end of the query at line 1, column 22/],
    ["SELECT 'abc FROM c", "ERR_QUERY_SYNTAX", /unterminated string literal at line 1, column 8/],
    ["SELECT '\\q'", "ERR_QUERY_SYNTAX", /invalid escape sequence/],
    ["SELECT # FROM c", "ERR_QUERY_SYNTAX", /unexpected character '#' at line 1, column 8/],
    ["SELECT * FROM c OFFSET 1", "ERR_QUERY_SYNTAX", /near the end of the query/],
    ["SELECT * FROM c LIMIT 1", "ERR_QUERY_SYNTAX", /near 'LIMIT'/],
    [
      "SELECT TOP 1.5 * FROM c",
      "ERR_QUERY_SYNTAX",
      /TOP count must be a non-negative integer \(line 1, column 12\)/,
    ],
    ["SELECT TOP -1 * FROM c", "ERR_QUERY_SYNTAX", /near '-'/],
    ["SELECT * FROM c ORDER BY c.x SIDEWAYS", "ERR_QUERY_SYNTAX", /near 'SIDEWAYS'/],
    ["SELECT 1 2", "ERR_QUERY_SYNTAX", /near '2'/],
    [
      "SELECT * FROM c WHERE c.ssn 'AB-123'",
      "ERR_QUERY_SYNTAX",
      /^Syntax error, incorrect syntax near a string literal at line 1, column 29\.$/,
    ],
    ["", "ERR_QUERY_SYNTAX", /query text is empty/],
    ["SELECT TRUE", "ERR_QUERY_SYNTAX", /Identifier 'TRUE' could not be resolved/],
    // binding
    [
      "SELECT x.id FROM c",
      "ERR_QUERY_SYNTAX",
      /^Identifier 'x' could not be resolved \(line 1, column 8\)\.$/,
    ],
    ["SELECT products.id FROM products p", "ERR_QUERY_SYNTAX", /Identifier 'products' could not be resolved/],
    ["SELECT id FROM c", "ERR_QUERY_SYNTAX", /Identifier 'id' could not be resolved/],
    ["SELECT * FROM c JOIN t IN other.tags", "ERR_QUERY_SYNTAX", /Identifier 'other' could not be resolved/],
    ["SELECT * FROM c JOIN c IN c.tags", "ERR_QUERY_SYNTAX", /alias 'c' is declared more than once/],
    [
      "SELECT * FROM c JOIN t IN c.tags",
      "ERR_QUERY_SYNTAX",
      /'SELECT \*' is only valid with a single input set/,
    ],
    ["SELECT *", "ERR_QUERY_SYNTAX", /'SELECT \*' is only valid with a single input set/],
    ["SELECT c.name, c.addr.name FROM c", "ERR_QUERY_SYNTAX", /property name 'name' appears more than once/],
    ["SELECT IS_DEFINED() FROM c", "ERR_QUERY_SYNTAX", /'IS_DEFINED' takes 1 argument\(s\), not 0/],
    ["SELECT CONCAT('a') FROM c", "ERR_QUERY_SYNTAX", /'CONCAT' takes at least 2 argument\(s\), not 1/],
    // aggregates
    [
      "SELECT c.id, COUNT(1) AS n FROM c",
      "ERR_QUERY_SYNTAX",
      /Property reference 'c.id' is invalid in the select list/,
    ],
    [
      "SELECT c.id, COUNT(1) AS n FROM c GROUP BY c.x",
      "ERR_QUERY_SYNTAX",
      /Property reference 'c.id' is invalid/,
    ],
    [
      "SELECT * FROM c WHERE COUNT(1) > 1",
      "ERR_QUERY_SYNTAX",
      /aggregate function 'COUNT' is not allowed in the WHERE clause/,
    ],
    ["SELECT VALUE COUNT(SUM(c.x)) FROM c", "ERR_QUERY_SYNTAX", /Aggregate functions cannot be nested/],
    ["SELECT * FROM c GROUP BY c.x", "ERR_QUERY_SYNTAX", /'SELECT \*' is not valid with GROUP BY/],
    ["SELECT COUNT(1, 2) FROM c", "ERR_QUERY_SYNTAX", /'COUNT' takes exactly one argument/],
    ["SELECT * FROM c ORDER BY COUNT(1)", "ERR_QUERY_SYNTAX", /not allowed in the ORDER BY clause/],
    // unsupported
    [
      "SELECT c.x FROM c GROUP BY c.x ORDER BY c.x",
      "ERR_QUERY_UNSUPPORTED",
      /GROUP BY together with ORDER BY/,
    ],
    [
      "SELECT * FROM c ORDER BY c.x + 1",
      "ERR_QUERY_UNSUPPORTED",
      /this ORDER BY item \(line 1, column 26\).*property paths/,
    ],
    [
      "SELECT * FROM c WHERE NOT c.x = 1",
      "ERR_QUERY_UNSUPPORTED",
      /'NOT' before an unparenthesised operator expression \(line 1, column 23\)/,
    ],
    ["SELECT * FROM c WHERE NOT c.x IN (1, 2)", "ERR_QUERY_UNSUPPORTED", /write NOT \(\.\.\.\)/],
    [
      "SELECT ST_DISTANCE(c.a, {type: 'Point', coordinates: [0, 0]}) FROM c",
      "ERR_QUERY_UNSUPPORTED",
      /^The embedded store does not support 'ST_DISTANCE' \(line 1, column 8\)\.$/,
    ],
    [
      "SELECT * FROM c WHERE FullTextContains(c.x, 'a')",
      "ERR_QUERY_UNSUPPORTED",
      /'FullTextContains' \(line 1, column 23\)/,
    ],
    [
      "SELECT TOP 3 c.id FROM c ORDER BY VectorDistance(c.v, [1, 2])",
      "ERR_QUERY_UNSUPPORTED",
      /'VectorDistance'/,
    ],
    ["SELECT DOCUMENTID(c) FROM c", "ERR_QUERY_UNSUPPORTED", /'DOCUMENTID'/],
    ["SELECT MYFUNC(c.x) FROM c", "ERR_QUERY_UNSUPPORTED", /'MYFUNC' \(line 1, column 8\).*udf\.NAME/],
    [
      "SELECT * FROM c WHERE EXISTS(SELECT VALUE 1 FROM other o)",
      "ERR_QUERY_UNSUPPORTED",
      /subquery or JOIN over 'other'.*correlated/,
    ],
    [
      "SELECT c.x, EXISTS(SELECT VALUE 1) AS e FROM c GROUP BY c.x",
      "ERR_QUERY_UNSUPPORTED",
      /a subquery in the SELECT list/,
    ],
    // parameters
    [
      "SELECT * FROM c WHERE c.x = @missing",
      "ERR_QUERY_PARAMETER",
      /^The query parameter '@missing' is not defined \(line 1, column 29\)\./,
    ],
    ["SELECT TOP @n * FROM c", "ERR_QUERY_PARAMETER", /'@n' is not defined/],
    ["SELECT * FROM c OFFSET @o LIMIT 1", "ERR_QUERY_PARAMETER", /'@o' is not defined/],
    [
      "SELECT * FROM c WHERE c.x = @X",
      "ERR_QUERY_PARAMETER",
      /'@X' is not defined/,
      { parameters: [{ name: "@x", value: 1 }] },
    ],
    // user-defined functions
    [
      "SELECT udf.nope(c.x) FROM c",
      "ERR_QUERY_UDF",
      /^Unknown user-defined function 'udf.nope' \(line 1, column 8\)/,
    ],
    [
      "SELECT udf.nope(c.x) FROM c",
      "ERR_QUERY_UDF",
      /Unknown user-defined function/,
      { udf: () => undefined },
    ],
    [
      "SELECT VALUE udf.boom(c.x) FROM c",
      "ERR_QUERY_UDF",
      /'udf.boom' failed: kaput/,
      {
        udf: () => () => {
          throw new Error("kaput");
        },
      },
    ],
    // runtime
    [
      "SELECT VALUE (SELECT VALUE t FROM t IN c.tags) FROM c",
      "ERR_QUERY_SYNTAX",
      /cardinality of a scalar subquery .* \(line 1, column 14\)/,
    ],
  ];

  it.each(cases)("%s", (query, code, message, opts) => {
    const e = failure(query, opts);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });

  it("never puts parameter values in messages", () => {
    const secret = 987654321.5;
    const e = failure("SELECT TOP @n * FROM c", { parameters: [{ name: "@n", value: secret }] });
    expect(e.code).toBe("ERR_QUERY_PARAMETER");
    expect(e.message).toMatch(/'@n' used for TOP must be a non-negative integer/);
    expect(e.message).not.toContain("987654321");
    const e2 = failure("SELECT * FROM c OFFSET 0 LIMIT @l", {
      parameters: [{ name: "@l", value: "secret-text" }],
    });
    expect(e2.message).not.toContain("secret-text");
  });

  it("re-throws a QueryError raised by a UDF unchanged", () => {
    const inner = new QueryError("ERR_QUERY_UDF", "The user-defined function 'udf.slow' ran too long.");
    const e = failure("SELECT VALUE udf.slow(c.x) FROM c", {
      udf: () => () => {
        throw inner;
      },
    });
    expect(e).toBe(inner);
  });
});

describe("prepareCondition", () => {
  const doc: JsonObject = { id: "1", stock: 7, tags: ["sale"] };
  it("evaluates a patch condition", () => {
    expect(prepareCondition("from c where c.stock > 5")(doc)).toBe(true);
    expect(prepareCondition("FROM c WHERE c.stock > 10")(doc)).toBe(false);
    expect(prepareCondition("from products p WHERE p.missing = false")(doc)).toBe(false);
    expect(
      prepareCondition("FROM c WHERE ARRAY_CONTAINS(c.tags, @t)", {
        parameters: [{ name: "@t", value: "sale" }],
      })(doc),
    ).toBe(true);
    expect(prepareCondition("FROM c JOIN t IN c.tags WHERE t = 'sale'")(doc)).toBe(true);
    expect(prepareCondition("SELECT * FROM c WHERE c.id = '1'")(doc)).toBe(true);
  });
  it("reports errors with their position", () => {
    expect(() => prepareCondition("from c wher c.stock > 5")).toThrow(/near 'c' at line 1, column 13/);
    expect(() => prepareCondition("where c.stock > 5")).toThrow(/near 'where'/);
    expect(() => prepareCondition("  ")).toThrow(QueryError);
  });
});
