import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type ProtectedHeaderParameters,
} from "jose";
import { TokenError } from "../errors.js";
import { unmetRequirement } from "../federation/requirements.js";
import type { Principal } from "../types.js";
import { createVerifiedTokenCache, type TokenCacheStats } from "./cache.js";
import {
  createIssuerKeyResolver,
  type IssuerConfig,
  type IssuerKeyResolver,
  type KeySetEvent,
  type ResolvedIssuerConfig,
  resolveIssuerConfig,
} from "./issuers.js";
import { describeTime, isCompactJws, MAX_TOKEN_LENGTH, quote } from "./util.js";

/** Options of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  /** Trusted issuers; a token is matched to one by its exact `iss`. */
  issuers: IssuerConfig[];
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** Tolerance for `exp`, `nbf` and `iat` against the clock, in seconds. Default 30. */
  clockSkewSeconds?: number;
  /** Most verified tokens cached; 0 disables the cache. Default 10 000. */
  cacheSize?: number;
  /**
   * Called once per full verification (a cache miss; concurrent calls for one token share one):
   * `"valid"`, or the refusal's code (`ERR_TOKEN_EXPIRED`, …). For metrics; cache hits are in
   * {@link TokenVerifier.stats}, so the cached path calls nothing.
   */
  onVerified?: (result: "valid" | TokenError["code"]) => void;
  /** Told when a remote issuer becomes unreachable (its cached keys stay in use) and when it recovers. */
  onKeys?: (event: KeySetEvent) => void;
}

/** Counters of a {@link TokenVerifier}. */
export interface TokenVerifierStats extends TokenCacheStats {
  /** Key-set lookups, one per full verification that reached signature checking. */
  keyLookups: number;
}

/** Verifies data-plane tokens from the trusted issuers and caches the result. */
export interface TokenVerifier {
  /**
   * Full verification (after a cache lookup): signature, algorithm, issuer, audience, times, claims.
   * Concurrent calls with the same token share one verification.
   * @throws {TokenError} for every refusal; never anything else.
   */
  verify(token: string): Promise<Principal>;
  /** Synchronous cache lookup (~1 µs): the principal of a token verified before and not yet expired. */
  verifyCached(token: string): Principal | undefined;
  /** Loads every issuer's keys now. Rejects with `ERR_TOKEN_KEYS_UNAVAILABLE` naming the issuer. */
  ready(): Promise<void>;
  /** Re-reads every issuer's keys (files and URLs) and empties the cache. Rejects if any issuer failed. */
  reload(): Promise<void>;
  /** Drops cached principals that match, so their next request is verified again; returns how many. */
  revoke(predicate: (principal: Principal) => boolean): number;
  /** Empties the cache. */
  clear(): void;
  stats(): TokenVerifierStats;
  /** The trusted `iss` values. */
  readonly issuers: readonly string[];
  /** The entries and their keys, for `cosmosgate doctor token`. @internal */
  readonly steps: VerificationSteps;
}

interface TrustedIssuer {
  readonly config: ResolvedIssuerConfig;
  readonly keys: IssuerKeyResolver;
  readonly requiredClaims: string[];
}

/**
 * The checks a token passes or fails, one entry of `identity.issuers` at a time, shared by the
 * verifier and `cosmosgate doctor token`. @internal
 */
export interface VerificationSteps {
  /** The entries whose `iss` is the token's (several entries may share one issuer). */
  entriesFor(iss: unknown): readonly ResolvedIssuerConfig[];
  /** The key resolver of an entry. */
  keysOf(entry: ResolvedIssuerConfig): IssuerKeyResolver;
}

