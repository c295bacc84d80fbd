import { GatewayCredentialError } from "./errors.js";
import { secureUrl } from "./urls.js";

/** The OAuth client id of the cosmosgate command line (a public client: no secret, PKCE instead). */
export const CLI_CLIENT_ID = "cosmosgate-cli";

/** The `fetch` the client uses; injectable for tests. */
export type FetchLike = typeof fetch;

/** The parts of the gateway's `/.well-known/openid-configuration` the client uses. */
export interface GatewayDiscovery {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  revocationEndpoint?: string;
  jwksUri?: string;
}

/** A successful answer of the token endpoint. */
export interface TokenSet {
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  /** The next refresh token (rotated on every use); absent only if the gateway sent none. */
  refreshToken?: string;
}

/** Options shared by the requests of this module. */
export interface RequestOptions {
  fetch?: FetchLike;
  /** Default 15 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const MAX_BODY = 64 * 1024;

/**
 * Fetches and checks the gateway's discovery document. Every endpoint must be https (or http to this
 * machine).
 *
 * @throws {GatewayCredentialError} `ERR_TOKEN_ENDPOINT` (unreachable, not JSON, fields missing),
 *   `ERR_INSECURE_URL`.
 * @example const d = await discoverGateway("http://localhost:8080"); d.tokenEndpoint
 */
export async function discoverGateway(
  gateway: string,
  options: RequestOptions = {},
): Promise<GatewayDiscovery> {
  const url = `${gateway.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const res = await send(
    url,
    { method: "GET", headers: { accept: "application/json" } },
    options,
    "discovery",
  );
  const body = await readJson(res, url, "discovery");
  if (res.status !== 200 || body === undefined) {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `${url} answered ${res.status}${body === undefined ? " without a JSON document" : ""}; is ${gateway} a cosmosgate control plane URL (controlPlane.publicUrl)?`,
    );
  }
  const need = (key: string): string => {
    const v = body[key];
    if (typeof v !== "string" || v === "") {
      throw new GatewayCredentialError(
        "ERR_TOKEN_ENDPOINT",
        `the discovery document at ${url} has no ${key}; is the gateway's control plane up to date?`,
      );
    }
    return v;
  };
  const discovery: GatewayDiscovery = {
    issuer: need("issuer"),
    authorizationEndpoint: secureUrl(need("authorization_endpoint"), "the authorization endpoint").href,
    tokenEndpoint: secureUrl(need("token_endpoint"), "the token endpoint").href,
  };
  if (typeof body.revocation_endpoint === "string" && body.revocation_endpoint !== "") {
    discovery.revocationEndpoint = secureUrl(body.revocation_endpoint, "the revocation endpoint").href;
  }
  if (typeof body.jwks_uri === "string") discovery.jwksUri = body.jwks_uri;
  return discovery;
}

/**
 * POSTs a token request (form-encoded) and returns the tokens.
 *
 * @throws {GatewayCredentialError} `ERR_TOKEN_ENDPOINT` with `oauthError` set when the gateway
 *   answered an OAuth error (`invalid_grant`, ...); without it for network or format problems.
 * @example await requestToken(endpoint, { grant_type: "refresh_token", refresh_token, client_id: CLI_CLIENT_ID })
 */
export async function requestToken(
  tokenEndpoint: string,
  params: Record<string, string>,
  options: RequestOptions = {},
): Promise<TokenSet> {
  const res = await send(
    tokenEndpoint,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(params).toString(),
    },
    options,
    "token",
  );
  const body = await readJson(res, tokenEndpoint, "token");
  if (res.status !== 200) {
    const error = typeof body?.error === "string" ? body.error : undefined;
    const description =
      typeof body?.error_description === "string" ? clean(body.error_description) : undefined;
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the token endpoint ${tokenEndpoint} refused the request (${res.status}${error ? ` ${clean(error)}` : ""})${description ? `: ${description}` : ""}`,
      error !== undefined ? { oauthError: clean(error) } : undefined,
    );
  }
  const accessToken = body?.access_token;
  const tokenType = body?.token_type;
  const expiresIn = body?.expires_in;
  const refreshToken = body?.refresh_token;
  if (
    typeof accessToken !== "string" ||
    accessToken === "" ||
    typeof tokenType !== "string" ||
    tokenType.toLowerCase() !== "bearer" ||
    typeof expiresIn !== "number" ||
    !Number.isFinite(expiresIn) ||
    expiresIn <= 0 ||
    (refreshToken !== undefined && (typeof refreshToken !== "string" || refreshToken === ""))
  ) {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the token endpoint ${tokenEndpoint} answered 200 without {access_token, token_type: "Bearer", expires_in}`,
    );
  }
  return { accessToken, expiresIn, ...(refreshToken !== undefined ? { refreshToken } : {}) };
}

/**
 * Revokes a refresh token (RFC 7009). Resolves when the gateway answered 200.
 *
 * @throws {GatewayCredentialError} `ERR_TOKEN_ENDPOINT`.
 * @example await revokeToken(session.revocationEndpoint, session.refreshToken)
 */
export async function revokeToken(
  revocationEndpoint: string,
  refreshToken: string,
  options: RequestOptions = {},
): Promise<void> {
  const res = await send(
    revocationEndpoint,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token: refreshToken,
        token_type_hint: "refresh_token",
        client_id: CLI_CLIENT_ID,
      }).toString(),
    },
    options,
    "revocation",
  );
  const body = await readJson(res, revocationEndpoint, "revocation").catch(() => undefined);
  if (res.status !== 200) {
    const error = typeof body?.error === "string" ? ` ${clean(body.error)}` : "";
    const description =
      typeof body?.error_description === "string" ? `: ${clean(body.error_description)}` : "";
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the revocation endpoint ${revocationEndpoint} answered ${res.status}${error}${description}`,
    );
  }
}

async function send(
  url: string,
  init: RequestInit,
  options: RequestOptions,
  what: string,
): Promise<Response> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    // redirect: "error": tokens are never carried to wherever a redirect points.
    return await (options.fetch ?? fetch)(url, { ...init, signal, redirect: "error" });
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason ?? err;
    const reason = timeout.aborted
      ? `no answer within ${Math.round(timeoutMs / 1000)} s`
      : describeNetworkError(err);
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `cannot reach the ${what} endpoint ${url}: ${reason}`,
      {
        cause: err,
      },
    );
  }
}

async function readJson(
  res: Response,
  url: string,
  what: string,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new GatewayCredentialError(
      "ERR_TOKEN_ENDPOINT",
      `the ${what} endpoint ${url} broke off its answer: ${describeNetworkError(err)}`,
      { cause: err },
    );
  }
  if (text.length > MAX_BODY) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === "string") {
    return `${cause.code}${cause.message ? ` (${String(cause.message)})` : ""}`;
  }
  if (cause && typeof cause.message === "string" && cause.message !== "") return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** Text from the server shown to the person: printable, bounded. */
export function clean(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}]/gu, " ").slice(0, 300);
}
