import { randomUUID } from "node:crypto";
import { type JWTPayload, SignJWT } from "jose";
import type { Keyring } from "./keyring.js";

/** Options of {@link createTokenIssuer}. */
export interface TokenIssuerOptions {
  /** Signs; only `signer()` is used, and `tokenTtlMs` (when present) bounds `ttlMs`. */
  keyring: Pick<Keyring, "signer"> & Partial<Pick<Keyring, "tokenTtlMs">>;
  /** `iss`: the control plane's public URL. */
  issuer: string;
  /** `aud`: the data plane's public URL. */
  audience: string;
  /** Token lifetime in ms (at most the keyring's `tokenTtlMs`, so a key outlives its tokens in the JWKS). */
  ttlMs: number;
  /** Milliseconds since the epoch. */
  clock: () => number;
}

/** Who the token is for and how they signed in. */
export interface IssueInput {
  /** The user name (`sub`). */
  sub: string;
  /** Group names (`groups`), matched by `group:` members in policy. */
  groups: readonly string[];
  /** The session (`sid`) — what the revocation checker and refresh tokens hang on. */
  sessionId: string;
  /** The WebAuthn credential the session was signed in with (`cred`). */
  credentialId: string;
  /** Authentication methods (`amr`), e.g. `["hwk", "user"]`. */
  amr: readonly string[];
  /** When the user tapped their key, **ms** since the epoch (becomes `auth_time` in seconds). */
  authTime: number;
  /**
   * When the session ends (its maximum age), **ms** since the epoch. The token then expires no later
   * than the session: `exp = min(iat + ttl, floor(sessionExpiresAt / 1000))`, and nothing is issued
   * for a session that has already ended.
   */
  sessionExpiresAt?: number;
  /** More claims (e.g. `act` for an agent, `name`). Registered and gateway claims cannot be overridden. */
  extra?: Record<string, unknown>;
}

/** An OAuth token response body (RFC 6749 §5.1), plus `jti` and `exp` for the caller's records. */
export interface IssuedToken {
  access_token: string;
  token_type: "Bearer";
  /** Seconds until `exp`. */
  expires_in: number;
  jti: string;
  /** Seconds since the epoch. */
  exp: number;
}

/** A principal vouched for by a trusted federated issuer, to be carried by a gateway token. */
export interface ExchangeInput {
  /** The federated subject (`sub` of the new token). */
  sub: string;
  /** Its groups as the federated issuer's entry mapped them. */
  groups: readonly string[];
  /** The federated principal's kind. */
  kind: "user" | "service";
  /** The federated issuer (`fed_iss`). */
  federatedIssuer: string;
  /** The federated token's `exp` (seconds): the new token expires no later. */
  notAfter: number;
  name?: string;
  amr?: readonly string[];
  /** Seconds since the epoch, as in the federated token. */
  authTime?: number;
}

/** An agent acting under a person's grant (src/agents): who the person is and what confirmed the grant. */
export interface AgentIssueInput {
  /** The person's user name (`sub`). */
  sub: string;
  /** The person's current groups (`groups`): the data plane evaluates the person's policy with them. */
  groups: readonly string[];
  /** The key whose tap confirmed the grant (`cred`): removing or suspending it stops the agent. */
  credentialId: string;
  /** The `amr` of that tap. */
  amr: readonly string[];
  /** When the grant was confirmed, **ms** since the epoch (`auth_time`, in seconds). */
  authTime: number;
  /** The agent, `act.sub` (RFC 8693): "agent:NAME". */
  actor: string;
  /** The grant id (`grant`). */
  grant: string;
  /** `scope`: the grant's actions, space-separated. */
  scope: string;
  /** When the grant expires, **ms** since the epoch: the token expires no later. */
  notAfter: number;
}

