import { createHash } from "node:crypto";
import { badRequest } from "./errors.js";

/**
 * Where a paged feed or query resumes. Opaque to clients (base64url JSON), bound to the request it
 * came from by a short hash, so a token replayed on another query is refused instead of resuming
 * at a meaningless place.
 *
 * - `p`: position mode (read feeds and streamable queries): resume at source position `p`
 *   (inclusive), skipping the first `k` results that doc `p` produces (a JOIN yields several per
 *   doc); `e` = results emitted so far (TOP is reduced by it).
 * - no `p`: result mode (queries that are not streamable): rerun and skip the first `e` results.
 */
export interface Continuation {
  /** Request hash. */
  h: string;
  e: number;
  p?: number;
  k?: number;
}

export function requestHash(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\u0000");
  return h.digest("base64url").slice(0, 16);
}

export function encodeContinuation(c: Continuation): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

/** Decodes a continuation header value; throws 400 when it is malformed or belongs to another request. */
export function decodeContinuation(token: string, hash: string): Continuation {
  let c: unknown;
  try {
    if (token.length > 1024) throw new Error("too long");
    c = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw badRequest(
      "The continuation token (x-ms-continuation) is malformed. Pass back the token the previous page returned, unchanged.",
    );
  }
  const o = c as Partial<Continuation> | null;
  if (
    o === null ||
    typeof o !== "object" ||
    typeof o.h !== "string" ||
    !isCount(o.e) ||
    (o.p !== undefined && !isCount(o.p)) ||
    (o.k !== undefined && !isCount(o.k))
  ) {
    throw badRequest(
      "The continuation token (x-ms-continuation) is malformed. Pass back the token the previous page returned, unchanged.",
    );
  }
  if (o.h !== hash) {
    throw badRequest(
      "The continuation token (x-ms-continuation) belongs to a different query, partition key or feed. Use a token only with the request that returned it.",
    );
  }
  return o as Continuation;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
