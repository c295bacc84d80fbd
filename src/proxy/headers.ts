import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/**
 * Request headers that never go upstream: the caller's credential and date (the gateway signs
 * with its own), the host, and hop-by-hop headers (RFC 9110 §7.6.1).
 */
const DROP_REQUEST = new Set([
  "authorization",
  "x-ms-date",
  "date",
  "host",
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "expect",
]);

/** Response headers that are not passed back: hop-by-hop, and the length (the gateway sets its own). */
const DROP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
]);

/** Copies the client's headers for the upstream, minus what must not pass. */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    if (DROP_REQUEST.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Copies the upstream's response headers for the client, minus hop-by-hop ones. */
export function clientResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  bodyLength: number,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (DROP_RESPONSE.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  out["content-length"] = bodyLength;
  return out;
}
