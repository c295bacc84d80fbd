import { TokenError } from "../errors.js";
import { MAX_TOKEN_LENGTH } from "./util.js";

const AAD_PREFIX = "type=aad&ver=1.0&sig=";
const AAD_PREFIX_ENCODED = "type%3Daad%26ver%3D1.0%26sig%3D";

const HOW_TO_SEND = "send Authorization: type=aad&ver=1.0&sig=<token> or Bearer <token>";

/**
 * Takes the JWT out of a data-plane `Authorization` header. Accepts the Cosmos DB form
 * `type=aad&ver=1.0&sig=<jwt>` — raw, as `@azure/cosmos` sends it with `aadCredentials`, or
 * URL-encoded as a whole (`type%3Daad%26ver%3D1.0%26sig%3D<jwt>`) — and `Bearer <jwt>` (scheme
 * case-insensitive). Refuses account keys (`type=master`) and resource tokens (`type=resource`):
 * the gateway holds the account credential itself and accepts identity tokens only.
 *
 * Cheap on the hot path: the exact forms the SDK sends are matched by prefix and sliced; anything
 * else takes a slower, stricter parse. No regex. It does not check the JWT itself (that is
 * `verify`'s job, on a cache miss only).
 *
 * @throws {TokenError} `ERR_TOKEN_MISSING`, `ERR_TOKEN_MALFORMED`, `ERR_TOKEN_UNSUPPORTED_TYPE`.
 *
 * @example
 * ```ts
 * const jwt = parseAuthorization(req.headers.authorization);
 * const principal = verifier.verifyCached(jwt) ?? (await verifier.verify(jwt));
 * ```
 */
export function parseAuthorization(header: string | undefined): string {
  if (typeof header !== "string" || header.length === 0) {
    throw new TokenError("ERR_TOKEN_MISSING", `No Authorization header: ${HOW_TO_SEND}.`);
  }
  if (header.length > MAX_TOKEN_LENGTH) {
    throw new TokenError(
      "ERR_TOKEN_MALFORMED",
      `The Authorization header is longer than ${MAX_TOKEN_LENGTH} characters; send only the access token: ${HOW_TO_SEND}.`,
    );
  }
  // Fast paths: exactly what the SDK sends, a JWT that needs no decoding and no trailing parameters.
  if (header.startsWith(AAD_PREFIX)) {
    const jwt = header.slice(AAD_PREFIX.length);
    if (jwt.length > 0 && jwt.indexOf("&") === -1 && jwt.indexOf("%") === -1 && jwt.indexOf(" ") === -1) {
      return jwt;
    }
  } else if (header.startsWith(AAD_PREFIX_ENCODED)) {
    const jwt = header.slice(AAD_PREFIX_ENCODED.length);
    if (jwt.length > 0 && jwt.indexOf("%") === -1 && jwt.indexOf(" ") === -1) return jwt;
  } else if (header.length > 7 && header.charCodeAt(6) === 32 && isBearer(header)) {
    const jwt = header.slice(7);
    if (jwt.length > 0 && jwt.indexOf(" ") === -1 && jwt.charCodeAt(jwt.length - 1) > 32) return jwt;
  }
  return parseSlow(header);
}

function isBearer(header: string): boolean {
  return header.slice(0, 6).toLowerCase() === "bearer";
}

