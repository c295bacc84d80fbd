import { describe, expect, it } from "vitest";
import { type Json, type JsonObject, type PrepareOptions, prepareQuery } from "./index.js";
import { canonicalKey } from "./values.js";

// A small fixture with the awkward cases: missing properties, null, mixed types (Dave's age is a
// string), empty arrays, a key that needs quoting and a property named like a keyword.
const FIXTURE: JsonObject[] = [
  {
    id: "1",
    pk: "a",
    name: "Alice",
    age: 30,
    active: true,
    score: 9.5,
    tags: ["red", "blue"],
    addr: { city: "Paris", zip: "75001" },
    kids: [
      { name: "Ann", age: 3 },
      { name: "Ben", age: 5 },
    ],
  },
  {
    id: "2",
    pk: "a",
    name: "Bob",
    age: 25,
    active: false,
    score: 7,
    tags: ["blue"],
    addr: { city: "Lyon" },
    kids: [],
  },
  {
    id: "3",
    pk: "b",
    name: "Carol",
    age: 35,
    active: true,
    tags: [],
    addr: { city: "Paris", zip: "75002" },
    nick: null,
  },
  {
    id: "4",
    pk: "b",
    name: "Dave",
    age: "40",
    active: true,
    score: 8,
    tags: ["green", "red"],
    kids: [{ name: "Cid", age: 7 }],
  },
  { id: "5", pk: "c", name: "eve", score: 6.5, tags: ["red"], "odd key": 1, value: 42 },
];

function run(text: string, opts?: PrepareOptions, docs: JsonObject[] = FIXTURE): Json[] {
  return [...prepareQuery(text, opts).run(docs.map((doc, pos) => ({ doc, pos })))].map((r) => r.value);
}

const sortByKey = (xs: Json[]) => [...xs].sort((a, b) => (canonicalKey(a) < canonicalKey(b) ? -1 : 1));

type Case = [query: string, expected: Json[], opts?: PrepareOptions & { anyOrder?: boolean }];

function table(cases: Case[]) {
  it.each(cases)("%s", (query, expected, opts) => {
    const got = run(query, opts);
    if (opts?.anyOrder) expect(sortByKey(got)).toEqual(sortByKey(expected));
    else expect(got).toEqual(expected);
  });
}

describe("SELECT", () => {
  table([
    ['SELECT * FROM c WHERE c.id = "1"', [FIXTURE[0]]],
    ["SELECT c.name FROM c WHERE c.pk = 'a'", [{ name: "Alice" }, { name: "Bob" }]],
    [
      "SELECT c.name AS n, c.addr.city FROM c WHERE c.pk = 'a'",
      [
        { n: "Alice", city: "Paris" },
        { n: "Bob", city: "Lyon" },
      ],
    ],
    ["SELECT c.name n FROM c WHERE c.id = '2'", [{ n: "Bob" }]],
    ["SELECT c.age + 1, c.name, c.tags[0] FROM c WHERE c.id = '1'", [{ $1: 31, name: "Alice", $2: "red" }]],
    ["SELECT c FROM c WHERE c.id = '2'", [{ c: FIXTURE[1] }]],
    ["SELECT VALUE c.name FROM c", ["Alice", "Bob", "Carol", "Dave", "eve"]],
    ["SELECT VALUE c.score FROM c", [9.5, 7, 8, 6.5]],
    ["SELECT c.nick FROM c WHERE c.pk = 'b'", [{ nick: null }, {}]],
    [
      "SELECT VALUE {n: c.name, \"city\": c.addr.city} FROM c WHERE c.id IN ('1', '5')",
      [{ n: "Alice", city: "Paris" }, { n: "eve" }],
    ],
    ["SELECT VALUE [c.name, c.score] FROM c WHERE c.id IN ('3', '4')", [["Carol"], ["Dave", 8]]],
    ['SELECT VALUE c["odd key"] FROM c', [1]],
    ['SELECT VALUE c["value"] FROM c', [42]],
    ["SELECT VALUE c.tags[0] FROM c", ["red", "blue", "green", "red"]],
    ["SELECT VALUE c.kids[1].name FROM c", ["Ben"]],
    ["SELECT DISTINCT VALUE c.pk FROM c", ["a", "b", "c"]],
    ["SELECT DISTINCT c.addr.city FROM c", [{ city: "Paris" }, { city: "Lyon" }, {}]],
    ["SELECT DISTINCT TOP 2 VALUE c.pk FROM c", ["a", "b"]],
    ["SELECT TOP 2 VALUE c.id FROM c", ["1", "2"]],
    ["SELECT TOP @n VALUE c.id FROM c", ["1", "2", "3"], { parameters: [{ name: "@n", value: 3 }] }],
    ["SELECT TOP 0 VALUE c.id FROM c", []],
    // Docs examples (Azure-Samples/cosmos-db-nosql-query-samples: select, select-json, select-value*).
    ['SELECT "Adventure", "Works"', [{ $1: "Adventure", $2: "Works" }]],
    [
      'SELECT { department: "Sales", team: "Field sales" }',
      [{ $1: { department: "Sales", team: "Field sales" } }],
    ],
    [
      'SELECT VALUE { department: "Sales", team: "Field sales" }',
      [{ department: "Sales", team: "Field sales" }],
    ],
    ['SELECT VALUE "Sales"', ["Sales"]],
    ["SELECT VALUE ((2 + 11 % 7) - 2) / 2", [2]],
    [
      'SELECT ("Redmond" = "WA") AS isCitySameAsState, ("WA" = "WA") AS isStateSameAsState',
      [{ isCitySameAsState: false, isStateSameAsState: true }],
    ],
    ["SELECT VALUE undefined", []],
    ["SELECT undefined", [{}]],
    ["select value c.id from c where c.id = '1' and c.pk = 'a'", ["1"]],
    ["SELECT VALUE c.id -- a comment\nFROM c /* block */ WHERE c.id = '1'", ["1"]],
    ["SELECT VALUE 'it\\'s' || \"\\\"q\\\"\" || '\\u0041' || '\\n'", ['it\'s"q"A\n']],
    ["SELECT VALUE [0x1F, 1e3, .5, -2.5E-1]", [[31, 1000, 0.5, -0.25]]],
    ["SELECT VALUE [IS_FINITE_NUMBER(Infinity), IS_NUMBER(NaN)]", [[false, true]]],
  ]);
});

