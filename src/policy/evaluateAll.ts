import type { Action } from "../cosmos/types.js";
import type { CompiledPolicy } from "./compilePolicy.js";
import { evaluate } from "./evaluate.js";
import type { Decision, PolicySubject } from "./types.js";

/**
 * Evaluates every action a request needs (a batch may need several) on one resource: returns the
 * first denial, or the last allow when all are allowed. An empty action list is denied.
 *
 * @example
 * ```ts
 * const d = evaluateAll(policy, principal, operation.actions, operation.segments);
 * if (d.effect === "deny") return deny(d.reason);
 * ```
 */
export function evaluateAll(
  policy: CompiledPolicy,
  subject: PolicySubject,
  actions: readonly Action[],
  segments: readonly string[],
): Decision {
  if (actions.length === 0) {
    return { effect: "deny", reason: `principal [${subject.sub}] asked for no action; nothing to allow` };
  }
  let decision: Decision | undefined;
  for (let i = 0; i < actions.length; i++) {
    decision = evaluate(policy, subject, actions[i], segments);
    if (decision.effect === "deny") return decision;
  }
  return decision as Decision;
}