/** Issues the gateway's own access tokens. */
export interface TokenIssuer {
  issue(input: IssueInput): Promise<IssuedToken>;
  /**
   * An agent's token under a grant: `sub`, `groups`, `cred`, `amr`, `auth_time` of the person and
   * the confirming tap, `act: {sub: actor}`, `grant`, `scope`; no session (`sid`). It expires at
   * `min(now + ttl, notAfter)`.
   * @throws {TypeError} for a malformed input; {@link RangeError} when `notAfter` is not after the current second.
   */
  issueForAgent(input: AgentIssueInput): Promise<IssuedToken>;
  /**
   * Token exchange (RFC 8693): a gateway token for a federated principal — `sub`, `groups`,
   * `fed_iss` (the federated issuer), `fed_kind`, and `amr`/`auth_time`/`name` when known; no
   * session or key. It expires at `min(now + ttl, notAfter)`.
   * @throws {RangeError} when `notAfter` is not after the current second.
   */
  issueExchanged(input: ExchangeInput): Promise<IssuedToken>;
}

/** Claims set by the issuer itself; `extra` may not name them. */
const RESERVED = new Set([
  "iss",
  "sub",
  "aud",
  "exp",
  "nbf",
  "iat",
  "jti",
  "auth_time",
  "amr",
  "sid",
  "cred",
  "groups",
  "client_id",
  "scope",
  "cnf",
  "fed_iss",
  "fed_kind",
  "grant",
]);

/**
 * Creates the issuer of the gateway's access tokens: RFC 9068 JWTs signed ES256 by the keyring's
 * current key, header `{alg: "ES256", kid, typ: "at+jwt"}`, claims `iss, sub, aud, exp, iat, jti
 * (UUID), auth_time (s), amr, sid, cred, groups, client_id: "cosmosgate"`. Verify them with the
 * token verifier and {@link ownIssuerConfig} (which requires `typ: at+jwt`).
 *
 * @throws {TypeError} on construction when `ttlMs` exceeds the keyring's `tokenTtlMs`; from
 *   `issue()` when an input is malformed or `extra` names a reserved claim.
 * @throws {RangeError} from `issue()` when `sessionExpiresAt` is not after the current second (the
 *   session has ended: check it before issuing).
 * @example
 * ```ts
 * const tokens = createTokenIssuer({ keyring, issuer: "https://gate.example.com",
 *   audience: "https://cosmos.gate.example.com", ttlMs: 10 * 60_000, clock: Date.now });
 * const body = await tokens.issue({ sub: "ada", groups: ["readers"], sessionId: session.id,
 *   credentialId: session.credentialId, amr: ["hwk", "user"], authTime: session.authTime,
 *   sessionExpiresAt: session.expiresAt });
 * reply.send(body); // { access_token, token_type: "Bearer", expires_in: 600, jti, exp }
 * ```
 */
