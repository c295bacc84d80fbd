import { WebAuthnError } from "../errors.js";
import type { WebAuthnContext } from "../types.js";

/** Attestation formats whose certificate chain SimpleWebAuthn checks against metadata statements. */
const METADATA_VERIFIED_FORMATS = new Set(["packed", "tpm", "android-key", "android-safetynet"]);

/** What {@link checkAttestationPolicy} looks at, read from the (not yet verified) attestation object. */
export interface AttestationFacts {
  fmt: string;
  /** Whether `attStmt` carries an `x5c` certificate chain. */
  hasX5c: boolean;
  /** AAGUID as a lower-case UUID string. */
  aaguid: string;
}

/**
 * Applies the AAGUID allow-list (when configured) to a registration's attestation: refuses `none`,
 * self attestation (`packed` without `x5c`), formats whose chain is not checked against metadata
 * (`fido-u2f`, `apple`), and AAGUIDs not listed. Runs before verification so a refusal is a clear
 * 403; verification then proves the chain ends at a root from that AAGUID's metadata statement.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_ATTESTATION_REQUIRED` or `ERR_WEBAUTHN_AAGUID_NOT_ALLOWED` (403).
 *
 * @example
 * ```ts
 * checkAttestationPolicy(ctx, { fmt: "packed", hasX5c: true, aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8" });
 * ```
 */
export function checkAttestationPolicy(
  ctx: Pick<WebAuthnContext, "allowAaguids">,
  facts: AttestationFacts,
): void {
  const allow = ctx.allowAaguids;
  if (allow === undefined) return;
  const todo = "use an authenticator model on the allow-list (identity.authenticators.allowAaguids)";
  if (facts.fmt === "none") {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_ATTESTATION_REQUIRED",
      `the authenticator sent no attestation (fmt "none"), so its model cannot be verified; this gateway only enrolls attested authenticators — allow attestation when the browser asks (some browsers and password managers strip it), or ${todo}.`,
    );
  }
  if (facts.fmt === "packed" && !facts.hasX5c) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_ATTESTATION_REQUIRED",
      `the authenticator sent only self attestation (packed, no certificate), which proves nothing about its model; ${todo}.`,
    );
  }
  if (!METADATA_VERIFIED_FORMATS.has(facts.fmt)) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_ATTESTATION_REQUIRED",
      `attestation format "${facts.fmt}" cannot be checked against FIDO metadata; ${todo}.`,
    );
  }
  if (!allow.has(facts.aaguid)) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_AAGUID_NOT_ALLOWED",
      `authenticator model ${facts.aaguid} is not on this gateway's allow-list; ${todo}, or ask an administrator to add it.`,
    );
  }
}
