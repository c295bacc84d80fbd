// Recursive-descent parser for the Cosmos DB NoSQL query dialect.
//
// Hand-written on purpose: no well-kept library runs Cosmos DB SQL at scale; @zeit/cosmosdb-query
// (inside @vercel/cosmosdb-server) is quadratic and misses OFFSET/LIMIT, DISTINCT, GROUP BY and
// LIKE. The grammar follows the one the Cosmos DB .NET SDK ships (sql.g4), with operator
// precedence from lowest to highest:
//   ?: and ??  <  OR  <  AND  <  NOT  <  IN / LIKE / BETWEEN  <  ||  <  |  <  ^  <  &
//   <  = !=  <  < <= > >=  <  + -  <  * / %  <  unary - + ~  <  . [ ]
// `NOT` followed by an unparenthesised binary expression (`NOT c.a = 1`) is refused as ambiguous:
// the SDK grammar binds NOT tighter than `=`, SQL users expect the opposite, and guessing could
// return a wrong result.
import type { BinaryOp, Collection, Expr, Query, Selection, Source } from "./ast.js";
import { type Pos, QueryError } from "./errors.js";
import { type Token, tokenize } from "./lexer.js";

export function parseQuery(text: string): Query {
  const p = new Parser(tokenize(text));
  const q = p.query();
  p.expectEof();
  return q;
}

/**
 * Parses a patch condition: `FROM c WHERE ...` (the SELECT is implied), or a full query.
 */
export function parseCondition(text: string): Query {
  const p = new Parser(tokenize(text));
  const q = p.conditionQuery();
  p.expectEof();
  return q;
}

