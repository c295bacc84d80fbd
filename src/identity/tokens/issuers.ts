import { readFile } from "node:fs/promises";
import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type LocalJWKSet,
  type RemoteJWKSet,
} from "jose";
import { TokenError } from "../errors.js";
import { quote } from "./util.js";

/** Where an issuer's public keys come from. */
export type JwksSource =
  /** A JWKS JSON file, read once (asynchronously) on first use or `load()`, and again on `reload()`. */
  | { file: string }
  /**
   * The issuer's JWKS URL (https, or http on a loopback host), fetched and cached by jose's
   * `createRemoteJWKSet`. The optional durations (ms) keep jose's defaults: 5 s timeout, 30 s
   * cooldown before an unknown `kid` may trigger a refetch, 10 min cache.
   */
  | {
      url: string;
      timeoutDuration?: number;
      cooldownDuration?: number;
      cacheMaxAge?: number;
      headers?: Record<string, string>;
    }
  /**
   * In-process keys (the gateway's own keyring): `local()` is called on every key lookup and must be
   * cheap; jose's `createLocalJWKSet` is rebuilt only when it returns a different object, so return
   * the same object while the key set is unchanged (`Keyring.jwks()` does). When a token names a kid
   * that is not in the set, `refresh()` (if given) runs — at most once per `refreshCooldownMs`
   * (default 1000) — and the lookup is retried: another process sharing the store may have created
   * the key. Not expressible in cosmosgate.yaml; see `ownIssuerConfig`.
   */
  | {
      local: () => JSONWebKeySet;
      refresh?: () => Promise<void>;
      refreshCooldownMs?: number;
    };

/** A trusted token issuer, as written under `identity.issuers` in `cosmosgate.yaml`. */
export interface IssuerConfig {
  /** The exact `iss` value of its tokens. */
  issuer: string;
  /** Accepted `aud` values; a token must name at least one. */
  audience: string | string[];
  jwks: JwksSource;
  /** Signature algorithms allowed (asymmetric only). Default `["RS256", "ES256"]`. */
  algorithms?: string[];
  /** Claim that names the subject. Default `"sub"` (Entra ID: `"oid"` is stable across apps). */
  subjectClaim?: string;
  /** Claim whose string or string array becomes `Principal.groups`. Default `"roles"`. */
  rolesClaim?: string;
  /** Kind of principal its tokens name. Default `"user"`; a token with `act` is always an agent. */
  kind?: "user" | "service";
  /** Display name for messages and logs. */
  name?: string;
  /** Required JWT header `typ`, e.g. `"at+jwt"` for the gateway's own RFC 9068 tokens. Default: unchecked. */
  typ?: string;
}

/** An {@link IssuerConfig} checked and with defaults applied. */
export interface ResolvedIssuerConfig {
  readonly issuer: string;
  readonly audience: string[];
  readonly jwks: JwksSource;
  readonly algorithms: string[];
  readonly subjectClaim: string;
  readonly rolesClaim: string;
  readonly kind: "user" | "service";
  readonly name: string;
  readonly typ: string | undefined;
}

/**
 * Asymmetric JWS algorithms an issuer may allow. `none` and HS* are never accepted.
 *
 * @example
 * ```ts
 * SUPPORTED_ALGORITHMS.includes("HS256"); // false
 * ```
 */
