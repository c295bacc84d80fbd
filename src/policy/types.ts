import type { Action } from "../cosmos/types.js";

/** Who is asking, as policy sees it. Principal objects from identity/ satisfy this structurally. */
export interface PolicySubject {
  /** Token subject, matched by `sub:VALUE` members. */
  sub: string;
  /** Values of the issuer's roles/groups claim, matched by `group:VALUE` members. */
  groups: readonly string[];
}

export interface Decision {
  effect: "allow" | "deny";
  /** Human-readable reason, safe to log and to show the caller. */
  reason: string;
  /** The rule that allowed it (absent on deny). */
  matched?: { role: string; rule: number; on: string; allow: string[] };
}

export type { Action };