export function createTokenIssuer(options: TokenIssuerOptions): TokenIssuer {
  const { keyring, issuer, audience, ttlMs, clock } = options;
  if (typeof issuer !== "string" || issuer.length === 0)
    throw new TypeError("issuer must be a non-empty URL");
  if (typeof audience !== "string" || audience.length === 0) {
    throw new TypeError("audience must be a non-empty URL");
  }
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw new TypeError("ttlMs must be at least 1000 ms");
  }
  if (keyring.tokenTtlMs !== undefined && ttlMs > keyring.tokenTtlMs) {
    throw new TypeError(
      `ttlMs (${ttlMs}) exceeds the keyring's tokenTtlMs (${keyring.tokenTtlMs}): a retired key would leave the JWKS before its tokens expire`,
    );
  }
  const ttlSeconds = Math.floor(ttlMs / 1000);

  const sign = async (payload: JWTPayload, iat: number, exp: number): Promise<IssuedToken> => {
    const jti = randomUUID();
    payload.iss = issuer;
    payload.aud = audience;
    payload.exp = exp;
    payload.iat = iat;
    payload.jti = jti;
    payload.client_id = "cosmosgate";
    const { kid, key } = await keyring.signer();
    const accessToken = await new SignJWT(payload)
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .sign(key);
    return { access_token: accessToken, token_type: "Bearer", expires_in: exp - iat, jti, exp };
  };

  return {
    async issueExchanged(input) {
      const { sub, groups, kind, federatedIssuer, notAfter, name, amr, authTime } = input;
      if (typeof sub !== "string" || sub.length === 0) throw new TypeError("sub must be a non-empty string");
      if (!isStringList(groups)) throw new TypeError("groups must be an array of strings");
      if (kind !== "user" && kind !== "service") throw new TypeError('kind must be "user" or "service"');
      if (typeof federatedIssuer !== "string" || federatedIssuer.length === 0) {
        throw new TypeError("federatedIssuer must be a non-empty string");
      }
      const iat = Math.floor(clock() / 1000);
      if (typeof notAfter !== "number" || !(notAfter > iat)) {
        throw new RangeError("the federated token has expired: nothing is issued for it");
      }
      const payload: JWTPayload = {
        sub,
        groups: [...groups],
        fed_iss: federatedIssuer,
        fed_kind: kind,
      };
      if (name !== undefined) payload.name = name;
      if (amr !== undefined) payload.amr = [...amr];
      if (authTime !== undefined) payload.auth_time = authTime;
      return sign(payload, iat, Math.min(iat + ttlSeconds, Math.floor(notAfter)));
    },

    async issueForAgent(input) {
      const { sub, groups, credentialId, amr, authTime, actor, grant, scope, notAfter } = input;
      for (const [name, value] of [
        ["sub", sub],
        ["credentialId", credentialId],
        ["actor", actor],
        ["grant", grant],
        ["scope", scope],
      ] as const) {
        if (typeof value !== "string" || value.length === 0)
          throw new TypeError(`${name} must be a non-empty string`);
      }
      if (!isStringList(groups)) throw new TypeError("groups must be an array of strings");
      if (!isStringList(amr)) throw new TypeError("amr must be an array of strings");
      if (typeof authTime !== "number" || !Number.isFinite(authTime)) {
        throw new TypeError("authTime must be ms since the epoch");
      }
      const iat = Math.floor(clock() / 1000);
      const end = typeof notAfter === "number" ? Math.floor(notAfter / 1000) : Number.NaN;
      if (!(end > iat)) throw new RangeError("the grant has expired: no access token is issued for it");
      const payload: JWTPayload = {
        sub,
        groups: [...groups],
        cred: credentialId,
        amr: [...amr],
        auth_time: Math.floor(authTime / 1000),
        act: { sub: actor },
        grant,
        scope,
      };
      return sign(payload, iat, Math.min(iat + ttlSeconds, end));
    },

    async issue(input) {
      const { sub, groups, sessionId, credentialId, amr, authTime, sessionExpiresAt, extra } = input;
      if (typeof sub !== "string" || sub.length === 0) throw new TypeError("sub must be a non-empty string");
      if (typeof sessionId !== "string" || sessionId.length === 0)
        throw new TypeError("sessionId is required");
      if (typeof credentialId !== "string" || credentialId.length === 0) {
        throw new TypeError("credentialId is required");
      }
      if (!isStringList(groups)) throw new TypeError("groups must be an array of strings");
      if (!isStringList(amr)) throw new TypeError("amr must be an array of strings");
      if (typeof authTime !== "number" || !Number.isFinite(authTime)) {
        throw new TypeError("authTime must be ms since the epoch");
      }
      if (
        sessionExpiresAt !== undefined &&
        (typeof sessionExpiresAt !== "number" || !Number.isFinite(sessionExpiresAt))
      ) {
        throw new TypeError("sessionExpiresAt must be ms since the epoch");
      }
      const payload: JWTPayload = {};
      if (extra !== undefined) {
        for (const name of Object.keys(extra)) {
          if (RESERVED.has(name)) throw new TypeError(`extra may not set the ${name} claim`);
          payload[name] = extra[name];
        }
      }
      const iat = Math.floor(clock() / 1000);
      let exp = iat + ttlSeconds;
      if (sessionExpiresAt !== undefined) {
        const sessionEnd = Math.floor(sessionExpiresAt / 1000);
        if (sessionEnd <= iat) {
          throw new RangeError("the session has reached its maximum age: no access token is issued for it");
        }
        exp = Math.min(exp, sessionEnd);
      }
      payload.sub = sub;
      payload.auth_time = Math.floor(authTime / 1000);
      payload.amr = [...amr];
      payload.sid = sessionId;
      payload.cred = credentialId;
      payload.groups = [...groups];
      return sign(payload, iat, exp);
    },
  };
}

function isStringList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
