import { quote } from "../tokens/util.js";

/**
 * One claim condition as written under `identity.issuers[].require` in `cosmosgate.yaml`, keyed by
 * the claim's name:
 *
 * - a plain string, number or boolean, or `{equals: V}`: the claim is exactly V (`acr: phr`,
 *   `tid: 72f9…`);
 * - `{anyOf: [A, B]}`: a string claim equal to one of them, or a list claim holding at least one
 *   of them (`amr: {anyOf: [hwk, mfa]}`);
 * - `{contains: V}`: a list claim holding V, or a string claim equal to V (`acrs: {contains: c1}`);
 * - `{matches: REGEX}`: a string claim matching the whole regular expression (anchored: `^(?:…)$`).
 */
export type RequirementSpec =
  | string
  | number
  | boolean
  | { equals: string | number | boolean }
  | { anyOf: (string | number)[] }
  | { contains: string | number }
  | { matches: string };

/** A requirement checked against verified claims; built once at start-up by {@link compileRequirements}. */
export interface Requirement {
  readonly claim: string;
  /** How it reads in messages and in the doctor: `acrs contains "c1"`. */
  readonly description: string;
  /** Whether the claims meet it. No allocation on the success path. */
  test(claims: Readonly<Record<string, unknown>>): boolean;
}

/** The first unmet requirement of a token, for the refusal message and the doctor. */
export interface UnmetRequirement {
  readonly requirement: Requirement;
  /** The claim's value as found, quoted and cut short (or "absent"). */
  readonly found: string;
}

/**
 * Compiles the `require` map of one issuer entry. Regular expressions are built here, once, and
 * anchored to the whole value. A malformed condition is a configuration mistake: a `TypeError`
 * naming the issuer and the claim.
 *
 * @example
 * ```ts
 * const reqs = compileRequirements({ acrs: { contains: "c1" }, tid: "72f988bf-…" }, "Entra ID");
 * unmetRequirement(reqs, { acrs: ["c1"], tid: "72f988bf-…" }); // undefined: all met
 * ```
 */
export function compileRequirements(
  specs: Readonly<Record<string, RequirementSpec>> | undefined,
  where: string,
): Requirement[] {
  if (specs === undefined) return [];
  if (typeof specs !== "object" || specs === null || Array.isArray(specs)) {
    throw new TypeError(`${where}: require must be a map of claim name → condition`);
  }
  return Object.entries(specs).map(([claim, spec]) => compileOne(claim, spec, `${where}: require.${claim}`));
}

function compileOne(claim: string, spec: RequirementSpec, where: string): Requirement {
  if (claim.length === 0) throw new TypeError(`${where}: the claim name is empty`);
  if (isScalar(spec)) return equals(claim, spec);
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new TypeError(
      `${where}: expected a value, or one of {equals: V}, {anyOf: [...]}, {contains: V}, {matches: REGEX}`,
    );
  }
  const keys = Object.keys(spec);
  if (keys.length !== 1) {
    throw new TypeError(
      `${where}: give exactly one of equals, anyOf, contains or matches (found ${keys.join(", ") || "none"})`,
    );
  }
  if ("equals" in spec) {
    if (!isScalar(spec.equals)) throw new TypeError(`${where}.equals: expected a string, number or boolean`);
    return equals(claim, spec.equals);
  }
  if ("anyOf" in spec) {
    const values = spec.anyOf;
    if (!Array.isArray(values) || values.length === 0 || !values.every(isStringOrNumber)) {
      throw new TypeError(`${where}.anyOf: expected a non-empty list of strings`);
    }
    const allowed = new Set<unknown>(values);
    return {
      claim,
      description: `${claim} is or contains any of ${values.map((v) => quote(v)).join(", ")}`,
      test(claims) {
        const value = claims[claim];
        if (Array.isArray(value)) {
          for (const item of value) if (allowed.has(item)) return true;
          return false;
        }
        return allowed.has(value);
      },
    };
  }
  if ("contains" in spec) {
    const wanted = spec.contains;
    if (!isStringOrNumber(wanted)) throw new TypeError(`${where}.contains: expected a string`);
    return {
      claim,
      description: `${claim} contains ${quote(wanted)}`,
      test(claims) {
        const value = claims[claim];
        return Array.isArray(value) ? value.includes(wanted) : value === wanted;
      },
    };
  }
  if ("matches" in spec) {
    const source = spec.matches;
    if (typeof source !== "string" || source.length === 0) {
      throw new TypeError(`${where}.matches: expected a regular expression`);
    }
    let pattern: RegExp;
    try {
      pattern = new RegExp(`^(?:${source})$`, "u");
    } catch (error) {
      throw new TypeError(
        `${where}.matches: ${quote(source)} is not a valid regular expression: ${(error as Error).message}`,
      );
    }
    return {
      claim,
      description: `${claim} matches /^(?:${source})$/`,
      test(claims) {
        const value = claims[claim];
        return typeof value === "string" && pattern.test(value);
      },
    };
  }
  throw new TypeError(
    `${where}: unknown condition ${quote(keys[0])}; use equals, anyOf, contains or matches`,
  );
}

function equals(claim: string, expected: string | number | boolean): Requirement {
  return {
    claim,
    description: `${claim} equals ${quote(expected)}`,
    test: (claims) => claims[claim] === expected,
  };
}

/**
 * The first requirement the claims do not meet, or undefined when all are met.
 *
 * @example
 * ```ts
 * const unmet = unmetRequirement(reqs, payload);
 * if (unmet) throw new TokenError("ERR_TOKEN_REQUIREMENT", `… ${unmet.requirement.description} …`);
 * ```
 */
export function unmetRequirement(
  requirements: readonly Requirement[],
  claims: Readonly<Record<string, unknown>>,
): UnmetRequirement | undefined {
  for (const requirement of requirements) {
    if (!requirement.test(claims)) {
      const value = claims[requirement.claim];
      return { requirement, found: value === undefined ? "absent" : show(value) };
    }
  }
  return undefined;
}

/** A claim value for a message: strings quoted, other JSON as JSON, cut to 80 characters. */
function show(value: unknown): string {
  if (typeof value === "string") return quote(value, 80);
  const text = String(JSON.stringify(value));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean";
}

function isStringOrNumber(value: unknown): value is string | number {
  return typeof value === "string" || typeof value === "number";
}
