// Push-down hints for the store: sound supersets derived from the top-level conjunction of the
// WHERE clause. A row the hints exclude can never match; the evaluator re-checks everything.
import type { Expr, Query } from "./ast.js";
import { asPath } from "./compiler.js";
import { canonicalKey, type Json } from "./values.js";

export interface QueryHints {
  partitionKeys?: Json[][];
  ids?: string[];
  sql?: { where: string; params: (string | number | null)[] };
}

/** At most this many partition-key combinations are listed; beyond it the hint is dropped. */
const MAX_PK_COMBINATIONS = 1000;

type Seg = string | number;
type Constraint =
  | { k: "eq"; path: Seg[]; values: Json[] }
  | { k: "range"; path: Seg[]; op: "<" | "<=" | ">" | ">="; value: Json };

/** Parses a container partition key path ("/a/b", JSON pointer escapes) into segments. */
export function pkPathSegments(path: string): string[] {
  return path
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function conjuncts(e: Expr, out: Expr[]): Expr[] {
  if (e.k === "binary" && e.op === "AND") {
    conjuncts(e.l, out);
    conjuncts(e.r, out);
  } else out.push(e);
  return out;
}

const FLIP = { "<": ">", "<=": ">=", ">": "<", ">=": "<=" } as const;

export function computeHints(q: Query, params: Map<string, Json>, pkPaths: string[] | undefined): QueryHints {
  const first = q.from?.[0];
  if (!first) return {};
  if (first.coll.k === "sub") return first.k === "coll" ? computeHints(first.coll.q, params, pkPaths) : {};
  if (first.k !== "coll" || !q.where) return {};
  const prefix = first.coll.path;
  const alias = first.alias ?? (prefix.length === 0 ? first.coll.root : prefix[prefix.length - 1]);
  if (typeof alias !== "string") return {};

  const constant = (e: Expr): { ok: true; v: Json } | { ok: false } => {
    if (e.k === "lit" && e.v !== undefined) return { ok: true, v: e.v };
    if (e.k === "param" && params.has(e.name)) return { ok: true, v: params.get(e.name) as Json };
    return { ok: false };
  };
  const docPath = (e: Expr): Seg[] | undefined => {
    const p = asPath(e);
    if (!p || p.root !== alias) return undefined;
    return [...prefix, ...p.segs];
  };

  const cs: Constraint[] = [];
  for (const c of conjuncts(q.where, [])) {
    if (
      c.k === "binary" &&
      (c.op === "=" || c.op === "<" || c.op === "<=" || c.op === ">" || c.op === ">=")
    ) {
      let path = docPath(c.l);
      let val = constant(c.r);
      let op = c.op;
      if (!path || !val.ok) {
        path = docPath(c.r);
        val = constant(c.l);
        if (op !== "=") op = FLIP[op];
      }
      if (!path || !val.ok) continue;
      if (op === "=") cs.push({ k: "eq", path, values: [val.v] });
      else cs.push({ k: "range", path, op, value: val.v });
    } else if (c.k === "in" && !c.not) {
      const path = docPath(c.e);
      const vals = c.list.map(constant);
      if (!path || !vals.every((v) => v.ok)) continue;
      cs.push({ k: "eq", path, values: vals.map((v) => (v as { v: Json }).v) });
    } else if (c.k === "between" && !c.not) {
      const path = docPath(c.e);
      const lo = constant(c.lo);
      const hi = constant(c.hi);
      if (!path || !lo.ok || !hi.ok) continue;
      cs.push({ k: "range", path, op: ">=", value: lo.v }, { k: "range", path, op: "<=", value: hi.v });
    }
  }

  const hints: QueryHints = {};
  const samePath = (a: Seg[], b: Seg[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  /** Values the path is restricted to by all equality constraints, or undefined when unconstrained. */
  const allowed = (path: Seg[]): Json[] | undefined => {
    let set: Map<string, Json> | undefined;
    for (const c of cs) {
      if (c.k !== "eq" || !samePath(c.path, path)) continue;
      const next = new Map<string, Json>();
      for (const v of c.values) {
        const key = canonicalKey(v);
        if (!set || set.has(key)) next.set(key, v);
      }
      set = next;
    }
    return set ? [...set.values()] : undefined;
  };

  // Partition keys: the longest prefix of pk paths that are all constrained to primitive values.
  if (pkPaths && pkPaths.length > 0) {
    const sets: Json[][] = [];
    let combos = 1;
    for (const p of pkPaths) {
      const vals = allowed(pkPathSegments(p));
      if (!vals?.every((v) => v === null || typeof v !== "object")) break;
      if (vals.length > 0 && combos * vals.length > MAX_PK_COMBINATIONS) break;
      sets.push(vals);
      combos *= Math.max(1, vals.length);
      if (vals.length === 0) break;
    }
    if (sets.length > 0) {
      let out: Json[][] = [[]];
      for (const set of sets) {
        const next: Json[][] = [];
        for (const prefixVals of out) for (const v of set) next.push([...prefixVals, v]);
        out = next;
      }
      hints.partitionKeys = out;
    }
  }

  // Ids: only when every candidate is a string (the store's ids always are; anything else is left to the evaluator).
  const ids = allowed(["id"]);
  if (ids?.every((v) => typeof v === "string")) hints.ids = ids as string[];

  // SQLite filter over the stored JSON text.
  const where: string[] = [];
  const sqlParams: (string | number | null)[] = [];
  const sqlValue = (v: Json, forRange: boolean): string | number | undefined => {
    if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
    if (typeof v === "string") return forRange && !/^[\x20-\x7e]*$/.test(v) ? undefined : v;
    // json_extract yields 1/0 for true/false (and for numbers 1/0: a superset, which is fine).
    if (typeof v === "boolean" && !forRange) return v ? 1 : 0;
    return undefined;
  };
  for (const c of cs) {
    const jp = jsonPath(c.path);
    if (!jp) continue;
    const col = `json_extract(body, '${jp}')`;
    if (c.k === "eq") {
      const vals = c.values.map((v) => sqlValue(v, false));
      if (vals.length === 0) {
        where.push("0");
        continue;
      }
      if (!vals.every((v) => v !== undefined)) continue;
      if (vals.length === 1) where.push(`${col} = ?`);
      else where.push(`${col} IN (${vals.map(() => "?").join(", ")})`);
      sqlParams.push(...(vals as (string | number)[]));
    } else {
      const v = sqlValue(c.value, true);
      if (v === undefined) continue;
      where.push(`${col} ${c.op} ?`);
      sqlParams.push(v);
    }
  }
  if (where.length > 0) hints.sql = { where: where.join(" AND "), params: sqlParams };
  return hints;
}

/** "$.a.b[0]" for simple identifier keys; undefined when a key would need quoting. */
function jsonPath(path: Seg[]): string | undefined {
  if (path.length === 0) return undefined;
  let out = "$";
  for (const s of path) {
    if (typeof s === "number") out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += `.${s}`;
    else return undefined;
  }
  return out;
}
