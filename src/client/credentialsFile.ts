import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { GatewayCredentialError } from "./errors.js";

/**
 * One signed-in session with a gateway, as `cosmosgate login` stores it.
 * `accessToken` and `refreshToken` are secrets: the file is 0600 in a 0700 directory.
 */
export interface StoredSession {
  /** The gateway's control-plane URL (normalized; also the key of the entry). */
  gateway: string;
  /** Where refresh tokens are redeemed (from the gateway's discovery document). */
  tokenEndpoint: string;
  /** Where `cosmosgate logout` revokes the refresh token, when the gateway has one. */
  revocationEndpoint?: string;
  accessToken: string;
  /** When `accessToken` expires, ms since the epoch. */
  expiresAt: number;
  /** Opaque, single use: each refresh returns a new one, which replaces it here. */
  refreshToken: string;
  /** The access token's `aud`: the data plane URL to give `CosmosClient` as `endpoint`. */
  dataPlane?: string;
}

/** The whole credentials file: `{ "version": 1, "gateways": { "<gateway URL>": StoredSession } }`. */
export interface CredentialsFileContent {
  version: 1;
  gateways: Record<string, StoredSession>;
}

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/**
 * Where the stored sessions live: `$COSMOSGATE_CREDENTIALS` when set, else
 * `$XDG_CONFIG_HOME/cosmosgate/credentials.json`, else `~/.config/cosmosgate/credentials.json`.
 *
 * @example credentialsFilePath() // "/home/ada/.config/cosmosgate/credentials.json"
 */
export function credentialsFilePath(env: Record<string, string | undefined> = process.env): string {
  if (env.COSMOSGATE_CREDENTIALS) return env.COSMOSGATE_CREDENTIALS;
  const base = env.XDG_CONFIG_HOME ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "cosmosgate", "credentials.json");
}

/**
 * Reads the credentials file; an absent file reads as no sessions. Refuses a file that other users
 * may read or that belongs to another user (on Windows, modes are not checked).
 *
 * @throws {GatewayCredentialError} `ERR_CREDENTIALS_FILE`.
 * @example const { gateways } = await readCredentials(credentialsFilePath());
 */
export async function readCredentials(file: string): Promise<CredentialsFileContent> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, gateways: {} };
    throw fileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  let text: string;
  try {
    // fstat of the opened file: what is checked is what is read.
    const st = await handle.stat();
    if (!st.isFile()) throw fileError(file, "is not a regular file");
    if (process.platform !== "win32") {
      const uid = process.getuid?.();
      if (uid !== undefined && st.uid !== uid && uid !== 0) {
        throw fileError(
          file,
          `belongs to another user (uid ${st.uid}); refusing to use its tokens. Delete it and sign in again: cosmosgate login`,
        );
      }
      if ((st.mode & 0o077) !== 0) {
        throw new GatewayCredentialError(
          "ERR_CREDENTIALS_FILE",
          `the credentials file ${file} is accessible by other users (mode ${modeText(st.mode)}); refusing to use it. ` +
            `Run: chmod 600 ${file} (and sign in again if someone may have copied it: cosmosgate logout && cosmosgate login)`,
        );
      }
    }
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  return parseCredentials(text, file);
}

/**
 * Replaces the credentials file atomically: writes a temporary file (mode 0600, created exclusively)
 * in the same directory, flushes it, and renames it over the old one, so a reader sees the old file
 * or the new one, never half of one. Creates the directory (0700) when needed.
 *
 * @throws {GatewayCredentialError} `ERR_CREDENTIALS_FILE`.
 * @example await writeCredentials(file, { version: 1, gateways: { [s.gateway]: s } });
 */
