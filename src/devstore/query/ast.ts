// AST of the Cosmos DB NoSQL query dialect.
import type { Pos } from "./errors.js";
import type { Json } from "./values.js";

export type BinaryOp =
  | "+"
  | "-"
  | "*"
  | "/"
  | "%"
  | "="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "&"
  | "|"
  | "^"
  | "||"
  | "AND"
  | "OR";

export type Expr = (
  | { k: "lit"; v: Json | undefined }
  | { k: "param"; name: string }
  | { k: "ref"; name: string }
  | { k: "prop"; obj: Expr; name: string }
  | { k: "index"; obj: Expr; index: Expr }
  | { k: "array"; items: Expr[] }
  | { k: "object"; props: { name: string; value: Expr }[] }
  | { k: "unary"; op: "-" | "+" | "~" | "NOT"; e: Expr }
  | { k: "binary"; op: BinaryOp; l: Expr; r: Expr }
  | { k: "between"; e: Expr; lo: Expr; hi: Expr; not: boolean }
  | { k: "in"; e: Expr; list: Expr[]; not: boolean }
  | { k: "like"; e: Expr; pattern: Expr; escape?: string; not: boolean }
  | { k: "cond"; c: Expr; t: Expr; f: Expr }
  | { k: "coalesce"; l: Expr; r: Expr }
  | { k: "call"; name: string; args: Expr[]; udf: boolean }
  | { k: "exists"; q: Query }
  | { k: "arrayq"; q: Query }
  | { k: "subq"; q: Query }
) & { pos: Pos; paren?: boolean };

export type Collection =
  | { k: "path"; root: string; path: (string | number)[]; pos: Pos }
  | { k: "sub"; q: Query; pos: Pos };

export type Source =
  | { k: "coll"; coll: Collection; alias?: string; pos: Pos }
  | { k: "iter"; alias: string; coll: Collection; pos: Pos };

export type Selection =
  | { k: "star"; pos: Pos }
  | { k: "value"; e: Expr }
  | { k: "list"; items: { e: Expr; alias?: string }[] };

export interface Query {
  pos: Pos;
  distinct: boolean;
  top?: Expr;
  select: Selection;
  from?: Source[];
  where?: Expr;
  groupBy?: Expr[];
  orderBy?: { e: Expr; desc: boolean }[];
  offset?: Expr;
  limit?: Expr;
}
