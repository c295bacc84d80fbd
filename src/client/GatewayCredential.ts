import { decodeJwt } from "jose";
import {
  type CredentialsFileContent,
  credentialsFilePath,
  readCredentials,
  type StoredSession,
  withCredentialsLock,
  writeCredentials,
} from "./credentialsFile.js";
import { GatewayCredentialError } from "./errors.js";
import { CLI_CLIENT_ID, type FetchLike, requestToken } from "./oauth.js";
import { normalizeGatewayUrl } from "./urls.js";

/** The Azure `AccessToken` shape (`@azure/core-auth`), typed structurally. */
export interface AccessToken {
  token: string;
  /** ms since the epoch. */
  expiresOnTimestamp: number;
  /** When a caching pipeline should ask again, ms since the epoch (two minutes before expiry). */
  refreshAfterTimestamp?: number;
  tokenType?: "Bearer";
}

/** The parts of the Azure `GetTokenOptions` this credential honours. */
export interface GetTokenOptions {
  abortSignal?: {
    readonly aborted: boolean;
    addEventListener(type: "abort", listener: () => void): void;
    removeEventListener(type: "abort", listener: () => void): void;
  };
  requestOptions?: { timeout?: number };
}

/** Options of {@link GatewayCredential}. */
export interface GatewayCredentialOptions {
  /**
   * The gateway's control-plane URL, as given to `cosmosgate login --gateway`. Default:
   * `$COSMOSGATE_GATEWAY`, else the only gateway in the credentials file.
   */
  gateway?: string;
  /** The credentials file. Default: `$COSMOSGATE_CREDENTIALS`, else `$XDG_CONFIG_HOME/cosmosgate/credentials.json`. */
  file?: string;
  /** Environment to read the defaults from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number;
  /** For tests and custom agents (default global `fetch`). */
  fetch?: FetchLike;
}

/** A token with more than this much life left is used as is; below it, it is refreshed. */
export const REFRESH_WINDOW_MS = 2 * 60_000;
/** After a failed refresh while the old token is still valid, wait this long before trying again. */
const RETRY_AFTER_FAILURE_MS = 10_000;

/**
 * An Azure `TokenCredential` that signs requests with the session of `cosmosgate login`: give it to
 * the Cosmos DB SDK and point the SDK at the gateway's data plane.
 *
 * `getToken` returns the stored access token while more than two minutes of it remain; otherwise it
 * redeems the refresh token at the gateway's token endpoint, stores the rotated refresh token and
 * returns the new access token. Concurrent calls share one refresh, and a lock on the credentials
 * file keeps other processes (another app, `cosmosgate token`) from redeeming the same refresh token
 * (the gateway would take a second use for theft and end the session). Scopes are ignored: the
 * token is for the gateway whose session is used.
 *
 * @example
 * ```ts
 * import { CosmosClient } from "@azure/cosmos";
 * import { GatewayCredential } from "cosmosgate/client";
 *
 * const client = new CosmosClient({ endpoint: "https://localhost:8081", aadCredentials: new GatewayCredential() });
 * ```
 */
export class GatewayCredential {
  readonly #options: GatewayCredentialOptions;
  readonly #clock: () => number;
  #session?: StoredSession;
  #refreshing?: Promise<StoredSession>;
  #retryAfter = 0;

