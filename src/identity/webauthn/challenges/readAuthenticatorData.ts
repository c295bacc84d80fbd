import { parseAuthenticatorData } from "@simplewebauthn/server/helpers";
import { WebAuthnError } from "../errors.js";

/**
 * Parses an assertion's `authenticatorData` (base64url) once before verification, so garbled bytes
 * are a clear 400 (and do not use up the challenge). SimpleWebAuthn parses and checks it again.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_MALFORMED` (400).
 *
 * @example
 * ```ts
 * readAuthenticatorData(response.response.authenticatorData);
 * ```
 */
export function readAuthenticatorData(authenticatorData: string): void {
  try {
    parseAuthenticatorData(new Uint8Array(Buffer.from(authenticatorData, "base64url")));
  } catch {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      "response.authenticatorData cannot be parsed as WebAuthn authenticator data; send the credential exactly as the browser returned it.",
    );
  }
}