/**
 * Creates the data-plane token verifier. It picks the issuer by the token's (unverified) `iss`,
 * then verifies with jose against that issuer's key set with an algorithm allow-list, `issuer`,
 * `audience`, required `exp`/`iat`/subject claims and the clock skew, and refuses an `iat` in the
 * future (jose checks that only with `maxTokenAge`). Verified principals are frozen and cached by
 * SHA-256 of the token until their exact `exp`.
 *
 * @example
 * ```ts
 * const verifier = createTokenVerifier({
 *   issuers: [{ issuer: "https://login.microsoftonline.com/TENANT/v2.0", audience: "api://cosmosgate",
 *     jwks: { url: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys" }, subjectClaim: "oid" }],
 * });
 * await verifier.ready();
 * // per request:
 * const jwt = parseAuthorization(req.headers.authorization);
 * const principal = verifier.verifyCached(jwt) ?? (await verifier.verify(jwt));
 * ```
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const clock = options.clock ?? Date.now;
  const skew = options.clockSkewSeconds ?? 30;
  if (typeof skew !== "number" || !Number.isFinite(skew) || skew < 0) {
    throw new TypeError("clockSkewSeconds must be a non-negative number of seconds");
  }
  const cache = createVerifiedTokenCache({ maxEntries: options.cacheSize ?? 10_000, clock });
  const onVerified = options.onVerified;

  const byIssuer = buildIssuerMap(options.issuers ?? [], clock, options.onKeys);
  const allIssuers = [...byIssuer.values()].flat();
  const trusted = Object.freeze([...byIssuer.keys()]);
  const inflight = new Map<string, Promise<Principal>>();
  // Bumped by clear/revoke/reload so that a verification that started before is not cached after.
  let generation = 0;

  async function verifyFully(token: string): Promise<Principal> {
    if (!isCompactJws(token)) {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        "The credential is not a JWT (three base64url parts separated by dots). Send the access token itself — not an ID token, a refresh token or an account key.",
      );
    }
    let header: ProtectedHeaderParameters;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (cause) {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        "The token's header or payload is not base64url-encoded JSON. Send the access token exactly as the issuer gave it.",
        { cause },
      );
    }
    const alg = header.alg;
    if (typeof alg !== "string" || alg.length === 0) {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        'The token header has no "alg". Send a signed access token.',
      );
    }
    if (alg === "none" || alg.toUpperCase().startsWith("HS")) {
      throw new TokenError(
        "ERR_TOKEN_ALGORITHM",
        `The token's algorithm ${quote(alg, 16)} is never accepted: tokens must be signed with the issuer's private key (e.g. RS256 or ES256).`,
      );
    }
    const iss = unverified.iss;
    const entries = typeof iss === "string" ? byIssuer.get(iss) : undefined;
    if (entries === undefined) throw untrustedIssuer(iss, header, unverified);
    if (entries.length === 1) return verifyWith(entries[0] as TrustedIssuer, token, header, unverified);
    // Several entries share this issuer (e.g. one per CI repository): the first that accepts wins.
    const refusals: { name: string; error: TokenError }[] = [];
    for (const entry of entries) {
      try {
        return await verifyWith(entry, token, header, unverified);
      } catch (error) {
        refusals.push({ name: entry.config.name, error: asTokenError(error) });
      }
    }
    const first = refusals[0] as { error: TokenError };
    throw new TokenError(
      first.error.code,
      `No identity.issuers entry for ${quote(iss)} accepts the token: ${refusals.map((r) => `${quote(r.name)}: ${r.error.message}`).join(" | ")}`,
      { cause: first.error },
    );
  }

  async function verifyWith(
    issuer: TrustedIssuer,
    token: string,
    header: ProtectedHeaderParameters,
    unverified: JWTPayload,
  ): Promise<Principal> {
    const alg = header.alg as string;
    const config = issuer.config;
    if (!config.algorithms.includes(alg)) {
      throw new TokenError(
        "ERR_TOKEN_ALGORITHM",
        `The token's algorithm ${quote(alg, 16)} is not allowed for issuer ${quote(config.name)}; allowed: ${config.algorithms.join(", ")}. ` +
          "Ask the issuer for a token signed with an allowed algorithm, or add it to the issuer's algorithms.",
      );
    }

    const now = clock();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys.getKey, {
        algorithms: config.algorithms,
        issuer: config.issuer,
        audience: config.audience,
        typ: config.typ,
        clockTolerance: skew,
        currentDate: new Date(now),
        requiredClaims: issuer.requiredClaims,
      }));
    } catch (error) {
      throw fromJoseError(error, config, header, unverified, skew);
    }
    if ((payload.iat as number) > Math.floor(now / 1000) + skew) {
      throw new TokenError(
        "ERR_TOKEN_NOT_YET_VALID",
        `The token says it was issued at ${describeTime(payload.iat)}, in the future by more than the allowed ${skew} s clock skew. ` +
          "Check the clock of the issuer or of this gateway, then get a new token.",
      );
    }
    checkClaimsPolicy(payload, config);
    return toPrincipal(payload, config);
  }

  function untrustedIssuer(iss: unknown, header: ProtectedHeaderParameters, payload: JWTPayload): TokenError {
    const shown =
      trusted.length > 5
        ? `${trusted.slice(0, 5).join(", ")} and ${trusted.length - 5} more`
        : trusted.join(", ");
    const list = trusted.length === 0 ? "none are configured" : `trusted issuers: ${shown}`;
    const what =
      typeof iss === "string"
        ? `The token's issuer ${quote(iss)} is not trusted`
        : iss === undefined
          ? "The token has no iss claim"
          : "The token's iss claim is not a string";
    if (isGraphToken(header, payload)) {
      return new TokenError(
        "ERR_TOKEN_ISSUER",
        `${what} (${list}), and it is a token for Microsoft Graph, which only Graph can verify. Request a token for the gateway's own scope (api://<client-id>/.default) instead.`,
      );
    }
    const v1 = typeof iss === "string" ? /^https:\/\/sts\.windows\.net\/([0-9a-f-]{36})\/$/i.exec(iss) : null;
    if (v1 !== null && byIssuer.has(`https://login.microsoftonline.com/${v1[1]}/v2.0`)) {
      return new TokenError(
        "ERR_TOKEN_ISSUER",
        `${what}: it is an Entra ID v1 token, and only v2.0 tokens are trusted for tenant ${v1[1]}. Set accessTokenAcceptedVersion: 2 in the API's app manifest and get a new token, or set acceptV1: true on the entra issuer.`,
      );
    }
    return new TokenError(
      "ERR_TOKEN_ISSUER",
      `${what} (${list}). Sign in at a trusted issuer, or add this one to identity.issuers in cosmosgate.yaml.`,
    );
  }

  const verifier: TokenVerifier = {
    issuers: trusted,

    verifyCached(token) {
      return cache.get(token);
    },

    async verify(token) {
      if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        onVerified?.("ERR_TOKEN_MALFORMED");
        throw new TokenError(
          "ERR_TOKEN_MALFORMED",
          `The token must be a non-empty string of at most ${MAX_TOKEN_LENGTH} characters. Send the access token itself.`,
        );
      }
      const key = cache.keyOf(token);
      const cached = cache.getByKey(key);
      if (cached !== undefined) return cached;
      const pending = inflight.get(key);
      if (pending !== undefined) return pending;
      cache.countMiss();
      const started = generation;
      const verification = verifyFully(token)
        .then(
          (principal) => {
            if (started === generation) cache.set(key, principal);
            onVerified?.("valid");
            return principal;
          },
          (err: unknown) => {
            onVerified?.(err instanceof TokenError ? err.code : "ERR_TOKEN_SIGNATURE");
            throw err;
          },
        )
        .finally(() => {
          inflight.delete(key);
        });
      inflight.set(key, verification);
      return verification;
    },

    async ready() {
      await Promise.all(allIssuers.map((issuer) => issuer.keys.load()));
    },

    async reload() {
      const results = await Promise.allSettled(allIssuers.map((issuer) => issuer.keys.reload()));
      generation++;
      cache.clear();
      for (const result of results) if (result.status === "rejected") throw result.reason;
    },

    revoke(predicate) {
      generation++;
      return cache.revoke(predicate);
    },

    clear() {
      generation++;
      cache.clear();
    },

    stats() {
      let keyLookups = 0;
      for (const issuer of allIssuers) keyLookups += issuer.keys.stats().keyLookups;
      return { ...cache.stats(), keyLookups };
    },

    steps: {
      entriesFor: (iss) => (typeof iss === "string" ? (byIssuer.get(iss) ?? []) : []).map((e) => e.config),
      keysOf(entry) {
        const found = allIssuers.find((e) => e.config === entry);
        if (found === undefined) throw new TypeError("not an entry of this verifier");
        return found.keys;
      },
    },
  };
  return verifier;
}

/** The trusted entries by `iss`. Entries sharing an issuer must have distinct names. */
function buildIssuerMap(
  entries: readonly IssuerConfig[],
  clock: () => number,
  onKeys: ((event: KeySetEvent) => void) | undefined,
): Map<string, TrustedIssuer[]> {
  const byIssuer = new Map<string, TrustedIssuer[]>();
  for (const entry of entries) {
    const config = resolveIssuerConfig(entry);
    const same = byIssuer.get(config.issuer) ?? [];
    if (same.some((other) => other.config.name === config.name)) {
      throw new TypeError(
        `identity.issuers: issuer ${quote(config.issuer)} is listed twice with the same name ${quote(config.name)}; give each entry its own name`,
      );
    }
    same.push({
      config,
      keys: createIssuerKeyResolver(config, { clock, onKeys }),
      requiredClaims: [...new Set(["exp", "iat", config.subjectClaim])],
    });
    byIssuer.set(config.issuer, same);
  }
  return byIssuer;
}

