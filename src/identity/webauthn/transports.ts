import type { AuthenticatorTransportFuture } from "@simplewebauthn/server";

const KNOWN: ReadonlySet<string> = new Set<AuthenticatorTransportFuture>([
  "ble",
  "cable",
  "hybrid",
  "internal",
  "nfc",
  "smart-card",
  "usb",
]);

/**
 * Keeps the transports WebAuthn knows of, dropping anything else a client sent.
 *
 * @example
 * ```ts
 * knownTransports(["usb", "warp-drive"]); // ["usb"]
 * ```
 */
export function knownTransports(transports: readonly string[] | undefined): AuthenticatorTransportFuture[] {
  return (transports ?? []).filter((t): t is AuthenticatorTransportFuture => KNOWN.has(t));
}