export const SUPPORTED_ALGORITHMS: readonly string[] = Object.freeze([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);

/**
 * Algorithms allowed when an issuer names none.
 *
 * @example
 * ```ts
 * resolveIssuerConfig({ issuer, audience, jwks }).algorithms; // [...DEFAULT_ALGORITHMS]
 * ```
 */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(["RS256", "ES256"]);

/**
 * Checks an issuer entry and applies defaults. A bad entry is a configuration mistake, reported at
 * start-up as a `TypeError` naming the issuer and the field.
 *
 * @example
 * ```ts
 * const entra = resolveIssuerConfig({
 *   issuer: "https://login.microsoftonline.com/TENANT/v2.0",
 *   audience: "api://cosmosgate",
 *   jwks: { url: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys" },
 *   subjectClaim: "oid",
 * });
 * entra.algorithms; // ["RS256", "ES256"]
 * ```
 */
export function resolveIssuerConfig(config: IssuerConfig): ResolvedIssuerConfig {
  const where = `identity.issuers entry ${quote(config?.issuer)}`;
  if (typeof config?.issuer !== "string" || config.issuer.length === 0) {
    throw new TypeError(`${where}: issuer must be a non-empty string (the exact iss of its tokens)`);
  }
  const audience = typeof config.audience === "string" ? [config.audience] : config.audience;
  if (
    !Array.isArray(audience) ||
    audience.length === 0 ||
    audience.some((a) => typeof a !== "string" || !a)
  ) {
    throw new TypeError(`${where}: audience must be a non-empty string or array of non-empty strings`);
  }
  const algorithms = config.algorithms ?? [...DEFAULT_ALGORITHMS];
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError(`${where}: algorithms must be a non-empty array`);
  }
  for (const alg of algorithms) {
    if (!SUPPORTED_ALGORITHMS.includes(alg)) {
      throw new TypeError(
        `${where}: algorithm ${quote(alg)} is not allowed; use asymmetric algorithms only: ${SUPPORTED_ALGORITHMS.join(", ")}`,
      );
    }
  }
  const jwks = config.jwks as Partial<{ file: unknown; url: unknown; local: unknown }> | undefined;
  const sources = jwks
    ? [typeof jwks.file === "string", typeof jwks.url === "string", typeof jwks.local === "function"]
    : [];
  if (sources.filter(Boolean).length !== 1) {
    throw new TypeError(`${where}: jwks must be either {file: PATH} or {url: URL}`);
  }
  if (typeof jwks?.url === "string") checkJwksUrl(jwks.url, where);
  const kind = config.kind ?? "user";
  if (kind !== "user" && kind !== "service") {
    throw new TypeError(`${where}: kind must be "user" or "service"`);
  }
  return Object.freeze({
    issuer: config.issuer,
    audience: [...audience],
    jwks: config.jwks,
    algorithms: [...algorithms],
    subjectClaim: config.subjectClaim ?? "sub",
    rolesClaim: config.rolesClaim ?? "roles",
    kind,
    name: config.name ?? config.issuer,
    typ: config.typ,
  });
}

