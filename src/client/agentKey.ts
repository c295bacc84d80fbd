import { constants } from "node:fs";
import { chmod, mkdir, open } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { GatewayCredentialError } from "./errors.js";

/** Agent names: lower-case letters, digits, '-' and '_', 1–64 characters (as the gateway's contract). */
const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** An agent's key as this process holds it: the signing key (never exported again) and its public facts. */
export interface AgentKey {
  /** The private key, imported non-extractable: it cannot be exported from this process's memory. */
  privateKey: CryptoKey;
  /** The public JWK ({kty, crv, x, y}) to paste into a grant. */
  publicJwk: { kty: "EC"; crv: "P-256"; x: string; y: string };
  /** RFC 7638 thumbprint (SHA-256) of the public key: the `kid` of the agent's assertions. */
  thumbprint: string;
}

/**
 * Where an agent's private key lives: `$XDG_CONFIG_HOME/cosmosgate/agents/NAME.jwk` (else
 * `~/.config/cosmosgate/agents/NAME.jwk`), or `DIR/NAME.jwk` with `dir`.
 *
 * @throws {GatewayCredentialError} `ERR_AGENT_KEY` for a name that is not an agent name.
 * @example agentKeyPath("report-bot") // "/home/ada/.config/cosmosgate/agents/report-bot.jwk"
 */
export function agentKeyPath(
  name: string,
  options: { dir?: string; env?: Record<string, string | undefined> } = {},
): string {
  if (!AGENT_NAME.test(name)) {
    throw new GatewayCredentialError(
      "ERR_AGENT_KEY",
      `${JSON.stringify(name.slice(0, 80))} is not an agent name: use 1–64 lower-case letters, digits, '-' or '_'`,
    );
  }
  if (options.dir !== undefined) return join(options.dir, `${name}.jwk`);
  const env = options.env ?? process.env;
  const base = env.XDG_CONFIG_HOME ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "cosmosgate", "agents", `${name}.jwk`);
}

/**
 * Makes a new ES256 key pair and writes the private key, as a JWK, to `file`: created exclusively
 * with mode 0600 (an existing file is never overwritten) in a directory made 0700 when missing.
 * Returns the key; only the public part is meant to leave this machine.
 *
 * @throws {GatewayCredentialError} `ERR_AGENT_KEY` when the file exists or cannot be written.
 * @example
 * ```ts
 * const key = await createAgentKeyFile(agentKeyPath("report-bot"));
 * console.log(JSON.stringify(key.publicJwk), key.thumbprint);
 * ```
 */
export async function createAgentKeyFile(file: string): Promise<AgentKey> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const publicJwk = publicPart(jwk);
  const thumbprint = await calculateJwkThumbprint(publicJwk, "sha256");
  const text = `${JSON.stringify({ ...publicJwk, d: jwk.d, alg: "ES256", use: "sig", kid: thumbprint }, null, 2)}\n`;
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw keyError(file, `its directory cannot be created (${code(err)})`, err);
  }
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw keyError(
        file,
        "already exists; an agent's key is never overwritten (grants name it). Choose another name, or delete the file if no grant uses it",
        err,
      );
    }
    throw keyError(file, `cannot be created (${code(err)})`, err);
  }
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  // The umask cannot widen 0600, but a file system may ignore the mode at creation.
  await chmod(file, 0o600).catch(() => {});
  return { privateKey: await toCryptoKey(jwk, file), publicJwk, thumbprint };
}

/**
 * Reads an agent's private key from its JWK file, refusing a file that other users may read or
 * write (any of mode 0077), that belongs to another user, or that is not a regular file (on Windows,
 * modes are not checked). The key is imported non-extractable; the file's text is not kept.
 *
 * @throws {GatewayCredentialError} `ERR_AGENT_KEY` saying what is wrong and how to fix it.
 * @example const key = await readAgentKeyFile(agentKeyPath("report-bot"));
 */
export async function readAgentKeyFile(file: string): Promise<AgentKey> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code;
    if (c === "ENOENT") {
      throw keyError(file, "does not exist; make the agent's key with `cosmosgate agent keygen NAME`", err);
    }
    if (c === "ELOOP") throw keyError(file, "is a symbolic link; give the key file itself", err);
    throw keyError(file, `cannot be read (${c ?? String(err)})`, err);
  }
  let text: string;
  try {
    // fstat of the opened file: what is checked is what is read.
    const st = await handle.stat();
    if (!st.isFile()) throw keyError(file, "is not a regular file");
    if (process.platform !== "win32") {
      const uid = process.getuid?.();
      if (uid !== undefined && uid !== 0 && st.uid !== uid) {
        throw keyError(file, `belongs to another user (uid ${st.uid}); an agent uses its own key only`);
      }
      if ((st.mode & 0o077) !== 0) {
        throw keyError(
          file,
          `is accessible by other users (mode ${(st.mode & 0o777).toString(8).padStart(3, "0")}); refusing to read a private key others may have copied. ` +
            `Run: chmod 600 ${file} — and if someone may have read it, revoke the agent's grants and make a new key`,
        );
      }
    }
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw keyError(file, "is not JSON; it should hold the private JWK `cosmosgate agent keygen` wrote");
  }
  if (jwk === null || typeof jwk !== "object" || jwk.kty !== "EC" || jwk.crv !== "P-256") {
    throw keyError(file, 'does not hold an EC P-256 JWK (kty "EC", crv "P-256")');
  }
  if (typeof jwk.d !== "string") {
    throw keyError(file, "holds no private key (d); give the private key file, not the public key");
  }
  const publicJwk = publicPart(jwk);
  return {
    privateKey: await toCryptoKey(jwk, file),
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk, "sha256"),
  };
}

/**
 * An agent key from a private JWK held in memory (for hosts that keep keys elsewhere, and tests).
 *
 * @throws {GatewayCredentialError} `ERR_AGENT_KEY`.
 * @example const key = await agentKeyFromJwk(jwkFromVault);
 */
export async function agentKeyFromJwk(jwk: JWK): Promise<AgentKey> {
  if (
    jwk === null ||
    typeof jwk !== "object" ||
    jwk.kty !== "EC" ||
    jwk.crv !== "P-256" ||
    typeof jwk.d !== "string"
  ) {
    throw new GatewayCredentialError(
      "ERR_AGENT_KEY",
      'the agent key must be a private EC P-256 JWK (kty "EC", crv "P-256", d)',
    );
  }
  const publicJwk = publicPart(jwk);
  return {
    privateKey: await toCryptoKey(jwk, "(in memory)"),
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk, "sha256"),
  };
}

function publicPart(jwk: JWK): AgentKey["publicJwk"] {
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new GatewayCredentialError("ERR_AGENT_KEY", "the agent key has no public coordinates (x, y)");
  }
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}

async function toCryptoKey(jwk: JWK, file: string): Promise<CryptoKey> {
  try {
    const { kty, crv, x, y, d } = jwk;
    const key = await importJWK({ kty, crv, x, y, d, ext: false }, "ES256", { extractable: false });
    if (!(key instanceof CryptoKey)) throw new TypeError("not a CryptoKey");
    return key;
  } catch (err) {
    if (err instanceof GatewayCredentialError) throw err;
    throw keyError(file, "does not hold a valid P-256 private key", err);
  }
}

function keyError(file: string, what: string, cause?: unknown): GatewayCredentialError {
  return new GatewayCredentialError(
    "ERR_AGENT_KEY",
    `the agent key file ${file} ${what}`,
    cause !== undefined ? { cause } : undefined,
  );
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