function asTokenError(error: unknown): TokenError {
  return error instanceof TokenError
    ? error
    : new TokenError("ERR_TOKEN_SIGNATURE", "The token could not be verified.", { cause: error });
}

/**
 * What an issuer entry asks of the verified claims beyond the standard ones: no groups overage
 * (when refused) and every `require` condition. Exported for `cosmosgate doctor token`.
 * @throws {TokenError} `ERR_TOKEN_CLAIMS` (overage) or `ERR_TOKEN_REQUIREMENT`, naming the requirement.
 */
export function checkClaimsPolicy(payload: JWTPayload, config: ResolvedIssuerConfig): void {
  if (config.refuseGroupsOverage && hasGroupsOverage(payload)) {
    throw new TokenError(
      "ERR_TOKEN_CLAIMS",
      `The token of issuer ${quote(config.name)} has a groups overage: the user belongs to more groups than fit in a token, so Entra ID left them out and points at Microsoft Graph instead, which the gateway does not call. ` +
        "Administrator: assign app roles to the groups (App registrations → App roles, then Enterprise applications → Users and groups) and map the roles claim in policy.yaml, or limit the groups claim to groups assigned to the application.",
    );
  }
  const unmet = unmetRequirement(config.requirements, payload as Record<string, unknown>);
  if (unmet !== undefined) {
    throw new TokenError(
      "ERR_TOKEN_REQUIREMENT",
      `The token does not meet a requirement of issuer ${quote(config.name)}: ${unmet.requirement.description} (the token's ${unmet.requirement.claim}: ${unmet.found}). ` +
        "Sign in again in the way the requirement asks (for example with a phishing-resistant key, or from the required repository or environment), or ask the administrator.",
    );
  }
}

