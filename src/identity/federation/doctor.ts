/**
 * `cosmosgate doctor`: explains why a token is accepted or refused, check by check, with the
 * classic causes recognized by name and a fix for each. It reuses the verifier's own pieces — the
 * entries and key resolvers of {@link createTokenVerifier} (`steps`), {@link checkClaimsPolicy}'s
 * rules, {@link toPrincipal} and jose — and finally asks the real verifier for its verdict, so the
 * doctor never says "accepted" about a token the gateway refuses. I/O only through the issuers' key
 * resolvers ({@link diagnoseToken}) or through `fetch` and the JWKS file ({@link diagnoseIssuer}).
 */
import { readFile } from "node:fs/promises";
import {
  type CryptoKey,
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from "jose";
import { TokenError, type TokenErrorCode } from "../errors.js";
import {
  createIssuerKeyResolver,
  type IssuerConfig,
  type IssuerKeyResolver,
  type ResolvedIssuerConfig,
  resolveIssuerConfig,
  SUPPORTED_ALGORITHMS,
} from "../tokens/issuers.js";
import { MAX_TOKEN_LENGTH, quote } from "../tokens/util.js";
import {
  createTokenVerifier,
  hasGroupsOverage,
  toPrincipal,
  type VerificationSteps,
} from "../tokens/verify.js";
import type { Principal } from "../types.js";
import { discoveryUrlOf, fetchDiscovery } from "./discovery.js";

/** The outcome of one check. `warn`: accepted, but worth knowing; `skip`: could not be checked. */
export type CheckStatus = "pass" | "fail" | "warn" | "skip";

/**
 * The causes the doctor recognizes, by stable id (for `--json` consumers and tests). The first
 * group are the classic reasons for "invalid token"; the rest name every other refusal.
 */
export const DOCTOR_CAUSES = Object.freeze({
  "graph-token": "the token is for Microsoft Graph, not for this API",
  "entra-version-mismatch": "an Entra ID token of the other version (v1 vs v2.0) than the one configured",
  "hmac-algorithm": "the token is signed with a shared secret (HMAC), not with the issuer's private key",
  "unsigned-token": "the token is not signed at all (alg none)",
  "wrong-audience": "the token is for another API (audience)",
  "clock-skew": "a clock is off: the token's times are just outside the allowed clock skew",
  expired: "the token has expired",
  "unknown-issuer": "the token's issuer is not trusted",
  "unknown-kid": "the token's signing key is not in the issuer's current key set",
  "requirement-unmet": "the token does not meet a requirement of its issuer entry",
  "groups-overage": "Entra ID left the groups out of the token (groups overage)",
  "issuer-unreachable": "the issuer's keys could not be loaded",
  malformed: "the credential is not a signed JWT",
  "id-token": "this looks like an ID token, not an access token",
  "algorithm-not-allowed": "the token's algorithm is not allowed for its issuer",
  "bad-signature": "the signature does not verify",
  "missing-claim": "a required claim is missing",
  "invalid-claims": "a claim has the wrong type",
  "wrong-type": "the token's header typ is not the one its issuer requires",
  "no-roles": "the token is accepted, but policy.yaml gives its principal no role",
  "discovery-mismatch": "the discovery document names another issuer",
} as const);

/** A stable cause id; see {@link DOCTOR_CAUSES}. */
export type DoctorCause = keyof typeof DOCTOR_CAUSES;

/** One check as the gateway makes it (or a diagnostic one), with its outcome. */
export interface DoctorCheck {
  /** Stable id: `shape`, `signing`, `issuer`, `algorithm`, `key`, `signature`, `exp`, `nbf`, `iat`, `audience`, `typ`, `subject`, `groups-overage`, `require:CLAIM`, `principal`, `roles`, `verdict`. */
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do, on `fail` and `warn`. */
  fix?: string;
  cause?: DoctorCause;
}

/** A cause found, with the fix of the first check that found it. */
export interface DoctorFinding {
  cause: DoctorCause;
  /** {@link DOCTOR_CAUSES}' text. */
  summary: string;
  fix: string;
}

/** The principal an accepted token names. */
export interface DoctorPrincipal {
  sub: string;
  kind: Principal["kind"];
  groups: string[];
  /** The policy roles it holds (when a policy was given). */
  roles?: string[];
  issuer: string;
  tokenIssuer?: string;
  name?: string;
}

/** What {@link diagnoseToken} found. */
export interface TokenDiagnosis {
  /** Whether the gateway's verifier accepts the token. */
  ok: boolean;
  checks: DoctorCheck[];
  /** The causes found, in the order of the checks. */
  causes: DoctorCause[];
  findings: DoctorFinding[];
  /** The token's `iss` (unverified). */
  issuer?: string;
  /** The name of the issuer entry the checks ran against (the one that accepts, if any). */
  entry?: string;
  /** The principal, when the token is accepted. */
  principal?: DoctorPrincipal;
  /** The refusal as the gateway reports it (401), when refused. */
  refusal?: { code: TokenErrorCode; message: string };
  /** The token described without revealing it: its first 12 characters and length. */
  token: { prefix: string; length: number };
}

/** Options of {@link diagnoseToken}. */
export interface DiagnoseTokenOptions {
  /** The trusted issuers, as the gateway has them (expanded presets, own issuer). */
  issuers: IssuerConfig[];
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** As the gateway's `identity.tokens.clockSkew`, in seconds. Default 30. */
  clockSkewSeconds?: number;
  /** The policy roles a principal holds; given, the doctor reports them. */
  roles?: (principal: Principal) => readonly string[];
}

const GRAPH_AUDIENCES = new Set([
  "00000003-0000-0000-c000-000000000000",
  "https://graph.microsoft.com",
  "https://graph.microsoft.com/",
]);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ENTRA_V1 = /^https:\/\/sts\.(?:windows\.net|chinacloudapi\.cn)\/([^/]+)\/$/i;
const ENTRA_V2 =
  /^https:\/\/login\.(?:microsoftonline\.(?:com|us)|partner\.microsoftonline\.cn|chinacloudapi\.cn)\/([^/]+)\/v2\.0$/i;
/** An expired or early token within this much beyond the skew is reported as a clock problem. */
const SMALL_OFFSET_SECONDS = 300;

/**
 * Walks every check the gateway makes on `token`, in order, and keeps walking after a failure where
 * that still tells something (times and audience after a bad signature), so that every problem shows
 * at once. Never throws for a bad token; throws a `TypeError` for a bad issuer configuration (as the
 * gateway would at start-up).
 *
 * @example
 * ```ts
 * const d = await diagnoseToken(jwt, { issuers, clockSkewSeconds: 30 });
 * for (const c of d.checks) console.log(c.status, c.title, c.detail);
 * d.causes; // ["graph-token"]
 * ```
 */
export async function diagnoseToken(token: string, options: DiagnoseTokenOptions): Promise<TokenDiagnosis> {
  const clock = options.clock ?? Date.now;
  const skew = options.clockSkewSeconds ?? 30;
  const verifier = createTokenVerifier({
    issuers: options.issuers,
    clock,
    clockSkewSeconds: skew,
    cacheSize: 0,
  });
  const all = verifier.issuers.flatMap((iss) => verifier.steps.entriesFor(iss));
  const text = typeof token === "string" ? token : "";
  const checks: DoctorCheck[] = [];
  const result: TokenDiagnosis = {
    ok: false,
    checks,
    causes: [],
    findings: [],
    token: { prefix: text.slice(0, 12), length: text.length },
  };

  const shape = checkShape(text);
  checks.push(shape.check);
  if (shape.header !== undefined && shape.payload !== undefined) {
    const header = shape.header;
    const payload = shape.payload;
    if (typeof payload.iss === "string") result.issuer = payload.iss;
    const alg = typeof header.alg === "string" ? header.alg : "";
    const symmetric = alg === "none" || alg.toUpperCase().startsWith("HS");
    checks.push(checkSigning(alg));
    const context: WalkContext = {
      text,
      header,
      payload,
      alg,
      symmetric,
      graph: isGraphToken(header, payload),
      skew,
      now: clock() / 1000,
      all,
    };
    const entries = verifier.steps.entriesFor(payload.iss);
    if (entries.length === 0) {
      checks.push(unknownIssuer(context));
      checks.push(...walkWithoutEntry(context));
    } else {
      const walks: EntryWalk[] = [];
      for (const entry of entries) walks.push(await walkEntry(context, entry, verifier.steps, options.roles));
      const chosen = walks.find((w) => w.failures === 0) ?? pickClosest(walks);
      checks.push(issuerMatched(payload.iss as string, chosen, walks));
      checks.push(...chosen.checks);
      result.entry = chosen.entry.name;
      if (chosen.principal !== undefined) result.principal = chosen.principal;
    }
  }
  // The verifier has the last word: the doctor never calls "accepted" what the gateway refuses.
  const outcome = await verdict(verifier.verify(text), checks);
  checks.push(outcome.check);
  if (outcome.refusal !== undefined) {
    result.refusal = outcome.refusal;
    delete result.principal;
  }
  result.ok = outcome.refusal === undefined;
  return withFindings(result);
}

function issuerMatched(iss: string, chosen: EntryWalk, walks: readonly EntryWalk[]): DoctorCheck {
  const others = walks.filter((w) => w !== chosen);
  const tried = others
    .map((w) => `${quote(w.entry.name)} (${w.failures === 0 ? "accepts" : `refuses: ${w.firstFailure}`})`)
    .join(", ");
  return {
    id: "issuer",
    title: "Trusted issuer",
    status: "pass",
    detail:
      `${quote(iss)} is trusted: entry ${quote(chosen.entry.name)} (${chosen.entry.flavor})` +
      (others.length > 0
        ? `; ${walks.length} entries share this issuer and the first that accepts wins; the others: ${tried}`
        : ""),
  };
}

function withFindings(result: TokenDiagnosis): TokenDiagnosis {
  for (const check of result.checks) {
    if (check.cause === undefined || (check.status !== "fail" && check.status !== "warn")) continue;
    if (result.causes.includes(check.cause)) continue;
    result.causes.push(check.cause);
    result.findings.push({
      cause: check.cause,
      summary: DOCTOR_CAUSES[check.cause],
      fix: check.fix ?? "",
    });
  }
  return result;
}

interface WalkContext {
  text: string;
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
  alg: string;
  symmetric: boolean;
  graph: boolean;
  skew: number;
  /** Seconds since the epoch (not rounded). */
  now: number;
  all: readonly ResolvedIssuerConfig[];
}

interface EntryWalk {
  entry: ResolvedIssuerConfig;
  checks: DoctorCheck[];
  failures: number;
  firstFailure: string;
  principal?: DoctorPrincipal;
}

function pickClosest(walks: EntryWalk[]): EntryWalk {
  return walks.reduce((best, w) => (w.failures < best.failures ? w : best));
}

// ---------------------------------------------------------------------------------------------
// Shape, signing algorithm, issuer
// ---------------------------------------------------------------------------------------------

function checkShape(text: string): {
  check: DoctorCheck;
  header?: ProtectedHeaderParameters;
  payload?: JWTPayload;
} {
  const fail = (detail: string, fix: string): { check: DoctorCheck } => ({
    check: { id: "shape", title: "Token shape", status: "fail", detail, fix, cause: "malformed" },
  });
  if (text.length === 0) return fail("no token was given", "Give the access token itself.");
  if (text.length > MAX_TOKEN_LENGTH) {
    return fail(
      `the token is ${text.length} characters long; the gateway accepts at most ${MAX_TOKEN_LENGTH}`,
      "Send the access token itself, not a whole response or file.",
    );
  }
  const parts = text.split(".");
  if (parts.length === 5) {
    return fail(
      "the token has five parts: it is an encrypted token (JWE), which only its recipient can read",
      "Ask the identity provider for a signed (not encrypted) access token for this API.",
    );
  }
  if (parts.length !== 3 || parts[0] === "" || parts[1] === "" || /[^A-Za-z0-9_\-.]/.test(text)) {
    return fail(
      `the credential is not a JWT (three base64url parts separated by dots): ${describeOpaque(text)}`,
      opaqueFix(text),
    );
  }
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(text);
    payload = decodeJwt(text);
  } catch {
    return fail(
      "the header or payload is not base64url-encoded JSON (the token was cut or altered when copied?)",
      "Copy the access token again, exactly as the issuer gave it.",
    );
  }
  const described = `a signed JWT: alg ${quote(header.alg ?? "(none)", 16)}, kid ${quote(header.kid ?? "(none)", 64)}, typ ${quote(header.typ ?? "(none)", 20)}; iss ${quote(payload.iss ?? "(none)")}, sub ${quote(payload.sub ?? "(none)", 64)}`;
  if (typeof header.alg !== "string" || header.alg.length === 0) {
    return fail(`${described}, but its header has no alg`, "Send a signed access token.");
  }
  if (looksLikeIdToken(payload)) {
    return {
      header,
      payload,
      check: {
        id: "shape",
        title: "Token shape",
        status: "warn",
        detail: `${described}; it carries ${"nonce" in payload ? "a nonce" : "an at_hash"} claim, as ID tokens do`,
        fix:
          "An ID token proves a sign-in to the client application; APIs take access tokens. Send the access token " +
          "(access_token in the token response; with MSAL, acquireToken…().accessToken), not the id_token.",
        cause: "id-token",
      },
    };
  }
  return { header, payload, check: { id: "shape", title: "Token shape", status: "pass", detail: described } };
}

