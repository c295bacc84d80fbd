/**
 * Data-plane token verification: take the JWT out of the Authorization header, verify it against a
 * trusted issuer's keys, and cache the resulting Principal. And the gateway's own tokens: a
 * rotating signing keyring (keys encrypted at rest under a KEK), the issuer, the JWKS and the
 * discovery document.
 *
 * @example
 * ```ts
 * import { createTokenVerifier, parseAuthorization } from "./identity/tokens/index.js";
 * const verifier = createTokenVerifier({ issuers: config.identity.issuers });
 * const jwt = parseAuthorization(req.headers.authorization);
 * const principal = verifier.verifyCached(jwt) ?? (await verifier.verify(jwt));
 * ```
 */
export { isTokenError, TOKEN_ERROR_CODES, TokenError, type TokenErrorCode } from "../errors.js";
export { parseAuthorization } from "./authorization.js";
export {
  createVerifiedTokenCache,
  type TokenCacheStats,
  type VerifiedTokenCache,
  type VerifiedTokenCacheOptions,
} from "./cache.js";
export {
  type DiscoveryDocument,
  type DiscoveryOptions,
  discoveryDocument,
} from "./discovery.js";
export {
  createTokenIssuer,
  type IssuedToken,
  type IssueInput,
  type TokenIssuer,
  type TokenIssuerOptions,
} from "./issue.js";
export {
  createIssuerKeyResolver,
  DEFAULT_ALGORITHMS,
  type IssuerConfig,
  type IssuerKeyResolver,
  type IssuerKeyResolverOptions,
  type JwksSource,
  type ResolvedIssuerConfig,
  resolveIssuerConfig,
  SUPPORTED_ALGORITHMS,
} from "./issuers.js";
export { decryptPrivateKey, encryptPrivateKey, type KekSource, loadKek } from "./keyEncryption.js";
export { SIGNING_KEY_ERROR_CODES, SigningKeyError, type SigningKeyErrorCode } from "./keyErrors.js";
export {
  createKeyring,
  type Keyring,
  type KeyringEvent,
  type KeyringEventType,
  type KeyringOptions,
  type KeySummary,
  type RotationResult,
  type SigningKey,
} from "./keyring.js";
export { type OwnIssuerOptions, ownIssuerConfig } from "./ownIssuer.js";
export {
  createTokenVerifier,
  type TokenVerifier,
  type TokenVerifierOptions,
  type TokenVerifierStats,
} from "./verify.js";
