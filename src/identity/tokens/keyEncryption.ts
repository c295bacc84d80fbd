import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { SigningKeyError } from "./keyErrors.js";

/**
 * Encryption at rest of the gateway's private signing keys with a 32-byte key encryption key (KEK):
 * AES-256-GCM from node:crypto, a random 12-byte IV per encryption.
 *
 * Format (all parts base64url): `v1.<kekId>.<iv>.<tag>.<ciphertext>`, where `kekId` is the first 6
 * bytes of HMAC-SHA256(kek, "cosmosgate kek id"). The kekId lets a wrong KEK be told apart from an
 * altered ciphertext (GCM alone cannot) and reveals nothing useful about a 256-bit random key;
 * `v1.<kekId>` is the GCM additional data, so neither can be changed without detection.
 */
const VERSION = "v1";
const KEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function checkKek(kek: Uint8Array): void {
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) {
    throw new SigningKeyError(
      "ERR_KEK_INVALID",
      `The key encryption key must be exactly ${KEK_BYTES} bytes (got ${kek instanceof Uint8Array ? kek.length : typeof kek}). Generate one with: openssl rand -base64 32`,
    );
  }
}

function kekIdOf(kek: Uint8Array): string {
  return createHmac("sha256", kek).update("cosmosgate kek id").digest().subarray(0, 6).toString("base64url");
}

/**
 * Encrypts a private key (any text; in practice a private JWK as JSON) under the KEK.
 *
 * @throws {SigningKeyError} `ERR_KEK_INVALID` when the KEK is not 32 bytes.
 * @example
 * ```ts
 * const kek = loadKek({ env: "COSMOSGATE_KEK" })!;
 * const stored = encryptPrivateKey(kek, JSON.stringify(privateJwk)); // "v1.…"
 * decryptPrivateKey(kek, stored) === JSON.stringify(privateJwk); // true
 * ```
 */
export function encryptPrivateKey(kek: Uint8Array, plaintext: string): string {
  checkKek(kek);
  const header = `${VERSION}.${kekIdOf(kek)}`;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", kek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(header, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `${header}.${iv.toString("base64url")}.${tag.toString("base64url")}.${ciphertext.toString("base64url")}`;
}

/**
 * Decrypts what {@link encryptPrivateKey} produced.
 *
 * @throws {SigningKeyError} `ERR_KEY_FORMAT` (not `v1.…` with five parts), `ERR_KEK_WRONG` (encrypted
 *   under another KEK), `ERR_KEY_TAMPERED` (the ciphertext, IV or tag was altered), `ERR_KEK_INVALID`.
 * @example
 * ```ts
 * const privateJwk = JSON.parse(decryptPrivateKey(kek, record.privateKey));
 * ```
 */
export function decryptPrivateKey(kek: Uint8Array, text: string): string {
  checkKek(kek);
  const parts = typeof text === "string" ? text.split(".") : [];
  if (parts.length !== 5 || parts[0] !== VERSION) {
    const version = parts.length > 1 && /^v\d+$/.test(parts[0]) ? ` (version ${parts[0]})` : "";
    throw new SigningKeyError(
      "ERR_KEY_FORMAT",
      `An encrypted signing key is not in the v1.<kekId>.<iv>.<tag>.<ciphertext> format${version}. ` +
        "It was written by another version of cosmosgate or damaged; restore the state directory from a backup or rotate the keys.",
    );
  }
  const [version, kekId, ivText, tagText, ciphertextText] = parts;
  if (kekId !== kekIdOf(kek)) {
    throw new SigningKeyError(
      "ERR_KEK_WRONG",
      "The stored signing keys were encrypted with a different key encryption key (KEK) than the one configured. " +
        "Configure the KEK the keys were created with (identity.tokens.kek in cosmosgate.yaml).",
    );
  }
  const iv = Buffer.from(ivText, "base64url");
  const tag = Buffer.from(tagText, "base64url");
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw tampered();
  try {
    const decipher = createDecipheriv("aes-256-gcm", kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(`${version}.${kekId}`, "utf8"));
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([
      decipher.update(Buffer.from(ciphertextText, "base64url")),
      decipher.final(),
    ]);
    return plain.toString("utf8");
  } catch (cause) {
    throw tampered(cause);
  }
}

