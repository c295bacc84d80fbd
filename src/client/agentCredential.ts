import { randomUUID } from "node:crypto";
import { type JWK, SignJWT } from "jose";
import { type AgentKey, agentKeyFromJwk, agentKeyPath, readAgentKeyFile } from "./agentKey.js";
import { GatewayCredentialError } from "./errors.js";
import type { AccessToken, GetTokenOptions } from "./GatewayCredential.js";
import { discoverGateway, type FetchLike, requestToken } from "./oauth.js";
import { normalizeGatewayUrl, secureUrl } from "./urls.js";

/** The `client_assertion_type` of RFC 7523 private_key_jwt. */
export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** How long an assertion this client makes is valid: 60 s (the gateway accepts at most 5 minutes). */
export const ASSERTION_LIFETIME_S = 60;

/** Options of {@link AgentCredential}. */
export interface AgentCredentialOptions {
  /** The gateway's control-plane URL (where `/oauth/token` is). */
  gateway: string;
  /** The grant id the person confirmed for this agent (`gr_…`): the OAuth `client_id`. */
  grant: string;
  /**
   * The agent's private key file (a JWK, mode 0600). Default, with `agent`:
   * `$XDG_CONFIG_HOME/cosmosgate/agents/AGENT.jwk`.
   */
  keyFile?: string;
  /** The agent's private key as a JWK, when it is not in a file. */
  key?: JWK;
  /** The agent's name, to find its key file when `keyFile` and `key` are absent. */
  agent?: string;
  /** The token endpoint; default: from the gateway's discovery document. It is also the assertion's `aud`. */
  tokenEndpoint?: string;
  /** Environment for the default key file (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number;
  /** For tests and custom agents (default global `fetch`). */
  fetch?: FetchLike;
}

/** What {@link createClientAssertion} signs. */
export interface ClientAssertionInput {
  key: Pick<AgentKey, "privateKey" | "thumbprint">;
  /** The grant id: `iss` and `sub`. */
  grant: string;
  /** The token endpoint URL: `aud`. */
  audience: string;
  /** Seconds since the epoch; default now. */
  now?: number;
  /** Lifetime in seconds; default {@link ASSERTION_LIFETIME_S}. */
  lifetime?: number;
  /** Default a random UUID. */
  jti?: string;
}

/**
 * Signs an RFC 7523 client assertion with the agent's key: header `{alg: "ES256", kid: <thumbprint>,
 * typ: "JWT"}`, claims `iss = sub = grant`, `aud = token endpoint`, `iat`, `exp = iat + 60 s`, a
 * random `jti` (the gateway accepts each jti once).
 *
 * @example
 * ```ts
 * const assertion = await createClientAssertion({ key, grant: "gr_…", audience: "https://gate.example.com/oauth/token" });
 * ```
 */
export async function createClientAssertion(input: ClientAssertionInput): Promise<string> {
  const iat = input.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: input.key.thumbprint, typ: "JWT" })
    .setIssuer(input.grant)
    .setSubject(input.grant)
    .setAudience(input.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (input.lifetime ?? ASSERTION_LIFETIME_S))
    .setJti(input.jti ?? randomUUID())
    .sign(input.key.privateKey);
}

/**
 * An Azure `TokenCredential` for an AI agent acting under a person's grant: it proves the agent
 * holds its key with a client assertion (RFC 7523 `private_key_jwt`, ES256) at the gateway's
 * `/oauth/token` (`grant_type=client_credentials`, `client_id` = the grant id) and caches the
 * short-lived access token it gets until two minutes before it expires (or half its life, for a
 * short one). Concurrent calls share one request. The token names the person (`sub`) and the agent
 * (`act`); the gateway allows only what both the grant and the person's current rights allow.
 *
 * The private key is read once from its file (which must be 0600 and the caller's own), imported
 * non-extractable, and never sent anywhere: only signed assertions leave the process.
 *
 * @example
 * ```ts
 * import { CosmosClient } from "@azure/cosmos";
 * import { AgentCredential } from "cosmosgate/client";
 *
 * const credential = new AgentCredential({ gateway: "https://gate.example.com", grant: "gr_…", agent: "report-bot" });
 * const client = new CosmosClient({ endpoint: "https://cosmos.gate.example.com", aadCredentials: credential });
 * ```
 */
export class AgentCredential {
  readonly #options: AgentCredentialOptions;
  readonly #clock: () => number;
  readonly #gateway: string;
  #key?: Promise<AgentKey>;
  #endpoint?: Promise<string>;
  #token?: { token: string; expiresAt: number; refreshAt: number };
  #pending?: Promise<AccessToken>;

