import type { IssuerConfig } from "./issuers.js";
import type { Keyring } from "./keyring.js";

/** Options of {@link ownIssuerConfig}. */
export interface OwnIssuerOptions {
  keyring: Pick<Keyring, "jwks" | "refresh">;
  /** The `iss` the token issuer uses (the control plane's public URL). */
  issuer: string;
  /** The `aud` the token issuer uses (the data plane's public URL). */
  audience: string;
}

/**
 * The verifier's entry for the gateway's own tokens: keys straight from the keyring (no file, no
 * HTTP; a kid this process has not seen makes it re-read the store), ES256 only, header `typ`
 * `at+jwt` required (RFC 9068), `groups` as the principal's groups. The principal then carries
 * `credential` (cred), `session` (sid), `amr` and `authTime` (auth_time) too.
 *
 * @example
 * ```ts
 * const verifier = createTokenVerifier({
 *   issuers: [ownIssuerConfig({ keyring, issuer: config.controlPlane.publicUrl, audience: config.dataPlane.publicUrl }),
 *     ...config.identity.issuers],
 * });
 * ```
 */
export function ownIssuerConfig(options: OwnIssuerOptions): IssuerConfig {
  const { keyring, issuer, audience } = options;
  return {
    issuer,
    audience,
    jwks: { local: () => keyring.jwks(), refresh: () => keyring.refresh() },
    algorithms: ["ES256"],
    subjectClaim: "sub",
    groupsClaim: "groups",
    kind: "user",
    exchange: true,
    flavor: "gateway",
    name: "cosmosgate",
    typ: "at+jwt",
  };
}
