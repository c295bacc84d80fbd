import { WebAuthnError } from "../errors.js";

/** The members of `clientDataJSON` the gateway reads before verification. */
export interface ClientData {
  type: string;
  /** base64url, as the relying party issued it. */
  challenge: string;
  origin: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const CHALLENGE = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * Decodes a response's `clientDataJSON` (base64url of UTF-8 JSON) defensively, to find the
 * challenge before anything else is verified. SimpleWebAuthn re-reads and checks every member later;
 * this only makes sure a garbled value is a clear 400 instead of a stray exception.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_MALFORMED` (400).
 *
 * @example
 * ```ts
 * const { challenge } = readClientData(response.response.clientDataJSON);
 * const record = takeChallenge(ctx, challenge, "login");
 * ```
 */
export function readClientData(clientDataJSON: string): ClientData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(Buffer.from(clientDataJSON, "base64url")));
  } catch {
    throw malformed("is not base64url-encoded UTF-8 JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw malformed("is not a JSON object");
  }
  const { type, challenge, origin } = parsed as Record<string, unknown>;
  if (typeof type !== "string" || type.length > 64) throw malformed('has no string "type"');
  if (typeof challenge !== "string" || !CHALLENGE.test(challenge)) {
    throw malformed('has no "challenge" of the form this gateway issues (base64url)');
  }
  if (typeof origin !== "string" || origin.length > 2048) throw malformed('has no string "origin"');
  return { type, challenge, origin };
}

function malformed(what: string): WebAuthnError {
  return new WebAuthnError(
    "ERR_WEBAUTHN_MALFORMED",
    `response.clientDataJSON ${what}; send the credential exactly as the browser returned it.`,
  );
}
