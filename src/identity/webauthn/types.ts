import type { IdentityStore } from "../../store/ports.js";

/** The relying party: the gateway's control plane as the browser sees it. */
export interface RelyingParty {
  /** RP ID: the registrable domain of the sign-in page ("localhost", "gateway.example.com"). */
  id: string;
  /** Shown by the browser during registration. */
  name: string;
  /** Exact origins the ceremonies may run on ("http://localhost:8080"). */
  origins: string[];
}

/** Which authenticators may enroll, and how they must verify the user. */
export interface AuthenticatorPolicy {
  /** "required": a PIN or biometric on every ceremony (refused without UV). */
  userVerification: "required" | "preferred" | "discouraged";
  /** Refuse synced (backup-eligible) passkeys at registration: only hardware-bound keys enroll. */
  requireDeviceBound: boolean;
  /**
   * Authenticator models (AAGUIDs, any case) allowed to enroll. When set, registration asks for
   * direct attestation and refuses `none`, self attestation and any AAGUID not listed; the
   * attestation must chain to a root in that AAGUID's statement in `metadataFile`.
   */
  allowAaguids?: string[];
  /** JSON array of FIDO metadata statements (required with `allowAaguids`). Read once at start-up. */
  metadataFile?: string;
  /** How long a ceremony may take (the browser's timeout and the challenge's life), ms. Default {@link CHALLENGE_TTL_MS}. */
  timeout?: number;
}

/**
 * A security event for the audit log and metrics. `subject` is the user name, `credential` the
 * credential ID (base64url); neither carries a secret.
 */
export interface WebAuthnEvent {
  type: string;
  subject?: string;
  credential?: string;
  /** The key's nickname, AAGUID and kind, when the event knows the key (docs/audit.md). */
  credentialName?: string;
  aaguid?: string;
  deviceBound?: boolean;
  reason: string;
  decision?: "allow" | "deny";
  /** Event-specific facts (a failure code, counters, the attestation format); never a secret. */
  details?: Record<string, string | number | boolean>;
}

/** Options of {@link createWebAuthn}. */
export interface WebAuthnOptions {
  store: IdentityStore;
  rp: RelyingParty;
  authenticators: AuthenticatorPolicy;
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** Receives security events (enrollments, sign-ins, refusals, suspected clones). */
  events?: (e: WebAuthnEvent) => void;
}

/** What the ceremony functions share; built once by {@link createWebAuthn}. @internal */
export interface WebAuthnContext {
  store: IdentityStore;
  rp: RelyingParty;
  authenticators: AuthenticatorPolicy;
  /** `allowAaguids`, lower-cased; undefined when attestation is not required. */
  allowAaguids?: ReadonlySet<string>;
  /** Resolves once SimpleWebAuthn's MetadataService holds our statements (only with `allowAaguids`). */
  metadataReady?: () => Promise<void>;
  clock: () => number;
  emit: (e: WebAuthnEvent) => void;
}

/** How long a ceremony's challenge stays valid, unless `identity.authenticators.timeout` says otherwise. */
export const CHALLENGE_TTL_MS = 5 * 60 * 1000;