const GRAPH_AUDIENCES = new Set([
  "00000003-0000-0000-c000-000000000000",
  "https://graph.microsoft.com",
  "https://graph.microsoft.com/",
]);

/** A token Entra ID issued for Microsoft Graph: a `nonce` header or a Graph audience. */
export function isGraphToken(header: ProtectedHeaderParameters, payload: JWTPayload): boolean {
  if ("nonce" in header) return true;
  const aud = payload.aud;
  return Array.isArray(aud) ? aud.some((a) => GRAPH_AUDIENCES.has(a)) : GRAPH_AUDIENCES.has(aud as string);
}

/** Entra ID's groups overage: `_claim_names.groups` (JWT) or `hasgroups: true` (implicit flow). */
export function hasGroupsOverage(payload: JWTPayload): boolean {
  const names = payload._claim_names;
  if (typeof names === "object" && names !== null && "groups" in names) return true;
  return payload.hasgroups === true || payload.hasgroups === "true";
}

/** jose's verification errors → TokenError, with a message that says what to do. */
function fromJoseError(
  error: unknown,
  config: ResolvedIssuerConfig,
  header: ProtectedHeaderParameters,
  unverified: JWTPayload,
  skew: number,
): TokenError {
  if (error instanceof TokenError) return error;
  const issuer = quote(config.name);
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new TokenError(
      "ERR_TOKEN_ALGORITHM",
      `The token's algorithm ${quote(header.alg, 16)} is not allowed for issuer ${issuer}; allowed: ${config.algorithms.join(", ")}.`,
      { cause: error },
    );
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    const graph =
      "nonce" in header
        ? " Its header carries a nonce, as Entra ID tokens for Microsoft Graph do: request a token for the gateway's own scope (api://<client-id>/.default)."
        : " Get a new token from the issuer; a token altered in transit or signed by another party is refused.";
    return new TokenError(
      "ERR_TOKEN_SIGNATURE",
      `The token's signature does not verify with issuer ${issuer}'s key ${quote(header.kid ?? "(no kid)", 64)}.${graph}`,
      { cause: error },
    );
  }
  if (error instanceof errors.JWTExpired) {
    return new TokenError(
      "ERR_TOKEN_EXPIRED",
      `The token expired at ${describeTime(unverified.exp)} (${skew} s clock skew allowed). Get a new token; GatewayCredential and the Azure SDKs refresh automatically.`,
      { cause: error },
    );
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (error.reason === "missing" && claim !== "aud") {
      return new TokenError(
        "ERR_TOKEN_CLAIMS",
        `The token lacks the required ${quote(claim, 40)} claim (issuer ${issuer} requires ${["exp", "iat", config.subjectClaim].join(", ")}). Ask the issuer for an access token that carries it.`,
        { cause: error },
      );
    }
    if (error.reason === "invalid") {
      return new TokenError(
        "ERR_TOKEN_CLAIMS",
        `The token's ${quote(claim, 40)} claim must be a number (seconds since the epoch). Ask the issuer for a standard access token.`,
        { cause: error },
      );
    }
    if (claim === "nbf") {
      return new TokenError(
        "ERR_TOKEN_NOT_YET_VALID",
        `The token is not valid before ${describeTime(unverified.nbf)}, more than the allowed ${skew} s clock skew from now. Check the clock of the issuer or of this gateway.`,
        { cause: error },
      );
    }
    if (claim === "aud") {
      const found = unverified.aud === undefined ? "no audience" : `audience ${quote(unverified.aud)}`;
      return new TokenError(
        "ERR_TOKEN_AUDIENCE",
        `The token has ${found}; issuer ${issuer} tokens must be for ${config.audience.map((a) => quote(a)).join(" or ")}. ` +
          "Request a token for the gateway's scope (e.g. api://<client-id>/.default), not for another API.",
        { cause: error },
      );
    }
    if (claim === "iss") {
      return new TokenError(
        "ERR_TOKEN_ISSUER",
        `The token's issuer does not match ${issuer}. Sign in at a trusted issuer.`,
        { cause: error },
      );
    }
    if (claim === "typ") {
      return new TokenError(
        "ERR_TOKEN_CLAIMS",
        `The token's header typ ${quote(header.typ ?? "(none)", 40)} is not ${quote(config.typ)}, as issuer ${issuer} requires. Send an access token, not an ID token.`,
        { cause: error },
      );
    }
    return new TokenError(
      "ERR_TOKEN_CLAIMS",
      `The token's ${quote(claim, 40)} claim is not acceptable. Ask the issuer for a standard access token.`,
      { cause: error },
    );
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new TokenError(
      "ERR_TOKEN_MALFORMED",
      "The token is not a well-formed signed JWT. Send the access token exactly as the issuer gave it.",
      { cause: error },
    );
  }
  if (error instanceof errors.JOSENotSupported) {
    return new TokenError(
      "ERR_TOKEN_MALFORMED",
      "The token uses a JOSE feature the gateway does not support (such as a crit header). Send a standard access token.",
      { cause: error },
    );
  }
  return new TokenError(
    "ERR_TOKEN_SIGNATURE",
    `The token could not be verified with issuer ${issuer}'s keys. Get a new token; if this persists, check the issuer's key set.`,
    { cause: error },
  );
}