/** Everything but the exact SDK forms: surrounding whitespace, other key order, case, odd spacing. */
function parseSlow(raw: string): string {
  const header = raw.trim();
  if (header.length === 0) {
    throw new TokenError("ERR_TOKEN_MISSING", `The Authorization header is empty: ${HOW_TO_SEND}.`);
  }
  const lower = header.slice(0, 7).toLowerCase();
  if (lower.startsWith("bearer") && (header.charCodeAt(6) === 32 || header.charCodeAt(6) === 9)) {
    const jwt = header.slice(7).trim();
    if (jwt.length === 0 || hasWhitespace(jwt)) {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        `The Authorization header's Bearer credential must be a single token: ${HOW_TO_SEND}.`,
      );
    }
    return jwt;
  }
  const encoded = lower.startsWith("type%3d") || lower.startsWith("ver%3d") || lower.startsWith("sig%3d");
  if (encoded) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(header);
    } catch {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        `The Authorization header is URL-encoded but does not decode: ${HOW_TO_SEND}.`,
      );
    }
    return parseCosmosForm(decoded);
  }
  if (lower.startsWith("type=") || lower.startsWith("ver=") || lower.startsWith("sig=")) {
    return parseCosmosForm(header);
  }
  const space = header.indexOf(" ");
  const scheme = space > 0 && space <= 20 ? ` (scheme ${quote20(header.slice(0, space))})` : "";
  throw new TokenError(
    "ERR_TOKEN_MALFORMED",
    `The Authorization header is not in a form the gateway accepts${scheme}: ${HOW_TO_SEND}.`,
  );
}

/** Parses `type=…&ver=…&sig=…` (fields in any order and case, each once; `ver` may be left out). */
function parseCosmosForm(header: string): string {
  let type: string | undefined;
  let ver: string | undefined;
  let sig: string | undefined;
  for (const part of header.split("&")) {
    const eq = part.indexOf("=");
    const key = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? "" : part.slice(eq + 1).trim();
    if (key === "type" && type === undefined) type = value;
    else if (key === "ver" && ver === undefined) ver = value;
    else if (key === "sig" && sig === undefined) sig = value;
    else {
      throw new TokenError(
        "ERR_TOKEN_MALFORMED",
        `The Authorization header has an unexpected or repeated field ${quote20(key)}; expected exactly type, ver and sig: ${HOW_TO_SEND}.`,
      );
    }
  }
  const kind = (type ?? "").toLowerCase();
  if (kind === "master") {
    throw new TokenError(
      "ERR_TOKEN_UNSUPPORTED_TYPE",
      "Account keys (Authorization: type=master) are not accepted by cosmosgate: the gateway holds the account credential itself. " +
        "Sign in and use an identity token instead — with @azure/cosmos, aadCredentials: new GatewayCredential() — which sends type=aad&ver=1.0&sig=<token>.",
    );
  }
  if (kind === "resource") {
    throw new TokenError(
      "ERR_TOKEN_UNSUPPORTED_TYPE",
      "Resource tokens (Authorization: type=resource) are not accepted by cosmosgate; access is granted by the gateway's policy to an identity. " +
        "Sign in and use an identity token instead — with @azure/cosmos, aadCredentials: new GatewayCredential() — which sends type=aad&ver=1.0&sig=<token>.",
    );
  }
  if (kind !== "aad") {
    throw new TokenError(
      "ERR_TOKEN_UNSUPPORTED_TYPE",
      `Authorization type ${quote20(type ?? "")} is not accepted by cosmosgate; only identity tokens are: ${HOW_TO_SEND}.`,
    );
  }
  if (ver !== undefined && ver !== "1.0") {
    throw new TokenError(
      "ERR_TOKEN_MALFORMED",
      `Authorization version ${quote20(ver)} is not supported; use ver=1.0: ${HOW_TO_SEND}.`,
    );
  }
  if (sig === undefined || sig.length === 0 || hasWhitespace(sig)) {
    throw new TokenError(
      "ERR_TOKEN_MALFORMED",
      `The Authorization header's sig field must hold the token: ${HOW_TO_SEND}.`,
    );
  }
  return sig;
}

function hasWhitespace(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) <= 32) return true;
  return false;
}

/**
 * Quotes a short piece of the header (a scheme, a field name, a type) for a message. Anything long,
 * or that looks like the start of a JWT, is left out so that no part of a credential is echoed.
 */
function quote20(value: string): string {
  if (value.length > 20 || value.startsWith("eyJ")) return "(not shown)";
  return JSON.stringify(value);
}
