import { credentialsFilePath, type StoredSession, updateCredentials } from "./credentialsFile.js";
import { GatewayCredentialError } from "./errors.js";
import { audienceOf } from "./GatewayCredential.js";
import { startLoopback } from "./loopback.js";
import { CLI_CLIENT_ID, discoverGateway, type FetchLike, requestToken, revokeToken } from "./oauth.js";
import { createPkce, randomState } from "./pkce.js";
import { normalizeGatewayUrl } from "./urls.js";

/** Options of {@link login}. */
export interface LoginOptions {
  /** The gateway's control-plane URL. */
  gateway: string;
  /**
   * Called with the authorization URL once the loopback listens: open it in a browser (or show it).
   * The login then waits for the browser to come back.
   */
  onAuthorizeUrl(url: string, info: { redirectUri: string }): void | Promise<void>;
  /** How long to wait for the browser; default 5 minutes. */
  timeoutMs?: number;
  /** The credentials file (default: see `credentialsFilePath`). */
  file?: string;
  env?: Record<string, string | undefined>;
  clock?: () => number;
  fetch?: FetchLike;
  signal?: AbortSignal;
}

/** What {@link login} stored. */
export interface LoginResult {
  session: StoredSession;
  file: string;
  /** Whether an earlier session with this gateway was replaced (and its refresh token revoked). */
  replaced: boolean;
}

/**
 * Signs in to a gateway the way native apps should (RFC 8252 with PKCE, RFC 7636): fetches the
 * discovery document, listens on `http://127.0.0.1:PORT/callback`, hands the authorization URL
 * (with an S256 code challenge and a random state) to `onAuthorizeUrl`, waits for the browser's
 * redirect, checks its state, redeems the code with the verifier and stores the session in the
 * credentials file (0600). A session it replaces is revoked, best effort.
 *
 * @throws {GatewayCredentialError} `ERR_LOGIN`, `ERR_TOKEN_ENDPOINT`, `ERR_INSECURE_URL`,
 *   `ERR_CREDENTIALS_FILE`.
 * @example
 * ```ts
 * const { session } = await login({ gateway: "http://localhost:8080", onAuthorizeUrl: (url) => console.log(url) });
 * ```
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  const gateway = normalizeGatewayUrl(options.gateway);
  const clock = options.clock ?? Date.now;
  const file = options.file ?? credentialsFilePath(options.env ?? process.env);
  const http = {
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const discovery = await discoverGateway(gateway, http);
  const pkce = createPkce();
  const state = randomState();
  const loopback = await startLoopback();
  try {
    const waiting = loopback.waitForCallback(state, {
      timeoutMs: options.timeoutMs ?? 5 * 60_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    waiting.catch(() => {}); // handled below; avoids an unhandled rejection while onAuthorizeUrl runs
    const url = new URL(discovery.authorizationEndpoint);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("client_id", CLI_CLIENT_ID);
    url.searchParams.set("redirect_uri", loopback.redirectUri);
    url.searchParams.set("code_challenge", pkce.challenge);
    url.searchParams.set("code_challenge_method", pkce.method);
    url.searchParams.set("state", state);
    await options.onAuthorizeUrl(url.href, { redirectUri: loopback.redirectUri });

    const callback = await waiting;
    let session: StoredSession;
    try {
      const started = clock();
      const tokens = await requestToken(
        discovery.tokenEndpoint,
        {
          grant_type: "authorization_code",
          code: callback.code,
          redirect_uri: loopback.redirectUri,
          client_id: CLI_CLIENT_ID,
          code_verifier: pkce.verifier,
        },
        http,
      );
      if (tokens.refreshToken === undefined) {
        throw new GatewayCredentialError(
          "ERR_TOKEN_ENDPOINT",
          `the token endpoint ${discovery.tokenEndpoint} issued no refresh_token; the session could not be kept`,
        );
      }
      session = {
        gateway,
        tokenEndpoint: discovery.tokenEndpoint,
        ...(discovery.revocationEndpoint ? { revocationEndpoint: discovery.revocationEndpoint } : {}),
        accessToken: tokens.accessToken,
        expiresAt: started + tokens.expiresIn * 1000,
        refreshToken: tokens.refreshToken,
      };
      const aud = audienceOf(tokens.accessToken);
      if (aud !== undefined) session.dataPlane = aud;
    } catch (err) {
      await callback.respond(false, `Sign-in failed: ${(err as Error).message}`);
      throw err;
    }
    let previous: StoredSession | undefined;
    try {
      await updateCredentials(file, (content) => {
        previous = content.gateways[gateway];
        content.gateways[gateway] = session;
        return content;
      });
    } catch (err) {
      await callback.respond(
        false,
        `Signed in, but the session could not be stored: ${(err as Error).message}`,
      );
      throw err;
    }
    await callback.respond(true, "Signed in — you can close this tab and return to the terminal.");
    if (previous?.revocationEndpoint && previous.refreshToken !== session.refreshToken) {
      await revokeToken(previous.revocationEndpoint, previous.refreshToken, {
        ...http,
        timeoutMs: 5000,
      }).catch(() => {});
    }
    return { session, file, replaced: previous !== undefined };
  } finally {
    await loopback.close();
  }
}
