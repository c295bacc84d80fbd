/**
 * What a tap signs, recomputed in the browser: the gateway's canonical JSON (src/audit/chain.ts:
 * keys sorted by UTF-16 code units, undefined members left out, no whitespace, leaves as
 * JSON.stringify writes them) and SHA-256, so the console can check that the hash or challenge the
 * gateway hands it is of exactly what it shows.
 */

/** The canonical JSON of a JSON value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const members = Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
  return `{${members.join(",")}}`;
}

async function sha256(text: string): Promise<Uint8Array | null> {
  if (globalThis.crypto?.subtle === undefined) return null;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** base64url(SHA-256(text)), or null where the browser has no Web Crypto (not a secure context). */
export async function sha256url(text: string): Promise<string | null> {
  const digest = await sha256(text);
  if (digest === null) return null;
  let binary = "";
  for (const b of digest) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** SHA-256(text) in lower-case hex, or null without Web Crypto. */
export async function sha256hex(text: string): Promise<string | null> {
  const digest = await sha256(text);
  return digest === null ? null : Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
