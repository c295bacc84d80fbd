import type { z } from "zod";
import type { PolicyProblem } from "./errors.js";
import { ACTION_NAMES } from "./expandActionName.js";

type Path = readonly PropertyKey[];
/** Finds the source position of the value at `path` (or of its key, when `atKey`). */
export type Locate = (path: Path, atKey: boolean) => { line: number; col: number } | undefined;

/**
 * Turns zod issues about a policy document into {@link PolicyProblem}s that say where, what was found
 * and what was expected. Internal to the policy module (shared by parsePolicy and compilePolicy).
 *
 * @example
 * ```ts
 * const r = PolicySchema.safeParse(data);
 * if (!r.success) toProblems(r.error.issues, data, undefined, undefined);
 * // [{ path: "roles.w[0].allow[0]", message: 'found "dlete"; expected an action: ... (did you mean "delete"?)' }]
 * ```
 */
export function toProblems(
  issues: readonly z.core.$ZodIssue[],
  data: unknown,
  locate: Locate | undefined,
  file: string | undefined,
): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const add = (path: Path, atKey: boolean, message: string) => {
    const pos = locate?.(path, atKey);
    problems.push({ ...(file === undefined ? {} : { file }), ...pos, path: formatPath(path), message });
  };
  for (const issue of issues) {
    const value = valueAt(data, issue.path);
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys)
          add([...issue.path, key], true, `found unknown key "${key}"; ${issue.message}`);
        break;
      case "invalid_value": {
        const hint = typeof value === "string" ? suggest(value) : undefined;
        add(
          issue.path,
          false,
          `found ${describe(value)}; ${issue.message}${hint ? ` (did you mean "${hint}"?)` : ""}`,
        );
        break;
      }
      case "custom": {
        const params = issue.params as { at?: string; found?: string } | undefined;
        const hint =
          typeof value === "string" && issue.message.startsWith("expected an action")
            ? suggest(value)
            : undefined;
        add(
          issue.path,
          params?.at === "key",
          `found ${params?.found ?? describe(value)}; ${issue.message}${hint ? ` (did you mean "${hint}"?)` : ""}`,
        );
        break;
      }
      default:
        add(issue.path, false, `found ${describe(value)}; ${issue.message}`);
    }
  }
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
}

/** `roles.shop-writer[0].allow[2]`; names that are not plain identifiers are quoted: `members["Cosmos DB ..."]`. */
function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(seg))) out += out === "" ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const seg of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/** The closest accepted action name, if it is close enough to be a typo. */
function suggest(found: string): string | undefined {
  const lower = found.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of ACTION_NAMES) {
    if (name.toLowerCase() === lower) return name;
    if (name.includes("/")) continue;
    const d = distance(lower, name.toLowerCase());
    if (d < bestDistance && d < name.length / 2) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance; tiny inputs, so the plain two-row version. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
