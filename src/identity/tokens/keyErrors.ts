/**
 * Stable codes of {@link SigningKeyError}: problems with the gateway's own signing keys and the key
 * encryption key (KEK) that protects them at rest. All of them are operator-facing start-up or CLI
 * errors (never a client's fault), so the edge maps them to 500/503 and the CLI prints the message.
 *
 * @example
 * ```ts
 * SIGNING_KEY_ERROR_CODES.includes("ERR_KEK_WRONG"); // true
 * ```
 */
export const SIGNING_KEY_ERROR_CODES = [
  /** The configured KEK variable or file does not exist / is empty. */
  "ERR_KEK_MISSING",
  /** The KEK is not base64/base64url or does not decode to exactly 32 bytes. */
  "ERR_KEK_INVALID",
  /** The KEK file is readable by group or others. */
  "ERR_KEK_FILE_PERMISSIONS",
  /** A stored key was encrypted under another KEK than the configured one. */
  "ERR_KEK_WRONG",
  /** The store holds encrypted signing keys and no KEK is configured. */
  "ERR_KEK_REQUIRED",
  /** An encrypted private key failed authentication: it was altered (or truncated) at rest. */
  "ERR_KEY_TAMPERED",
  /** A stored key is not in a format this version understands, or its private and public halves disagree. */
  "ERR_KEY_FORMAT",
  /** Other gateway processes kept changing the key set while this one tried to update it. */
  "ERR_KEYRING_CONFLICT",
] as const;

/** One of {@link SIGNING_KEY_ERROR_CODES}. */
export type SigningKeyErrorCode = (typeof SIGNING_KEY_ERROR_CODES)[number];

/**
 * An error of the signing keyring or of key encryption. `code` is stable; `message` says what is
 * wrong and what to do, and never contains key material.
 *
 * @example
 * ```ts
 * try {
 *   await keyring.ensure();
 * } catch (error) {
 *   if (error instanceof SigningKeyError && error.code === "ERR_KEK_REQUIRED") process.exitCode = 78;
 *   throw error;
 * }
 * ```
 */
export class SigningKeyError extends Error {
  override readonly name = "SigningKeyError";
  readonly code: SigningKeyErrorCode;

  constructor(code: SigningKeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
