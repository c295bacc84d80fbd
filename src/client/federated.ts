import { decodeJwt } from "jose";
import { GatewayCredentialError } from "./errors.js";
import type { AccessToken } from "./GatewayCredential.js";
import { type FetchLike, requestToken } from "./oauth.js";
import { normalizeGatewayUrl, secureUrl } from "./urls.js";

/** Options of {@link FederatedCredential}. */
export interface FederatedCredentialOptions {
  /**
   * Returns a fresh access token from your identity provider for the gateway's audience (Entra ID,
   * Okta, a CI's OIDC token — e.g. {@link gitHubActionsToken}). Called again only when the token it
   * returned last has less than two minutes left.
   */
  getToken: () => Promise<string> | string;
  /**
   * Exchange each federated token at this gateway's control plane (`POST /oauth/token`, RFC 8693)
   * for a gateway token carrying the same principal. Without it, the federated token is sent to
   * the data plane as it is (the gateway accepts both).
   */
  exchange?: { gateway: string };
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number;
  /** For tests and custom agents (default global `fetch`). */
  fetch?: FetchLike;
}

const REFRESH_WINDOW_MS = 2 * 60_000;
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

/**
 * An Azure `TokenCredential` for federated identity: it takes tokens from your identity provider
 * (or CI) and hands them to the Cosmos DB SDK — directly, or exchanged at the gateway for a
 * gateway token. Tokens are cached until two minutes before they expire; concurrent calls share
 * one fetch. Scopes are ignored.
 *
 * @example
 * ```ts
 * // In a GitHub Actions job with `permissions: id-token: write`, no secret anywhere:
 * const credential = new FederatedCredential({ getToken: () => gitHubActionsToken("https://cosmos.example.com") });
 * const client = new CosmosClient({ endpoint: "https://cosmos.example.com", aadCredentials: credential });
 * ```
 */
export class FederatedCredential {
  readonly #options: FederatedCredentialOptions;
  readonly #clock: () => number;
  readonly #tokenEndpoint: string | undefined;
  #current?: AccessToken;
  #pending?: Promise<AccessToken>;

  constructor(options: FederatedCredentialOptions) {
    if (typeof options?.getToken !== "function") {
      throw new TypeError(
        "FederatedCredential needs getToken: a function returning your identity provider's token",
      );
    }
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#tokenEndpoint =
      options.exchange !== undefined
        ? `${normalizeGatewayUrl(options.exchange.gateway)}/oauth/token`
        : undefined;
  }

  /** The token to send: cached while more than two minutes of it remain. */
  async getToken(_scopes?: string | string[]): Promise<AccessToken> {
    const current = this.#current;
    if (current !== undefined && current.expiresOnTimestamp - this.#clock() > REFRESH_WINDOW_MS)
      return current;
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(): Promise<AccessToken> {
    const federated = await this.#options.getToken();
    if (typeof federated !== "string" || federated.split(".").length !== 3) {
      throw new GatewayCredentialError(
        "ERR_TOKEN_ENDPOINT",
        "getToken did not return a JWT access token: return the token string your identity provider issued",
      );
    }
    let token = federated;
    let expiresOnTimestamp = expiryOf(federated);
    if (this.#tokenEndpoint !== undefined) {
      const set = await requestToken(
        this.#tokenEndpoint,
        { grant_type: TOKEN_EXCHANGE, subject_token: federated, subject_token_type: JWT_TYPE },
        this.#options.fetch !== undefined ? { fetch: this.#options.fetch } : {},
      );
      token = set.accessToken;
      expiresOnTimestamp = this.#clock() + set.expiresIn * 1000;
    }
    const accessToken: AccessToken = {
      token,
      expiresOnTimestamp,
      refreshAfterTimestamp: expiresOnTimestamp - REFRESH_WINDOW_MS,
      tokenType: "Bearer",
    };
    this.#current = accessToken;
    return accessToken;
  }
}

function expiryOf(token: string): number {
  let exp: unknown;
  try {
    exp = decodeJwt(token).exp;
  } catch {
    exp = undefined;
  }
  if (typeof exp !== "number") {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      "the identity provider's token has no exp claim; the gateway accepts only expiring access tokens",
    );
  }
  return exp * 1000;
}

/** Options of {@link gitHubActionsToken}. */
export interface GitHubActionsTokenOptions {
  /** Default `process.env` (reads ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN). */
  env?: Record<string, string | undefined>;
  fetch?: FetchLike;
}

/**
 * Asks the GitHub Actions runner for the job's OIDC token with the given audience — the token the
 * gateway's `github-actions` preset accepts. The job needs `permissions: id-token: write`.
 *
 * @throws {GatewayCredentialError} `ERR_NOT_SIGNED_IN` outside GitHub Actions (or without the
 *   permission), `ERR_TOKEN_ENDPOINT` when the runner's endpoint fails.
 * @example
 * ```ts
 * const jwt = await gitHubActionsToken("https://cosmos.example.com");
 * ```
 */
export async function gitHubActionsToken(
  audience: string,
  options: GitHubActionsTokenOptions = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!requestUrl || !requestToken) {
    throw new GatewayCredentialError(
      "ERR_NOT_SIGNED_IN",
      "no GitHub Actions OIDC endpoint: run inside a GitHub Actions job whose workflow grants `permissions: id-token: write`",
    );
  }
  const url = secureUrl(requestUrl, "ACTIONS_ID_TOKEN_REQUEST_URL");
  url.searchParams.set("audience", audience);
  const fetchImpl = options.fetch ?? (fetch as FetchLike);
  let res: Awaited<ReturnType<FetchLike>>;
  try {
    res = await fetchImpl(url.href, {
      headers: { authorization: `bearer ${requestToken}`, accept: "application/json" },
      signal: AbortSignal.timeout(15_000),
    });
  } catch (cause) {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the GitHub Actions OIDC endpoint could not be reached (${(cause as Error).message})`,
      { cause },
    );
  }
  let body: { value?: unknown } | undefined;
  try {
    body = (await res.json()) as { value?: unknown };
  } catch {
    body = undefined;
  }
  if (res.status !== 200 || typeof body?.value !== "string") {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the GitHub Actions OIDC endpoint answered ${res.status} without a token; check the job's id-token permission`,
    );
  }
  return body.value;
}
