/** Options of {@link discoveryDocument}. */
export interface DiscoveryOptions {
  /** The `iss` of the gateway's tokens (normally the control plane's public URL). */
  issuer: string;
  /** The control plane's public URL; the endpoints hang off it. A trailing slash is ignored. */
  controlPlaneUrl: string;
}

/** The OpenID Provider / OAuth authorization server metadata the gateway publishes. */
export interface DiscoveryDocument {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint: string;
  jwks_uri: string;
  response_types_supported: string[];
  response_modes_supported: string[];
  grant_types_supported: string[];
  code_challenge_methods_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  token_endpoint_auth_signing_alg_values_supported: string[];
  revocation_endpoint_auth_methods_supported: string[];
  subject_types_supported: string[];
  id_token_signing_alg_values_supported: string[];
}

/**
 * The document served at `/.well-known/openid-configuration` (and
 * `/.well-known/oauth-authorization-server`): a public client (`token_endpoint_auth_methods:
 * none`) uses the authorization code flow with PKCE S256 on a loopback redirect (RFC 8252), then
 * refresh tokens. Endpoints are absolute URLs under `controlPlaneUrl`.
 *
 * @example
 * ```ts
 * discoveryDocument({ issuer: "http://localhost:8080", controlPlaneUrl: "http://localhost:8080" }).jwks_uri;
 * // "http://localhost:8080/.well-known/jwks.json"
 * ```
 */
export function discoveryDocument(options: DiscoveryOptions): DiscoveryDocument {
  const { issuer, controlPlaneUrl } = options;
  if (typeof issuer !== "string" || issuer.length === 0)
    throw new TypeError("issuer must be a non-empty URL");
  let base: string;
  try {
    base = new URL(controlPlaneUrl).href.replace(/\/+$/, "");
  } catch {
    throw new TypeError(`controlPlaneUrl ${JSON.stringify(controlPlaneUrl)} is not a URL`);
  }
  return {
    issuer,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    revocation_endpoint: `${base}/oauth/revoke`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: [
      "authorization_code",
      "refresh_token",
      "urn:ietf:params:oauth:grant-type:token-exchange",
      "client_credentials",
    ],
    code_challenge_methods_supported: ["S256"],
    // "none" for the command line (PKCE); private_key_jwt (RFC 7523) for agents.
    token_endpoint_auth_methods_supported: ["none", "private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: ["ES256"],
    revocation_endpoint_auth_methods_supported: ["none"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["ES256"],
  };
}
