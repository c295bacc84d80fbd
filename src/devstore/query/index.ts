// The Cosmos DB NoSQL query dialect for the embedded store: lexer, hand-written recursive-descent
// parser, AST, and a compiler to closures that streams documents once (linear time).
//
// Hand-written because no well-kept library runs Cosmos DB SQL at scale; @zeit/cosmosdb-query
// 0.7.2 (the engine inside @vercel/cosmosdb-server) is quadratic and its parser refuses
// OFFSET/LIMIT, DISTINCT, GROUP BY and LIKE.
import { type CompiledQuery, compileTopLevel } from "./compiler.js";
import { QueryError } from "./errors.js";
import { computeHints, type QueryHints } from "./hints.js";
import { parseCondition, parseQuery } from "./parser.js";
import type { Json, JsonObject, Val } from "./values.js";

export { QueryError, type QueryErrorCode } from "./errors.js";
export type { Json, JsonObject } from "./values.js";

export interface PrepareOptions {
  /** Query parameters; names include '@'. */
  parameters?: { name: string; value: Json }[];
  /** The container's partition key paths, e.g. ["/tenant"] or ["/a", "/b"]. */
  partitionKeyPaths?: string[];
  /** Resolves udf.NAME; returning undefined makes the query fail with ERR_QUERY_UDF. */
  udf?: (name: string) => ((args: Json[]) => Json | undefined) | undefined;
  /** Clock for GetCurrentDateTime() and friends (ms since the epoch). */
  now?: () => number;
}

export interface PreparedQuery {
  /** Sound push-down hints (supersets): the store MAY use them to narrow its scan; the evaluator re-checks everything. */
  hints: QueryHints;
  /** True when results map 1:1 in source order (no ORDER BY, aggregates, GROUP BY, DISTINCT, OFFSET, JOIN):
   *  such a query can be resumed from a source position. */
  streamable: boolean;
  /**
   * Runs over the container's documents (in the store's stable order, ascending pos).
   * resume.emitted = results already returned on earlier pages:
   *  - streamable: the caller passes only source docs with pos > last pos; the engine reduces TOP by emitted;
   *  - otherwise: the caller passes the whole source; the engine skips the first `emitted` results.
   * Yields each result with the pos of the last source doc consumed for it (for non-streamable
   * queries: the last pos of the source; -1 for a query without FROM, which reads no documents).
   * Undefined VALUE results are dropped.
   */
  run(
    source: Iterable<{ doc: JsonObject; pos: number }>,
    resume?: { emitted: number },
  ): Iterable<{ value: Json; pos: number }>;
}

function compileOptions(options: PrepareOptions | undefined) {
  const params = new Map<string, Json>();
  for (const p of options?.parameters ?? []) params.set(p.name, p.value);
  const now = options?.now ?? Date.now;
  return { params, udf: options?.udf, fn: { now, staticNow: now() } };
}

export function prepareQuery(text: string, options?: PrepareOptions): PreparedQuery {
  if (typeof text !== "string" || text.trim() === "") {
    throw new QueryError(
      "ERR_QUERY_SYNTAX",
      "The query text is empty. Send a query such as SELECT * FROM c.",
    );
  }
  const ast = parseQuery(text);
  const opts = compileOptions(options);
  const { query, nslots } = compileTopLevel(ast, opts);
  const hints = computeHints(ast, opts.params, options?.partitionKeyPaths);
  return {
    hints,
    streamable: query.streamable,
    run: (source, resume) => run(query, nslots, source, resume?.emitted ?? 0),
  };
}

function* run(
  q: CompiledQuery,
  nslots: number,
  source: Iterable<{ doc: JsonObject; pos: number }>,
  emitted: number,
): Generator<{ value: Json; pos: number }> {
  const s: Val[] = new Array(nslots).fill(undefined);
  if (q.streamable && q.root?.get) {
    const top = q.limits.top;
    let remaining = top === undefined ? Number.POSITIVE_INFINITY : top - emitted;
    if (remaining <= 0) return;
    const get = q.root.get;
    const slot = q.root.slot;
    const where = q.where;
    const project = q.project;
    for (const { doc, pos } of source) {
      const r = get(doc);
      if (r === undefined) continue;
      s[slot] = r;
      if (where !== undefined && where(s) !== true) continue;
      const v = project(s);
      if (v === undefined) continue;
      yield { value: v, pos };
      if (--remaining <= 0) return;
    }
    return;
  }
  const { values, lastPos } = q.runAll(source, s);
  for (let i = emitted; i < values.length; i++) {
    yield { value: values[i] as Json, pos: lastPos };
  }
}

/**
 * Compiles a patch condition such as "from c where c.stock > 5" (a full SELECT is accepted too)
 * into a predicate over one document: true when the query returns at least one result for it.
 */
export function prepareCondition(text: string, options?: PrepareOptions): (doc: JsonObject) => boolean {
  if (typeof text !== "string" || text.trim() === "") {
    throw new QueryError(
      "ERR_QUERY_SYNTAX",
      "The patch condition is empty. Send a condition such as FROM c WHERE c.stock > 5.",
    );
  }
  const ast = parseCondition(text);
  const opts = compileOptions(options);
  const { query, nslots } = compileTopLevel(ast, opts);
  return (doc) => {
    const s: Val[] = new Array(nslots).fill(undefined);
    const { values } = query.runAll([{ doc, pos: 0 }], s);
    return values.length > 0;
  };
}
