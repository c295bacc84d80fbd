/**
 * Small helpers shared by the token files. Internal: not re-exported from `index.ts`.
 */

/** Largest Authorization header or token accepted, in characters (Entra ID tokens run 1–3 KiB). */
export const MAX_TOKEN_LENGTH = 16_384;

/**
 * Whether `token` has the shape of a compact JWS: `header.payload.signature`, base64url characters
 * only, header and payload non-empty. The signature may be empty so that `alg: none` tokens reach
 * the algorithm check and are refused with `ERR_TOKEN_ALGORITHM` rather than as malformed.
 * A loop over char codes, not a regex: cheap and allocation-free.
 *
 * @example
 * ```ts
 * isCompactJws("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"); // true
 * isCompactJws("not a token"); // false
 * ```
 */
export function isCompactJws(token: string): boolean {
  const length = token.length;
  if (length === 0 || length > MAX_TOKEN_LENGTH) return false;
  let dots = 0;
  let partStart = 0;
  for (let i = 0; i < length; i++) {
    const c = token.charCodeAt(i);
    if (c === 46 /* . */) {
      if (i === partStart) return false; // empty header or payload
      dots++;
      if (dots > 2) return false;
      partStart = i + 1;
      continue;
    }
    const base64url =
      (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95;
    if (!base64url) return false;
  }
  return dots === 2;
}

/**
 * Quotes an untrusted value (a claim or header taken from an unverified token) for an error message:
 * JSON-escaped and cut to `max` characters, so a message stays short and printable.
 *
 * @example
 * ```ts
 * quote("https://evil.example/"); // "\"https://evil.example/\""
 * ```
 */
export function quote(value: unknown, max = 100): string {
  const text = typeof value === "string" ? value : String(JSON.stringify(value));
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/**
 * A NumericDate (seconds since the epoch) as an ISO timestamp, or the bare number when it is out of
 * the Date range.
 *
 * @example
 * ```ts
 * describeTime(0); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function describeTime(seconds: unknown): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || Math.abs(seconds) > 8.64e12) {
    return quote(seconds);
  }
  return new Date(seconds * 1000).toISOString();
}