  constructor(options: GatewayCredentialOptions = {}) {
    this.#options = { ...options };
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * A bearer token for the gateway's data plane.
   *
   * @throws {GatewayCredentialError} `ERR_NOT_SIGNED_IN` / `ERR_GATEWAY_AMBIGUOUS` (named
   *   `CredentialUnavailableError`), `ERR_SESSION_ENDED` (named `AuthenticationRequiredError`: sign in
   *   again), `ERR_TOKEN_ENDPOINT`, `ERR_CREDENTIALS_FILE`.
   */
  async getToken(_scopes?: string | string[], options: GetTokenOptions = {}): Promise<AccessToken> {
    const now = this.#clock();
    const held = this.#session;
    if (
      held &&
      (held.expiresAt - now > REFRESH_WINDOW_MS || (now < this.#retryAfter && held.expiresAt > now))
    ) {
      return accessToken(held);
    }
    if (this.#refreshing === undefined) {
      const timeoutMs = options.requestOptions?.timeout;
      this.#refreshing = this.#refresh(timeoutMs).finally(() => {
        this.#refreshing = undefined;
      });
    }
    return accessToken(await abortable(this.#refreshing, options.abortSignal));
  }

  /**
   * The stored session this credential uses, as it is in the file (not refreshed).
   *
   * @throws {GatewayCredentialError} `ERR_NOT_SIGNED_IN`, `ERR_GATEWAY_AMBIGUOUS`, `ERR_CREDENTIALS_FILE`.
   * @example (await new GatewayCredential().session()).dataPlane // "https://localhost:8081"
   */
  async session(): Promise<StoredSession> {
    const file = this.#file();
    const content = await readCredentials(file);
    const gateway = this.#gateway(content, file);
    const session = content.gateways[gateway];
    if (session === undefined) throw notSignedIn(gateway, file);
    return session;
  }

  /** The credentials file this credential reads. */
  get file(): string {
    return this.#file();
  }

  #file(): string {
    return this.#options.file ?? credentialsFilePath(this.#options.env ?? process.env);
  }

  /** The gateway to use: the option, `$COSMOSGATE_GATEWAY`, or the only stored one. */
  #gateway(content: CredentialsFileContent, file: string): string {
    const chosen = this.#options.gateway ?? (this.#options.env ?? process.env).COSMOSGATE_GATEWAY;
    if (chosen !== undefined && chosen !== "") return normalizeGatewayUrl(chosen);
    const stored = Object.keys(content.gateways);
    if (stored.length === 1) return stored[0];
    if (stored.length === 0) {
      throw new GatewayCredentialError(
        "ERR_NOT_SIGNED_IN",
        `not signed in to any cosmosgate gateway (no session in ${file}); run \`cosmosgate login --gateway URL\` first`,
      );
    }
    throw new GatewayCredentialError(
      "ERR_GATEWAY_AMBIGUOUS",
      `signed in to several gateways (${stored.join(", ")}); choose one with new GatewayCredential({ gateway }), ` +
        "--gateway, or the environment variable COSMOSGATE_GATEWAY",
    );
  }

  async #refresh(timeoutMs: number | undefined): Promise<StoredSession> {
    const file = this.#file();
    const unlocked = await readCredentials(file);
    const gateway = this.#gateway(unlocked, file);
    const fresh = unlocked.gateways[gateway];
    if (fresh && fresh.expiresAt - this.#clock() > REFRESH_WINDOW_MS) {
      this.#session = fresh;
      return fresh;
    }
    return withCredentialsLock(file, async () => {
      // Re-read under the lock: another process may have refreshed (or logged out) meanwhile.
      const content = await readCredentials(file);
      const stored = content.gateways[gateway];
      if (stored === undefined) {
        this.#session = undefined;
        throw notSignedIn(gateway, file);
      }
      const now = this.#clock();
      if (stored.expiresAt - now > REFRESH_WINDOW_MS) {
        this.#session = stored;
        return stored;
      }
      let tokens: Awaited<ReturnType<typeof requestToken>>;
      try {
        tokens = await requestToken(
          stored.tokenEndpoint,
          { grant_type: "refresh_token", refresh_token: stored.refreshToken, client_id: CLI_CLIENT_ID },
          {
            ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
            // Bounded well under the lock's staleness limit, so no one takes the lock over mid-refresh.
            timeoutMs: Math.min(timeoutMs ?? 15_000, 30_000),
          },
        );
      } catch (err) {
        if (err instanceof GatewayCredentialError && err.oauthError === "invalid_grant") {
          this.#session = undefined;
          throw new GatewayCredentialError(
            "ERR_SESSION_ENDED",
            `the session with ${gateway} has ended (expired, revoked, or the user was disabled); ` +
              `sign in again: cosmosgate login --gateway ${gateway}`,
            { cause: err, oauthError: "invalid_grant" },
          );
        }
        // A transient failure while the old token still works: keep using it for a while.
        if (stored.expiresAt > this.#clock()) {
          this.#session = stored;
          this.#retryAfter = this.#clock() + RETRY_AFTER_FAILURE_MS;
          return stored;
        }
        throw err;
      }
      const refreshed: StoredSession = {
        ...stored,
        accessToken: tokens.accessToken,
        expiresAt: now + tokens.expiresIn * 1000,
        refreshToken: tokens.refreshToken ?? stored.refreshToken,
      };
      const aud = audienceOf(tokens.accessToken);
      if (aud !== undefined) refreshed.dataPlane = aud;
      content.gateways[gateway] = refreshed;
      await writeCredentials(file, content);
      this.#session = refreshed;
      this.#retryAfter = 0;
      return refreshed;
    });
  }
}

function notSignedIn(gateway: string, file: string): GatewayCredentialError {
  return new GatewayCredentialError(
    "ERR_NOT_SIGNED_IN",
    `not signed in to ${gateway} (no session in ${file}); run \`cosmosgate login --gateway ${gateway}\` first`,
  );
}

function accessToken(s: StoredSession): AccessToken {
  return {
    token: s.accessToken,
    expiresOnTimestamp: s.expiresAt,
    refreshAfterTimestamp: s.expiresAt - REFRESH_WINDOW_MS,
    tokenType: "Bearer",
  };
}

/**
 * The `aud` of a JWT, read without verifying it (only to remember the data plane URL).
 *
 * @example audienceOf(token) // "https://localhost:8081"
 */
export function audienceOf(jwt: string): string | undefined {
  const claims = decodeClaims(jwt);
  const aud = claims?.aud;
  if (typeof aud === "string") return aud;
  if (Array.isArray(aud) && typeof aud[0] === "string") return aud[0];
  return undefined;
}

/**
 * The claims of a JWT, decoded WITHOUT verifying its signature: for display and bookkeeping only,
 * never for a decision (the gateway verifies every token it receives).
 *
 * @example decodeClaims(session.accessToken)?.sub
 */
export function decodeClaims(jwt: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(jwt) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function abortable<T>(promise: Promise<T>, signal: GetTokenOptions["abortSignal"]): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    signal.addEventListener("abort", onAbort);
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function abortError(): Error {
  const e = new Error("getToken was aborted");
  e.name = "AbortError";
  return e;
}