describe("FROM and JOIN", () => {
  table([
    ["SELECT * FROM root r WHERE r.id = '2'", [FIXTURE[1]]],
    ["SELECT c.id FROM products AS c WHERE c.id = '2'", [{ id: "2" }]],
    [
      "SELECT * FROM c.addr a WHERE a.city = 'Paris'",
      [
        { city: "Paris", zip: "75001" },
        { city: "Paris", zip: "75002" },
      ],
    ],
    ["SELECT VALUE addr.city FROM c.addr", ["Paris", "Lyon", "Paris"]],
    [
      'SELECT VALUE k FROM c["kids"][0] k',
      [
        { name: "Ann", age: 3 },
        { name: "Cid", age: 7 },
      ],
    ],
    ["SELECT VALUE t FROM t IN c.tags", ["red", "blue", "blue", "green", "red", "red"]],
    [
      "SELECT c.id, t AS tag FROM c JOIN t IN c.tags WHERE t = 'red'",
      [
        { id: "1", tag: "red" },
        { id: "4", tag: "red" },
        { id: "5", tag: "red" },
      ],
    ],
    [
      "SELECT VALUE [t, k.name] FROM c JOIN t IN c.tags JOIN k IN c.kids",
      [
        ["red", "Ann"],
        ["red", "Ben"],
        ["blue", "Ann"],
        ["blue", "Ben"],
        ["green", "Cid"],
        ["red", "Cid"],
      ],
    ],
    ["SELECT VALUE c.id FROM c JOIN k IN c.kids", ["1", "1", "4"]],
    ["SELECT VALUE a.zip FROM c JOIN a IN c.addr", []],
    ["SELECT VALUE c.id FROM c JOIN (SELECT VALUE k FROM k IN c.kids WHERE k.age > 4) big", ["1", "4"]],
    [
      "SELECT VALUE big.name FROM c JOIN (SELECT VALUE k FROM k IN c.kids WHERE k.age > 4) AS big",
      ["Ben", "Cid"],
    ],
    [
      "SELECT VALUE m.n FROM c JOIN m IN (SELECT VALUE [{k: 'a', n: 1}, {k: 'b', n: 2}]) WHERE c.pk = m.k",
      [1, 1, 2, 2],
    ],
    ["SELECT VALUE COUNT(1) FROM (SELECT DISTINCT VALUE c.pk FROM c)", [3]],
    ["SELECT VALUE x FROM (SELECT VALUE c.name FROM c WHERE c.pk = 'a') x", ["Alice", "Bob"]],
  ]);
});

