// Compiles the query AST once into closures: no AST walking per document. A row is an array of
// slots (one per FROM/JOIN alias, subquery aliases included); expressions are functions of it.
//
// Execution order per query level (as the Cosmos DB engine does it): FROM/JOIN rows -> WHERE ->
// ORDER BY (on rows) or GROUP BY/aggregates -> SELECT projection -> DISTINCT -> TOP -> OFFSET/LIMIT,
// dropping undefined results. ORDER BY with TOP or OFFSET/LIMIT keeps only the best k rows in a
// bounded heap; ties are broken by source order (reversed when the first sort item is DESC, as
// the service's reverse index scan does).
import type { Collection, Expr, Query, Source } from "./ast.js";
import { at, type Pos, QueryError } from "./errors.js";
import { BUILTINS, type FnContext, KNOWN_UNSUPPORTED } from "./functions.js";
import { TopK } from "./topk.js";
import {
  canonicalKey,
  getIndex,
  getMember,
  getProp,
  isUnsafeName,
  type Json,
  type JsonObject,
  orderCompare,
  setOwn,
  sqlCompare,
  sqlEquals,
  type Val,
} from "./values.js";

export type Slots = Val[];
type Fn = (s: Slots) => Val;
interface CExpr {
  f: Fn;
  /** Set when the value is known at compile time. */
  konst?: boolean;
}

export type UdfResolver = (name: string) => ((args: Json[]) => Json | undefined) | undefined;

export interface CompileOptions {
  params: Map<string, Json>;
  udf?: UdfResolver;
  fn: FnContext;
}

interface Ctx extends CompileOptions {
  nslots: number;
}

class Scope {
  readonly names = new Map<string, number>();
  constructor(readonly parent?: Scope) {}
  lookup(name: string): number | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }
}

const AGGREGATES = new Set(["COUNT", "SUM", "AVG", "MIN", "MAX"]);

type AggKind = "COUNT" | "SUM" | "AVG" | "MIN" | "MAX";
interface AggSpec {
  kind: AggKind;
  arg: Fn;
}
/** Where aggregate calls may appear: a collector (SELECT of an aggregate query) or a clause name that forbids them. */
type AggMode = { specs: AggSpec[]; out: Val[] } | string;

function syntaxError(msg: string, pos: Pos): never {
  throw new QueryError("ERR_QUERY_SYNTAX", `${msg} (${at(pos)}).`);
}
function unsupported(what: string, pos: Pos, hint = ""): never {
  throw new QueryError(
    "ERR_QUERY_UNSUPPORTED",
    `The embedded store does not support ${what} (${at(pos)}).${hint ? ` ${hint}` : ""}`,
  );
}

const konst = (v: Val): CExpr => ({ f: () => v, konst: true });

// ------------------------------------------------------------------------------------------
// Expressions
// ------------------------------------------------------------------------------------------

function stepFn(seg: string | number): (v: Val) => Val {
  if (typeof seg === "number") return (v) => getIndex(v, seg);
  if (isUnsafeName(seg) || seg in Array.prototype || /^\d+$/.test(seg)) return (v) => getProp(v, seg);
  // Arrays own only indexes and `length` (handled above), so a plain lookup is exact here.
  return (v) => (typeof v === "object" && v !== null ? (v as JsonObject)[seg] : undefined);
}

/** A getter for slot[slot].seg1.seg2... specialised for short paths. */
export function pathGetter(slot: number, segs: (string | number)[]): Fn {
  if (segs.length === 0) return (s) => s[slot];
  const safe = segs.every(
    (x) => typeof x === "string" && !isUnsafeName(x) && !(x in Array.prototype) && !/^\d+$/.test(x),
  );
  if (safe && segs.length === 1) {
    const a = segs[0] as string;
    return (s) => {
      const v = s[slot];
      return typeof v === "object" && v !== null ? (v as JsonObject)[a] : undefined;
    };
  }
  if (safe && segs.length === 2) {
    const a = segs[0] as string;
    const b = segs[1] as string;
    return (s) => {
      const v = s[slot];
      if (typeof v !== "object" || v === null) return undefined;
      const w = (v as JsonObject)[a];
      return typeof w === "object" && w !== null ? (w as JsonObject)[b] : undefined;
    };
  }
  const steps = segs.map(stepFn);
  return (s) => {
    let v = s[slot];
    for (let i = 0; i < steps.length && v !== undefined; i++) v = steps[i](v);
    return v;
  };
}

/** If e is alias.seg.seg..., returns the alias name and segments. */
export function asPath(e: Expr): { root: string; segs: (string | number)[] } | undefined {
  const segs: (string | number)[] = [];
  let cur = e;
  for (;;) {
    if (cur.k === "prop") {
      segs.unshift(cur.name);
      cur = cur.obj;
    } else if (cur.k === "index" && cur.index.k === "lit" && typeof cur.index.v === "number") {
      segs.unshift(cur.index.v);
      cur = cur.obj;
    } else if (cur.k === "ref") {
      return { root: cur.name, segs };
    } else {
      return undefined;
    }
  }
}