  constructor(options: AgentCredentialOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("new AgentCredential({ gateway, grant, keyFile | key | agent })");
    }
    if (typeof options.grant !== "string" || options.grant.length === 0) {
      throw new TypeError("AgentCredential: grant is required (the grant id the person confirmed)");
    }
    if (options.keyFile === undefined && options.key === undefined && options.agent === undefined) {
      throw new TypeError("AgentCredential: give keyFile, key or agent (whose key file is then used)");
    }
    this.#options = { ...options };
    this.#clock = options.clock ?? Date.now;
    this.#gateway = normalizeGatewayUrl(options.gateway);
  }

  /** The grant this credential acts under. */
  get grant(): string {
    return this.#options.grant;
  }

  /** The agent key's thumbprint (the `kid` of its assertions), once the key is read. */
  async thumbprint(): Promise<string> {
    return (await this.#loadKey()).thumbprint;
  }

  /**
   * A bearer token for the gateway's data plane (scopes are ignored: the token is for the gateway).
   *
   * @throws {GatewayCredentialError} `ERR_AGENT_KEY` (the key file is missing or unsafe),
   *   `ERR_AGENT_REFUSED` (the gateway refused the grant or the assertion: `invalid_client`),
   *   `ERR_TOKEN_ENDPOINT` (network, discovery), `ERR_INSECURE_URL`.
   */
  async getToken(_scopes?: string | string[], options: GetTokenOptions = {}): Promise<AccessToken> {
    const held = this.#token;
    if (held !== undefined && this.#clock() < held.refreshAt) return toAccessToken(held);
    if (this.#pending === undefined) {
      this.#pending = this.#fetchToken(options.requestOptions?.timeout).finally(() => {
        this.#pending = undefined;
      });
    }
    return abortable(this.#pending, options.abortSignal);
  }

  async #fetchToken(timeoutMs: number | undefined): Promise<AccessToken> {
    const key = await this.#loadKey();
    const endpoint = await this.#tokenEndpoint(timeoutMs);
    const assertion = await createClientAssertion({
      key,
      grant: this.#options.grant,
      audience: endpoint,
      now: Math.floor(this.#clock() / 1000),
    });
    const requested = this.#clock();
    let tokens: Awaited<ReturnType<typeof requestToken>>;
    try {
      tokens = await requestToken(
        endpoint,
        {
          grant_type: "client_credentials",
          client_id: this.#options.grant,
          client_assertion_type: JWT_BEARER_ASSERTION,
          client_assertion: assertion,
        },
        { ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}), timeoutMs: timeoutMs ?? 15_000 },
      );
    } catch (err) {
      if (err instanceof GatewayCredentialError && err.oauthError === "invalid_client") {
        this.#token = undefined;
        throw new GatewayCredentialError(
          "ERR_AGENT_REFUSED",
          `the gateway ${this.#gateway} refused agent grant ${this.#options.grant}: ${err.message}`,
          { cause: err, oauthError: "invalid_client" },
        );
      }
      throw err;
    }
    const lifeMs = tokens.expiresIn * 1000;
    const expiresAt = requested + lifeMs;
    const held = {
      token: tokens.accessToken,
      expiresAt,
      refreshAt: expiresAt - Math.min(120_000, lifeMs / 2),
    };
    this.#token = held;
    return toAccessToken(held);
  }

  #loadKey(): Promise<AgentKey> {
    if (this.#key === undefined) {
      const { key, keyFile, agent, env } = this.#options;
      this.#key =
        key !== undefined
          ? agentKeyFromJwk(key)
          : readAgentKeyFile(keyFile ?? agentKeyPath(agent as string, env !== undefined ? { env } : {}));
      // A failed read is retried on the next call (the person may fix the file's mode).
      this.#key.catch(() => {
        this.#key = undefined;
      });
    }
    return this.#key;
  }

  #tokenEndpoint(timeoutMs: number | undefined): Promise<string> {
    if (this.#endpoint === undefined) {
      const given = this.#options.tokenEndpoint;
      this.#endpoint =
        given !== undefined
          ? Promise.resolve(secureUrl(given, "the token endpoint").href)
          : discoverGateway(this.#gateway, {
              ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
              timeoutMs: timeoutMs ?? 15_000,
            }).then((d) => d.tokenEndpoint);
      this.#endpoint.catch(() => {
        this.#endpoint = undefined;
      });
    }
    return this.#endpoint;
  }
}

function toAccessToken(t: { token: string; expiresAt: number; refreshAt: number }): AccessToken {
  return {
    token: t.token,
    expiresOnTimestamp: t.expiresAt,
    refreshAfterTimestamp: t.refreshAt,
    tokenType: "Bearer",
  };
}

function abortable<T>(promise: Promise<T>, signal: GetTokenOptions["abortSignal"]): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new Error("getToken was aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("getToken was aborted"));
    signal.addEventListener("abort", onAbort);
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
