/**
 * Data-plane token verification: take the JWT out of the Authorization header, verify it against a
 * trusted issuer's keys, and cache the resulting Principal.
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
export {
  createTokenVerifier,
  type TokenVerifier,
  type TokenVerifierOptions,
  type TokenVerifierStats,
} from "./verify.js";