function looksLikeIdToken(payload: JWTPayload): boolean {
  return (
    ("nonce" in payload || "at_hash" in payload) &&
    payload.scp === undefined &&
    payload.scope === undefined &&
    payload.roles === undefined
  );
}

function describeOpaque(text: string): string {
  if (/^gh[pousr]_/.test(text)) return "it looks like a GitHub access token";
  if (/^[A-Za-z0-9+/]{86}==$/.test(text)) return "it looks like a Cosmos DB account key";
  if (/^type=|^bearer\s/i.test(text)) return "it is still an Authorization header value";
  if (/\s/.test(text)) return "it contains spaces or line breaks";
  return `it starts with ${quote(text.slice(0, 12))} and has ${text.split(".").length} dot-separated part(s)`;
}

function opaqueFix(text: string): string {
  if (/^gh[pousr]_/.test(text)) {
    return "In GitHub Actions, use the job's OIDC token instead (permissions: id-token: write, then core.getIDToken(AUDIENCE)); a personal or installation token is not a JWT.";
  }
  if (/^[A-Za-z0-9+/]{86}==$/.test(text)) {
    return "cosmosgate never accepts account keys: sign in and send an identity token (with @azure/cosmos, aadCredentials: new GatewayCredential()).";
  }
  return "Send the access token itself (a JWT: eyJ….eyJ….signature) — not a refresh token, an opaque token from Okta's org authorization server, or an account key.";
}

function checkSigning(alg: string): DoctorCheck {
  const base = { id: "signing", title: "Public-key signature" } as const;
  if (alg === "none") {
    return {
      ...base,
      status: "fail",
      detail: 'the token is not signed (alg "none"): anyone could have written it',
      fix: "Get a signed access token from the identity provider; cosmosgate never accepts unsigned tokens.",
      cause: "unsigned-token",
    };
  }
  if (alg.toUpperCase().startsWith("HS")) {
    return {
      ...base,
      status: "fail",
      detail: `the token is signed with ${quote(alg, 16)}, an HMAC over a shared secret; the gateway only accepts signatures made with the issuer's private key and checked with its published public keys`,
      fix:
        `An asymmetric algorithm (e.g. ${DEFAULT_HINT}) is expected: get the token from the identity provider's token endpoint ` +
        "rather than from code that signs with a shared secret, or switch the issuer (e.g. the Okta/Auth0 application) to RS256.",
      cause: "hmac-algorithm",
    };
  }
  return { ...base, status: "pass", detail: `${quote(alg, 16)} is an asymmetric algorithm` };
}

