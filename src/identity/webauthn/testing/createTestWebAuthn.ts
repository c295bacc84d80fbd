import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { openIdentityStore, type SqliteIdentityStore } from "../../../store/identityStore.js";
import { type InviteUserOptions, inviteUser } from "../../users/inviteUser.js";
import {
  type AuthenticatorPolicy,
  createWebAuthn,
  type VerifyAuthenticationResult,
  type VerifyRegistrationResult,
  type WebAuthn,
  type WebAuthnEvent,
} from "../index.js";

/** Anything that answers WebAuthn options: a {@link SoftAuthenticator} or a wrapped `nid-webauthn-emulator`. */
export interface TestAuthenticator {
  register(options: PublicKeyCredentialCreationOptionsJSON): RegistrationResponseJSON;
  authenticate(options: PublicKeyCredentialRequestOptionsJSON): AuthenticationResponseJSON;
}

/** A WebAuthn instance over an in-memory store with a controllable clock; see {@link createTestWebAuthn}. */
export interface TestWebAuthn {
  readonly rpId: string;
  readonly origin: string;
  readonly store: SqliteIdentityStore;
  readonly webauthn: WebAuthn;
  /** Every event emitted so far. */
  readonly events: WebAuthnEvent[];
  now(): number;
  /** Moves the clock forward. */
  advance(ms: number): void;
  /** Makes an invite for `name` (defaults: no groups, not admin) and returns its secret. */
  invite(name: string, opts?: Partial<Omit<InviteUserOptions, "name" | "clock">>): string;
  /** Invites `name` and enrolls `authenticator` for them. */
  enroll(
    name: string,
    authenticator: TestAuthenticator,
    opts?: Partial<InviteUserOptions>,
  ): Promise<VerifyRegistrationResult>;
  /** Signs in with `authenticator`, username-first when `username` is given, else discoverable. */
  signIn(authenticator: TestAuthenticator, username?: string): Promise<VerifyAuthenticationResult>;
  close(): void;
}

/**
 * A ready WebAuthn setup for tests of anything that needs enrolled users: SQLite `:memory:` store,
 * RP `localhost` on `http://localhost:8080`, user verification required, a clock starting at
 * 2026-11-28T10:00:00Z that moves only when told.
 *
 * @example
 * ```ts
 * const t = createTestWebAuthn();
 * const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
 * const { user } = await t.enroll("ada", key);
 * const { amr } = await t.signIn(key, "ada");
 * t.close();
 * ```
 */
export function createTestWebAuthn(
  opts: {
    authenticators?: Partial<AuthenticatorPolicy>;
    rpId?: string;
    origin?: string;
    start?: number;
  } = {},
): TestWebAuthn {
  const rpId = opts.rpId ?? "localhost";
  const origin = opts.origin ?? "http://localhost:8080";
  let now = opts.start ?? Date.UTC(2026, 10, 28, 10, 0, 0);
  const clock = () => now;
  const store = openIdentityStore(":memory:");
  const events: WebAuthnEvent[] = [];
  const webauthn = createWebAuthn({
    store,
    rp: { id: rpId, name: "cosmosgate test", origins: [origin] },
    authenticators: { userVerification: "required", requireDeviceBound: false, ...opts.authenticators },
    clock,
    events: (e) => events.push(e),
  });
  const invite: TestWebAuthn["invite"] = (name, extra = {}) =>
    inviteUser(store, { groups: [], admin: false, ...extra, name, clock }).secret;
  return {
    rpId,
    origin,
    store,
    webauthn,
    events,
    now: clock,
    advance(ms) {
      now += ms;
    },
    invite,
    async enroll(name, authenticator, extra = {}) {
      const inviteSecret = invite(name, extra);
      const options = await webauthn.registrationOptions({ inviteSecret });
      return webauthn.verifyRegistration({ response: authenticator.register(options) });
    },
    async signIn(authenticator, username) {
      const options = await webauthn.authenticationOptions(username !== undefined ? { username } : {});
      return webauthn.verifyAuthentication({ response: authenticator.authenticate(options) });
    },
    close() {
      store.close();
    },
  };
}
