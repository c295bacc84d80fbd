// Error classes of the query engine. Messages name the problem and where it is; they never
// contain document bodies or parameter values.

export type QueryErrorCode =
  | "ERR_QUERY_SYNTAX"
  | "ERR_QUERY_UNSUPPORTED"
  | "ERR_QUERY_PARAMETER"
  | "ERR_QUERY_UDF";

export class QueryError extends Error {
  readonly code: QueryErrorCode;
  constructor(code: QueryErrorCode, message: string) {
    super(message);
    this.name = "QueryError";
    this.code = code;
  }
}

/** A position in the query text (1-based). */
export interface Pos {
  line: number;
  col: number;
}

export function at(pos: Pos): string {
  return `line ${pos.line}, column ${pos.col}`;
}