const DEFAULT_HINT = "RS256 or ES256";

function trustedList(all: readonly ResolvedIssuerConfig[]): string {
  if (all.length === 0) return "none are configured (identity.issuers in cosmosgate.yaml)";
  const shown = all
    .slice(0, 8)
    .map((e) => (e.name === e.issuer ? quote(e.issuer) : `${quote(e.name)} (${quote(e.issuer)})`));
  return `trusted: ${shown.join(", ")}${all.length > 8 ? ` and ${all.length - 8} more` : ""}`;
}

function entraTenant(iss: string): { version: 1 | 2; tenant: string } | undefined {
  const v1 = ENTRA_V1.exec(iss);
  if (v1) return { version: 1, tenant: (v1[1] as string).toLowerCase() };
  const v2 = ENTRA_V2.exec(iss);
  if (v2) return { version: 2, tenant: (v2[1] as string).toLowerCase() };
  return undefined;
}

function tenantOf(entry: ResolvedIssuerConfig): { version: 1 | 2; tenant: string } | undefined {
  const parsed = entraTenant(entry.issuer);
  if (parsed !== undefined) return parsed;
  if (entry.tenant !== undefined && (entry.flavor === "entra-v1" || entry.flavor === "entra-v2")) {
    return { version: entry.flavor === "entra-v1" ? 1 : 2, tenant: entry.tenant.toLowerCase() };
  }
  return undefined;
}

function normalizeIssuer(iss: string): string {
  return iss.toLowerCase().replace(/\/+$/, "");
}

