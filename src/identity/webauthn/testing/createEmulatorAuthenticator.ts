import { WebAuthnEmulator } from "nid-webauthn-emulator";
import type { TestAuthenticator } from "./createTestWebAuthn.js";

/**
 * `nid-webauthn-emulator` behind the same `register` / `authenticate` interface as the soft
 * authenticator: an ordinary synced passkey (fmt "none", backup-eligible and backed up, UV).
 *
 * @example
 * ```ts
 * const passkey = createEmulatorAuthenticator("http://localhost:8080");
 * await t.enroll("ada", passkey);
 * ```
 */
export function createEmulatorAuthenticator(
  origin: string,
): TestAuthenticator & { emulator: WebAuthnEmulator } {
  const emulator = new WebAuthnEmulator();
  return {
    emulator,
    register: (options) => emulator.createJSON(origin, options as never) as never,
    authenticate: (options) => emulator.getJSON(origin, options as never) as never,
  };
}