const EQUALITY: Record<string, BinaryOp> = { "=": "=", "!=": "!=", "<>": "!=" };
const RELATIONAL: Record<string, BinaryOp> = { "<": "<", "<=": "<=", ">": ">", ">=": ">=" };
const ADDITIVE: Record<string, BinaryOp> = { "+": "+", "-": "-" };
const MULTIPLICATIVE: Record<string, BinaryOp> = { "*": "*", "/": "/", "%": "%" };

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.i + ahead, this.toks.length - 1)];
  }
  private next(): Token {
    const t = this.toks[this.i];
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private pos(t: Token = this.peek()): Pos {
    return { line: t.line, col: t.col };
  }
  private isKw(kw: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === "keyword" && t.value === kw;
  }
  private isPunct(p: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === "punct" && t.value === p;
  }
  private acceptKw(kw: string): boolean {
    if (this.isKw(kw)) {
      this.next();
      return true;
    }
    return false;
  }
  private acceptPunct(p: string): boolean {
    if (this.isPunct(p)) {
      this.next();
      return true;
    }
    return false;
  }
  fail(t: Token = this.peek()): never {
    if (t.type === "eof") {
      throw new QueryError(
        "ERR_QUERY_SYNTAX",
        `Syntax error, incorrect syntax near the end of the query at line ${t.line}, column ${t.col}.`,
      );
    }
    throw new QueryError(
      "ERR_QUERY_SYNTAX",
      // String literals are not echoed: they may hold data the caller would not want in logs.
      `Syntax error, incorrect syntax near ${t.type === "string" ? "a string literal" : `'${t.text}'`} at line ${t.line}, column ${t.col}.`,
    );
  }
  private expectKw(kw: string): Token {
    if (!this.isKw(kw)) this.fail();
    return this.next();
  }
  private expectPunct(p: string): Token {
    if (!this.isPunct(p)) this.fail();
    return this.next();
  }
  private ident(): string {
    const t = this.peek();
    if (t.type !== "ident") this.fail();
    this.next();
    return t.value;
  }
  expectEof(): void {
    if (this.peek().type !== "eof") this.fail();
  }

  // ---------------------------------------------------------------- queries

  query(): Query {
    const start = this.expectKw("SELECT");
    let distinct = this.acceptKw("DISTINCT");
    let top: Expr | undefined;
    if (this.isKw("TOP")) {
      this.next();
      top = this.countLiteral();
    }
    if (!distinct && this.acceptKw("DISTINCT")) distinct = true;
    const select = this.selection();
    return this.rest({ pos: this.pos(start), distinct, top, select });
  }

  conditionQuery(): Query {
    if (this.isKw("SELECT")) return this.query();
    const pos = this.pos();
    const select: Selection = { k: "value", e: { k: "lit", v: true, pos } };
    if (!this.isKw("FROM")) this.fail();
    return this.rest({ pos, distinct: false, select });
  }

  private rest(q: Query): Query {
    if (this.acceptKw("FROM")) q.from = this.fromClause();
    if (this.acceptKw("WHERE")) q.where = this.expr();
    if (this.isKw("GROUP")) {
      this.next();
      this.expectKw("BY");
      q.groupBy = [this.expr()];
      while (this.acceptPunct(",")) q.groupBy.push(this.expr());
    }
    if (this.isKw("ORDER")) {
      this.next();
      this.expectKw("BY");
      q.orderBy = [];
      do {
        const e = this.expr();
        let desc = false;
        if (this.acceptKw("DESC")) desc = true;
        else this.acceptKw("ASC");
        q.orderBy.push({ e, desc });
      } while (this.acceptPunct(","));
    }
    if (this.isKw("OFFSET")) {
      this.next();
      q.offset = this.countLiteral();
      this.expectKw("LIMIT");
      q.limit = this.countLiteral();
    }
    return q;
  }

  /** TOP / OFFSET / LIMIT take a number literal or a parameter. */
  private countLiteral(): Expr {
    const t = this.peek();
    if (t.type === "number") {
      this.next();
      return { k: "lit", v: t.num as number, pos: this.pos(t) };
    }
    if (t.type === "param") {
      this.next();
      return { k: "param", name: t.value, pos: this.pos(t) };
    }
    return this.fail();
  }

  private selection(): Selection {
    const t = this.peek();
    if (this.acceptPunct("*")) return { k: "star", pos: this.pos(t) };
    if (this.acceptKw("VALUE")) {
      const e = this.expr();
      if (this.acceptKw("AS")) this.ident();
      return { k: "value", e };
    }
    const items: { e: Expr; alias?: string }[] = [];
    do {
      const e = this.expr();
      let alias: string | undefined;
      if (this.acceptKw("AS")) alias = this.ident();
      else if (this.peek().type === "ident") alias = this.ident();
      items.push({ e, alias });
    } while (this.acceptPunct(","));
    return { k: "list", items };
  }

  private fromClause(): Source[] {
    const sources = [this.source()];
    while (this.acceptKw("JOIN")) sources.push(this.source());
    return sources;
  }

  private source(): Source {
    const t = this.peek();
    if (t.type === "ident" && this.isKw("IN", 1)) {
      const alias = this.ident();
      this.next();
      return { k: "iter", alias, coll: this.collection(), pos: this.pos(t) };
    }
    const coll = this.collection();
    let alias: string | undefined;
    if (this.acceptKw("AS")) alias = this.ident();
    else if (this.peek().type === "ident") alias = this.ident();
    return { k: "coll", coll, alias, pos: this.pos(t) };
  }

  private collection(): Collection {
    const t = this.peek();
    if (this.acceptPunct("(")) {
      const q = this.query();
      this.expectPunct(")");
      return { k: "sub", q, pos: this.pos(t) };
    }
    const root = this.ident();
    const path: (string | number)[] = [];
    for (;;) {
      if (this.acceptPunct(".")) {
        path.push(this.ident());
      } else if (this.isPunct("[")) {
        this.next();
        const k = this.peek();
        if (k.type === "string") path.push(k.value);
        else if (k.type === "number" && Number.isInteger(k.num) && (k.num as number) >= 0)
          path.push(k.num as number);
        else this.fail();
        this.next();
        this.expectPunct("]");
      } else break;
    }
    return { k: "path", root, path, pos: this.pos(t) };
  }

  // ------------------------------------------------------------ expressions

  expr(): Expr {
    const c = this.coalesce();
    if (this.isPunct("?")) {
      const t = this.next();
      const a = this.expr();
      this.expectPunct(":");
      const b = this.expr();
      return { k: "cond", c, t: a, f: b, pos: this.pos(t) };
    }
    return c;
  }

  private coalesce(): Expr {
    let l = this.or();
    while (this.isPunct("??")) {
      const t = this.next();
      const r = this.or();
      l = { k: "coalesce", l, r, pos: this.pos(t) };
    }
    return l;
  }

  private or(): Expr {
    let l = this.and();
    while (this.isKw("OR")) {
      const t = this.next();
      const r = this.and();
      l = { k: "binary", op: "OR", l, r, pos: this.pos(t) };
    }
    return l;
  }

  private and(): Expr {
    let l = this.not();
    while (this.isKw("AND")) {
      const t = this.next();
      const r = this.not();
      l = { k: "binary", op: "AND", l, r, pos: this.pos(t) };
    }
    return l;
  }

  private not(): Expr {
    if (this.isKw("NOT")) {
      const t = this.next();
      const e = this.not();
      if (!e.paren && (e.k === "binary" || e.k === "in" || e.k === "like" || e.k === "between")) {
        throw new QueryError(
          "ERR_QUERY_UNSUPPORTED",
          `The embedded store does not run 'NOT' before an unparenthesised operator expression (line ${t.line}, column ${t.col}): write NOT (...) around the expression, or use NOT IN / NOT LIKE / NOT BETWEEN.`,
        );
      }
      return { k: "unary", op: "NOT", e, pos: this.pos(t) };
    }
    return this.predicate();
  }

  /** `x [NOT] IN (...)`, `x [NOT] LIKE p [ESCAPE 'c']`, `x [NOT] BETWEEN a AND b`. */
  private predicate(): Expr {
    const e = this.concat();
    const t = this.peek();
    let not = false;
    if (this.isKw("NOT") && (this.isKw("IN", 1) || this.isKw("LIKE", 1) || this.isKw("BETWEEN", 1))) {
      this.next();
      not = true;
    }
    if (this.acceptKw("IN")) {
      this.expectPunct("(");
      const list = [this.expr()];
      while (this.acceptPunct(",")) list.push(this.expr());
      this.expectPunct(")");
      return { k: "in", e, list, not, pos: this.pos(t) };
    }
    if (this.acceptKw("LIKE")) {
      const pattern = this.concat();
      let escapeChar: string | undefined;
      const et = this.peek();
      if (et.type === "ident" && et.value.toUpperCase() === "ESCAPE") {
        this.next();
        const s = this.peek();
        if (s.type !== "string" || [...s.value].length !== 1) this.fail(s);
        this.next();
        escapeChar = s.value;
      }
      return { k: "like", e, pattern, escape: escapeChar, not, pos: this.pos(t) };
    }
    if (this.acceptKw("BETWEEN")) {
      const lo = this.concat();
      this.expectKw("AND");
      const hi = this.concat();
      return { k: "between", e, lo, hi, not, pos: this.pos(t) };
    }
    return e;
  }

  private binaryLevel(ops: Record<string, BinaryOp>, sub: () => Expr): Expr {
    let l = sub();
    for (;;) {
      const t = this.peek();
      if (t.type !== "punct" || !Object.hasOwn(ops, t.value)) return l;
      this.next();
      const r = sub();
      l = { k: "binary", op: ops[t.value], l, r, pos: this.pos(t) };
    }
  }

  private concat(): Expr {
    return this.binaryLevel({ "||": "||" }, () => this.bitOr());
  }
  private bitOr(): Expr {
    return this.binaryLevel({ "|": "|" }, () => this.bitXor());
  }
  private bitXor(): Expr {
    return this.binaryLevel({ "^": "^" }, () => this.bitAnd());
  }
  private bitAnd(): Expr {
    return this.binaryLevel({ "&": "&" }, () => this.equality());
  }
  private equality(): Expr {
    return this.binaryLevel(EQUALITY, () => this.relational());
  }
  private relational(): Expr {
    return this.binaryLevel(RELATIONAL, () => this.additive());
  }
  private additive(): Expr {
    return this.binaryLevel(ADDITIVE, () => this.multiplicative());
  }
  private multiplicative(): Expr {
    return this.binaryLevel(MULTIPLICATIVE, () => this.unary());
  }

  private unary(): Expr {
    const t = this.peek();
    if (t.type === "punct" && (t.value === "-" || t.value === "+" || t.value === "~")) {
      this.next();
      const e = this.unary();
      if (t.value === "-" && e.k === "lit" && typeof e.v === "number" && !e.paren)
        return { ...e, v: -e.v, pos: this.pos(t) };
      return { k: "unary", op: t.value, e, pos: this.pos(t) };
    }
    return this.postfix();
  }

  private postfix(): Expr {
    let e = this.primary();
    for (;;) {
      const t = this.peek();
      if (this.acceptPunct(".")) {
        const n = this.peek();
        if (n.type === "keyword") {
          throw new QueryError(
            "ERR_QUERY_SYNTAX",
            `Syntax error, incorrect syntax near '${n.text}' at line ${n.line}, column ${n.col}. '${n.text}' is a reserved word: write ["${n.text}"] to read a property with that name.`,
          );
        }
        if (n.type !== "ident") this.fail(n);
        this.next();
        e = { k: "prop", obj: e, name: n.value, pos: this.pos(t) };
      } else if (this.acceptPunct("[")) {
        const index = this.expr();
        this.expectPunct("]");
        if (index.k === "lit" && typeof index.v === "string")
          e = { k: "prop", obj: e, name: index.v, pos: this.pos(t) };
        else e = { k: "index", obj: e, index, pos: this.pos(t) };
      } else {
        return e;
      }
    }
  }

  private args(): Expr[] {
    this.expectPunct("(");
    const args: Expr[] = [];
    if (!this.acceptPunct(")")) {
      do args.push(this.expr());
      while (this.acceptPunct(","));
      this.expectPunct(")");
    }
    return args;
  }

  private subquery(): Query {
    this.expectPunct("(");
    const q = this.query();
    this.expectPunct(")");
    return q;
  }

  private primary(): Expr {
    const t = this.peek();
    const pos = this.pos(t);
    switch (t.type) {
      case "number":
        this.next();
        return { k: "lit", v: t.num as number, pos };
      case "string":
        this.next();
        return { k: "lit", v: t.value, pos };
      case "param":
        this.next();
        return { k: "param", name: t.value, pos };
      case "ident":
        this.next();
        if (this.isPunct("(")) return { k: "call", name: t.value, args: this.args(), udf: false, pos };
        return { k: "ref", name: t.value, pos };
      case "keyword":
        switch (t.value) {
          case "true":
            this.next();
            return { k: "lit", v: true, pos };
          case "false":
            this.next();
            return { k: "lit", v: false, pos };
          case "null":
            this.next();
            return { k: "lit", v: null, pos };
          case "undefined":
            this.next();
            return { k: "lit", v: undefined, pos };
          case "udf": {
            this.next();
            this.expectPunct(".");
            const name = this.ident();
            return { k: "call", name, args: this.args(), udf: true, pos };
          }
          case "LEFT":
          case "RIGHT":
            if (!this.isPunct("(", 1)) this.fail();
            this.next();
            return { k: "call", name: t.value, args: this.args(), udf: false, pos };
          case "EXISTS":
            this.next();
            return { k: "exists", q: this.subquery(), pos };
          case "ARRAY":
            this.next();
            return { k: "arrayq", q: this.subquery(), pos };
          default:
            return this.fail();
        }
      case "punct":
        if (t.value === "(") {
          if (this.isKw("SELECT", 1)) return { k: "subq", q: this.subquery(), pos };
          this.next();
          const e = this.expr();
          this.expectPunct(")");
          return { ...e, paren: true };
        }
        if (t.value === "[") {
          this.next();
          const items: Expr[] = [];
          if (!this.acceptPunct("]")) {
            do items.push(this.expr());
            while (this.acceptPunct(","));
            this.expectPunct("]");
          }
          return { k: "array", items, pos };
        }
        if (t.value === "{") {
          this.next();
          const props: { name: string; value: Expr }[] = [];
          if (!this.acceptPunct("}")) {
            do {
              const n = this.peek();
              let name: string;
              if (n.type === "string" || n.type === "ident") name = n.value;
              else if (n.type === "keyword") name = n.text;
              else return this.fail(n);
              this.next();
              this.expectPunct(":");
              props.push({ name, value: this.expr() });
            } while (this.acceptPunct(","));
            this.expectPunct("}");
          }
          return { k: "object", props, pos };
        }
        return this.fail();
      default:
        return this.fail();
    }
  }
}
