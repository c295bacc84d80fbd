/**
 * The policy module: schema, parse, compile to fast matchers, evaluate on the hot path, explain for
 * people. Pure: no I/O, no HTTP.
 */

export { BUILT_IN_ROLE_RULES, type BuiltInRule } from "./builtins.js";
export {
  type CompiledPolicy,
  type CompiledRole,
  type CompiledRule,
  compilePolicy,
  type Grant,
  type SubjectGrants,
} from "./compilePolicy.js";
export { PolicyError, type PolicyErrorCode, type PolicyProblem } from "./errors.js";
export { evaluate } from "./evaluate.js";
export { evaluateAll } from "./evaluateAll.js";
export { ACTION_NAMES, expandActionName } from "./expandActionName.js";
export { type ExplainInput, type ExplainResult, type ExplainRule, explain } from "./explain.js";
export { formatExplain } from "./formatExplain.js";
export { type ParsedPath, parsePath } from "./parsePath.js";
export { parsePolicy } from "./parsePolicy.js";
export { type PolicyDocument, type PolicyRule, PolicyRuleSchema, PolicySchema } from "./schema.js";
export type { Action, Decision, PolicySubject } from "./types.js";