function likeRegex(pattern: string, escapeChar: string | undefined): RegExp {
  let out = "";
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (escapeChar !== undefined && c === escapeChar && i + 1 < chars.length) {
      out += escapeRe(chars[++i]);
      continue;
    }
    if (c === "%") out += "[\\s\\S]*";
    else if (c === "_") out += "[\\s\\S]";
    else if (c === "[") {
      const close = chars.indexOf("]", i + 2);
      if (close < 0) {
        out += "\\[";
        continue;
      }
      let body = chars.slice(i + 1, close);
      let neg = false;
      if (body[0] === "^" && body.length > 1) {
        neg = true;
        body = body.slice(1);
      }
      let cls = "";
      for (let j = 0; j < body.length; j++) {
        const b = body[j];
        if (b === "-" && j > 0 && j < body.length - 1) cls += "-";
        else cls += /[\\\]^[-]/.test(b) ? `\\${b}` : b;
      }
      out += `[${neg ? "^" : ""}${cls}]`;
      i = close;
    } else out += escapeRe(c);
  }
  return new RegExp(`^${out}$`, "u");
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function inMatcher(list: Val[]): (v: Val) => boolean {
  const strings = new Set<string>();
  const numbers = new Set<number>();
  let hasTrue = false;
  let hasFalse = false;
  let hasNull = false;
  const complex: Json[] = [];
  for (const v of list) {
    if (typeof v === "string") strings.add(v);
    else if (typeof v === "number") numbers.add(v);
    else if (v === true) hasTrue = true;
    else if (v === false) hasFalse = true;
    else if (v === null) hasNull = true;
    else if (v !== undefined) complex.push(v);
  }
  return (v) => {
    switch (typeof v) {
      case "string":
        return strings.has(v);
      case "number":
        return numbers.has(v);
      case "boolean":
        return v ? hasTrue : hasFalse;
      default:
        if (v === null) return hasNull;
        for (const c of complex) if (sqlEquals(v, c) === true) return true;
        return false;
    }
  };
}

function isAggregateCall(e: Expr): boolean {
  return e.k === "call" && !e.udf && AGGREGATES.has(e.name.toUpperCase());
}

/** Children of an expression at the same query level (subqueries are not entered). */
function children(e: Expr): Expr[] {
  switch (e.k) {
    case "prop":
      return [e.obj];
    case "index":
      return [e.obj, e.index];
    case "array":
      return e.items;
    case "object":
      return e.props.map((p) => p.value);
    case "unary":
      return [e.e];
    case "binary":
      return [e.l, e.r];
    case "between":
      return [e.e, e.lo, e.hi];
    case "in":
      return [e.e, ...e.list];
    case "like":
      return [e.e, e.pattern];
    case "cond":
      return [e.c, e.t, e.f];
    case "coalesce":
      return [e.l, e.r];
    case "call":
      return e.args;
    default:
      return [];
  }
}

function containsAggregate(e: Expr): boolean {
  return isAggregateCall(e) || children(e).some(containsAggregate);
}

function shape(e: Expr): string {
  return JSON.stringify(e, (k, v) => (k === "pos" || k === "paren" ? undefined : v));
}