describe("WHERE and operators", () => {
  const ids = (where: string, expected: string[], opts?: PrepareOptions): Case => [
    `SELECT VALUE c.id FROM c WHERE ${where}`,
    expected,
    opts,
  ];
  table([
    ids("c.age > 26", ["1", "3"]),
    ids('c.age >= "3"', ["4"]),
    ids("c.name != 'Bob'", ["1", "3", "4", "5"]),
    ids("c.name <> 'Bob'", ["1", "3", "4", "5"]),
    ids("c.age != 30", ["2", "3"]),
    ids("c.score > 7 OR c.age < 30", ["1", "2", "4"]),
    ids("NOT (c.score > 7)", ["2", "5"]),
    ids("NOT c.active", ["2"]),
    ids("c.active", ["1", "3", "4"]),
    ids("c.active = true AND c.pk = 'b'", ["3", "4"]),
    ids("c.name IN ('Alice', 'eve', 5)", ["1", "5"]),
    ids("c.age NOT IN (30, 25)", ["3", "4"]),
    ids("c.age BETWEEN 25 AND 30", ["1", "2"]),
    ids("c.age NOT BETWEEN 25 AND 30", ["3"]),
    ids("c.name BETWEEN 'B' AND 'D'", ["2", "3"]),
    ids("c.age BETWEEN 25 AND 30 AND c.pk = 'a'", ["1", "2"]),
    ids("c.name LIKE 'A%'", ["1"]),
    ids("c.name LIKE '%o%'", ["2", "3"]),
    ids("c.name LIKE '_ob'", ["2"]),
    ids("c.name LIKE '[A-C]%'", ["1", "2", "3"]),
    ids("c.name LIKE '[^A-C]%'", ["4", "5"]),
    ids("c.name NOT LIKE '%a%'", ["1", "2", "5"]),
    ids("c.addr = {city: 'Lyon'}", ["2"]),
    ids("c.addr = {zip: '75001', city: 'Paris'}", ["1"]),
    ids("c.tags = ['blue']", ["2"]),
    ids("c.nick = null", ["3"]),
    ids("c.pk = @pk AND c.age > @min", ["1"], {
      parameters: [
        { name: "@pk", value: "a" },
        { name: "@min", value: 26 },
      ],
    }),
    ids("c.pk IN (@a, @b)", ["3", "4", "5"], {
      parameters: [
        { name: "@a", value: "b" },
        { name: "@b", value: "c" },
      ],
    }),
    ids("c.age > 20 = true", ["1", "2", "3"]),
    ids("(c.age ?? 0) < 30 AND IS_DEFINED(c.score)", ["2", "5"]),
    ids("c.kids[0].age > 4", ["4"]),
    ids("c[@field] = 'Alice'", ["1"], { parameters: [{ name: "@field", value: "name" }] }),
    ids("c.age * 2 = c.age + c.age", ["1", "2", "3"]),
    ids("ARRAY_CONTAINS(c.tags, 'red')", ["1", "4", "5"]),
    ids("ARRAY_CONTAINS(c.kids, {name: 'Ben'}, true)", ["1"]),
    ids("ARRAY_CONTAINS(c.kids, {name: 'Ben'})", []),
    ids("CONTAINS(c.name, 'E', true)", ["1", "4", "5"]),
    ids("STARTSWITH(c.name, 'b', true) OR ENDSWITH(c.name, 've')", ["2", "4", "5"]),
    ids("IS_DEFINED(c.score)", ["1", "2", "4", "5"]),
    ids("NOT IS_DEFINED(c.score)", ["3"]),
    ids("IS_STRING(c.age)", ["4"]),
    ids("NOT IS_DEFINED(c.nick) OR c.nick = null", ["1", "2", "3", "4", "5"]),
    ids("true", ["1", "2", "3", "4", "5"]),
    ids("1", []),
    ids("udf.isAdult(c.age)", ["1", "2", "3"], {
      udf: (n) => (n === "isAdult" ? ([a]) => typeof a === "number" && a >= 18 : undefined),
    }),
  ]);

  table([
    ["SELECT VALUE c.score ?? -1 FROM c", [9.5, 7, -1, 8, 6.5]],
    ["SELECT VALUE c.nick ?? 'x' FROM c WHERE c.id = '3'", [null]],
    ["SELECT VALUE c.active ? 'yes' : 'no' FROM c", ["yes", "no", "yes", "yes", "no"]],
    ["SELECT VALUE c.active ? 1 : c.score > 7 ? 2 : 3 FROM c", [1, 3, 1, 1, 3]],
    [
      "SELECT VALUE [c.age * 2, c.age / 2, c.age % 7, c.age - 5, -c.age, +c.age] FROM c WHERE c.id = '1'",
      [[60, 15, 2, 25, -30, 30]],
    ],
    ["SELECT VALUE c.age + 1 FROM c WHERE c.pk = 'b'", [36]],
    ["SELECT VALUE c.name || '!' FROM c WHERE c.pk = 'a'", ["Alice!", "Bob!"]],
    ["SELECT VALUE c.age || 'x' FROM c WHERE c.id = '1'", []],
    ["SELECT VALUE [5 & 3, 5 | 3, 5 ^ 3, ~5, 1 + 2 * 3, (1 + 2) * 3, 7 - 2 - 1]", [[1, 7, 6, -6, 7, 9, 4]]],
    ["SELECT VALUE 1 / 0", [Number.POSITIVE_INFINITY]],
    [
      "SELECT VALUE ['20% off' LIKE '%20^%%' ESCAPE '^', '20 off' LIKE '%20^%%' ESCAPE '^', '20-30%' LIKE '20-30[%]', '_n' LIKE '[_]n', 'an' LIKE '[_]n', 'a\nb' LIKE 'a%b', 5 LIKE '5']",
      [[true, false, true, true, false, true]],
    ],
    [
      "SELECT VALUE [1 = 1, 1 = '1', null = null, [1, 2] = [1, 2], {a: 1, b: 2} = {b: 2, a: 1}, 1 < 'a', null < null, false < true]",
      [[true, true, true, true, false, true]],
    ],
    [
      "SELECT VALUE [true AND undefined, false AND undefined, true OR undefined, false OR undefined, NOT undefined]",
      [[false, true]],
    ],
    ["SELECT VALUE @obj.x FROM c WHERE c.id = '1'", [5], { parameters: [{ name: "@obj", value: { x: 5 } }] }],
    [
      "SELECT VALUE udf.double(c.age) FROM c",
      [60, 50, 70],
      {
        udf:
          () =>
          ([a]) =>
            typeof a === "number" ? a * 2 : undefined,
      },
    ],
  ]);
});

