import {
  convertAAGUIDToString,
  decodeAttestationObject,
  parseAuthenticatorData,
} from "@simplewebauthn/server/helpers";
import { WebAuthnError } from "../errors.js";
import type { AttestationFacts } from "./checkAttestationPolicy.js";

/**
 * Decodes a registration's `attestationObject` (base64url CBOR) far enough to apply policy before
 * verification: format, whether a certificate chain is present, AAGUID. Nothing here is trusted
 * yet; SimpleWebAuthn verifies it all afterwards. A garbled object is a clear 400.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_MALFORMED` (400).
 *
 * @example
 * ```ts
 * checkAttestationPolicy(ctx, readAttestation(response.response.attestationObject));
 * ```
 */
export function readAttestation(attestationObject: string): AttestationFacts {
  let decoded: ReturnType<typeof decodeAttestationObject>;
  try {
    decoded = decodeAttestationObject(new Uint8Array(Buffer.from(attestationObject, "base64url")));
  } catch {
    throw malformed("is not valid CBOR");
  }
  if (!(decoded instanceof Map)) throw malformed("is not a CBOR map");
  const fmt = decoded.get("fmt");
  const authData = decoded.get("authData");
  const attStmt = decoded.get("attStmt");
  if (typeof fmt !== "string") throw malformed('has no text "fmt"');
  if (!(authData instanceof Uint8Array)) throw malformed('has no byte string "authData"');
  if (!(attStmt instanceof Map)) throw malformed('has no map "attStmt"');
  let aaguid: Uint8Array | undefined;
  try {
    aaguid = parseAuthenticatorData(new Uint8Array(authData)).aaguid;
  } catch {
    throw malformed("holds authenticator data that cannot be parsed");
  }
  if (aaguid === undefined) throw malformed("holds authenticator data without attested credential data");
  const x5c = attStmt.get("x5c");
  return {
    fmt,
    hasX5c: Array.isArray(x5c) && x5c.length > 0,
    aaguid: convertAAGUIDToString(new Uint8Array(aaguid)),
  };
}

function malformed(what: string): WebAuthnError {
  return new WebAuthnError(
    "ERR_WEBAUTHN_MALFORMED",
    `response.attestationObject ${what}; send the credential exactly as the browser returned it.`,
  );
}