function compileExpr(e: Expr, scope: Scope, ctx: Ctx, agg: AggMode): CExpr {
  const c = (x: Expr, mode: AggMode = agg) => compileExpr(x, scope, ctx, mode);
  switch (e.k) {
    case "lit":
      return konst(e.v);
    case "param": {
      if (!ctx.params.has(e.name)) {
        throw new QueryError(
          "ERR_QUERY_PARAMETER",
          `The query parameter '${e.name}' is not defined (${at(e.pos)}). Pass it in the query's parameters.`,
        );
      }
      return konst(ctx.params.get(e.name));
    }
    case "ref": {
      const slot = scope.lookup(e.name);
      if (slot !== undefined) return { f: (s) => s[slot] };
      if (e.name === "NaN") return konst(Number.NaN);
      if (e.name === "Infinity") return konst(Number.POSITIVE_INFINITY);
      return syntaxError(`Identifier '${e.name}' could not be resolved`, e.pos);
    }
    case "prop":
    case "index": {
      const p = asPath(e);
      if (p) {
        const slot = scope.lookup(p.root);
        if (slot !== undefined) return { f: pathGetter(slot, p.segs) };
      }
      const obj = c(e.obj);
      if (e.k === "prop") {
        const step = stepFn(e.name);
        return fold({ f: (s) => step(obj.f(s)) }, [obj]);
      }
      const idx = c(e.index);
      return fold({ f: (s) => getMember(obj.f(s), idx.f(s)) }, [obj, idx]);
    }
    case "array": {
      const items = e.items.map((x) => c(x));
      return fold(
        {
          f: (s) => {
            const out: Json[] = [];
            for (const it of items) {
              const v = it.f(s);
              if (v !== undefined) out.push(v);
            }
            return out;
          },
        },
        items,
      );
    }
    case "object": {
      const props = e.props.map((p) => ({ name: p.name, v: c(p.value) }));
      return fold(
        {
          f: (s) => {
            const out: JsonObject = {};
            for (const p of props) {
              const v = p.v.f(s);
              if (v !== undefined) setOwn(out, p.name, v);
            }
            return out;
          },
        },
        props.map((p) => p.v),
      );
    }
    case "unary": {
      const x = c(e.e);
      const g = x.f;
      switch (e.op) {
        case "NOT":
          return fold(
            {
              f: (s) => {
                const v = g(s);
                return typeof v === "boolean" ? !v : undefined;
              },
            },
            [x],
          );
        case "-":
          return fold(
            {
              f: (s) => {
                const v = g(s);
                return typeof v === "number" ? -v : undefined;
              },
            },
            [x],
          );
        case "+":
          return fold(
            {
              f: (s) => {
                const v = g(s);
                return typeof v === "number" ? v : undefined;
              },
            },
            [x],
          );
        case "~":
          return fold(
            {
              f: (s) => {
                const v = g(s);
                return typeof v === "number" ? ~v : undefined;
              },
            },
            [x],
          );
      }
      break;
    }
    case "binary":
      return compileBinary(e.op, c(e.l), c(e.r));
    case "between": {
      const x = c(e.e);
      const ge = compileBinary(">=", x, c(e.lo));
      const le = compileBinary("<=", x, c(e.hi));
      const both = compileBinary("AND", ge, le);
      if (!e.not) return both;
      const g = both.f;
      return fold(
        {
          f: (s) => {
            const v = g(s);
            return typeof v === "boolean" ? !v : undefined;
          },
        },
        [both],
      );
    }
    case "in": {
      const x = c(e.e);
      const list = e.list.map((y) => c(y));
      const not = e.not;
      const g = x.f;
      if (list.every((y) => y.konst)) {
        const m = inMatcher(list.map((y) => y.f([])));
        return fold(
          {
            f: (s) => {
              const v = g(s);
              return v === undefined ? undefined : m(v) !== not;
            },
          },
          [x],
        );
      }
      return {
        f: (s) => {
          const v = g(s);
          if (v === undefined) return undefined;
          for (const y of list) if (sqlEquals(v, y.f(s)) === true) return !not;
          return not;
        },
      };
    }
    case "like": {
      const x = c(e.e);
      const p = c(e.pattern);
      const g = x.f;
      const not = e.not;
      const esc = e.escape;
      if (p.konst) {
        const pv = p.f([]);
        if (typeof pv !== "string") return konst(undefined);
        const re = likeRegex(pv, esc);
        return fold(
          {
            f: (s) => {
              const v = g(s);
              return typeof v === "string" ? re.test(v) !== not : undefined;
            },
          },
          [x],
        );
      }
      let lastPattern: string | undefined;
      let lastRe: RegExp | undefined;
      return {
        f: (s) => {
          const v = g(s);
          const pv = p.f(s);
          if (typeof v !== "string" || typeof pv !== "string") return undefined;
          if (pv !== lastPattern) {
            lastPattern = pv;
            lastRe = likeRegex(pv, esc);
          }
          return (lastRe as RegExp).test(v) !== not;
        },
      };
    }
    case "cond": {
      const k = c(e.c);
      const t = c(e.t);
      const f = c(e.f);
      return fold({ f: (s) => (k.f(s) === true ? t.f(s) : f.f(s)) }, [k, t, f]);
    }
    case "coalesce": {
      const l = c(e.l);
      const r = c(e.r);
      return fold(
        {
          f: (s) => {
            const v = l.f(s);
            return v !== undefined ? v : r.f(s);
          },
        },
        [l, r],
      );
    }
    case "call":
      return compileCall(e, scope, ctx, agg);
    case "exists": {
      const q = compileSubquery(e.q, scope, ctx);
      return { f: (s) => q.evalAll(s, 1).length > 0 };
    }
    case "arrayq": {
      const q = compileSubquery(e.q, scope, ctx);
      return { f: (s) => q.evalAll(s) as Json[] };
    }
    case "subq": {
      const q = compileSubquery(e.q, scope, ctx);
      const pos = e.pos;
      return {
        f: (s) => {
          const r = q.evalAll(s, 2);
          if (r.length > 1) {
            throw new QueryError(
              "ERR_QUERY_SYNTAX",
              `The cardinality of a scalar subquery result set cannot be greater than one (${at(pos)}).`,
            );
          }
          return r[0];
        },
      };
    }
  }
  return unsupported("this expression", (e as Expr).pos);
}

/** Evaluates constant expressions once at compile time. */
function fold(x: CExpr, parts: CExpr[]): CExpr {
  if (parts.every((p) => p.konst)) {
    const v = x.f([]);
    return konst(v);
  }
  return x;
}

