import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { loadMetadataStatements } from "./attestation/loadMetadataStatements.js";
import { useMetadataService } from "./attestation/useMetadataService.js";
import {
  type AuthenticationOptionsInput,
  authenticationOptions,
} from "./authentication/authenticationOptions.js";
import {
  type VerifyAuthenticationInput,
  type VerifyAuthenticationResult,
  verifyAuthentication,
} from "./authentication/verifyAuthentication.js";
import { WebAuthnError } from "./errors.js";
import { type RegistrationOptionsInput, registrationOptions } from "./registration/registrationOptions.js";
import {
  type VerifyRegistrationInput,
  type VerifyRegistrationResult,
  verifyRegistration,
} from "./registration/verifyRegistration.js";
import type { WebAuthnContext, WebAuthnOptions } from "./types.js";

export type { AuthenticationOptionsInput } from "./authentication/authenticationOptions.js";
export type {
  VerifyAuthenticationInput,
  VerifyAuthenticationResult,
} from "./authentication/verifyAuthentication.js";
export { isWebAuthnError, WEBAUTHN_ERROR_STATUS, WebAuthnError, type WebAuthnErrorCode } from "./errors.js";
export type { RegistrationOptionsInput } from "./registration/registrationOptions.js";
export type { VerifyRegistrationInput, VerifyRegistrationResult } from "./registration/verifyRegistration.js";
export type { AuthenticatorPolicy, RelyingParty, WebAuthnEvent, WebAuthnOptions } from "./types.js";
export { CHALLENGE_TTL_MS } from "./types.js";

/** The gateway's WebAuthn ceremonies, bound to one store and one configuration. */
export interface WebAuthn {
  /** Starts a registration: for a new user with an invite, or a signed-in user adding a key. */
  registrationOptions(input: RegistrationOptionsInput): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /** Finishes a registration: creates the user (invite) and stores the credential. */
  verifyRegistration(input: VerifyRegistrationInput): Promise<VerifyRegistrationResult>;
  /** Starts a sign-in, username-first or discoverable. */
  authenticationOptions(input?: AuthenticationOptionsInput): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** Finishes a sign-in. */
  verifyAuthentication(input: VerifyAuthenticationInput): Promise<VerifyAuthenticationResult>;
}

/**
 * Builds the WebAuthn ceremonies (registration and authentication, SimpleWebAuthn underneath) over an
 * {@link IdentityStore}. Challenges live in the store (single use, 5 minutes); nothing is kept in
 * module state. Every refusal is a {@link WebAuthnError} with a `status` (400 bad or unverifiable
 * input, 403 policy) and a message that says what to do.
 *
 * With `authenticators.allowAaguids`, the metadata file is read now (a bad file or an allowed
 * AAGUID without a statement throws `ERR_WEBAUTHN_CONFIG`), and SimpleWebAuthn's process-wide
 * `MetadataService` is initialized on the first registration (see `useMetadataService`).
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_CONFIG` for an invalid configuration.
 *
 * @example
 * ```ts
 * const webauthn = createWebAuthn({
 *   store: openIdentityStore(path.join(config.stateDir, "identity.db")),
 *   rp: { id: "localhost", name: "cosmosgate", origins: ["http://localhost:8080"] },
 *   authenticators: { userVerification: "required", requireDeviceBound: false },
 *   events: (e) => audit.security(e),
 * });
 * const options = await webauthn.authenticationOptions({});
 * // ... browser ...
 * const { user, amr } = await webauthn.verifyAuthentication({ response: body });
 * ```
 */
export function createWebAuthn(opts: WebAuthnOptions): WebAuthn {
  const { rp, authenticators } = opts;
  if (
    typeof rp?.id !== "string" ||
    rp.id.length === 0 ||
    !Array.isArray(rp.origins) ||
    rp.origins.length === 0
  ) {
    throw new WebAuthnError(
      "ERR_WEBAUTHN_CONFIG",
      "identity.rp needs an id (the sign-in page's domain) and at least one origin (e.g. http://localhost:8080).",
    );
  }
  const ctx: WebAuthnContext = {
    store: opts.store,
    rp: { id: rp.id, name: rp.name, origins: [...rp.origins] },
    authenticators: { ...authenticators },
    clock: opts.clock ?? Date.now,
    emit: opts.events ?? (() => {}),
  };

  if (authenticators.allowAaguids !== undefined) {
    if (authenticators.metadataFile === undefined) {
      throw new WebAuthnError(
        "ERR_WEBAUTHN_CONFIG",
        "identity.authenticators.allowAaguids needs metadataFile: a JSON array of the FIDO metadata statements of the allowed models, to verify their attestation.",
      );
    }
    const statements = loadMetadataStatements(authenticators.metadataFile);
    const known = new Set(statements.map((s) => s.aaguid));
    const allow = new Set(authenticators.allowAaguids.map((a) => a.toLowerCase()));
    for (const aaguid of allow) {
      if (!known.has(aaguid)) {
        throw new WebAuthnError(
          "ERR_WEBAUTHN_CONFIG",
          `identity.authenticators.allowAaguids lists ${aaguid}, but metadataFile "${authenticators.metadataFile}" has no statement for it; add its metadata statement or remove it from the list.`,
        );
      }
    }
    let ready: Promise<void> | undefined;
    ctx.allowAaguids = allow;
    ctx.metadataReady = () => {
      ready ??= useMetadataService(statements);
      return ready;
    };
  }

  return {
    registrationOptions: (input) => registrationOptions(ctx, input),
    verifyRegistration: (input) => verifyRegistration(ctx, input),
    authenticationOptions: (input) => authenticationOptions(ctx, input),
    verifyAuthentication: (input) => verifyAuthentication(ctx, input),
  };
}