function claimsError(claim: string, expected: string): TokenError {
  return new TokenError(
    "ERR_TOKEN_CLAIMS",
    `The token's ${quote(claim, 40)} claim must be ${expected}. Ask the issuer for a standard access token.`,
  );
}

function optionalString(payload: JWTPayload, claim: string): string | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw claimsError(claim, "a string");
  return value;
}

function stringList(payload: JWTPayload, claim: string): string[] | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return [...value];
  throw claimsError(claim, "a string or an array of strings");
}

/**
 * Verified claims → a deeply frozen Principal. Security-relevant claims of the wrong type are
 * refused. Exported for `cosmosgate doctor token`.
 */
export function toPrincipal(payload: JWTPayload, config: ResolvedIssuerConfig): Principal {
  const sub = payload[config.subjectClaim];
  if (typeof sub !== "string" || sub.length === 0)
    throw claimsError(config.subjectClaim, "a non-empty string");

  const act = payload.act;
  let actor: { sub: string } | undefined;
  if (act !== undefined) {
    const actorSub = (act as { sub?: unknown } | null)?.sub;
    if (typeof act !== "object" || act === null || typeof actorSub !== "string" || actorSub.length === 0) {
      throw claimsError("act", "an object with a non-empty sub (RFC 8693)");
    }
    actor = Object.freeze({ sub: actorSub });
  }
  const authTime = payload.auth_time;
  if (authTime !== undefined && (typeof authTime !== "number" || !Number.isFinite(authTime))) {
    throw claimsError("auth_time", "a number (seconds since the epoch)");
  }
  const amr = stringList(payload, "amr");
  const name =
    typeof payload.name === "string"
      ? payload.name
      : typeof payload.preferred_username === "string"
        ? payload.preferred_username
        : undefined;

  let groups: string[] = [];
  for (const claim of config.groupsClaims) {
    const values = stringList(payload, claim);
    if (values !== undefined) groups = groups.length === 0 ? values : [...groups, ...values];
  }
  if (config.groups.length > 0) groups = [...groups, ...config.groups];
  if (config.groupsClaims.length + (config.groups.length > 0 ? 1 : 0) > 1) groups = [...new Set(groups)];

  let issuer = config.issuer;
  let kind: Principal["kind"] = config.kind;
  let tokenIssuer: string | undefined;
  if (config.exchange && payload.fed_iss !== undefined) {
    // A token this gateway made by token exchange: the principal is the federated one.
    issuer = optionalString(payload, "fed_iss") as string;
    tokenIssuer = config.issuer;
    const fedKind = payload.fed_kind;
    if (fedKind !== undefined && fedKind !== "user" && fedKind !== "service") {
      throw claimsError("fed_kind", '"user" or "service"');
    }
    kind = fedKind ?? "user";
  }

  const principal: Principal = {
    sub,
    kind: actor !== undefined ? "agent" : kind,
    groups: Object.freeze(groups) as string[],
    issuer,
    exp: payload.exp as number,
  };
  if (tokenIssuer !== undefined) principal.tokenIssuer = tokenIssuer;
  if (name !== undefined) principal.name = name;
  const credential = optionalString(payload, "cred");
  if (credential !== undefined) principal.credential = credential;
  const session = optionalString(payload, "sid");
  if (session !== undefined) principal.session = session;
  if (amr !== undefined) principal.amr = Object.freeze(amr) as string[];
  if (authTime !== undefined) principal.authTime = authTime as number;
  const jti = optionalString(payload, "jti");
  if (jti !== undefined) principal.jti = jti;
  if (actor !== undefined) principal.actor = actor;
  // An agent grant is honoured only in the gateway's own tokens (the data plane checks it in agents.db).
  if (config.exchange) {
    const grant = optionalString(payload, "grant");
    if (grant !== undefined) principal.grant = grant;
  }
  return Object.freeze(principal);
}