function checkJwksUrl(value: string, where: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${where}: jwks.url ${quote(value)} is not a URL`);
  }
  const loopback = url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new TypeError(`${where}: jwks.url must use https (plain http only on localhost)`);
  }
}

/** Resolves the verification key of a token from one issuer's key set. */
export interface IssuerKeyResolver {
  readonly issuer: string;
  /**
   * A jose key resolver (`jwtVerify(token, resolver.getKey, …)`). Throws {@link TokenError}:
   * `ERR_TOKEN_UNKNOWN_KEY`, `ERR_TOKEN_ALGORITHM`, `ERR_TOKEN_KEYS_UNAVAILABLE`.
   */
  readonly getKey: (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;
  /** Loads the keys now (start-up check). Throws `ERR_TOKEN_KEYS_UNAVAILABLE`. */
  load(): Promise<void>;
  /** Re-reads the file or refetches the URL. On failure the previous keys stay in use, and it throws. */
  reload(): Promise<void>;
  /** How many keys were looked up (one per full verification) and how many loads were attempted. */
  stats(): { keyLookups: number; loads: number };
}

/** Options of {@link createIssuerKeyResolver}. */
export interface IssuerKeyResolverOptions {
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** After a failed first load, refuse at once (without I/O) for this long. Default 5000 ms. */
  retryAfterMs?: number;
}

/**
 * Builds the key resolver of one issuer. `{file}`: the JWKS file is read (async) on first use or
 * `load()`, and again on `reload()`; private or symmetric keys in it are refused. `{url}`: jose's
 * `createRemoteJWKSet`. Library errors become {@link TokenError}s. Does no I/O until first used.
 *
 * @example
 * ```ts
 * const keys = createIssuerKeyResolver({ issuer, audience, jwks: { file: "./jwks.json" } });
 * await keys.load(); // fail fast at start-up
 * const { payload } = await jwtVerify(token, keys.getKey, { algorithms: ["ES256"], issuer, audience });
 * ```
 */
export function createIssuerKeyResolver(
  config: IssuerConfig | ResolvedIssuerConfig,
  options: IssuerKeyResolverOptions = {},
): IssuerKeyResolver {
  const resolved = resolveIssuerConfig(config as IssuerConfig);
  const clock = options.clock ?? Date.now;
  const retryAfterMs = options.retryAfterMs ?? 5000;
  const source = resolved.jwks;
  const counters = { keyLookups: 0, loads: 0 };
  const stats = () => ({ ...counters });

  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: TokenError | undefined;

  if ("url" in source) {
    const remote: RemoteJWKSet = createRemoteJWKSet(new URL(source.url), {
      timeoutDuration: source.timeoutDuration,
      cooldownDuration: source.cooldownDuration,
      cacheMaxAge: source.cacheMaxAge,
      headers: source.headers,
    });
    const describe = `fetched from ${source.url}`;
    const fetchKeys = async (): Promise<void> => {
      counters.loads++;
      try {
        await remote.reload();
        failure = undefined;
      } catch (error) {
        throw remember(keysUnavailable(resolved, describe, error));
      }
    };
    const remember = (error: TokenError): TokenError => {
      if (remote.jwks() === undefined) {
        failedAt = clock();
        failure = error;
      }
      return error;
    };
    return {
      issuer: resolved.issuer,
      async getKey(header, token) {
        counters.keyLookups++;
        // Never loaded and the last attempt just failed: do not hammer the issuer on every request.
        if (failure !== undefined && remote.jwks() === undefined && clock() - failedAt < retryAfterMs) {
          throw failure;
        }
        try {
          const key = await remote(header, token);
          failure = undefined;
          return key;
        } catch (error) {
          throw remember(mapResolverError(resolved, header, error, describe));
        }
      },
      load: async () => {
        if (remote.jwks() === undefined) await fetchKeys();
      },
      reload: fetchKeys,
      stats,
    };
  }

  if ("local" in source) return localResolver(resolved, source, clock, counters, stats);

  const file = source.file;
  const describe = `read from file ${file}`;
  let local: LocalJWKSet | undefined;
  let loading: Promise<void> | undefined;

  const readKeys = (): Promise<void> => {
    loading ??= (async () => {
      counters.loads++;
      try {
        local = createLocalJWKSet(parseKeySet(await readFile(file, "utf8")));
        failure = undefined;
      } catch (error) {
        failure = keysUnavailable(resolved, describe, error);
        failedAt = clock();
        throw failure;
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };

  return {
    issuer: resolved.issuer,
    async getKey(header, token) {
      counters.keyLookups++;
      if (local === undefined) {
        if (failure !== undefined && clock() - failedAt < retryAfterMs) throw failure;
        await readKeys();
      }
      try {
        return await (local as LocalJWKSet)(header, token);
      } catch (error) {
        throw mapResolverError(resolved, header, error, describe);
      }
    },
    load: async () => {
      if (local === undefined) await readKeys();
    },
    reload: readKeys,
    stats,
  };
}

/** The resolver of an in-process key set (`jwks: {local}`). */
function localResolver(
  resolved: ResolvedIssuerConfig,
  source: Extract<JwksSource, { local: unknown }>,
  clock: () => number,
  counters: { keyLookups: number; loads: number },
  stats: () => { keyLookups: number; loads: number },
): IssuerKeyResolver {
  const describe = "taken from the gateway's keyring";
  const cooldownMs = source.refreshCooldownMs ?? 1000;
  let lastSet: JSONWebKeySet | undefined;
  let local: LocalJWKSet | undefined;
  let refreshedAt = Number.NEGATIVE_INFINITY;

  /** The jose resolver of the current set; rebuilt only when `local()` returns another object. */
  const current = (): LocalJWKSet => {
    const set = source.local();
    if (set !== lastSet || local === undefined) {
      counters.loads++;
      try {
        local = createLocalJWKSet(checkKeySet(set));
      } catch (error) {
        throw keysUnavailable(resolved, describe, error);
      }
      lastSet = set;
    }
    return local;
  };

  const refresh = async (): Promise<void> => {
    refreshedAt = clock();
    try {
      await source.refresh?.();
    } catch (error) {
      throw keysUnavailable(resolved, describe, error);
    }
  };

  return {
    issuer: resolved.issuer,
    async getKey(header, token) {
      counters.keyLookups++;
      try {
        return await current()(header, token);
      } catch (error) {
        const unknownKid = error instanceof errors.JWKSNoMatchingKey;
        if (!unknownKid || source.refresh === undefined || clock() - refreshedAt < cooldownMs) {
          throw mapResolverError(resolved, header, error, describe);
        }
      }
      await refresh();
      try {
        return await current()(header, token);
      } catch (error) {
        throw mapResolverError(resolved, header, error, describe);
      }
    },
    load: async () => {
      current();
    },
    reload: async () => {
      if (source.refresh !== undefined) await refresh();
      lastSet = undefined;
      current();
    },
    stats,
  };
}

/** Parses a JWKS file, refusing private and symmetric keys (a JWKS file must hold public keys only). */
function parseKeySet(text: string): JSONWebKeySet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the file is not valid JSON");
  }
  return checkKeySet(json);
}

/** Refuses a key set that is not `{keys: [...]}` or holds private or symmetric keys. */
function checkKeySet(json: unknown): JSONWebKeySet {
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('it is not a JWKS: expected {"keys": [...]}');
  for (const key of keys) {
    if (typeof key !== "object" || key === null) throw new Error("a member of keys is not an object");
    if ((key as { kty?: unknown }).kty === "oct") {
      throw new Error("it holds a symmetric (oct) key; a JWKS for verification must hold public keys only");
    }
    if ("d" in key || "p" in key || "priv" in key) {
      throw new Error(
        "it holds private key material; publish only the public keys and keep the file 0600 elsewhere",
      );
    }
  }
  return json as JSONWebKeySet;
}

function keysUnavailable(issuer: ResolvedIssuerConfig, describe: string, error: unknown): TokenError {
  if (error instanceof TokenError) return error;
  return new TokenError(
    "ERR_TOKEN_KEYS_UNAVAILABLE",
    `The signing keys of issuer ${quote(issuer.name)} could not be ${describe}: ${reason(error)}. ` +
      "Tokens from this issuer are refused until its keys load; check identity.issuers[].jwks in cosmosgate.yaml, or retry later.",
    { cause: error },
  );
}

function reason(error: unknown): string {
  if (error instanceof errors.JWKSTimeout) return "the request timed out";
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const causeCode = (error.cause as { code?: unknown } | undefined)?.code;
  const detail =
    typeof causeCode === "string" ? ` (${causeCode})` : typeof code === "string" ? ` (${code})` : "";
  return `${error.message}${detail}`;
}

/** jose's key-selection errors → TokenError. Loading failures become ERR_TOKEN_KEYS_UNAVAILABLE. */
function mapResolverError(
  issuer: ResolvedIssuerConfig,
  header: CompactJWSHeaderParameters,
  error: unknown,
  describe: string,
): TokenError {
  if (error instanceof TokenError) return error;
  const kid = header.kid === undefined ? "(none)" : quote(header.kid, 64);
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new TokenError(
      "ERR_TOKEN_UNKNOWN_KEY",
      `The token's key id ${kid} (alg ${quote(header.alg, 16)}) is not in the key set of issuer ${quote(issuer.name)}. ` +
        "If the issuer rotated its keys just now, retry shortly; otherwise the token was not signed by this issuer.",
      { cause: error },
    );
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenError(
      "ERR_TOKEN_UNKNOWN_KEY",
      `The token's key id ${kid} matches several keys of issuer ${quote(issuer.name)}; ` +
        "the issuer must give every key a unique kid and put it in the token header.",
      { cause: error },
    );
  }
  if (error instanceof errors.JOSENotSupported) {
    return new TokenError(
      "ERR_TOKEN_ALGORITHM",
      `The token's algorithm ${quote(header.alg, 16)} cannot be used with a key set; allowed: ${issuer.algorithms.join(", ")}.`,
      { cause: error },
    );
  }
  return keysUnavailable(issuer, describe, error);
}
