/**
 * `cosmosgate/client`: what applications import to reach Cosmos DB through a cosmosgate gateway
 * with the session of `cosmosgate login`. No server code.
 *
 * @example
 * ```ts
 * import { CosmosClient } from "@azure/cosmos";
 * import { GatewayCredential } from "cosmosgate/client";
 *
 * const client = new CosmosClient({ endpoint: "https://localhost:8081", aadCredentials: new GatewayCredential() });
 * ```
 */
export {
  AgentCredential,
  type AgentCredentialOptions,
  ASSERTION_LIFETIME_S,
  type ClientAssertionInput,
  createClientAssertion,
  JWT_BEARER_ASSERTION,
} from "./agentCredential.js";
export {
  type AgentKey,
  agentKeyFromJwk,
  agentKeyPath,
  createAgentKeyFile,
  readAgentKeyFile,
} from "./agentKey.js";
export {
  type CredentialsFileContent,
  credentialsFilePath,
  readCredentials,
  type StoredSession,
  updateCredentials,
  withCredentialsLock,
  writeCredentials,
} from "./credentialsFile.js";
export { GatewayCredentialError, type GatewayCredentialErrorCode } from "./errors.js";
export {
  FederatedCredential,
  type FederatedCredentialOptions,
  type GitHubActionsTokenOptions,
  gitHubActionsToken,
} from "./federated.js";
export {
  type AccessToken,
  audienceOf,
  decodeClaims,
  GatewayCredential,
  type GatewayCredentialOptions,
  type GetTokenOptions,
  REFRESH_WINDOW_MS,
} from "./GatewayCredential.js";
export { type LoginOptions, type LoginResult, login } from "./login.js";
export { type Loopback, type LoopbackCallback, startLoopback } from "./loopback.js";
export {
  CLI_CLIENT_ID,
  discoverGateway,
  type FetchLike,
  type GatewayDiscovery,
  requestToken,
  revokeToken,
  type TokenSet,
} from "./oauth.js";
export { createPkce, type Pkce, pkceChallenge, randomState } from "./pkce.js";
export { isLoopbackHost, normalizeGatewayUrl, secureUrl } from "./urls.js";