describe("subqueries", () => {
  table([
    ["SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE k FROM k IN c.kids WHERE k.age > 4)", ["1", "4"]],
    [
      "SELECT VALUE c.id FROM c WHERE NOT EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t = 'red')",
      ["2", "3"],
    ],
    [
      "SELECT c.id, ARRAY(SELECT VALUE k.name FROM k IN c.kids) AS names FROM c WHERE c.pk = 'a'",
      [
        { id: "1", names: ["Ann", "Ben"] },
        { id: "2", names: [] },
      ],
    ],
    [
      "SELECT c.id, (SELECT VALUE COUNT(1) FROM k IN c.kids) AS n FROM c WHERE c.pk != 'c'",
      [
        { id: "1", n: 2 },
        { id: "2", n: 0 },
        { id: "3", n: 0 },
        { id: "4", n: 1 },
      ],
    ],
    [
      "SELECT c.id, (SELECT VALUE Concat('ID-', c.id)) AS internalId FROM c WHERE c.id = '1'",
      [{ id: "1", internalId: "ID-1" }],
    ],
    ["SELECT EXISTS (SELECT VALUE undefined) AS a, EXISTS (SELECT undefined) AS b", [{ a: false, b: true }]],
    ["SELECT (SELECT VALUE 1) AS a, (SELECT VALUE 2) AS b", [{ a: 1, b: 2 }]],
    [
      "SELECT VALUE c.id FROM c WHERE (SELECT VALUE COUNT(1) FROM k IN c.kids WHERE k.age > 2) >= 1",
      ["1", "4"],
    ],
    [
      "SELECT c.id, (SELECT c.name WHERE CONTAINS(c.name, 'o')).name FROM c WHERE c.pk != 'c'",
      [{ id: "1" }, { id: "2", name: "Bob" }, { id: "3", name: "Carol" }, { id: "4" }],
    ],
    [
      "SELECT c.id, (SELECT COUNT(1) AS n, SUM(k.age) AS total FROM k IN c.kids) AS k FROM c WHERE c.id = '1'",
      [{ id: "1", k: { n: 2, total: 8 } }],
    ],
    [
      "SELECT VALUE ARRAY(SELECT VALUE t FROM t IN c.tags ORDER BY t DESC) FROM c WHERE c.id = '4'",
      [["red", "green"]],
    ],
    [
      "SELECT VALUE ARRAY(SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags) FROM c WHERE c.id = '1'",
      [["red", "blue"]],
    ],
  ]);
});