function compileBinary(op: string, l: CExpr, r: CExpr): CExpr {
  const a = l.f;
  const b = r.f;
  const rc = r.konst ? r.f([]) : undefined;
  let f: Fn;
  switch (op) {
    case "AND":
      f = (s) => {
        const x = a(s);
        if (x === false) return false;
        const y = b(s);
        if (y === false) return false;
        return x === true && y === true ? true : undefined;
      };
      break;
    case "OR":
      f = (s) => {
        const x = a(s);
        if (x === true) return true;
        const y = b(s);
        if (y === true) return true;
        return x === false && y === false ? false : undefined;
      };
      break;
    case "=":
      if (typeof rc === "number" || typeof rc === "string" || typeof rc === "boolean") {
        const t = typeof rc;
        f = (s) => {
          const x = a(s);
          return typeof x === t ? x === rc : undefined;
        };
      } else f = (s) => sqlEquals(a(s), b(s));
      break;
    case "!=":
      if (typeof rc === "number" || typeof rc === "string" || typeof rc === "boolean") {
        const t = typeof rc;
        f = (s) => {
          const x = a(s);
          return typeof x === t ? x !== rc : undefined;
        };
      } else
        f = (s) => {
          const v = sqlEquals(a(s), b(s));
          return v === undefined ? undefined : !v;
        };
      break;
    case "<":
    case "<=":
    case ">":
    case ">=": {
      if (typeof rc === "number" || typeof rc === "string") {
        const t = typeof rc;
        const k = rc;
        switch (op) {
          case "<":
            f = (s) => {
              const x = a(s);
              return typeof x === t ? (x as number) < (k as number) : undefined;
            };
            break;
          case "<=":
            f = (s) => {
              const x = a(s);
              return typeof x === t ? (x as number) <= (k as number) : undefined;
            };
            break;
          case ">":
            f = (s) => {
              const x = a(s);
              return typeof x === t ? (x as number) > (k as number) : undefined;
            };
            break;
          default:
            f = (s) => {
              const x = a(s);
              return typeof x === t ? (x as number) >= (k as number) : undefined;
            };
        }
      } else {
        const test =
          op === "<"
            ? (n: number) => n < 0
            : op === "<="
              ? (n: number) => n <= 0
              : op === ">"
                ? (n: number) => n > 0
                : (n: number) => n >= 0;
        f = (s) => {
          const cmp = sqlCompare(a(s), b(s));
          return cmp === undefined ? undefined : test(cmp);
        };
      }
      break;
    }
    case "+":
    case "-":
    case "*":
    case "/":
    case "%":
    case "&":
    case "|":
    case "^": {
      const opf = NUMERIC_OPS[op];
      f = (s) => {
        const x = a(s);
        const y = b(s);
        return typeof x === "number" && typeof y === "number" ? opf(x, y) : undefined;
      };
      break;
    }
    case "||":
      f = (s) => {
        const x = a(s);
        const y = b(s);
        return typeof x === "string" && typeof y === "string" ? x + y : undefined;
      };
      break;
    default:
      throw new QueryError(
        "ERR_QUERY_UNSUPPORTED",
        `The embedded store does not support the operator '${op}'.`,
      );
  }
  return fold({ f }, [l, r]);
}

const NUMERIC_OPS: Record<string, (x: number, y: number) => number> = {
  "+": (x, y) => x + y,
  "-": (x, y) => x - y,
  "*": (x, y) => x * y,
  "/": (x, y) => x / y,
  "%": (x, y) => x % y,
  "&": (x, y) => x & y,
  "|": (x, y) => x | y,
  "^": (x, y) => x ^ y,
};

