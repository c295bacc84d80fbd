/**
 * The browser side of the WebAuthn ceremonies (SimpleWebAuthn), with the server's requests exactly
 * as the server-rendered pages make them, and a sentence for every way they fail.
 */
import {
  browserSupportsWebAuthn,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";
import type { RemoveKeyResult } from "../../src/server/controlPlane/consoleApi";
import { ApiError, del, post, seg, sentence } from "./api";

/** A failure a person can act on: `code` is the server's or the browser's, `message` says what to do. */
export class CeremonyError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = "CeremonyError";
    this.code = code;
    this.status = status;
  }
}

export const UNSUPPORTED =
  "This browser cannot use security keys or passkeys here (WebAuthn is unavailable). Use a current browser, on the gateway's https address or on http://localhost.";

/** What the console says for each server code of the sign-in and key ceremonies. */
const SERVER_MESSAGES: Record<string, string> = {
  ERR_WEBAUTHN_KEY_SUSPENDED:
    "This key is suspended. Sign in with another of your keys, or ask an administrator to re-enable it.",
  ERR_WEBAUTHN_CLONE_SUSPECTED:
    "This key's signature counter went backwards, so it may have been copied. It is now suspended until an administrator re-enables it; sign in with another key.",
  ERR_WEBAUTHN_USER_DISABLED: "Your account is disabled. Ask an administrator to enable it again.",
  ERR_WEBAUTHN_UNKNOWN_CREDENTIAL:
    "This key is not registered with this gateway. Use a key you enrolled, or ask an administrator for an invite.",
  ERR_WEBAUTHN_WRONG_USER:
    "This key belongs to someone other than the user name you typed. Choose your own key, or sign in without a user name.",
  ERR_WEBAUTHN_CHALLENGE: "The request expired or was already used. Start again.",
  ERR_WEBAUTHN_CREDENTIAL_EXISTS: "This key is already registered. Use a different key.",
  ERR_WEBAUTHN_DEVICE_BOUND_REQUIRED:
    "This gateway accepts only hardware-bound keys, and this one is a synced passkey. Use a security key.",
  ERR_WEBAUTHN_AAGUID_NOT_ALLOWED: "This gateway's policy does not allow this model of key. Use another key.",
  ERR_WEBAUTHN_ATTESTATION_REQUIRED:
    "This gateway requires keys that prove their model (attestation), and this one did not. Use another key.",
  ERR_WEBAUTHN_SESSION: "Your session changed while adding the key. Sign in again, then add the key.",
};

/** Turns a server refusal into the console's sentence (the server's own when it has no better one). */
export function serverMessage(error: ApiError): CeremonyError {
  if (error.code === "ERR_TAP_REQUIRED") {
    // "... the assertion was not accepted (CODE: why) Ask for new options ...": the why, in the console's words.
    const inner = /\((ERR_[A-Z_]+): ([^)]*)\)/.exec(error.message);
    if (inner) {
      return new CeremonyError(
        inner[1],
        `Your key's answer was not accepted. ${SERVER_MESSAGES[inner[1]] ?? sentence(inner[2])} Try again.`,
        error.status,
      );
    }
  }
  return new CeremonyError(error.code, SERVER_MESSAGES[error.code] ?? error.message, error.status);
}

function browserMessage(kind: "register" | "authenticate", err: unknown, timedOut: boolean): CeremonyError {
  const e = (err ?? {}) as { name?: string; code?: string; message?: string };
  const name = e.name ?? "";
  const code = e.code ?? "";
  if (code === "ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED" || name === "InvalidStateError") {
    return new CeremonyError(
      "InvalidStateError",
      "This key is already registered with your account. Use a different key.",
    );
  }
  if (timedOut) {
    return new CeremonyError(
      "TimeoutError",
      "The key did not answer in time. Try again, and touch your key when it blinks.",
    );
  }
  if (name === "NotAllowedError" || name === "AbortError" || code === "ERROR_CEREMONY_ABORTED") {
    return new CeremonyError(
      "NotAllowedError",
      kind === "register"
        ? "Adding the key was cancelled, or no suitable key answered. Try again and touch your key when it blinks."
        : "Cancelled, or this device has no key for this site. Try again with a key you enrolled.",
    );
  }
  if (name === "SecurityError") {
    return new CeremonyError(
      "SecurityError",
      `The browser refused to use a key on this address. Open the gateway at its configured address (${location.origin} must match it).`,
    );
  }
  return new CeremonyError(
    name || "UnknownError",
    `Your key could not complete the request: ${e.message || name || "unknown error"}.`,
  );
}

async function ceremonyStep<T>(
  kind: "register" | "authenticate",
  timeoutMs: number | undefined,
  run: () => Promise<T>,
): Promise<T> {
  if (!browserSupportsWebAuthn()) throw new CeremonyError("ERR_UNSUPPORTED", UNSUPPORTED);
  const started = Date.now();
  try {
    return await run();
  } catch (err) {
    throw browserMessage(kind, err, Date.now() - started >= (timeoutMs ?? 300_000) - 2000);
  }
}

/** Runs a ceremony's request to the gateway; its refusals become {@link CeremonyError}s with the console's sentence. */
export async function server<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401 && !err.code.startsWith("HTTP_"))
      throw serverMessage(err);
    throw err;
  }
}

/** Asks the key for an assertion on the given options. */
export function authenticate(options: PublicKeyCredentialRequestOptionsJSON): Promise<unknown> {
  return ceremonyStep("authenticate", options.timeout, () => startAuthentication({ optionsJSON: options }));
}

/**
 * Signs in: `username` empty for a discoverable credential (the browser lists the passkeys).
 * `onTouch` is called when the browser is about to ask for the key.
 */
export async function signIn(username: string, onTouch: () => void): Promise<void> {
  const options = await server(() =>
    post<PublicKeyCredentialRequestOptionsJSON>("/auth/webauthn/login/options", username ? { username } : {}),
  );
  onTouch();
  const response = await authenticate(options);
  await server(() => post("/auth/webauthn/login/verify", { response }));
}

/** The server's answer to a registration. */
export interface RegisteredKey {
  credentialId: string;
  nickname: string;
  deviceBound: boolean;
  aaguid: string;
}

/** Adds another key to the signed-in person (the session cookie says who). */
export async function addKey(nickname: string, onTouch: () => void): Promise<RegisteredKey> {
  const options = await server(() =>
    post<PublicKeyCredentialCreationOptionsJSON>("/auth/webauthn/register/options", {}),
  );
  onTouch();
  const response = await ceremonyStep("register", options.timeout, () =>
    startRegistration({ optionsJSON: options }),
  );
  return server(() =>
    post<RegisteredKey>("/auth/webauthn/register/verify", nickname ? { response, nickname } : { response }),
  );
}

/** Removes a key: the challenge is bound to that key's removal, and a tap of any usable key confirms. */
export async function removeKey(id: string, onTouch: () => void): Promise<RemoveKeyResult> {
  const options = await server(() =>
    post<PublicKeyCredentialRequestOptionsJSON>(`/api/me/keys/${seg(id)}/remove/options`, {}),
  );
  onTouch();
  const response = await authenticate(options);
  return server(() => del<RemoveKeyResult>(`/api/me/keys/${seg(id)}`, { response }));
}

/** A message for any error a ceremony or a request can raise. */
export function messageOf(err: unknown): { code: string; message: string } {
  if (err instanceof CeremonyError || err instanceof ApiError)
    return { code: err.code, message: err.message };
  return { code: "ERR_UNKNOWN", message: err instanceof Error ? err.message : String(err) };
}