describe("aggregates", () => {
  table([
    ["SELECT VALUE COUNT(1) FROM c", [5]],
    ["SELECT COUNT(c.score) AS n FROM c", [{ n: 4 }]],
    ["SELECT VALUE SUM(c.score) FROM c", [31]],
    ["SELECT VALUE AVG(c.score) FROM c", [7.75]],
    ["SELECT VALUE SUM(c.age) FROM c", []],
    ["SELECT MIN(c.age) AS lo, MAX(c.age) AS hi FROM c", [{ lo: 25, hi: "40" }]],
    ["SELECT VALUE MIN(c.name) FROM c", ["Alice"]],
    ["SELECT VALUE MAX(c.active) FROM c", [true]],
    ["SELECT VALUE MIN(c.addr) FROM c", []],
    ["SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'zzz'", [0]],
    ["SELECT VALUE MAX(c.age) FROM c WHERE c.pk = 'zzz'", []],
    ["SELECT MAX(c.age) AS m FROM c WHERE false", [{}]],
    ["SELECT VALUE AVG(c.score) FROM c WHERE false", []],
    ["SELECT VALUE SUM(c.score) FROM c WHERE false", [0]],
    ["SELECT VALUE SUM(c.score) / COUNT(c.score) FROM c", [7.75]],
    [
      "SELECT VALUE { countScalar: COUNT(1), countExpression: COUNT(2 + 3) }",
      [{ countScalar: 1, countExpression: 1 }],
    ],
    ["SELECT COUNT(1) AS n, 'x' AS k FROM c", [{ n: 5, k: "x" }]],
    ["SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags", [6]],
    ["SELECT DISTINCT VALUE COUNT(1) FROM c", [5]],
  ]);
});

describe("GROUP BY", () => {
  const any = { anyOrder: true };
  table([
    [
      "SELECT c.pk, COUNT(1) AS n FROM c GROUP BY c.pk",
      [
        { pk: "a", n: 2 },
        { pk: "b", n: 2 },
        { pk: "c", n: 1 },
      ],
      any,
    ],
    [
      "SELECT c.addr.city AS city, COUNT(1) AS n FROM c GROUP BY c.addr.city",
      [{ city: "Paris", n: 2 }, { city: "Lyon", n: 1 }, { n: 2 }],
      any,
    ],
    ["SELECT VALUE c.pk FROM c GROUP BY c.pk", ["a", "b", "c"], any],
    [
      "SELECT c.pk, c.active, COUNT(1) AS n FROM c GROUP BY c.pk, c.active",
      [
        { pk: "a", active: true, n: 1 },
        { pk: "a", active: false, n: 1 },
        { pk: "b", active: true, n: 2 },
        { pk: "c", n: 1 },
      ],
      any,
    ],
    [
      "SELECT c.pk AS p, SUM(c.score) AS total, AVG(c.score) AS mean FROM c GROUP BY c.pk",
      [
        { p: "a", total: 16.5, mean: 8.25 },
        { p: "b", total: 8, mean: 8 },
        { p: "c", total: 6.5, mean: 6.5 },
      ],
      any,
    ],
    [
      "SELECT LOWER(c.addr.city) AS city, COUNT(1) AS n FROM c WHERE IS_DEFINED(c.addr) GROUP BY LOWER(c.addr.city)",
      [
        { city: "paris", n: 2 },
        { city: "lyon", n: 1 },
      ],
      any,
    ],
    [
      "SELECT VALUE {pk: c.pk, n: COUNT(1), first: MIN(c.name)} FROM c GROUP BY c.pk",
      [
        { pk: "a", n: 2, first: "Alice" },
        { pk: "b", n: 2, first: "Carol" },
        { pk: "c", n: 1, first: "eve" },
      ],
      any,
    ],
    [
      "SELECT t AS tag, COUNT(1) AS n FROM c JOIN t IN c.tags GROUP BY t",
      [
        { tag: "red", n: 3 },
        { tag: "blue", n: 2 },
        { tag: "green", n: 1 },
      ],
      any,
    ],
    ["SELECT c.pk FROM c WHERE c.pk = 'none' GROUP BY c.pk", []],
    ["SELECT c.pk, COUNT(1) AS n FROM c GROUP BY c.pk OFFSET 1 LIMIT 1", [{ pk: "b", n: 2 }]],
  ]);
});