function hostOf(value: string): string | undefined {
  try {
    return new URL(value).host.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Why no entry's issuer is the token's, with near misses recognized. */
function unknownIssuer(context: WalkContext): DoctorCheck {
  const { payload, all, graph } = context;
  const base = { id: "issuer", title: "Trusted issuer", status: "fail" } as const;
  const iss = payload.iss;
  const list = trustedList(all);
  if (typeof iss !== "string") {
    return {
      ...base,
      detail: `the token has ${iss === undefined ? "no iss claim" : "an iss claim that is not a string"} (${list})`,
      fix: "Send an access token from a trusted issuer; every access token names its issuer in iss.",
      cause: "unknown-issuer",
    };
  }
  const entra = entraTenant(iss);
  if (graph) {
    return {
      ...base,
      detail: `${quote(iss)} is not trusted (${list}); the token is a Microsoft Graph token`,
      fix: graphFix(all),
      cause: "graph-token",
    };
  }
  if (entra !== undefined) {
    const sameTenant = all.filter((e) => tenantOf(e)?.tenant === entra.tenant);
    if (sameTenant.length > 0) {
      const otherVersion = sameTenant.filter((e) => tenantOf(e)?.version !== entra.version);
      if (otherVersion.length > 0) return versionMismatch(iss, entra, otherVersion, payload, list);
    }
    const tenants = [
      ...new Set(all.map((e) => tenantOf(e)?.tenant).filter((t): t is string => t !== undefined)),
    ];
    return {
      ...base,
      detail:
        `${quote(iss)} is an Entra ID v${entra.version === 1 ? "1" : "2.0"} issuer of tenant ${entra.tenant}` +
        (tenants.length > 0 ? `, but the configured tenant(s) are ${tenants.join(", ")}` : "") +
        ` (${list})`,
      fix:
        tenants.length > 0
          ? `The token comes from another tenant: sign in to tenant ${tenants[0]} (authority https://login.microsoftonline.com/${tenants[0]}), ` +
            `or trust this one too: add {preset: entra, tenant: ${entra.tenant}, audience: …} to identity.issuers.`
          : `Trust this tenant: add {preset: entra, tenant: ${entra.tenant}, audience: YOUR-API-CLIENT-ID} to identity.issuers in cosmosgate.yaml.`,
      cause: "unknown-issuer",
    };
  }
  if (iss === "urn:cosmosgate:dev") {
    return {
      ...base,
      detail: `${quote(iss)} is the development issuer of \`cosmosgate dev-token\` (${list})`,
      fix: "Development tokens are trusted only by `cosmosgate dev`; against `cosmosgate serve`, sign in with `cosmosgate login` and use `cosmosgate token`.",
      cause: "unknown-issuer",
    };
  }
  const close = all.find((e) => normalizeIssuer(e.issuer) === normalizeIssuer(iss));
  if (close !== undefined) {
    return {
      ...base,
      detail: `${quote(iss)} is not trusted, but entry ${quote(close.name)} has issuer ${quote(close.issuer)}, which differs only in case or a trailing slash; the issuer must match exactly`,
      fix: `Set the entry's issuer to exactly ${quote(iss)} (as the token's iss carries it).`,
      cause: "unknown-issuer",
    };
  }
  const host = hostOf(iss);
  const sameHost = host === undefined ? [] : all.filter((e) => hostOf(e.issuer) === host);
  const oktaOrg = sameHost.find((e) => e.flavor === "okta") !== undefined && !/\/oauth2\/[^/]+\/?$/.test(iss);
  if (oktaOrg) {
    const okta = sameHost.find((e) => e.flavor === "okta") as ResolvedIssuerConfig;
    return {
      ...base,
      detail: `${quote(iss)} is Okta's org authorization server; the configured one is the custom authorization server ${quote(okta.issuer)}`,
      fix: `Request the token from the custom authorization server (${okta.issuer}/v1/token or /v1/authorize); the org authorization server's access tokens are meant for Okta itself.`,
      cause: "unknown-issuer",
    };
  }
  if (sameHost.length > 0) {
    return {
      ...base,
      detail: `${quote(iss)} is not trusted; on the same host the configured issuer(s) are ${sameHost.map((e) => quote(e.issuer)).join(", ")}`,
      fix: "The issuer must match the token's iss exactly: fix the issuer (or url) of the entry, or get the token from the configured issuer.",
      cause: "unknown-issuer",
    };
  }
  return {
    ...base,
    detail: `${quote(iss)} is not trusted (${list})`,
    fix: "Sign in at a trusted issuer, or add this one to identity.issuers in cosmosgate.yaml (preset entra, okta or github-actions, or issuer + audience + discovery).",
    cause: "unknown-issuer",
  };
}

function versionMismatch(
  iss: string,
  token: { version: 1 | 2; tenant: string },
  configured: readonly ResolvedIssuerConfig[],
  payload: JWTPayload,
  list: string,
): DoctorCheck {
  const ver = typeof payload.ver === "string" ? `, ver ${quote(payload.ver)}` : "";
  if (token.version === 1) {
    return {
      id: "issuer",
      title: "Trusted issuer",
      status: "fail",
      detail:
        `${quote(iss)} is Entra ID's v1 issuer of tenant ${token.tenant}${ver}, but only v2.0 tokens are trusted for this tenant ` +
        `(${configured.map((e) => quote(e.issuer)).join(", ")}; ${list})`,
      fix:
        "The API's app registration issues v1 tokens. Set accessTokenAcceptedVersion: 2 in its app manifest " +
        "(Entra admin center → App registrations → the API → Manifest; api.requestedAccessTokenVersion: 2 in the new format), then get a new token; " +
        "or accept v1 tokens: acceptV1: true on the entra issuer in cosmosgate.yaml.",
      cause: "entra-version-mismatch",
    };
  }
  return {
    id: "issuer",
    title: "Trusted issuer",
    status: "fail",
    detail:
      `${quote(iss)} is Entra ID's v2.0 issuer of tenant ${token.tenant}${ver}, but only v1 tokens are trusted for this tenant ` +
      `(${configured.map((e) => quote(e.issuer)).join(", ")}; ${list})`,
    fix:
      `Trust v2.0 tokens: use {preset: entra, tenant: ${token.tenant}} (it trusts https://login.microsoftonline.com/${token.tenant}/v2.0; add acceptV1: true to keep v1), ` +
      "or make the API issue v1 tokens again (accessTokenAcceptedVersion: 1 in the app manifest).",
    cause: "entra-version-mismatch",
  };
}

function isGraphToken(header: ProtectedHeaderParameters, payload: JWTPayload): boolean {
  if ("nonce" in header) return true;
  const aud = payload.aud;
  const list = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  return list.some((a) => typeof a === "string" && GRAPH_AUDIENCES.has(a.toLowerCase()));
}

/** The scope to request for an Entra ID API, from its configured audiences. */
function entraScope(entries: readonly ResolvedIssuerConfig[]): string | undefined {
  const audiences = entries
    .filter((e) => e.flavor === "entra-v1" || e.flavor === "entra-v2" || tenantOf(e) !== undefined)
    .flatMap((e) => e.audience);
  const uri = audiences.find((a) => a.startsWith("api://"));
  if (uri !== undefined) return `${uri.replace(/\/+$/, "")}/.default`;
  const guid = audiences.find((a) => GUID.test(a));
  if (guid !== undefined) return `api://${guid}/.default`;
  const other = audiences[0];
  return other === undefined ? undefined : `${other.replace(/\/+$/, "")}/.default`;
}

function graphFix(all: readonly ResolvedIssuerConfig[]): string {
  const scope = entraScope(all) ?? "api://<client-id>/.default";
  return (
    `This token is for Microsoft Graph; request your API's scope ${scope} instead ` +
    `(az account get-access-token --scope ${scope}, or credential.getToken("${scope}")). ` +
    "Graph tokens carry a nonce in their header and no API but Graph can verify their signature."
  );
}

// ---------------------------------------------------------------------------------------------
// The checks of one issuer entry
// ---------------------------------------------------------------------------------------------

async function walkEntry(
  context: WalkContext,
  entry: ResolvedIssuerConfig,
  steps: VerificationSteps,
  roles: DiagnoseTokenOptions["roles"],
): Promise<EntryWalk> {
  const checks: DoctorCheck[] = [];
  checks.push(checkAlgorithm(context, entry));
  const keys = steps.keysOf(entry);
  const key = await checkKey(context, entry, keys);
  checks.push(key.check);
  checks.push(await checkSignature(context, entry, key.key, key.check));
  checks.push(...checkTimes(context));
  checks.push(checkAudience(context, entry));
  checks.push(checkTyp(context, entry));
  checks.push(checkSubject(context, entry));
  checks.push(checkOverage(context, entry));
  checks.push(...checkRequirements(context, entry));
  const failed = checks.filter((c) => c.status === "fail");
  const principalChecks = checkPrincipal(context, entry, failed.length === 0, roles);
  checks.push(...principalChecks.checks);
  const failures = checks.filter((c) => c.status === "fail");
  const walk: EntryWalk = {
    entry,
    checks,
    failures: failures.length,
    firstFailure:
      failures[0] === undefined ? "" : `${failures[0].title}: ${failures[0].detail}`.slice(0, 200),
  };
  if (principalChecks.principal !== undefined && failures.length === 0)
    walk.principal = principalChecks.principal;
  return walk;
}

/** The checks that need no entry, when no entry trusts the token's issuer. */
function walkWithoutEntry(context: WalkContext): DoctorCheck[] {
  const skipped = (id: string, title: string): DoctorCheck => ({
    id,
    title,
    status: "skip",
    detail: "no trusted issuer entry to check against",
  });
  const checks: DoctorCheck[] = [
    skipped("algorithm", "Algorithm allowed"),
    skipped("key", "Signing key (kid)"),
    skipped("signature", "Signature"),
    ...checkTimes(context),
  ];
  if (context.graph && audiences(context.payload).some((a) => GRAPH_AUDIENCES.has(a.toLowerCase()))) {
    checks.push({
      id: "audience",
      title: "Audience",
      status: "fail",
      detail: `the token is for Microsoft Graph (aud ${show(context.payload.aud)})`,
      fix: graphFix(context.all),
      cause: "graph-token",
    });
  } else {
    checks.push(skipped("audience", "Audience"));
  }
  return checks;
}

function checkAlgorithm(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck {
  const base = { id: "algorithm", title: "Algorithm allowed" } as const;
  const allowed = entry.algorithms.join(", ");
  if (entry.algorithms.includes(context.alg)) {
    return {
      ...base,
      status: "pass",
      detail: `${quote(context.alg, 16)} is allowed for ${quote(entry.name)} (${allowed})`,
    };
  }
  if (context.symmetric) {
    return {
      ...base,
      status: "fail",
      detail: `${quote(context.alg, 16)} is not allowed for ${quote(entry.name)}; it expects ${allowed}`,
      fix: `An asymmetric algorithm (${allowed}) is expected: get the token from ${entry.issuer}'s token endpoint; tokens signed with a shared secret are never accepted.`,
      cause: context.alg === "none" ? "unsigned-token" : "hmac-algorithm",
    };
  }
  return {
    ...base,
    status: "fail",
    detail: `${quote(context.alg, 16)} is not allowed for ${quote(entry.name)}; allowed: ${allowed}`,
    fix: SUPPORTED_ALGORITHMS.includes(context.alg)
      ? `Ask the issuer for ${allowed}, or add ${context.alg} to the entry's algorithms in cosmosgate.yaml.`
      : `Ask the issuer for a token signed with ${allowed}.`,
    cause: "algorithm-not-allowed",
  };
}

function flattened(text: string): FlattenedJWSInput {
  const [protectedHeader, payload, signature] = text.split(".") as [string, string, string];
  return { protected: protectedHeader, payload, signature };
}

function describeKeys(set: JSONWebKeySet | undefined): string {
  if (set === undefined) return "no keys loaded";
  const kids = set.keys.map((k) => `${quote(k.kid ?? "(no kid)", 64)}${k.alg ? ` ${k.alg}` : ""}`);
  return `${set.keys.length} key(s): ${kids.slice(0, 6).join(", ")}${kids.length > 6 ? ", …" : ""}`;
}

async function checkKey(
  context: WalkContext,
  entry: ResolvedIssuerConfig,
  keys: IssuerKeyResolver,
): Promise<{ check: DoctorCheck; key?: CryptoKey }> {
  const base = { id: "key", title: "Signing key (kid)" } as const;
  if (context.symmetric) {
    return {
      check: {
        ...base,
        status: "skip",
        detail: "a token without a public-key signature has no key in the issuer's key set",
      },
    };
  }
  try {
    await keys.load();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      check: {
        ...base,
        status: "fail",
        detail: message,
        fix:
          `Check that this machine reaches the issuer (network, proxy, firewall, DNS); \`cosmosgate doctor issuer ${quoteArg(entry.name)}\` shows each step. ` +
          "While an issuer is unreachable, a running gateway keeps using the keys it fetched before.",
        cause: "issuer-unreachable",
      },
    };
  }
  const kid = context.header.kid;
  const set = keys.keySet();
  try {
    const key = await keys.getKey(
      context.header as Parameters<IssuerKeyResolver["getKey"]>[0],
      flattened(context.text),
    );
    return {
      key,
      check: {
        ...base,
        status: "pass",
        detail: `${kid === undefined ? "the only fitting key" : `kid ${quote(kid, 64)}`} is in the key set at ${keys.location()} (${describeKeys(set)})`,
      },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof TokenError && error.code === "ERR_TOKEN_KEYS_UNAVAILABLE") {
      return {
        check: {
          ...base,
          status: "fail",
          detail: message,
          fix: `Check that this machine reaches ${keys.location()}; \`cosmosgate doctor issuer ${quoteArg(entry.name)}\` shows each step.`,
          cause: "issuer-unreachable",
        },
      };
    }
    const sameKid = kid === undefined ? [] : (set?.keys ?? []).filter((k) => k.kid === kid);
    if (sameKid.length > 0) {
      const k = sameKid[0] as JWK;
      return {
        check: {
          ...base,
          status: "fail",
          detail: `kid ${quote(kid, 64)} is in the key set, but its key (${k.kty}${k.alg ? `, alg ${k.alg}` : ""}) cannot check an ${quote(context.alg, 16)} signature`,
          fix: `Ask the issuer for a token signed with the key's algorithm (${k.alg ?? entry.algorithms.join(", ")}).`,
          cause: "algorithm-not-allowed",
        },
      };
    }
    const tenant = tenantOf(entry);
    return {
      check: {
        ...base,
        status: "fail",
        detail:
          kid === undefined
            ? `the token names no kid and no single key of ${quote(entry.name)} fits it (${describeKeys(set)})`
            : `kid ${quote(kid, 64)} is not in the current key set of ${quote(entry.name)} at ${keys.location()} (${describeKeys(set)})`,
        fix:
          "If the issuer rolled its keys over just now, retry in a minute (the gateway refetches the key set for an unknown kid, at most every 30 s). " +
          "Otherwise the token was signed by another party that uses the same iss — " +
          (tenant !== undefined
            ? `an Entra ID token from another tenant or cloud than ${tenant} (check the authority you sign in at), or a token made for Microsoft Graph`
            : "a staging or test identity provider, or a hand-made token") +
          ". Get a new token from the issuer.",
        cause: "unknown-kid",
      },
    };
  }
}

function quoteArg(value: string): string {
  return /^[A-Za-z0-9_.:/@-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

async function checkSignature(
  context: WalkContext,
  entry: ResolvedIssuerConfig,
  key: CryptoKey | undefined,
  keyCheck: DoctorCheck,
): Promise<DoctorCheck> {
  const base = { id: "signature", title: "Signature" } as const;
  if (context.symmetric) {
    return {
      ...base,
      status: "skip",
      detail: "an HMAC or unsigned token cannot be checked against the issuer's public keys",
    };
  }
  if (key === undefined) {
    return {
      ...base,
      status: "skip",
      detail: `not checked: ${keyCheck.status === "fail" ? "no key to check it with (see above)" : keyCheck.detail}`,
    };
  }
  try {
    await compactVerify(context.text, key, { algorithms: [context.alg] });
    return {
      ...base,
      status: "pass",
      detail: `verifies with ${quote(entry.name)}'s key ${quote(context.header.kid ?? "(no kid)", 64)}`,
    };
  } catch (error) {
    const name = (error as { code?: unknown }).code;
    if ("nonce" in context.header) {
      return {
        ...base,
        status: "fail",
        detail:
          "does not verify: the header carries a nonce, as Entra ID's tokens for Microsoft Graph do (Graph signs a hash of the nonce, so no other API can verify them)",
        fix: graphFix(context.all),
        cause: "graph-token",
      };
    }
    return {
      ...base,
      status: "fail",
      detail: `does not verify with ${quote(entry.name)}'s key ${quote(context.header.kid ?? "(no kid)", 64)}${name === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" ? "" : ` (${(error as Error).message})`}`,
      fix:
        "The token was altered (e.g. edited, or cut when copied) or signed by another party with the same kid. Copy the token again " +
        "exactly, or get a new one from the issuer.",
      cause: "bad-signature",
    };
  }
}

/** A claim value for a message: strings quoted, anything else as compact JSON, both cut short. */
function show(value: unknown, max = 100): string {
  if (typeof value === "string" || value === undefined) return quote(value ?? "(absent)", max);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function formatSeconds(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}

function isoOf(seconds: number): string {
  return Math.abs(seconds) < 8.64e12 ? new Date(seconds * 1000).toISOString() : String(seconds);
}

function clockFix(offset: number, skew: number, what: string): string {
  return (
    `${what} A clock is off by about ${formatSeconds(offset)} — this gateway host's or the issuer's (or the token was made by hand). ` +
    `Synchronize the clocks with NTP (timedatectl set-ntp true; w32tm /resync on Windows); the gateway tolerates ${skew} s (identity.tokens.clockSkew).`
  );
}

function checkTimes(context: WalkContext): DoctorCheck[] {
  const { payload, skew } = context;
  const now = Math.floor(context.now);
  const checks: DoctorCheck[] = [];
  const notNumber = (id: string, title: string, claim: string): DoctorCheck => ({
    id,
    title,
    status: "fail",
    detail: `the ${claim} claim is ${show(payload[claim], 40)}, not a number of seconds since the epoch`,
    fix: "Ask the issuer for a standard access token.",
    cause: "invalid-claims",
  });

  // exp
  const exp = payload.exp;
  if (exp === undefined) {
    checks.push({
      id: "exp",
      title: "Expiry (exp)",
      status: "fail",
      detail: "the token has no exp claim; the gateway requires one",
      fix: "Ask the issuer for an access token that expires (every standard access token carries exp).",
      cause: "missing-claim",
    });
  } else if (typeof exp !== "number" || !Number.isFinite(exp)) {
    checks.push(notNumber("exp", "Expiry (exp)", "exp"));
  } else if (exp <= now - skew) {
    const ago = now - exp;
    const beyond = ago - skew;
    checks.push(
      beyond <= SMALL_OFFSET_SECONDS
        ? {
            id: "exp",
            title: "Expiry (exp)",
            status: "fail",
            detail: `expired at ${isoOf(exp)}, ${formatSeconds(ago)} ago: ${formatSeconds(beyond)} beyond the allowed ${skew} s clock skew`,
            fix: clockFix(
              ago,
              skew,
              "If you got this token just now, it was already expired by this host's clock, so a clock is off; otherwise get a new token.",
            ),
            cause: "clock-skew",
          }
        : {
            id: "exp",
            title: "Expiry (exp)",
            status: "fail",
            detail: `expired at ${isoOf(exp)}, ${formatSeconds(ago)} ago (${skew} s clock skew allowed)`,
            fix:
              "Get a new token: access tokens live minutes to hours. GatewayCredential and the Azure SDK credentials refresh " +
              "automatically; a script must ask again (cosmosgate token, az account get-access-token, core.getIDToken in CI).",
            cause: "expired",
          },
    );
  } else {
    checks.push({
      id: "exp",
      title: "Expiry (exp)",
      status: "pass",
      detail: `${isoOf(exp)}, ${exp >= now ? `in ${formatSeconds(exp - now)}` : `${formatSeconds(now - exp)} ago, within the ${skew} s skew`}`,
    });
  }

  // nbf
  const nbf = payload.nbf;
  if (nbf === undefined) {
    checks.push({ id: "nbf", title: "Not before (nbf)", status: "pass", detail: "no nbf claim (optional)" });
  } else if (typeof nbf !== "number" || !Number.isFinite(nbf)) {
    checks.push(notNumber("nbf", "Not before (nbf)", "nbf"));
  } else if (nbf > now + skew) {
    const ahead = nbf - now;
    checks.push({
      id: "nbf",
      title: "Not before (nbf)",
      status: "fail",
      detail: `not valid before ${isoOf(nbf)}, ${formatSeconds(ahead)} from now: ${formatSeconds(ahead - skew)} beyond the allowed ${skew} s clock skew`,
      fix: clockFix(ahead, skew, "The token's validity starts in the future."),
      cause: "clock-skew",
    });
  } else {
    checks.push({
      id: "nbf",
      title: "Not before (nbf)",
      status: "pass",
      detail: `${isoOf(nbf)}, ${describeRelative(nbf - now)}`,
    });
  }

  // iat
  const iat = payload.iat;
  if (iat === undefined) {
    checks.push({
      id: "iat",
      title: "Issued at (iat)",
      status: "fail",
      detail: "the token has no iat claim; the gateway requires one",
      fix: "Ask the issuer for a standard access token (it carries iat).",
      cause: "missing-claim",
    });
  } else if (typeof iat !== "number" || !Number.isFinite(iat)) {
    checks.push(notNumber("iat", "Issued at (iat)", "iat"));
  } else if (iat > now + skew) {
    const ahead = iat - now;
    checks.push({
      id: "iat",
      title: "Issued at (iat)",
      status: "fail",
      detail: `issued at ${isoOf(iat)}, ${formatSeconds(ahead)} in the future: ${formatSeconds(ahead - skew)} beyond the allowed ${skew} s clock skew`,
      fix: clockFix(ahead, skew, "A token cannot have been issued in the future."),
      cause: "clock-skew",
    });
  } else {
    checks.push({
      id: "iat",
      title: "Issued at (iat)",
      status: "pass",
      detail: `${isoOf(iat)}, ${describeRelative(iat - now)}`,
    });
  }
  return checks;
}

function describeRelative(delta: number): string {
  if (Math.abs(delta) < 1) return "now";
  return delta < 0 ? `${formatSeconds(delta)} ago` : `in ${formatSeconds(delta)} (within the skew)`;
}

function audiences(payload: JWTPayload): string[] {
  const aud = payload.aud;
  if (typeof aud === "string") return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === "string");
  return [];
}

function audienceFix(entry: ResolvedIssuerConfig, found: readonly string[]): string {
  const accepted = entry.audience.map((a) => quote(a)).join(" or ");
  switch (entry.flavor) {
    case "entra-v1":
    case "entra-v2": {
      const scope = entraScope([entry]) ?? "api://<client-id>/.default";
      const guid = found.find((a) => GUID.test(a));
      const hint =
        entry.flavor === "entra-v2" && guid !== undefined && !entry.audience.some((a) => GUID.test(a))
          ? ` If ${guid} is this API's own client ID, add it to the entry's audience: v2.0 access tokens name the client ID, not the api:// URI.`
          : "";
      return `Request a token for the gateway's API, scope ${scope} (az account get-access-token --scope ${scope}), not for another API; accepted audiences: ${accepted}.${hint}`;
    }
    case "okta":
      return `Get the token from the authorization server whose audience is ${accepted} (Okta: Security → API → Authorization Servers → Audience); accepted audiences: ${accepted}.`;
    case "github-actions":
      return `Request the workflow's OIDC token for the audience the gateway expects: core.getIDToken(${quote(entry.audience[0])}) (or curl "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=…"); accepted audiences: ${accepted}.`;
    case "gateway":
      return `Get a token for this gateway's data plane (${accepted}): cosmosgate token, or GatewayCredential against this gateway.`;
    default:
      return `Request a token whose aud is ${accepted} (the API's identifier at the issuer), not one for another API.`;
  }
}

function checkAudience(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck {
  const base = { id: "audience", title: "Audience" } as const;
  const found = audiences(context.payload);
  const match = found.find((a) => entry.audience.includes(a));
  if (match !== undefined)
    return { ...base, status: "pass", detail: `${quote(match)} is accepted by ${quote(entry.name)}` };
  if (found.some((a) => GRAPH_AUDIENCES.has(a.toLowerCase()))) {
    return {
      ...base,
      status: "fail",
      detail: `the token is for Microsoft Graph (aud ${show(context.payload.aud)}); accepted: ${entry.audience.map((a) => quote(a)).join(", ")}`,
      fix: graphFix([entry, ...context.all]),
      cause: "graph-token",
    };
  }
  return {
    ...base,
    status: "fail",
    detail:
      context.payload.aud === undefined
        ? `the token has no aud claim; accepted: ${entry.audience.map((a) => quote(a)).join(", ")}`
        : `the token is for ${show(context.payload.aud)}, another API; accepted: ${entry.audience.map((a) => quote(a)).join(", ")}`,
    fix: audienceFix(entry, found),
    cause: "wrong-audience",
  };
}

function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes("/") ? lower : `application/${lower}`;
}

function checkTyp(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck {
  const base = { id: "typ", title: "Header typ" } as const;
  if (entry.typ === undefined)
    return { ...base, status: "skip", detail: `not required by ${quote(entry.name)}` };
  const typ = context.header.typ;
  if (typeof typ === "string" && normalizeTyp(typ) === normalizeTyp(entry.typ)) {
    return { ...base, status: "pass", detail: `${quote(typ, 40)}, as ${quote(entry.name)} requires` };
  }
  return {
    ...base,
    status: "fail",
    detail: `${quote(typ ?? "(none)", 40)}; ${quote(entry.name)} requires ${quote(entry.typ)}`,
    fix: `Send an access token (header typ ${entry.typ}), not an ID token or another kind of JWT.`,
    cause: "wrong-type",
  };
}

function checkSubject(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck {
  const claim = entry.subjectClaim;
  const base = { id: "subject", title: `Subject (${claim})` };
  const value = context.payload[claim];
  if (typeof value === "string" && value.length > 0)
    return { ...base, status: "pass", detail: quote(value, 80) };
  return {
    ...base,
    status: "fail",
    detail:
      value === undefined
        ? `the token has no ${quote(claim, 40)} claim, which ${quote(entry.name)} takes as the subject`
        : `the ${quote(claim, 40)} claim is ${show(value, 40)}, not a non-empty string`,
    fix:
      claim === "oid"
        ? "Entra ID puts oid in access tokens for users and service principals; send an access token for this API (not an ID token), or change subjectClaim."
        : `Ask the issuer for an access token that carries ${claim}, or change the entry's subjectClaim.`,
    cause: value === undefined ? "missing-claim" : "invalid-claims",
  };
}

function checkOverage(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck {
  const base = { id: "groups-overage", title: "Groups overage" } as const;
  if (!hasGroupsOverage(context.payload))
    return { ...base, status: "pass", detail: "none: the groups are in the token" };
  const fix =
    "The user is in more groups than fit in a token, so Entra ID left them out and points at Microsoft Graph instead. Administrator: assign app roles " +
    "to the groups (App registrations → App roles, then Enterprise applications → Users and groups) and use group:ROLE in policy.yaml, or limit the " +
    'groups claim to "Groups assigned to the application" (Token configuration).';
  if (entry.refuseGroupsOverage) {
    return {
      ...base,
      status: "fail",
      detail: `the token has a groups overage (_claim_names / hasgroups) and ${quote(entry.name)} refuses it`,
      fix,
      cause: "groups-overage",
    };
  }
  return {
    ...base,
    status: "warn",
    detail: `the token has a groups overage: it carries none of the user's groups (${quote(entry.name)} accepts it with the groups it has)`,
    fix,
    cause: "groups-overage",
  };
}

function requirementFix(claim: string, entry: ResolvedIssuerConfig): string {
  switch (claim) {
    case "amr":
      return "Sign in with a method the requirement accepts (for example a FIDO2 security key or passkey, or multi-factor authentication), then get a new token.";
    case "acrs":
      return "Entra ID adds the authentication context only when Conditional Access required it at sign-in: have the client request it (claims challenge acrs) with a policy that demands it (e.g. phishing-resistant authentication strength), then get a new token.";
    case "acr":
      return entry.flavor === "okta"
        ? "Okta: request phishing-resistant sign-in (acr_values=phr, or urn:okta:loa:2fa:any:ifpossible as the policy allows) and sign in with a FIDO2 key, then get a new token."
        : "Sign in at the authentication level the requirement names, then get a new token.";
    case "tid":
      return "The token comes from another Entra ID tenant: sign in to the configured tenant.";
    case "repository":
    case "repository_owner":
    case "ref":
    case "environment":
    case "job_workflow_ref":
      return `Run the workflow where ${quote(entry.name)} allows it (repository, branch or tag, environment, reusable workflow), or widen the entry's ${claim} condition in cosmosgate.yaml.`;
    default:
      return `Get a token whose ${claim} claim meets the requirement, or change identity.issuers[].require in cosmosgate.yaml.`;
  }
}

function checkRequirements(context: WalkContext, entry: ResolvedIssuerConfig): DoctorCheck[] {
  const claims = context.payload as Record<string, unknown>;
  return entry.requirements.map((requirement) => {
    const value = claims[requirement.claim];
    const found = value === undefined ? "absent" : show(value, 80);
    const base = { id: `require:${requirement.claim}`, title: `Requirement ${requirement.description}` };
    if (requirement.test(claims))
      return { ...base, status: "pass", detail: `met (${requirement.claim}: ${found})` };
    return {
      ...base,
      status: "fail",
      detail: `not met: the token's ${requirement.claim} claim is ${found}`,
      fix: requirementFix(requirement.claim, entry),
      cause: "requirement-unmet",
    };
  });
}

function checkPrincipal(
  context: WalkContext,
  entry: ResolvedIssuerConfig,
  accepted: boolean,
  rolesOf: DiagnoseTokenOptions["roles"],
): { checks: DoctorCheck[]; principal?: DoctorPrincipal } {
  let principal: Principal;
  try {
    principal = toPrincipal(context.payload, entry);
  } catch (error) {
    return {
      checks: [
        {
          id: "principal",
          title: "Principal",
          status: "fail",
          detail: (error as Error).message,
          fix: "Ask the issuer for a standard access token; security-relevant claims must have their standard types.",
          cause: "invalid-claims",
        },
      ],
    };
  }
  const result: DoctorPrincipal = {
    sub: principal.sub,
    kind: principal.kind,
    groups: [...principal.groups],
    issuer: principal.issuer,
  };
  if (principal.tokenIssuer !== undefined) result.tokenIssuer = principal.tokenIssuer;
  if (principal.name !== undefined) result.name = principal.name;
  const describe =
    `sub ${quote(principal.sub, 80)} (${principal.kind}${principal.name !== undefined ? `, ${quote(principal.name, 60)}` : ""}), ` +
    `groups: ${principal.groups.length > 0 ? principal.groups.join(", ") : "(none)"}, issuer ${quote(principal.issuer)}` +
    (principal.tokenIssuer !== undefined ? ` (exchanged at ${quote(principal.tokenIssuer)})` : "");
  const checks: DoctorCheck[] = [
    accepted
      ? { id: "principal", title: "Principal", status: "pass", detail: describe }
      : {
          id: "principal",
          title: "Principal",
          status: "skip",
          detail: `would be ${describe}, once the problems above are fixed`,
        },
  ];
  if (rolesOf !== undefined) {
    const roles = [...rolesOf(principal)];
    result.roles = roles;
    const groupsText =
      principal.groups.length > 0 ? principal.groups.map((g) => `group:${g}`).join(", ") : "";
    if (!accepted) {
      checks.push({
        id: "roles",
        title: "Policy roles",
        status: "skip",
        detail: `would hold ${roles.length > 0 ? roles.join(", ") : "no role"}`,
      });
    } else if (roles.length > 0) {
      checks.push({ id: "roles", title: "Policy roles", status: "pass", detail: roles.join(", ") });
    } else {
      checks.push({
        id: "roles",
        title: "Policy roles",
        status: "warn",
        detail: `no role of policy.yaml has sub:${principal.sub}${groupsText ? ` or any of ${groupsText}` : ""} as a member: every request will be denied (403)`,
        fix: `Add sub:${principal.sub}${principal.groups[0] !== undefined ? ` or group:${principal.groups[0]}` : ""} to a role's members in policy.yaml (cosmosgate policy explain shows what a subject may do).`,
        cause: "no-roles",
      });
    }
  }
  return { checks, principal: result };
}

// ---------------------------------------------------------------------------------------------
// Verdict: the real verifier
// ---------------------------------------------------------------------------------------------

const CODE_CAUSES: Partial<Record<TokenErrorCode, DoctorCause>> = {
  ERR_TOKEN_MALFORMED: "malformed",
  ERR_TOKEN_ALGORITHM: "algorithm-not-allowed",
  ERR_TOKEN_SIGNATURE: "bad-signature",
  ERR_TOKEN_UNKNOWN_KEY: "unknown-kid",
  ERR_TOKEN_EXPIRED: "expired",
  ERR_TOKEN_NOT_YET_VALID: "clock-skew",
  ERR_TOKEN_AUDIENCE: "wrong-audience",
  ERR_TOKEN_ISSUER: "unknown-issuer",
  ERR_TOKEN_CLAIMS: "invalid-claims",
  ERR_TOKEN_REQUIREMENT: "requirement-unmet",
  ERR_TOKEN_KEYS_UNAVAILABLE: "issuer-unreachable",
};

async function verdict(
  verification: Promise<Principal>,
  before: readonly DoctorCheck[],
): Promise<{ check: DoctorCheck; refusal?: TokenDiagnosis["refusal"] }> {
  const base = { id: "verdict", title: "Gateway verdict" } as const;
  try {
    const principal = await verification;
    return {
      check: { ...base, status: "pass", detail: `accepted: the token names ${quote(principal.sub, 80)}` },
    };
  } catch (error) {
    const tokenError =
      error instanceof TokenError
        ? error
        : new TokenError("ERR_TOKEN_SIGNATURE", "The token could not be verified.");
    const check: DoctorCheck = {
      ...base,
      status: "fail",
      detail: `refused with 401 ${tokenError.code}: ${tokenError.message}`,
    };
    // A refusal no check above explains (it should not happen): name it by its code.
    if (!before.some((c) => c.status === "fail")) {
      const cause = CODE_CAUSES[tokenError.code];
      if (cause !== undefined) check.cause = cause;
      check.fix = tokenError.message;
    }
    return { check, refusal: { code: tokenError.code, message: tokenError.message } };
  }
}

// ---------------------------------------------------------------------------------------------
// doctor issuer: discovery and JWKS reachability
// ---------------------------------------------------------------------------------------------

/** A key of an issuer's key set, as `doctor issuer` lists it. */
export interface DoctorKey {
  kid?: string;
  kty?: string;
  alg?: string;
  use?: string;
}

/** What {@link diagnoseIssuer} found about one issuer entry. */
export interface IssuerDiagnosis {
  ok: boolean;
  name: string;
  issuer: string;
  flavor: string;
  checks: DoctorCheck[];
  causes: DoctorCause[];
  discoveryUrl?: string;
  jwksUri?: string;
  keys: DoctorKey[];
  /** Milliseconds the whole check took. */
  durationMs: number;
}

/** Options of {@link diagnoseIssuer}. */
export interface DiagnoseIssuerOptions {
  /** Milliseconds allowed for each request. Default the entry's keys timeout, else 5000. */
  timeoutMs?: number;
  /** For tests. Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Milliseconds, for timings. Default `performance.now`. */
  timer?: () => number;
}

/**
 * Checks that the gateway can get an issuer's keys: the discovery document (URL, HTTP result, the
 * issuer it names, its `jwks_uri`), the key set (HTTP result, keys with their kids and algorithms),
 * and finally the gateway's own key loader on the same entry. Never throws for an unreachable or
 * misbehaving issuer; the problem is a failed check.
 *
 * @example
 * ```ts
 * const d = await diagnoseIssuer(entry);
 * d.ok; // false when the keys cannot be fetched
 * ```
 */
export async function diagnoseIssuer(
  input: IssuerConfig | ResolvedIssuerConfig,
  options: DiagnoseIssuerOptions = {},
): Promise<IssuerDiagnosis> {
  const entry = resolveIssuerConfig(input);
  const timer = options.timer ?? (() => performance.now());
  const started = timer();
  const fetchImpl = options.fetch ?? fetch;
  const source = entry.jwks;
  const timeoutMs =
    options.timeoutMs ??
    ("timeoutDuration" in source && source.timeoutDuration !== undefined ? source.timeoutDuration : 5000);
  const checks: DoctorCheck[] = [];
  const result: IssuerDiagnosis = {
    ok: false,
    name: entry.name,
    issuer: entry.issuer,
    flavor: entry.flavor,
    checks,
    causes: [],
    keys: [],
    durationMs: 0,
  };
  const unreachableFix = (url: string) =>
    `Check that this machine reaches ${url} (network, proxy, firewall, DNS, TLS trust) and that the URL is right; ` +
    "a running gateway keeps using keys it fetched before while the issuer is unreachable, but cannot start trusting it.";

  let jwksUrl: string | undefined;
  if ("discovery" in source) {
    const url = source.discovery === true ? discoveryUrlOf(entry.issuer) : source.discovery;
    result.discoveryUrl = url;
    let status: number | undefined;
    let doc: Record<string, unknown> | undefined;
    const t0 = timer();
    const recording: typeof fetch = async (target, init) => {
      const response = await fetchImpl(target, init);
      status = response.status;
      if (response.status === 200) {
        try {
          doc = (await response.clone().json()) as Record<string, unknown>;
        } catch {
          doc = undefined;
        }
      }
      return response;
    };
    try {
      const found = await fetchDiscovery(url, { expectedIssuer: entry.issuer, timeoutMs, fetch: recording });
      const ms = Math.round(timer() - t0);
      jwksUrl = found.jwks_uri;
      checks.push({
        id: "discovery",
        title: "Discovery document",
        status: "pass",
        detail: `GET ${url} → HTTP 200 in ${ms} ms`,
      });
      checks.push({
        id: "discovery-issuer",
        title: "Issuer matches",
        status: "pass",
        detail: `the document names ${quote(found.issuer)}`,
      });
      checks.push({ id: "jwks-uri", title: "jwks_uri", status: "pass", detail: found.jwks_uri });
    } catch (error) {
      const ms = Math.round(timer() - t0);
      const message = (error as Error).message;
      if (status === 200 && doc !== undefined && typeof doc === "object" && doc.issuer !== entry.issuer) {
        checks.push({
          id: "discovery",
          title: "Discovery document",
          status: "pass",
          detail: `GET ${url} → HTTP 200 in ${ms} ms`,
        });
        checks.push({
          id: "discovery-issuer",
          title: "Issuer matches",
          status: "fail",
          detail: message,
          fix:
            "Configure the issuer exactly as the provider names it (and as its tokens carry it in iss). For Entra ID, the v2.0 and v1 " +
            "documents name different issuers; for Okta, use the custom authorization server's issuer URL.",
          cause: "discovery-mismatch",
        });
      } else if (status === 200 && doc !== undefined) {
        checks.push({
          id: "discovery",
          title: "Discovery document",
          status: "pass",
          detail: `GET ${url} → HTTP 200 in ${ms} ms`,
        });
        checks.push({
          id: "jwks-uri",
          title: "jwks_uri",
          status: "fail",
          detail: message,
          fix: "The provider's discovery document must name an https jwks_uri.",
          cause: "issuer-unreachable",
        });
      } else {
        checks.push({
          id: "discovery",
          title: "Discovery document",
          status: "fail",
          detail: `GET ${url}${status !== undefined ? ` → HTTP ${status}` : ""} after ${ms} ms: ${message}`,
          fix: unreachableFix(url),
          cause: "issuer-unreachable",
        });
      }
    }
  } else if ("url" in source) {
    jwksUrl = source.url;
    checks.push({
      id: "discovery",
      title: "Discovery document",
      status: "skip",
      detail: "not used: the entry names its JWKS URL",
    });
  }

  if (jwksUrl !== undefined) {
    result.jwksUri = jwksUrl;
    const t0 = timer();
    let response: Response | undefined;
    let problem: string | undefined;
    try {
      response = await fetchImpl(jwksUrl, {
        headers: { accept: "application/json", ...("headers" in source ? source.headers : {}) },
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      problem =
        name === "TimeoutError" || name === "AbortError"
          ? `no answer within ${timeoutMs} ms`
          : `could not be fetched (${typeof code === "string" ? code : (error as Error).message})`;
    }
    const ms = Math.round(timer() - t0);
    if (response === undefined) {
      checks.push({
        id: "jwks",
        title: "Key set (JWKS)",
        status: "fail",
        detail: `GET ${jwksUrl} after ${ms} ms: ${problem}`,
        fix: unreachableFix(jwksUrl),
        cause: "issuer-unreachable",
      });
    } else if (response.status !== 200) {
      await response.body?.cancel();
      checks.push({
        id: "jwks",
        title: "Key set (JWKS)",
        status: "fail",
        detail: `GET ${jwksUrl} → HTTP ${response.status} in ${ms} ms, not 200`,
        fix: unreachableFix(jwksUrl),
        cause: "issuer-unreachable",
      });
    } else {
      let json: unknown;
      try {
        json = await response.json();
      } catch {
        json = undefined;
      }
      checks.push(keySetCheck(json, `GET ${jwksUrl} → HTTP 200 in ${ms} ms`, result));
    }
  } else if ("file" in source) {
    checks.push({
      id: "discovery",
      title: "Discovery document",
      status: "skip",
      detail: "not used: the keys come from a file",
    });
    try {
      const text = await readFile(source.file, "utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      checks.push(keySetCheck(json, `read ${source.file}`, result));
    } catch (error) {
      checks.push({
        id: "jwks",
        title: "Key set (JWKS)",
        status: "fail",
        detail: `${source.file} cannot be read: ${(error as Error).message}`,
        fix: "Fix jwks.file in cosmosgate.yaml (relative paths are relative to the configuration file).",
        cause: "issuer-unreachable",
      });
    }
  } else if ("local" in source) {
    checks.push({
      id: "discovery",
      title: "Discovery document",
      status: "skip",
      detail: "not used: the gateway's own keys",
    });
    let set: JSONWebKeySet | undefined;
    try {
      await source.refresh?.();
      set = source.local();
    } catch (error) {
      checks.push({
        id: "jwks",
        title: "Key set (JWKS)",
        status: "fail",
        detail: `the gateway's signing keys cannot be read: ${(error as Error).message}`,
        fix: "Check the state directory (stateDir in cosmosgate.yaml).",
        cause: "issuer-unreachable",
      });
    }
    if (set !== undefined) checks.push(keySetCheck(set, "the gateway's keyring", result));
  }

  // Last: the gateway's own loader on the same entry.
  if (!checks.some((c) => c.status === "fail")) {
    const t0 = timer();
    try {
      await createIssuerKeyResolver(entry).load();
      checks.push({
        id: "load",
        title: "Gateway key loader",
        status: "pass",
        detail: `the keys load as the gateway loads them (${Math.round(timer() - t0)} ms)`,
      });
    } catch (error) {
      checks.push({
        id: "load",
        title: "Gateway key loader",
        status: "fail",
        detail: (error as Error).message,
        fix: "See the message; check identity.issuers in cosmosgate.yaml.",
        cause: "issuer-unreachable",
      });
    }
  }
  result.durationMs = Math.round(timer() - started);
  result.ok = !checks.some((c) => c.status === "fail");
  for (const c of checks)
    if (c.cause !== undefined && !result.causes.includes(c.cause)) result.causes.push(c.cause);
  return result;
}

function keySetCheck(json: unknown, where: string, result: IssuerDiagnosis): DoctorCheck {
  const base = { id: "jwks", title: "Key set (JWKS)" } as const;
  const keys = (json as { keys?: unknown } | null | undefined)?.keys;
  if (!Array.isArray(keys)) {
    return {
      ...base,
      status: "fail",
      detail: `${where}, but it is not a JWKS ({"keys": [...]})`,
      fix: "Point the entry at the issuer's JWKS (its discovery document's jwks_uri).",
      cause: "issuer-unreachable",
    };
  }
  result.keys = keys.map((k: Record<string, unknown>) => {
    const key: DoctorKey = {};
    if (typeof k?.kid === "string") key.kid = k.kid;
    if (typeof k?.kty === "string") key.kty = k.kty;
    if (typeof k?.alg === "string") key.alg = k.alg;
    if (typeof k?.use === "string") key.use = k.use;
    return key;
  });
  const unsafe = keys.some(
    (k: Record<string, unknown>) =>
      k?.kty === "oct" || (k !== null && typeof k === "object" && ("d" in k || "p" in k)),
  );
  const listed = result.keys.map(
    (k) => `${quote(k.kid ?? "(no kid)", 64)} (${[k.kty, k.alg, k.use].filter(Boolean).join(", ")})`,
  );
  if (unsafe) {
    return {
      ...base,
      status: "fail",
      detail: `${where}: it holds private or symmetric key material`,
      fix: "A JWKS must hold public keys only: publish the public keys and keep private keys elsewhere.",
      cause: "issuer-unreachable",
    };
  }
  if (keys.length === 0) {
    return {
      ...base,
      status: "fail",
      detail: `${where}: the key set is empty`,
      fix: "The issuer publishes no keys: no token of it can be verified. Check the issuer's signing-key configuration.",
      cause: "issuer-unreachable",
    };
  }
  return { ...base, status: "pass", detail: `${where}: ${keys.length} key(s): ${listed.join(", ")}` };
}
