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
import { discoveryUrlOf, fetchDiscovery, insecureUrlProblem } from "../federation/discovery.js";
import { compileRequirements, type Requirement, type RequirementSpec } from "../federation/requirements.js";
import { quote } from "./util.js";

/** How the remote key set of an issuer is fetched (durations in ms; jose's defaults apply when absent). */
export interface RemoteKeyOptions {
  /** Time-out of one fetch. Default 5000. */
  timeoutDuration?: number;
  /** Before an unknown `kid` may trigger a refetch. Default 30 000. */
  cooldownDuration?: number;
  /** Keys are refetched after this long. Default 600 000. */
  cacheMaxAge?: number;
  headers?: Record<string, string>;
}

/** Where an issuer's public keys come from. */
export type JwksSource =
  /** A JWKS JSON file, read once (asynchronously) on first use or `load()`, and again on `reload()`. */
  | { file: string }
  /**
   * The issuer's JWKS URL (https, or http on a loopback host), fetched and cached by jose's
   * `createRemoteJWKSet`. The optional durations (ms) keep jose's defaults: 5 s timeout, 30 s
   * cooldown before an unknown `kid` may trigger a refetch, 10 min cache.
   */
  | ({ url: string } & RemoteKeyOptions)
  /**
   * OpenID Connect discovery: the document at this URL (or, with `true`, at
   * `{issuer}/.well-known/openid-configuration`) must name the configured issuer; its `jwks_uri` is
   * then fetched as with `{url}`. Discovery runs once, on first use or `load()`.
   */
  | ({ discovery: string | true } & RemoteKeyOptions)
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
  /**
   * Claim(s) whose string or string array values become `Principal.groups` (matched by `group:`
   * members in policy), e.g. `roles`, `groups`, `wids`. Default `"roles"`.
   */
  groupsClaim?: string | string[];
  /** Older name of `groupsClaim`; give one or the other. */
  rolesClaim?: string;
  /** Groups every accepted token of this entry gets, besides those of its claims. */
  groups?: readonly string[];
  /** Claim conditions a token must meet (see {@link RequirementSpec}); refused with ERR_TOKEN_REQUIREMENT. */
  require?: Record<string, RequirementSpec>;
  /**
   * Refuse tokens whose groups did not fit (Entra ID's groups overage: `_claim_names.groups` or
   * `hasgroups`) instead of treating them as having no groups. Default false.
   */
  refuseGroupsOverage?: boolean;
  /**
   * The gateway's own issuer only: honour the claims of tokens made by token exchange (`fed_iss`,
   * `fed_kind`), so the principal names the federated issuer it came from.
   */
  exchange?: boolean;
  /** Which kind of identity provider this entry describes, for diagnostics. Default `"custom"`. */
  flavor?: IssuerFlavor;
  /** Entra ID: the tenant ID the entry was made for (diagnostics). */
  tenant?: string;
  /** Kind of principal its tokens name. Default `"user"`; a token with `act` is always an agent. */
  kind?: "user" | "service";
  /** Display name for messages and logs. */
  name?: string;
  /** Required JWT header `typ`, e.g. `"at+jwt"` for the gateway's own RFC 9068 tokens. Default: unchecked. */
  typ?: string;
}

/** Kinds of identity provider the presets know, for diagnostics (`cosmosgate doctor`). */
export type IssuerFlavor = "custom" | "gateway" | "entra-v2" | "entra-v1" | "okta" | "github-actions";

