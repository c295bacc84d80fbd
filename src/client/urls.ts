import { GatewayCredentialError } from "./errors.js";

/**
 * The canonical form of a gateway URL, the key of the credentials file: `http(s)://host[:port][/path]`
 * without a trailing slash, query or fragment (the default port is dropped, the host lower-cased).
 *
 * @throws {GatewayCredentialError} `ERR_INSECURE_URL` for something that is not an http(s) URL or
 *   that sends credentials over plain HTTP to another machine.
 * @example normalizeGatewayUrl("HTTP://LocalHost:8080/") // "http://localhost:8080"
 */
export function normalizeGatewayUrl(value: string): string {
  const url = secureUrl(value, "the gateway URL");
  if (url.search !== "" || url.hash !== "") {
    throw new GatewayCredentialError(
      "ERR_INSECURE_URL",
      `the gateway URL ${JSON.stringify(value)} has a query or fragment; give the control plane's base URL, e.g. https://gateway.example.com`,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/**
 * Parses an URL that tokens will be sent to: https, or http only to this machine (localhost,
 * 127.0.0.0/8, ::1), which is how `cosmosgate dev` runs. Anything else would send bearer and refresh
 * tokens in clear text.
 *
 * @throws {GatewayCredentialError} `ERR_INSECURE_URL`.
 * @example secureUrl(discovery.token_endpoint, "the token endpoint")
 */
export function secureUrl(value: unknown, what: string): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new GatewayCredentialError(
      "ERR_INSECURE_URL",
      `${what} ${JSON.stringify(String(value).slice(0, 200))} is not a URL; give one like https://gateway.example.com`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new GatewayCredentialError("ERR_INSECURE_URL", `${what} ${url.href} must be an https:// URL`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new GatewayCredentialError("ERR_INSECURE_URL", `${what} must not contain a user name or password`);
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw new GatewayCredentialError(
      "ERR_INSECURE_URL",
      `${what} ${url.href} uses plain HTTP to another machine, which would expose tokens; use https:// ` +
        "(plain http is accepted only for localhost)",
    );
  }
  return url;
}

/** Whether `hostname` (as `URL.hostname` gives it) names this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return (
    h === "localhost" ||
    h.endsWith(".localhost") ||
    h === "[::1]" ||
    h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
  );
}
