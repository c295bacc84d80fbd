/** What {@link parsePath} returns: the segments, or a problem phrased as "expected ...". */
export type ParsedPath = { ok: true; segments: string[] } | { ok: false; expected: string };

const CONTAINER_CHILDREN = ["docs", "sprocs", "udfs", "triggers", "conflicts", "pkranges"];
const EXAMPLE = "/, /dbs/{db}, /dbs/{db}/colls/{coll} or deeper such as /dbs/{db}/colls/{coll}/docs/{id}";

/**
 * Splits and validates a Cosmos DB resource path. Not for the request path (the classifier already
 * splits); used when reading a policy (`kind: "scope"`) and by `explain` (`kind: "resource"`).
 *
 * Shape: `/` is the account; then `dbs/{db}`, `colls/{coll}` or `users/{user}`, then under a container
 * `docs|sprocs|udfs|triggers|conflicts|pkranges/{id}`, under a user `permissions/{id}`. A scope must end
 * with an id and may use `*` as a whole id segment (it matches exactly one segment); a resource may end
 * with a type segment (a feed such as `/dbs/shop/colls`) and may not use `*`.
 *
 * @example
 * ```ts
 * parsePath("/dbs/shop/colls/*", "scope"); // { ok: true, segments: ["dbs", "shop", "colls", "*"] }
 * parsePath("/", "resource"); // { ok: true, segments: [] }
 * parsePath("dbs/shop", "scope"); // { ok: false, expected: 'expected a path starting with "/" ...' }
 * ```
 */
export function parsePath(text: string, kind: "scope" | "resource"): ParsedPath {
  if (!text.startsWith("/")) {
    return fail(`expected a path starting with "/": ${EXAMPLE}`);
  }
  if (text === "/") return { ok: true, segments: [] };
  if (text.endsWith("/")) return fail(`expected no trailing "/": ${EXAMPLE}`);
  const segments = text.slice(1).split("/");
  if (segments.length > 6) {
    return fail(`expected at most 6 segments: ${EXAMPLE}`);
  }
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const parent = i === 0 ? "/" : `/${segments.slice(0, i).join("/")}`;
    if (seg === "") return fail(`expected no empty segment ("//"): ${EXAMPLE}`);
    if (i % 2 === 0) {
      const allowed = typeSegmentsAfter(segments, i);
      if (!allowed.includes(seg)) {
        const list = allowed.map((s) => `"${s}"`).join(" or ");
        return fail(
          i === 0
            ? `expected "/" (the whole account) or a path starting with /dbs: ${EXAMPLE}`
            : `expected ${list} after ${parent}`,
        );
      }
    } else if (seg === "*") {
      if (kind === "resource") {
        return fail(`expected an id after ${parent}; "*" is only for policy scopes`);
      }
    } else if (kind === "scope" && seg.includes("*")) {
      return fail(
        `expected "*" alone as a whole segment (it matches one id); partial wildcards are not supported`,
      );
    } else if (/[\\?#]/.test(seg)) {
      return fail(`expected an id without "\\", "?" or "#" (Cosmos DB ids cannot contain them)`);
    }
  }
  if (kind === "scope" && segments.length % 2 === 1) {
    const parent = text.slice(0, text.lastIndexOf("/")) || "/";
    return fail(
      `expected the scope to end with an id, such as ${text}/{id}, or ${parent} to cover all beneath it`,
    );
  }
  return { ok: true, segments };
}

function typeSegmentsAfter(segments: readonly string[], i: number): readonly string[] {
  if (i === 0) return ["dbs"];
  if (i === 2) return ["colls", "users"];
  return segments[2] === "colls" ? CONTAINER_CHILDREN : ["permissions"];
}

function fail(expected: string): ParsedPath {
  return { ok: false, expected };
}