export async function writeCredentials(file: string, content: CredentialsFileContent): Promise<void> {
  await ensureDirectory(file);
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const text = `${JSON.stringify(content, null, 2)}\n`;
  try {
    const handle = await open(temp, "wx", FILE_MODE);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw fileError(file, `cannot be written (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  await syncDirectory(dirname(file));
}

/**
 * Runs `fn` holding the credentials file's lock (`FILE.lock`, created exclusively), so that two
 * processes never redeem the same refresh token: the gateway would take the second use for a stolen
 * token and revoke the session. A lock older than `staleMs` or left by a process that is gone is
 * taken over.
 *
 * @throws {GatewayCredentialError} `ERR_CREDENTIALS_FILE` when the lock cannot be had within `waitMs`.
 * @example await withCredentialsLock(file, async () => writeCredentials(file, await change(await readCredentials(file))));
 */
export async function withCredentialsLock<T>(
  file: string,
  fn: () => Promise<T>,
  options: { waitMs?: number; staleMs?: number } = {},
): Promise<T> {
  const waitMs = options.waitMs ?? 45_000;
  const staleMs = options.staleMs ?? 60_000;
  await ensureDirectory(file);
  const lock = `${file}.lock`;
  const deadline = Date.now() + waitMs;
  let delay = 10;
  for (;;) {
    try {
      const handle = await open(lock, "wx", FILE_MODE);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw fileError(
          lock,
          `cannot be created (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
          err,
        );
      }
    }
    if (await isStale(lock, staleMs)) {
      await unlink(lock).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) {
      throw new GatewayCredentialError(
        "ERR_CREDENTIALS_FILE",
        `another cosmosgate process has held ${lock} for over ${Math.round(waitMs / 1000)} s; ` +
          "if no cosmosgate process is running, delete that file and retry",
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

/**
 * Reads, changes and writes the credentials file under its lock.
 *
 * @example await updateCredentials(file, (c) => { delete c.gateways[gateway]; return c; });
 */
export async function updateCredentials(
  file: string,
  change: (content: CredentialsFileContent) => CredentialsFileContent | Promise<CredentialsFileContent>,
): Promise<CredentialsFileContent> {
  return withCredentialsLock(file, async () => {
    const next = await change(await readCredentials(file));
    await writeCredentials(file, next);
    return next;
  });
}

function parseCredentials(text: string, file: string): CredentialsFileContent {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw fileError(file, "is not valid JSON; delete it and sign in again: cosmosgate login");
  }
  if (!isObject(raw) || raw.version !== 1 || !isObject(raw.gateways)) {
    throw fileError(
      file,
      'is not a cosmosgate credentials file ({"version": 1, "gateways": {...}}); delete it and sign in again: cosmosgate login',
    );
  }
  const gateways: Record<string, StoredSession> = {};
  for (const [key, value] of Object.entries(raw.gateways)) {
    if (!isSession(value)) {
      throw fileError(
        file,
        `has a damaged entry for ${key}; sign in again: cosmosgate login --gateway ${key}`,
      );
    }
    gateways[key] = value;
  }
  return { version: 1, gateways };
}

function isSession(v: unknown): v is StoredSession {
  return (
    isObject(v) &&
    typeof v.gateway === "string" &&
    typeof v.tokenEndpoint === "string" &&
    (v.revocationEndpoint === undefined || typeof v.revocationEndpoint === "string") &&
    typeof v.accessToken === "string" &&
    typeof v.expiresAt === "number" &&
    Number.isFinite(v.expiresAt) &&
    typeof v.refreshToken === "string" &&
    (v.dataPlane === undefined || typeof v.dataPlane === "string")
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function ensureDirectory(file: string): Promise<void> {
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw fileError(file, `cannot be stored: its directory ${dir} cannot be created`, err);
  }
  if (process.platform === "win32") return;
  // Tighten our own directory if it was created looser (e.g. by hand); never touch one we do not own.
  try {
    const st = await stat(dir);
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.() && basename(dir) === "cosmosgate") {
      await chmod(dir, DIR_MODE);
    }
  } catch {
    // best effort
  }
}

async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  try {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  }
}

async function isStale(lock: string, staleMs: number): Promise<boolean> {
  try {
    const st = await stat(lock);
    if (Date.now() - st.mtimeMs > staleMs) return true;
    const handle = await open(lock, constants.O_RDONLY);
    let pid: number;
    try {
      pid = Number((await handle.readFile("utf8")).trim());
    } finally {
      await handle.close();
    }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ESRCH";
    }
  } catch {
    return false; // vanished: the next attempt creates it
  }
}

function modeText(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, "0");
}

function fileError(file: string, what: string, cause?: unknown): GatewayCredentialError {
  return new GatewayCredentialError(
    "ERR_CREDENTIALS_FILE",
    `the credentials file ${file} ${what}`,
    cause !== undefined ? { cause } : undefined,
  );
}
