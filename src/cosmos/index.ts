/**
 * The Cosmos DB wire, pure: classify requests into data actions, the action table, error bodies,
 * master-key signing and the account-read rewrite. No I/O and no policy knowledge.
 *
 * @example
 * ```ts
 * import { classify, classifyBatchBody } from "./cosmos/index.js";
 * let op = classify(req.method, req.url, req.headers);
 * if (op.atomic !== undefined) op = classifyBatchBody(op, body);
 * ```
 */
export { rewriteAccount } from "./account.js";
export {
  BUILT_IN_ROLES,
  type BuiltInRole,
  CONTAINER_ACTIONS,
  ITEM_ACTIONS,
  NATIVE_DATA_ACTIONS,
  NATIVE_PREFIX,
  parseAction,
  toNativeDataActions,
} from "./actions.js";
export { classify, type RequestHeaders } from "./classify.js";
export { classifyBatchBody, MAX_BATCH_OPERATIONS } from "./classifyBatchBody.js";
export { CosmosWireError, type CosmosWireErrorCode, cosmosCodeForStatus, cosmosErrorBody } from "./errors.js";
export { type MasterKeySigningInput, rfc7231Date, signMasterKey } from "./masterKey.js";
export {
  MAX_PARTITION_KEY_COMPONENTS,
  MAX_PARTITION_KEY_LENGTH,
  parsePartitionKey,
} from "./parsePartitionKey.js";
export {
  type Action,
  ALL_ACTIONS,
  type BatchOperation,
  type CosmosOperation,
  type PartitionKeyValue,
} from "./types.js";
