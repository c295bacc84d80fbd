/** A compiled scope: its segments, `null` where the policy wrote `*` (matches exactly one segment). */
export type ScopePattern = readonly (string | null)[];

/** No relation: the scope neither covers the resource nor lies beneath it. */
export const UNRELATED = 0;
/** The scope covers the resource: the resource is the scope or lies beneath it. */
export const COVERS = 1;
/** The resource is a strict ancestor of the scope (only `metadata` may use this). */
export const ANCESTOR = 2;

/**
 * How a scope pattern relates to a resource, in one loop over the shorter of the two: no regex, no
 * allocation. Hot path.
 *
 * @example
 * ```ts
 * relateScope(["dbs", "shop", "colls", null], ["dbs", "shop", "colls", "orders", "docs", "a1"]); // COVERS
 * relateScope(["dbs", "shop", "colls", "orders"], []); // ANCESTOR (the account)
 * relateScope(["dbs", "shop"], ["dbs", "crm"]); // UNRELATED
 * ```
 */
export function relateScope(pattern: ScopePattern, segments: readonly string[]): 0 | 1 | 2 {
  const n = pattern.length;
  const m = segments.length;
  const k = Math.min(n, m);
  for (let i = 0; i < k; i++) {
    const p = pattern[i];
    if (p !== null && p !== segments[i]) return UNRELATED;
  }
  return n <= m ? COVERS : ANCESTOR;
}
