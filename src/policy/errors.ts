/**
 * Stable error codes of the policy module. The edge maps them once to an HTTP status or a CLI exit code.
 *
 * - `ERR_POLICY_INVALID`: the policy document is not valid YAML or does not match the schema.
 * - `ERR_POLICY_BAD_ACTION`: an action name given to {@link explain} is unknown or names several actions.
 * - `ERR_POLICY_BAD_RESOURCE`: a resource path given to {@link explain} is malformed.
 * - `ERR_POLICY_DENIED`: reserved for the edge, which turns a deny {@link Decision} into an error.
 */
export type PolicyErrorCode =
  | "ERR_POLICY_INVALID"
  | "ERR_POLICY_BAD_ACTION"
  | "ERR_POLICY_BAD_RESOURCE"
  | "ERR_POLICY_DENIED";

/** One problem found in a policy document. `line`/`col` are 1-based; absent when no source text exists. */
export interface PolicyProblem {
  file?: string;
  line?: number;
  col?: number;
  /** Key path such as `roles.shop-writer[0].allow[2]`; empty for the document itself. */
  path: string;
  /** What was found and what was expected, e.g. `found "dlete"; expected an action ...`. */
  message: string;
}

/**
 * The policy module's error. `code` is stable; `problems` lists every problem found (for editors, the
 * console and tests) and `message` lists them one a line.
 *
 * @example
 * ```ts
 * try {
 *   parsePolicy(text, "policy.yaml");
 * } catch (err) {
 *   if (err instanceof PolicyError && err.code === "ERR_POLICY_INVALID") {
 *     console.error(err.message); // policy.yaml:4:15: roles.shop-writer[0].allow[2]: found "dlete"; ...
 *   }
 * }
 * ```
 */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly code: PolicyErrorCode;
  readonly problems: readonly PolicyProblem[];

  constructor(code: PolicyErrorCode, message: string, problems: readonly PolicyProblem[] = []) {
    super(message);
    this.code = code;
    this.problems = problems;
  }
}
