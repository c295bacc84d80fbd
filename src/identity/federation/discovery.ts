import { quote } from "../tokens/util.js";

/** The fields of an OpenID Provider's discovery document the gateway uses. */
export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  /** Any other members, as published (shown by `cosmosgate doctor issuer`). */
  [member: string]: unknown;
}

/** Options of {@link fetchDiscovery}. */
export interface FetchDiscoveryOptions {
  /** The `issuer` the document must name (OpenID Connect Discovery §4.3). */
  expectedIssuer: string;
  /** Milliseconds before giving up. Default 5000. */
  timeoutMs?: number;
  /** For tests. Default the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * Whether a URL may carry keys or discovery: https, or plain http on a loopback host only (local
 * identity providers in development and tests). Returns the problem, or undefined when acceptable.
 *
 * @example
 * ```ts
 * insecureUrlProblem("http://idp.example.com/keys"); // "must use https (plain http only on localhost)"
 * ```
 */
export function insecureUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${quote(value)} is not a URL`;
  }
  const loopback = url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
  if (url.protocol === "https:" || (url.protocol === "http:" && loopback)) return undefined;
  return `${quote(value)} must use https (plain http only on localhost)`;
}

/**
 * The discovery URL of an issuer: `{issuer}/.well-known/openid-configuration` (OpenID Connect
 * Discovery §4, the issuer's trailing slash dropped first).
 *
 * @example
 * ```ts
 * discoveryUrlOf("https://token.actions.githubusercontent.com");
 * // "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
 * ```
 */
export function discoveryUrlOf(issuer: string): string {
  return `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
}

/**
 * Fetches and checks an OpenID Provider configuration: HTTP 200, a JSON object, `issuer` equal to
 * the configured one (a mismatch is the classic Entra v1-versus-v2 mistake, and a sign of a wrong
 * tenant), and a `jwks_uri` over https. Throws an `Error` whose message says what was wrong and
 * what to check; it never follows redirects.
 *
 * @example
 * ```ts
 * const doc = await fetchDiscovery("https://login.microsoftonline.com/TENANT/v2.0/.well-known/openid-configuration",
 *   { expectedIssuer: "https://login.microsoftonline.com/TENANT/v2.0" });
 * doc.jwks_uri; // "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys"
 * ```
 */
export async function fetchDiscovery(
  url: string,
  options: FetchDiscoveryOptions,
): Promise<DiscoveryDocument> {
  const problem = insecureUrlProblem(url);
  if (problem !== undefined) throw new Error(`the discovery URL ${problem}`);
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  let response: Response;
  try {
    response = await fetchImpl(url, {
      headers: { accept: "application/json" },
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const name = (error as { name?: unknown }).name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new Error(`the discovery document at ${url} did not arrive within ${timeoutMs} ms`);
    }
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    throw new Error(
      `the discovery document at ${url} could not be fetched (${typeof cause === "string" ? cause : (error as Error).message})`,
    );
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`the discovery document at ${url} answered HTTP ${response.status}, not 200`);
  }
  let doc: unknown;
  try {
    doc = await response.json();
  } catch {
    throw new Error(`the discovery document at ${url} is not JSON`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`the discovery document at ${url} is not a JSON object`);
  }
  const { issuer, jwks_uri: jwksUri } = doc as Record<string, unknown>;
  if (issuer !== options.expectedIssuer) {
    throw new Error(
      `the discovery document at ${url} names issuer ${quote(issuer)}, not the configured ${quote(options.expectedIssuer)}; ` +
        "configure the issuer exactly as its tokens carry it in iss (for Entra ID, v2.0 and v1 issuers differ)",
    );
  }
  if (typeof jwksUri !== "string") throw new Error(`the discovery document at ${url} has no jwks_uri`);
  const keysProblem = insecureUrlProblem(jwksUri);
  if (keysProblem !== undefined) throw new Error(`the discovery document's jwks_uri ${keysProblem}`);
  return doc as DiscoveryDocument;
}
