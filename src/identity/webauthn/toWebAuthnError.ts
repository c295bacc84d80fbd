import { WebAuthnError } from "./errors.js";
import type { WebAuthnContext } from "./types.js";

/**
 * Turns whatever SimpleWebAuthn (or a decoder) threw during verification into a
 * {@link WebAuthnError} with a message that says what was wrong and what to do. A
 * {@link WebAuthnError} passes through unchanged. Never returns a raw error: bad input is a 4xx.
 *
 * @example
 * ```ts
 * try {
 *   result = await verifyAuthenticationResponse({ ... });
 * } catch (error) {
 *   throw toWebAuthnError(error, "authentication", ctx);
 * }
 * ```
 */
export function toWebAuthnError(
  error: unknown,
  ceremony: "registration" | "authentication",
  ctx: Pick<WebAuthnContext, "rp">,
): WebAuthnError {
  if (error instanceof WebAuthnError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : "";
  const again = ceremony === "registration" ? "register the key again" : "sign in again";
  const fail = (message: string) => new WebAuthnError("ERR_WEBAUTHN_VERIFICATION", message, { cause: error });

  if (/response type/i.test(raw)) {
    const expected = ceremony === "registration" ? "webauthn.create" : "webauthn.get";
    return fail(
      `the response is not ${ceremony === "registration" ? "a registration" : "an authentication"} response (clientDataJSON.type must be "${expected}"); ${again} with navigator.credentials.${ceremony === "registration" ? "create" : "get"}().`,
    );
  }
  if (/origin/i.test(raw)) {
    return fail(
      `the response was made on an origin this gateway does not serve; expected one of ${ctx.rp.origins.join(", ")} — open the sign-in page at that address, or add the origin to identity.rp.origins.`,
    );
  }
  if (name === "UnexpectedRPIDHash" || /RP ID/i.test(raw)) {
    return fail(
      `the authenticator signed for a different relying party than "${ctx.rp.id}" (RP ID hash mismatch); use a key registered for this gateway, or check identity.rp.id matches the sign-in page's domain.`,
    );
  }
  if (/user verification/i.test(raw)) {
    return fail(
      `the authenticator did not verify the user (no PIN or biometric), and this gateway requires user verification; set a PIN on the key (or use one with a fingerprint reader) and ${again}.`,
    );
  }
  if (/user presence|user not present/i.test(raw)) {
    return fail(`the authenticator did not report user presence; touch the key when it blinks and ${again}.`);
  }
  if (name === "InvalidBackupFlags" || /backed up/i.test(raw)) {
    return fail(
      "the authenticator data is inconsistent: it says the key is backed up but not backup-eligible (BS without BE); the response is invalid — use a conforming authenticator.",
    );
  }
  if (/public key alg|alg .*not supported|Unexpected COSE|missing alg|kty/i.test(raw)) {
    return fail(
      `the key's public key algorithm is not supported (ES256, EdDSA and RS256 are); use another authenticator.`,
    );
  }
  if (/No metadata statement found|metadata root certificates|compromised aaguid/i.test(raw)) {
    return new WebAuthnError(
      "ERR_WEBAUTHN_AAGUID_NOT_ALLOWED",
      "the authenticator's attestation does not chain to a trusted metadata statement for its model (AAGUID); use an authenticator on the allow-list (identity.authenticators.allowAaguids).",
      { cause: error },
    );
  }
  if (/attestation|certificate|Packed|x5c/i.test(raw)) {
    return fail(
      `the authenticator's attestation statement is invalid (${clip(raw)}); use another authenticator or ask an administrator.`,
    );
  }
  if (/CBOR|authenticator data|Leftover bytes|unexpected end|offset/i.test(raw)) {
    return new WebAuthnError(
      "ERR_WEBAUTHN_MALFORMED",
      `the authenticator data could not be decoded (${clip(raw)}); send the credential exactly as the browser returned it.`,
      { cause: error },
    );
  }
  return fail(`the ${ceremony} response could not be verified (${clip(raw)}); ${again}.`);
}

/** The first line of a library message, short, for a client-facing message. */
function clip(message: string): string {
  const line = message.split("\n")[0] ?? "";
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