function compileCall(e: Extract<Expr, { k: "call" }>, scope: Scope, ctx: Ctx, agg: AggMode): CExpr {
  const upper = e.name.toUpperCase();
  if (e.udf) {
    const impl = ctx.udf?.(e.name);
    if (!impl) {
      throw new QueryError(
        "ERR_QUERY_UDF",
        `Unknown user-defined function 'udf.${e.name}' (${at(e.pos)}). Create the function in the container before calling it.`,
      );
    }
    const args = e.args.map((a) => compileExpr(a, scope, ctx, agg));
    const name = e.name;
    return {
      f: (s) => {
        const vals: Json[] = [];
        for (const a of args) {
          const v = a.f(s);
          if (v === undefined) return undefined;
          vals.push(v);
        }
        try {
          return impl(vals);
        } catch (err) {
          if (err instanceof QueryError) throw err;
          throw new QueryError(
            "ERR_QUERY_UDF",
            `The user-defined function 'udf.${name}' failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      },
    };
  }
  if (AGGREGATES.has(upper)) {
    if (typeof agg === "string") {
      return syntaxError(`The aggregate function '${upper}' is not allowed in ${agg}`, e.pos);
    }
    if (e.args.length !== 1) syntaxError(`The function '${upper}' takes exactly one argument`, e.pos);
    const arg = compileExpr(e.args[0], scope, ctx, "the argument of another aggregate function");
    const i = agg.specs.length;
    agg.specs.push({ kind: upper as AggKind, arg: arg.f });
    const out = agg.out;
    return { f: () => out[i] };
  }
  const def = Object.hasOwn(BUILTINS, upper) ? BUILTINS[upper] : undefined;
  if (!def) {
    if (KNOWN_UNSUPPORTED.has(upper) || upper.startsWith("ST_")) return unsupported(`'${e.name}'`, e.pos);
    return unsupported(
      `'${e.name}'`,
      e.pos,
      "It is not a Cosmos DB built-in function the store knows; user-defined functions are called as udf.NAME(...).",
    );
  }
  if (e.args.length < def.min || e.args.length > def.max) {
    const n =
      def.min === def.max
        ? `${def.min}`
        : def.max === Number.POSITIVE_INFINITY
          ? `at least ${def.min}`
          : `${def.min} to ${def.max}`;
    syntaxError(`The function '${upper}' takes ${n} argument(s), not ${e.args.length}`, e.pos);
  }
  const args = e.args.map((a) => compileExpr(a, scope, ctx, agg));
  const fnctx = ctx.fn;
  const impl = def.fn;
  const strict = def.strict !== false;
  const n = args.length;
  let f: Fn;
  if (n === 1) {
    const a0 = args[0].f;
    f = strict
      ? (s) => {
          const v = a0(s);
          return v === undefined ? undefined : impl([v], fnctx);
        }
      : (s) => impl([a0(s)], fnctx);
  } else {
    f = (s) => {
      const vals: Val[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = args[i].f(s);
        if (strict && v === undefined) return undefined;
        vals[i] = v;
      }
      return impl(vals, fnctx);
    };
  }
  const r = { f };
  return def.pure === false ? r : fold(r, args);
}

// ------------------------------------------------------------------------------------------
// Aggregation
// ------------------------------------------------------------------------------------------

interface AggState {
  n: number;
  sum: number;
  best: Val;
  bad: boolean;
}

function newStates(specs: AggSpec[]): AggState[] {
  return specs.map(() => ({ n: 0, sum: 0, best: undefined, bad: false }));
}

function feed(specs: AggSpec[], states: AggState[], s: Slots): void {
  for (let i = 0; i < specs.length; i++) {
    const v = specs[i].arg(s);
    if (v === undefined) continue;
    const st = states[i];
    switch (specs[i].kind) {
      case "COUNT":
        st.n++;
        break;
      case "SUM":
      case "AVG":
        if (typeof v === "number") {
          st.sum += v;
          st.n++;
        } else st.bad = true;
        break;
      case "MIN":
      case "MAX":
        if (typeof v === "object" && v !== null) st.bad = true;
        else if (st.best === undefined) st.best = v;
        else {
          const c = orderCompare(v, st.best);
          if (specs[i].kind === "MIN" ? c < 0 : c > 0) st.best = v;
        }
        break;
    }
  }
}

function result(spec: AggSpec, st: AggState): Val {
  switch (spec.kind) {
    case "COUNT":
      return st.n;
    case "SUM":
      return st.bad ? undefined : st.sum;
    case "AVG":
      return st.bad || st.n === 0 ? undefined : st.sum / st.n;
    default:
      return st.bad ? undefined : st.best;
  }
}

// ------------------------------------------------------------------------------------------
// Queries
// ------------------------------------------------------------------------------------------

type Stage = (s: Slots) => boolean;

interface RootSpec {
  kind: "docs" | "iterDocs" | "sub" | "iterSub";
  slot: number;
  /** docs/iterDocs: the value (or array) to bind, from the document. */
  get?: (doc: Json) => Val;
  inner?: CompiledQuery;
}

interface Limits {
  top?: number;
  offset?: number;
  limit?: number;
}

export class CompiledQuery {
  /** Top-level queries: how documents enter. Undefined for subqueries and queries without FROM. */
  root?: RootSpec;
  hasFrom = false;
  where?: Fn;
  /** Builds the FROM/JOIN chain after the first source. */
  joins: ((next: Stage) => Stage)[] = [];
  /** Subqueries: the first FROM source, evaluated against the outer row. */
  first?: (next: Stage) => Stage;
  project!: Fn;
  distinct = false;
  limits: Limits = {};
  orderBy?: { f: Fn; desc: boolean }[];
  groupBy?: Fn[];
  aggregate = false;
  aggSpecs: AggSpec[] = [];
  aggOut: Val[] = [];
  streamable = false;
  private sink: Stage = () => true;
  private subChain?: Stage;

  /** Slot of the first FROM source (SELECT *). */
  firstSlot = -1;

  /** Chain of JOIN sources and WHERE ending in `sink`. */
  chain(sink: Stage): Stage {
    const where = this.where;
    let next: Stage = where ? (s) => (where(s) === true ? sink(s) : true) : sink;
    for (let i = this.joins.length - 1; i >= 0; i--) next = this.joins[i](next);
    return next;
  }

  /** Correlated execution (subqueries): all results for the outer row `s`, at most `max`. */
  evalAll(s: Slots, max = Number.POSITIVE_INFINITY): Val[] {
    if (!this.subChain) {
      const tramp: Stage = (x) => this.sink(x);
      const after = this.chain(tramp);
      this.subChain = this.first ? this.first(after) : after;
    }
    const collector = this.collector(max);
    const prevSink = this.sink;
    this.sink = collector.add;
    try {
      this.subChain(s);
    } finally {
      this.sink = prevSink;
    }
    return collector.finish();
  }

  /** Eager execution over documents (top-level queries). */
  runAll(docs: Iterable<{ doc: Json; pos: number }>, s: Slots): { values: Val[]; lastPos: number } {
    const collector = this.collector(Number.POSITIVE_INFINITY);
    let lastPos = -1;
    const root = this.root;
    if (!root) {
      if (this.hasFrom) throw new Error("query without root source");
      this.chain(collector.add)(s);
      return { values: collector.finish(), lastPos };
    }
    const next = this.chain(collector.add);
    const slot = root.slot;
    if (root.kind === "docs" || root.kind === "iterDocs") {
      const get = root.get as (doc: Json) => Val;
      const iter = root.kind === "iterDocs";
      for (const { doc, pos } of docs) {
        lastPos = pos;
        const v = get(doc);
        if (v === undefined) continue;
        if (iter) {
          if (!Array.isArray(v)) continue;
          let go = true;
          for (const el of v) {
            s[slot] = el;
            if (!next(s)) {
              go = false;
              break;
            }
          }
          if (!go) break;
        } else {
          s[slot] = v;
          if (!next(s)) break;
        }
      }
    } else {
      const inner = root.inner as CompiledQuery;
      const r = inner.runAll(docs, s);
      lastPos = r.lastPos;
      const iter = root.kind === "iterSub";
      outer: for (const v of r.values) {
        if (iter) {
          if (!Array.isArray(v)) continue;
          for (const el of v) {
            s[slot] = el;
            if (!next(s)) break outer;
          }
        } else {
          s[slot] = v;
          if (!next(s)) break;
        }
      }
    }
    return { values: collector.finish(), lastPos };
  }

  /** Collects rows into results according to the post-FROM pipeline. */
  collector(max: number): { add: Stage; finish: () => Val[] } {
    const { top, offset, limit } = this.limits;
    // How many final results can be needed at most.
    let want = max;
    if (top !== undefined) want = Math.min(want, top);
    if (limit !== undefined) want = Math.min(want, (offset ?? 0) + limit);
    const post = (values: Val[]): Val[] => {
      let out = values;
      if (top !== undefined && out.length > top) out = out.slice(0, top);
      if (offset !== undefined) out = out.slice(offset, limit === undefined ? undefined : offset + limit);
      if (out.length > max) out = out.slice(0, max);
      return out;
    };
    const project = this.project;

    if (this.aggregate) return this.aggregateCollector(post);

    if (this.orderBy) {
      const keys = this.orderBy;
      const firstDesc = keys[0].desc;
      let seq = 0;
      const cmp = (a: OrderEntry, b: OrderEntry): number => {
        for (let i = 0; i < keys.length; i++) {
          const c = orderCompare(a.keys[i], b.keys[i]);
          if (c !== 0) return keys[i].desc ? -c : c;
        }
        return firstDesc ? b.seq - a.seq : a.seq - b.seq;
      };
      const bounded = !this.distinct && want !== Number.POSITIVE_INFINITY;
      const heap = bounded ? new TopK<OrderEntry>(want, cmp) : undefined;
      const all: OrderEntry[] = [];
      return {
        add: (s) => {
          const k: Val[] = new Array(keys.length);
          for (let i = 0; i < keys.length; i++) k[i] = keys[i].f(s);
          const entry: OrderEntry = { keys: k, seq: seq++, snap: s };
          if (heap) {
            if (heap.wouldAccept(entry)) {
              entry.snap = s.slice();
              heap.push(entry);
            }
          } else {
            entry.snap = s.slice();
            all.push(entry);
          }
          return true;
        },
        finish: () => {
          const sorted = heap ? heap.sorted() : all.sort(cmp);
          let values: Val[] = [];
          for (const e of sorted) {
            const v = project(e.snap);
            if (v !== undefined) values.push(v);
          }
          if (this.distinct) values = dedupe(values);
          return post(values);
        },
      };
    }

    const values: Val[] = [];
    if (this.distinct) {
      const seen = new Set<string>();
      return {
        add: (s) => {
          const v = project(s);
          if (v === undefined) return true;
          const key = canonicalKey(v);
          if (seen.has(key)) return true;
          seen.add(key);
          values.push(v);
          return values.length < want;
        },
        finish: () => post(values),
      };
    }
    return {
      add: (s) => {
        const v = project(s);
        if (v !== undefined) values.push(v);
        return values.length < want;
      },
      finish: () => post(values),
    };
  }

  private aggregateCollector(post: (v: Val[]) => Val[]): { add: Stage; finish: () => Val[] } {
    const specs = this.aggSpecs;
    const out = this.aggOut;
    const project = this.project;
    const groupBy = this.groupBy;
    const finishGroup = (g: { states: AggState[]; snap: Slots }): Val => {
      for (let i = 0; i < specs.length; i++) out[i] = result(specs[i], g.states[i]);
      return project(g.snap);
    };
    if (!groupBy) {
      const g = { states: newStates(specs), snap: [] as Slots };
      let first = true;
      return {
        add: (s) => {
          if (first) {
            g.snap = s.slice();
            first = false;
          }
          feed(specs, g.states, s);
          return true;
        },
        finish: () => {
          const v = finishGroup(g);
          return post(v === undefined ? [] : this.distinct ? dedupe([v]) : [v]);
        },
      };
    }
    const groups = new Map<string, { states: AggState[]; snap: Slots }>();
    return {
      add: (s) => {
        let key = "";
        for (const k of groupBy) key += `${canonicalKey(k(s))}|`;
        let g = groups.get(key);
        if (!g) {
          g = { states: newStates(specs), snap: s.slice() };
          groups.set(key, g);
        }
        feed(specs, g.states, s);
        return true;
      },
      finish: () => {
        let values: Val[] = [];
        for (const g of groups.values()) {
          const v = finishGroup(g);
          if (v !== undefined) values.push(v);
        }
        if (this.distinct) values = dedupe(values);
        return post(values);
      },
    };
  }
}

interface OrderEntry {
  keys: Val[];
  seq: number;
  snap: Slots;
}

function dedupe(values: Val[]): Val[] {
  const seen = new Set<string>();
  const out: Val[] = [];
  for (const v of values) {
    const k = canonicalKey(v);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(v);
    }
  }
  return out;
}

function countValue(e: Expr, ctx: Ctx, what: string): number {
  let v: Val;
  if (e.k === "lit") v = e.v;
  else if (e.k === "param") {
    if (!ctx.params.has(e.name)) {
      throw new QueryError(
        "ERR_QUERY_PARAMETER",
        `The query parameter '${e.name}' is not defined (${at(e.pos)}). Pass it in the query's parameters.`,
      );
    }
    v = ctx.params.get(e.name);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new QueryError(
        "ERR_QUERY_PARAMETER",
        `The parameter '${e.name}' used for ${what} must be a non-negative integer (${at(e.pos)}).`,
      );
    }
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    syntaxError(`The ${what} count must be a non-negative integer`, e.pos);
  }
  return v as number;
}

function allocSlot(ctx: Ctx): number {
  return ctx.nslots++;
}

function declare(scope: Scope, name: string | undefined, slot: number, pos: Pos): void {
  if (name === undefined) return;
  if (scope.names.has(name)) syntaxError(`The alias '${name}' is declared more than once`, pos);
  scope.names.set(name, slot);
}

function implicitAlias(coll: Collection): string | undefined {
  if (coll.k !== "path") return undefined;
  if (coll.path.length === 0) return coll.root;
  const last = coll.path[coll.path.length - 1];
  return typeof last === "string" ? last : undefined;
}

/** Compiles an item-scoped source (JOIN, or FROM of a subquery) into a chain stage factory. */
function itemSource(
  src: Source,
  scope: Scope,
  ctx: Ctx,
  firstOfSubquery: boolean,
): { slot: number; stage: (next: Stage) => Stage } {
  const coll = src.coll;
  const slot = allocSlot(ctx);
  let get: Fn;
  let inner: CompiledQuery | undefined;
  if (coll.k === "path") {
    const base = scope.lookup(coll.root);
    if (base === undefined) {
      if (!firstOfSubquery) syntaxError(`Identifier '${coll.root}' could not be resolved`, coll.pos);
      return unsupported(
        `a subquery or JOIN over '${coll.root}'`,
        coll.pos,
        "Cosmos DB subqueries and JOINs are correlated: they must start from an alias declared earlier (e.g. JOIN t IN c.tags).",
      );
    }
    get = pathGetter(base, coll.path);
  } else {
    inner = compileSubquery(coll.q, scope, ctx);
    get = () => undefined;
  }
  const alias = src.k === "iter" ? src.alias : (src.alias ?? implicitAlias(coll));
  declare(scope, alias, slot, src.pos);
  const iter = src.k === "iter";
  if (inner) {
    const q = inner;
    return {
      slot,
      stage: (next) => (s) => {
        for (const v of q.evalAll(s)) {
          if (iter) {
            if (!Array.isArray(v)) continue;
            for (const el of v) {
              s[slot] = el;
              if (!next(s)) return false;
            }
          } else {
            s[slot] = v;
            if (!next(s)) return false;
          }
        }
        return true;
      },
    };
  }
  if (iter) {
    return {
      slot,
      stage: (next) => (s) => {
        const arr = get(s);
        if (!Array.isArray(arr)) return true;
        for (const el of arr) {
          s[slot] = el;
          if (!next(s)) return false;
        }
        return true;
      },
    };
  }
  return {
    slot,
    stage: (next) => (s) => {
      const v = get(s);
      if (v === undefined) return true;
      s[slot] = v;
      return next(s);
    },
  };
}

function compileSubquery(q: Query, outer: Scope, ctx: Ctx): CompiledQuery {
  return compileQueryLevel(q, new Scope(outer), ctx, false);
}

export function compileTopLevel(q: Query, opts: CompileOptions): { query: CompiledQuery; nslots: number } {
  const ctx: Ctx = { ...opts, nslots: 0 };
  const query = compileQueryLevel(q, new Scope(), ctx, true);
  return { query, nslots: ctx.nslots };
}

function compileQueryLevel(q: Query, scope: Scope, ctx: Ctx, top: boolean): CompiledQuery {
  const cq = new CompiledQuery();
  const sources = q.from ?? [];
  cq.hasFrom = sources.length > 0;

  // FROM
  if (sources.length > 0) {
    const first = sources[0];
    if (top) {
      const slot = allocSlot(ctx);
      if (first.coll.k === "path") {
        const path = first.coll.path;
        const get = pathGetter(0, path);
        const holder: Slots = [undefined];
        const docGet =
          path.length === 0
            ? (doc: Json) => doc as Val
            : (doc: Json) => {
                holder[0] = doc;
                return get(holder);
              };
        cq.root = { kind: first.k === "iter" ? "iterDocs" : "docs", slot, get: docGet };
      } else {
        const inner = compileQueryLevel(first.coll.q, new Scope(), ctx, true);
        cq.root = { kind: first.k === "iter" ? "iterSub" : "sub", slot, inner };
      }
      const alias = first.k === "iter" ? first.alias : (first.alias ?? implicitAlias(first.coll));
      declare(scope, alias, slot, first.pos);
      cq.firstSlot = slot;
    } else {
      const src = itemSource(first, scope, ctx, true);
      cq.first = src.stage;
      cq.firstSlot = src.slot;
    }
    for (let i = 1; i < sources.length; i++) cq.joins.push(itemSource(sources[i], scope, ctx, false).stage);
  }

  // WHERE
  if (q.where) cq.where = compileExpr(q.where, scope, ctx, "the WHERE clause").f;

  // GROUP BY / aggregates
  const sel = q.select;
  const selExprs = sel.k === "value" ? [sel.e] : sel.k === "list" ? sel.items.map((i) => i.e) : [];
  const hasAgg = selExprs.some(containsAggregate);
  if (q.groupBy) {
    if (sel.k === "star") syntaxError("'SELECT *' is not valid with GROUP BY", sel.pos);
    if (q.orderBy)
      unsupported(
        "GROUP BY together with ORDER BY",
        q.orderBy[0].e.pos,
        "Cosmos DB does not allow it either.",
      );
    cq.groupBy = q.groupBy.map((g) => {
      if (g.k === "exists" || g.k === "arrayq" || g.k === "subq")
        syntaxError("Subqueries are not allowed in GROUP BY", g.pos);
      return compileExpr(g, scope, ctx, "the GROUP BY clause").f;
    });
  }
  if (hasAgg || q.groupBy) {
    cq.aggregate = true;
    const groupShapes = new Set((q.groupBy ?? []).map(shape));
    for (const e of selExprs) checkAggregateProjection(e, groupShapes);
  }

  // ORDER BY
  if (q.orderBy) {
    cq.orderBy = q.orderBy.map((o) => {
      const f = compileExpr(o.e, scope, ctx, "the ORDER BY clause").f;
      if (!asPath(o.e)) {
        unsupported(
          "this ORDER BY item",
          startPos(o.e),
          "Like Cosmos DB, the store sorts by property paths only (e.g. ORDER BY c.name); sort by a computed value in your application.",
        );
      }
      return { f, desc: o.desc };
    });
  }

  // TOP / OFFSET LIMIT
  if (q.top) cq.limits.top = countValue(q.top, ctx, "TOP");
  if (q.offset) cq.limits.offset = countValue(q.offset, ctx, "OFFSET");
  if (q.limit) cq.limits.limit = countValue(q.limit, ctx, "LIMIT");

  // SELECT
  const aggMode: AggMode = cq.aggregate
    ? { specs: cq.aggSpecs, out: cq.aggOut }
    : "a SELECT without aggregation";
  if (sel.k === "star") {
    if (sources.length !== 1) syntaxError("'SELECT *' is only valid with a single input set", sel.pos);
    const slot = cq.firstSlot;
    cq.project = (s) => s[slot];
  } else if (sel.k === "value") {
    cq.project = compileExpr(sel.e, scope, ctx, aggMode).f;
  } else {
    let unnamed = 0;
    const seen = new Set<string>();
    const items = sel.items.map((it) => {
      let name = it.alias;
      if (name === undefined) {
        const p = asPath(it.e);
        if (p && it.e.k !== "index") name = p.segs.length ? (p.segs[p.segs.length - 1] as string) : p.root;
        else if (it.e.k === "prop") name = it.e.name;
        else name = `$${++unnamed}`;
      }
      if (seen.has(name))
        syntaxError(
          `The property name '${name}' appears more than once in the SELECT list; give one of them an alias with AS`,
          it.e.pos,
        );
      seen.add(name);
      return { name, f: compileExpr(it.e, scope, ctx, aggMode).f };
    });
    cq.project = (s) => {
      const o: JsonObject = {};
      for (const it of items) {
        const v = it.f(s);
        if (v !== undefined) setOwn(o, it.name, v);
      }
      return o;
    };
  }
  cq.distinct = q.distinct;
  cq.streamable =
    top &&
    cq.root?.kind === "docs" &&
    sources.length === 1 &&
    !cq.orderBy &&
    !cq.aggregate &&
    !cq.distinct &&
    cq.limits.offset === undefined;
  return cq;
}

/** Where an expression starts in the text (binary nodes carry the operator's position). */
function startPos(e: Expr): Pos {
  switch (e.k) {
    case "binary":
    case "coalesce":
      return e.paren ? e.pos : startPos(e.l);
    case "between":
    case "in":
    case "like":
      return e.paren ? e.pos : startPos(e.e);
    case "cond":
      return e.paren ? e.pos : startPos(e.c);
    case "prop":
    case "index":
      return startPos(e.obj);
    default:
      return e.pos;
  }
}

function checkAggregateProjection(e: Expr, groupShapes: Set<string>): void {
  if (isAggregateCall(e)) {
    for (const a of (e as Extract<Expr, { k: "call" }>).args) {
      if (containsAggregate(a)) syntaxError("Aggregate functions cannot be nested", a.pos);
    }
    return;
  }
  if (groupShapes.has(shape(e))) return;
  if (e.k === "exists" || e.k === "arrayq" || e.k === "subq") {
    unsupported("a subquery in the SELECT list of an aggregate or GROUP BY query", e.pos);
  }
  if (e.k === "ref" || e.k === "prop" || e.k === "index") {
    const p = asPath(e);
    const text = p ? [p.root, ...p.segs].join(".") : "expression";
    syntaxError(
      `Property reference '${text}' is invalid in the select list because it is not contained in either an aggregate function or the GROUP BY clause`,
      e.pos,
    );
  }
  for (const ch of children(e)) checkAggregateProjection(ch, groupShapes);
}