describe("ORDER BY, TOP, OFFSET LIMIT", () => {
  table([
    ["SELECT VALUE c.name FROM c ORDER BY c.name", ["Alice", "Bob", "Carol", "Dave", "eve"]],
    ["SELECT VALUE c.name FROM c ORDER BY c.name DESC", ["eve", "Dave", "Carol", "Bob", "Alice"]],
    // Cross-type order: undefined < null < false < true < numbers < strings < arrays < objects.
    ["SELECT VALUE c.id FROM c ORDER BY c.age", ["5", "2", "1", "3", "4"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.age DESC", ["4", "3", "1", "2", "5"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.active", ["5", "2", "1", "3", "4"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.nick", ["1", "2", "4", "5", "3"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.pk DESC, c.name ASC", ["5", "3", "4", "1", "2"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.pk ASC, c.name DESC", ["2", "1", "4", "3", "5"]],
    // Ties keep source order; with DESC first they come in reverse source order (reverse index scan).
    ["SELECT VALUE c.id FROM c ORDER BY c.pk", ["1", "2", "3", "4", "5"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.pk DESC", ["5", "4", "3", "2", "1"]],
    ["SELECT TOP 2 VALUE c.id FROM c ORDER BY c.score DESC", ["1", "4"]],
    ["SELECT TOP 1 VALUE c.id FROM c ORDER BY c.score", ["3"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.score OFFSET 1 LIMIT 2", ["5", "2"]],
    ["SELECT VALUE c.id FROM c ORDER BY c.score OFFSET 10 LIMIT 2", []],
    ["SELECT VALUE c.id FROM c ORDER BY c.score OFFSET 0 LIMIT 0", []],
    ["SELECT VALUE c.id FROM c OFFSET 3 LIMIT 10", ["4", "5"]],
    [
      "SELECT VALUE c.id FROM c OFFSET @o LIMIT @l",
      ["2", "3"],
      {
        parameters: [
          { name: "@o", value: 1 },
          { name: "@l", value: 2 },
        ],
      },
    ],
    ["SELECT DISTINCT VALUE c.pk FROM c ORDER BY c.pk DESC", ["c", "b", "a"]],
    ["SELECT VALUE k.name FROM c JOIN k IN c.kids ORDER BY k.age DESC", ["Cid", "Ben", "Ann"]],
    [
      "SELECT c.name FROM c ORDER BY c.tags[0]",
      [{ name: "Carol" }, { name: "Bob" }, { name: "Dave" }, { name: "Alice" }, { name: "eve" }],
    ],
    ["SELECT VALUE c.id FROM c ORDER BY c.addr", ["4", "5", "2", "1", "3"]],
  ]);
});

describe("documented examples with their own data", () => {
  // Seeds and results from Azure-Samples/cosmos-db-nosql-query-samples (validated against the service).
  const employees: JsonObject[] = [
    {
      id: "3548979698",
      name: "Jordan Mitchell",
      capabilities: { softwareDevelopment: "python", mediaTrained: true },
      team: "Cloud software engineering",
    },
    {
      id: "4228924547",
      name: "Mikaela Lee",
      capabilities: { softwareDevelopment: "javascript", mediaTrained: false },
      team: "Cloud software engineering",
    },
    {
      id: "2941063066",
      name: "Graham Barnes",
      capabilities: { softwareDevelopment: "c-sharp", mediaTrained: true },
      team: "Cloud software engineering",
    },
    {
      id: "9318573296",
      name: "Hayden Cook",
      capabilities: { softwareDevelopment: "javascript", mediaTrained: true },
      team: "Cloud software engineering",
    },
    {
      id: "3601062997",
      name: "Morgan Connors",
      capabilities: { mediaTrained: true },
      team: "Cloud software engineering",
    },
    {
      id: "7074932233",
      name: "Devon Torres",
      capabilities: { softwareDevelopment: "python", mediaTrained: false },
      team: "Cloud software engineering",
    },
    {
      id: "3798545532",
      name: "Sam Centrell",
      capabilities: { softwareDevelopment: "javascript", mediaTrained: true },
      team: "Cloud software engineering",
    },
  ];
  const leaders: JsonObject[] = [
    "Sawyer Miller",
    "Jennifer Wilkins",
    "Hannah Haynes",
    "Isaac Talbot",
    "Riley Johnson",
  ].map((name, i) => ({
    id: String(i),
    name,
    team: "Leadership team",
  }));

  it("GROUP BY with COUNT", () => {
    const got = run(
      'SELECT COUNT(1) AS trainedEmployees, e.capabilities.softwareDevelopment AS developmentLang FROM employees e WHERE e.team = "Cloud software engineering" GROUP BY e.capabilities.softwareDevelopment',
      undefined,
      employees,
    );
    expect(sortByKey(got)).toEqual(
      sortByKey([
        { trainedEmployees: 1 },
        { trainedEmployees: 1, developmentLang: "c-sharp" },
        { trainedEmployees: 3, developmentLang: "javascript" },
        { trainedEmployees: 2, developmentLang: "python" },
      ]),
    );
  });

  it("GROUP BY two properties", () => {
    const got = run(
      "SELECT COUNT(1) AS employeesWithThisTraining, e.capabilities.softwareDevelopment AS developmentLang, e.capabilities.mediaTrained AS mediaReady FROM employees e GROUP BY e.capabilities.softwareDevelopment, e.capabilities.mediaTrained",
      undefined,
      employees,
    );
    expect(sortByKey(got)).toEqual(
      sortByKey([
        { employeesWithThisTraining: 1, developmentLang: "python", mediaReady: true },
        { employeesWithThisTraining: 1, developmentLang: "javascript", mediaReady: false },
        { employeesWithThisTraining: 1, developmentLang: "c-sharp", mediaReady: true },
        { employeesWithThisTraining: 2, developmentLang: "javascript", mediaReady: true },
        { employeesWithThisTraining: 1, mediaReady: true },
        { employeesWithThisTraining: 1, developmentLang: "python", mediaReady: false },
      ]),
    );
  });

  it("ORDER BY with OFFSET LIMIT", () => {
    const base =
      'SELECT VALUE { name: e.name } FROM employees e WHERE e.team = "Leadership team" ORDER BY e.name';
    expect(run(base, undefined, leaders)).toEqual(
      ["Hannah Haynes", "Isaac Talbot", "Jennifer Wilkins", "Riley Johnson", "Sawyer Miller"].map((name) => ({
        name,
      })),
    );
    expect(run(`${base} OFFSET 1 LIMIT 3`, undefined, leaders)).toEqual(
      ["Isaac Talbot", "Jennifer Wilkins", "Riley Johnson"].map((name) => ({ name })),
    );
    expect(run(`${base} OFFSET 1 LIMIT 5`, undefined, leaders)).toEqual(
      ["Isaac Talbot", "Jennifer Wilkins", "Riley Johnson", "Sawyer Miller"].map((name) => ({ name })),
    );
  });

  it("COUNT, SUM, AVG, MIN, MAX over items with missing values", () => {
    const socks: JsonObject[] = [
      { id: "1", name: "Horric socks", category: "socks" },
      { id: "2", name: "Shinity socks", category: "socks" },
      { id: "3", category: "socks" },
    ];
    expect(
      run('SELECT VALUE COUNT(p.name) FROM products p WHERE p.category = "socks"', undefined, socks),
    ).toEqual([2]);
    const bags: JsonObject[] = [{ quantity: 35 }, {}, { quantity: 15 }];
    expect(run("SELECT VALUE SUM(p.quantity) FROM products p", undefined, bags)).toEqual([50]);
    const prices = [{ price: 20.28 }, { price: 5.11 }, { price: 62.21 }];
    expect(run("SELECT VALUE AVG(p.price) FROM products p", undefined, prices)[0]).toBeCloseTo(29.2, 10);
    expect(
      run("SELECT MIN(p.price) AS minPrice, MAX(p.price) AS maxPrice FROM products p", undefined, prices),
    ).toEqual([{ minPrice: 5.11, maxPrice: 62.21 }]);
  });

  it("FROM a sub-root", () => {
    const people: JsonObject[] = [
      { id: "1", employment: { weeklyHours: 40, team: "Retail support" } },
      { id: "2", employment: { team: "Retail support" } },
      { id: "3", employment: { team: "Other" } },
    ];
    expect(
      run('SELECT * FROM employees.employment e WHERE e.team = "Retail support"', undefined, people),
    ).toEqual([{ weeklyHours: 40, team: "Retail support" }, { team: "Retail support" }]);
  });

  it("ternary and IIF on prices", () => {
    const poles = [
      { name: "Stangincy trekking poles", price: 24.5, onCloseout: false, onSale: true },
      { name: "Vimero hiking poles", price: 24.5, onCloseout: false, onSale: false },
      { name: "Kramundsen trekking poles", price: 24.5, onCloseout: true, onSale: true },
    ];
    expect(
      run(
        "SELECT p.name, p.price AS subtotal, p.onCloseout ? (p.price * 0.55) : p.onSale ? (p.price * 0.85) : p.price AS total FROM products p",
        undefined,
        poles,
      ),
    ).toEqual([
      { name: "Stangincy trekking poles", subtotal: 24.5, total: 20.825 },
      { name: "Vimero hiking poles", subtotal: 24.5, total: 24.5 },
      { name: "Kramundsen trekking poles", subtotal: 24.5, total: 13.475000000000001 },
    ]);
  });
});

describe("property names that JavaScript objects inherit", () => {
  const doc = JSON.parse(
    '{"id":"1","__proto__":{"polluted":1},"tags":["a"],"n":{"constructor":5}}',
  ) as JsonObject;
  it("are read as own properties only", () => {
    expect(run('SELECT VALUE c["__proto__"].polluted FROM c', undefined, [doc])).toEqual([1]);
    expect(
      run(
        "SELECT VALUE [c.constructor, c.toString, c.tags.map, c.tags.length, c.n.constructor] FROM c",
        undefined,
        [doc],
      ),
    ).toEqual([[5]]);
    expect(run("SELECT VALUE c.hasOwnProperty FROM c", undefined, [{ id: "x" }])).toEqual([]);
  });
  it("are written as own properties", () => {
    const out = run('SELECT c["__proto__"] AS __proto__, {"__proto__": 2} AS o FROM c', undefined, [doc]);
    expect(JSON.stringify(out)).toBe('[{"__proto__":{"polluted":1},"o":{"__proto__":2}}]');
    expect(Object.getPrototypeOf(out[0])).toBe(Object.prototype);
  });
});

describe("dates with the injected clock", () => {
  const now = () => Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  table([
    ["SELECT VALUE GetCurrentDateTime()", ["2024-01-02T03:04:05.6780000Z"], { now }],
    ["SELECT VALUE GetCurrentTimestamp()", [Date.UTC(2024, 0, 2, 3, 4, 5, 678)], { now }],
    ["SELECT VALUE GetCurrentTicks()", [Date.UTC(2024, 0, 2, 3, 4, 5, 678) * 10000], { now }],
    ["SELECT VALUE GetCurrentDateTimeStatic()", ["2024-01-02T03:04:05.6780000Z"], { now }],
    ["SELECT VALUE DateTimeAdd('dd', 1, GetCurrentDateTime())", ["2024-01-03T03:04:05.6780000Z"], { now }],
    ["SELECT VALUE DateTimeDiff('hh', '2024-01-01T00:00:00Z', GetCurrentDateTime())", [27], { now }],
  ]);
});

describe("streaming and resume", () => {
  const src = FIXTURE.map((doc, pos) => ({ doc, pos: pos * 10 }));

  it("marks only 1:1 queries as streamable", () => {
    const s = (q: string) => prepareQuery(q).streamable;
    expect(s("SELECT * FROM c WHERE c.pk = 'a'")).toBe(true);
    expect(s("SELECT TOP 3 c.id FROM c")).toBe(true);
    expect(s("SELECT VALUE x.city FROM c.addr x")).toBe(true);
    expect(s("SELECT * FROM c ORDER BY c.id")).toBe(false);
    expect(s("SELECT VALUE t FROM c JOIN t IN c.tags")).toBe(false);
    expect(s("SELECT VALUE t FROM t IN c.tags")).toBe(false);
    expect(s("SELECT DISTINCT c.pk FROM c")).toBe(false);
    expect(s("SELECT VALUE COUNT(1) FROM c")).toBe(false);
    expect(s("SELECT c.pk FROM c GROUP BY c.pk")).toBe(false);
    expect(s("SELECT * FROM c OFFSET 1 LIMIT 1")).toBe(false);
    expect(s("SELECT VALUE 1")).toBe(false);
  });

  it("yields the source position of each streamed result", () => {
    const out = [...prepareQuery("SELECT VALUE c.id FROM c WHERE c.pk != 'a'").run(src)];
    expect(out).toEqual([
      { value: "3", pos: 20 },
      { value: "4", pos: 30 },
      { value: "5", pos: 40 },
    ]);
  });

  it("reduces TOP by the results already emitted when streaming", () => {
    const q = prepareQuery("SELECT TOP 3 VALUE c.id FROM c");
    const rest = src.filter((d) => d.pos > 10);
    expect([...q.run(rest, { emitted: 2 })].map((r) => r.value)).toEqual(["3"]);
    expect([...q.run(rest, { emitted: 3 })]).toEqual([]);
  });

  it("skips the emitted results of a non-streamable query and reports the last position", () => {
    const q = prepareQuery("SELECT VALUE c.id FROM c ORDER BY c.id DESC");
    expect([...q.run(src, { emitted: 2 })]).toEqual([
      { value: "3", pos: 40 },
      { value: "2", pos: 40 },
      { value: "1", pos: 40 },
    ]);
  });

  it("is lazy: a streamable query stops reading the source after TOP results", () => {
    let read = 0;
    function* counting() {
      for (const d of src) {
        read++;
        yield d;
      }
    }
    expect([...prepareQuery("SELECT TOP 2 VALUE c.id FROM c").run(counting())].map((r) => r.value)).toEqual([
      "1",
      "2",
    ]);
    expect(read).toBe(2);
  });

  it("can run the same prepared query twice, interleaved", () => {
    const q = prepareQuery(
      "SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t = 'red')",
    );
    const a = q.run(src)[Symbol.iterator]();
    const b = q.run(src)[Symbol.iterator]();
    expect(a.next().value?.value).toBe("1");
    expect(b.next().value?.value).toBe("1");
    expect(a.next().value?.value).toBe("4");
    expect(b.next().value?.value).toBe("4");
  });

  it("a query without FROM reads nothing and reports position -1", () => {
    expect([...prepareQuery("SELECT VALUE 1").run(src)]).toEqual([{ value: 1, pos: -1 }]);
  });
});