/** An {@link IssuerConfig} checked and with defaults applied. */
export interface ResolvedIssuerConfig {
  readonly issuer: string;
  readonly audience: string[];
  readonly jwks: JwksSource;
  readonly algorithms: string[];
  readonly subjectClaim: string;
  readonly groupsClaims: readonly string[];
  readonly groups: readonly string[];
  readonly requirements: readonly Requirement[];
  readonly refuseGroupsOverage: boolean;
  readonly exchange: boolean;
  readonly kind: "user" | "service";
  readonly name: string;
  readonly typ: string | undefined;
  readonly flavor: IssuerFlavor;
  readonly tenant: string | undefined;
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
export function resolveIssuerConfig(input: IssuerConfig | ResolvedIssuerConfig): ResolvedIssuerConfig {
  if (resolvedConfigs.has(input)) return input as ResolvedIssuerConfig;
  const config = input as IssuerConfig;
  const where = `identity.issuers entry ${quote(config?.name ?? config?.issuer)}`;
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
  const jwks = config.jwks as
    | Partial<{ file: unknown; url: unknown; discovery: unknown; local: unknown }>
    | undefined;
  const sources = jwks
    ? [
        typeof jwks.file === "string",
        typeof jwks.url === "string",
        typeof jwks.discovery === "string" || jwks.discovery === true,
        typeof jwks.local === "function",
      ]
    : [];
  if (sources.filter(Boolean).length !== 1) {
    throw new TypeError(`${where}: jwks must be one of {file: PATH}, {url: URL} or {discovery: URL}`);
  }
  for (const field of ["url", "discovery"] as const) {
    const value = jwks?.[field];
    if (typeof value !== "string") continue;
    const problem = insecureUrlProblem(value);
    if (problem !== undefined) throw new TypeError(`${where}: jwks.${field} ${problem}`);
  }
  const kind = config.kind ?? "user";
  if (kind !== "user" && kind !== "service") {
    throw new TypeError(`${where}: kind must be "user" or "service"`);
  }
  if (config.groupsClaim !== undefined && config.rolesClaim !== undefined) {
    throw new TypeError(`${where}: give groupsClaim or its older name rolesClaim, not both`);
  }
  const claimed = config.groupsClaim ?? config.rolesClaim ?? "roles";
  const groupsClaims = typeof claimed === "string" ? [claimed] : claimed;
  if (!Array.isArray(groupsClaims) || groupsClaims.some((c) => typeof c !== "string" || !c)) {
    throw new TypeError(`${where}: groupsClaim must be a claim name or a list of claim names`);
  }
  const groups = config.groups ?? [];
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string" || !g)) {
    throw new TypeError(`${where}: groups must be a list of group names`);
  }
  const resolved: ResolvedIssuerConfig = Object.freeze({
    issuer: config.issuer,
    audience: [...audience],
    jwks: config.jwks,
    algorithms: [...algorithms],
    subjectClaim: config.subjectClaim ?? "sub",
    groupsClaims: Object.freeze([...groupsClaims]),
    groups: Object.freeze([...groups]),
    requirements: Object.freeze(compileRequirements(config.require, where)),
    refuseGroupsOverage: config.refuseGroupsOverage ?? false,
    exchange: config.exchange ?? false,
    kind,
    name: config.name ?? config.issuer,
    typ: config.typ,
    flavor: config.flavor ?? "custom",
    tenant: config.tenant,
  });
  resolvedConfigs.add(resolved);
  return resolved;
}

/** Configs made by {@link resolveIssuerConfig}: resolving one again returns it unchanged. */
const resolvedConfigs = new WeakSet<object>();

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
  /** The keys now in use (public JWKS), or undefined before the first successful load. */
  keySet(): JSONWebKeySet | undefined;
  /** Where the keys come from: the file path, the JWKS URL (after discovery), or a description. */
  location(): string;
}

/** What a remote key set reports, for the log: the issuer became unreachable, or reachable again. */
export interface KeySetEvent {
  type: "stale" | "recovered";
  issuer: string;
  /** The issuer's display name. */
  name: string;
  /** For "stale": why the fetch failed. */
  problem?: string;
}

/** Options of {@link createIssuerKeyResolver}. */
export interface IssuerKeyResolverOptions {
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /**
   * After a failed first load, refuse at once (without I/O) for this long; after a failed refresh
   * of a remote key set, serve the cached keys without asking the issuer for this long. Default 5000 ms.
   */
  retryAfterMs?: number;
  /** Told when a remote issuer becomes unreachable (cached keys stay in use) and when it recovers. */
  onKeys?: (event: KeySetEvent) => void;
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
  const resolved = resolveIssuerConfig(config);
  const clock = options.clock ?? Date.now;
  const retryAfterMs = options.retryAfterMs ?? 5000;
  const source = resolved.jwks;
  const counters = { keyLookups: 0, loads: 0 };
  const stats = () => ({ ...counters });

  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: TokenError | undefined;

  if ("url" in source || "discovery" in source) {
    return remoteResolver(resolved, source, { clock, retryAfterMs, counters, stats, onKeys: options.onKeys });
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
    keySet: () => local?.jwks(),
    location: () => file,
  };
}

interface RemoteContext {
  clock: () => number;
  retryAfterMs: number;
  counters: { keyLookups: number; loads: number };
  stats: () => { keyLookups: number; loads: number };
  onKeys: ((event: KeySetEvent) => void) | undefined;
}

/**
 * The resolver of a remote key set (`{url}` or `{discovery}`), on jose's `createRemoteJWKSet`
 * (cache, cooldown, one refetch for an unknown kid, time-out). What it adds: discovery, and
 * resilience — when a refetch fails (the issuer is unreachable, slow or answers garbage) the keys
 * fetched before stay in use, the `onKeys` listener hears it once, and for `retryAfterMs` no
 * request waits on the issuer again.
 */