function tampered(cause?: unknown): SigningKeyError {
  return new SigningKeyError(
    "ERR_KEY_TAMPERED",
    "An encrypted signing key failed its integrity check: it was altered or truncated at rest. " +
      "Do not trust this state directory's keys; restore it from a backup, or remove the signing keys and let the gateway create new ones (every issued token becomes invalid).",
    cause === undefined ? undefined : { cause },
  );
}

/** Where the KEK comes from: the name of an environment variable, or a file (mode 0600). */
export interface KekSource {
  /** Name of the environment variable holding the base64 or base64url KEK. */
  env?: string;
  /** Path of a file holding the base64 or base64url KEK (surrounding whitespace ignored). */
  file?: string;
}

const BASE64ISH = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Loads the 32-byte key encryption key from an environment variable or a file. Returns `undefined`
 * when neither is configured (keys are then stored unencrypted). Reads the file synchronously: it
 * runs once at start-up.
 *
 * @param env the environment to read (default `process.env`; tests pass their own).
 * @throws {SigningKeyError} `ERR_KEK_MISSING` (variable unset, file absent or empty),
 *   `ERR_KEK_FILE_PERMISSIONS` (file readable by group or others: `chmod 600 FILE`),
 *   `ERR_KEK_INVALID` (not base64, not 32 bytes, or both sources configured).
 * @example
 * ```ts
 * // openssl rand -base64 32 > /etc/cosmosgate/kek && chmod 600 /etc/cosmosgate/kek
 * const kek = loadKek({ file: "/etc/cosmosgate/kek" });
 * const keyring = createKeyring({ store, clock: Date.now, kek });
 * ```
 */
export function loadKek(source: KekSource, env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined {
  const { env: variable, file } = source ?? {};
  if (variable !== undefined && file !== undefined) {
    throw new SigningKeyError(
      "ERR_KEK_INVALID",
      "The key encryption key is configured both as an environment variable and as a file; configure exactly one.",
    );
  }
  if (variable !== undefined) {
    const value = env[variable];
    if (value === undefined || value.trim() === "") {
      throw new SigningKeyError(
        "ERR_KEK_MISSING",
        `The environment variable ${variable} (the signing keys' encryption key) is not set. ` +
          `Set it to 32 random bytes in base64, e.g. export ${variable}="$(openssl rand -base64 32)", and keep the same value across restarts.`,
      );
    }
    return decodeKek(value, `the environment variable ${variable}`);
  }
  if (file !== undefined) {
    let mode: number;
    let text: string;
    try {
      const stats = statSync(file);
      if (!stats.isFile()) throw Object.assign(new Error("not a regular file"), { code: "EISDIR" });
      mode = stats.mode;
      text = readFileSync(file, "utf8");
    } catch (cause) {
      const code = (cause as { code?: unknown }).code;
      throw new SigningKeyError(
        "ERR_KEK_MISSING",
        `The key encryption key file ${file} cannot be read${typeof code === "string" ? ` (${code})` : ""}. ` +
          `Create it with: openssl rand -base64 32 > ${file} && chmod 600 ${file}`,
        { cause },
      );
    }
    if (process.platform !== "win32" && (mode & 0o077) !== 0) {
      throw new SigningKeyError(
        "ERR_KEK_FILE_PERMISSIONS",
        `The key encryption key file ${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(3, "0")}); refusing to use it. Run: chmod 600 ${file}`,
      );
    }
    if (text.trim() === "") {
      throw new SigningKeyError(
        "ERR_KEK_MISSING",
        `The key encryption key file ${file} is empty. Fill it with: openssl rand -base64 32 > ${file}`,
      );
    }
    return decodeKek(text, `the file ${file}`);
  }
  return undefined;
}

function decodeKek(text: string, where: string): Uint8Array {
  const trimmed = text.trim();
  if (!BASE64ISH.test(trimmed)) {
    throw new SigningKeyError(
      "ERR_KEK_INVALID",
      `The key encryption key in ${where} is not base64 or base64url. Generate one with: openssl rand -base64 32`,
    );
  }
  // Buffer's base64 decoder accepts both alphabets (+/ and -_), with or without padding.
  const bytes = Buffer.from(trimmed, "base64");
  if (bytes.length !== KEK_BYTES) {
    throw new SigningKeyError(
      "ERR_KEK_INVALID",
      `The key encryption key in ${where} decodes to ${bytes.length} bytes; it must be exactly ${KEK_BYTES}. Generate one with: openssl rand -base64 32`,
    );
  }
  return new Uint8Array(bytes);
}