function remoteResolver(
  resolved: ResolvedIssuerConfig,
  source: Extract<JwksSource, { url: string }> | Extract<JwksSource, { discovery: string | true }>,
  context: RemoteContext,
): IssuerKeyResolver {
  const { clock, retryAfterMs, counters, stats, onKeys } = context;
  const discoveryUrl =
    "discovery" in source
      ? source.discovery === true
        ? discoveryUrlOf(resolved.issuer)
        : source.discovery
      : undefined;
  let jwksUrl: string | undefined = "url" in source ? source.url : undefined;
  let remote: RemoteJWKSet | undefined;
  let discovering: Promise<RemoteJWKSet> | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: TokenError | undefined;
  let staleUntil = Number.NEGATIVE_INFINITY;
  let outage = false;
  let cachedSet: JSONWebKeySet | undefined;
  let cachedLocal: LocalJWKSet | undefined;

  const describe = () => (jwksUrl ? `fetched from ${jwksUrl}` : `discovered at ${discoveryUrl}`);

  const ensure = (): Promise<RemoteJWKSet> => {
    if (remote !== undefined) return Promise.resolve(remote);
    discovering ??= (async () => {
      try {
        if (jwksUrl === undefined) {
          counters.loads++;
          const doc = await fetchDiscovery(discoveryUrl as string, {
            expectedIssuer: resolved.issuer,
            timeoutMs: source.timeoutDuration,
          });
          jwksUrl = doc.jwks_uri;
        }
        remote = createRemoteJWKSet(new URL(jwksUrl), {
          timeoutDuration: source.timeoutDuration,
          cooldownDuration: source.cooldownDuration,
          cacheMaxAge: source.cacheMaxAge,
          headers: source.headers,
        });
        return remote;
      } finally {
        discovering = undefined;
      }
    })();
    return discovering;
  };

  /** A failure before any key was ever loaded: remembered so requests do not hammer the issuer. */
  const remember = (error: TokenError): TokenError => {
    if (remote?.jwks() === undefined) {
      failedAt = clock();
      failure = error;
    }
    return error;
  };

  /** Resolves from the keys fetched before (the issuer being unreachable now). */
  const fromCache = async (
    set: JSONWebKeySet,
    header: CompactJWSHeaderParameters,
    token: FlattenedJWSInput,
  ): Promise<CryptoKey> => {
    if (set !== cachedSet || cachedLocal === undefined) {
      cachedLocal = createLocalJWKSet(set);
      cachedSet = set;
    }
    try {
      return await cachedLocal(header, token);
    } catch (error) {
      throw mapResolverError(resolved, header, error, describe());
    }
  };

  const fetchKeys = async (): Promise<void> => {
    let set: RemoteJWKSet;
    try {
      set = await ensure();
    } catch (error) {
      throw remember(keysUnavailable(resolved, describe(), error));
    }
    counters.loads++;
    try {
      await set.reload();
      failure = undefined;
    } catch (error) {
      throw remember(keysUnavailable(resolved, describe(), error));
    }
  };

  return {
    issuer: resolved.issuer,
    async getKey(header, token) {
      counters.keyLookups++;
      // Never loaded and the last attempt just failed: do not hammer the issuer on every request.
      if (failure !== undefined && remote?.jwks() === undefined && clock() - failedAt < retryAfterMs) {
        throw failure;
      }
      let set: RemoteJWKSet;
      try {
        set = await ensure();
      } catch (error) {
        throw remember(keysUnavailable(resolved, describe(), error));
      }
      const known = set.jwks();
      if (known !== undefined && clock() < staleUntil) return fromCache(known, header, token);
      try {
        const key = await set(header, token);
        failure = undefined;
        if (outage) {
          outage = false;
          onKeys?.({ type: "recovered", issuer: resolved.issuer, name: resolved.name });
        }
        return key;
      } catch (error) {
        const selection =
          error instanceof errors.JWKSNoMatchingKey ||
          error instanceof errors.JWKSMultipleMatchingKeys ||
          error instanceof errors.JOSENotSupported;
        const cached = set.jwks();
        if (selection || cached === undefined) {
          throw remember(mapResolverError(resolved, header, error, describe()));
        }
        // The refetch failed: keep using the keys fetched before, and say so once.
        staleUntil = clock() + retryAfterMs;
        if (!outage) {
          outage = true;
          onKeys?.({
            type: "stale",
            issuer: resolved.issuer,
            name: resolved.name,
            problem: reason(error),
          });
        }
        return fromCache(cached, header, token);
      }
    },
    load: async () => {
      if (remote?.jwks() === undefined) await fetchKeys();
    },
    reload: fetchKeys,
    stats,
    keySet: () => remote?.jwks(),
    location: () => jwksUrl ?? `(discovery at ${discoveryUrl})`,
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
    keySet: () => lastSet,
    location: () => describe,
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
