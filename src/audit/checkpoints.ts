import { open } from "node:fs/promises";
import type { Statement } from "better-sqlite3";
import {
  CompactSign,
  type CryptoKey,
  calculateJwkThumbprint,
  compactVerify,
  importJWK,
  type JWK,
  type KeyObject,
} from "jose";
import { type Database, migrate } from "../store/index.js";
import { openDatabase } from "../store/sqlite.js";
import { canonicalJson } from "./chain.js";
import { AuditError } from "./errors.js";
import { auditMigrations } from "./schema.js";

/**
 * A signed statement "the audit chain had record `seq` with hash `hash` at `time`": what the
 * gateway stores in `audit_checkpoints`, publishes at `GET /audit/checkpoints`, and what an export
 * carries as `{"checkpoint": {...}}` lines. Holds no record content.
 */
export interface AuditCheckpoint {
  seq: number;
  /** The hash of record `seq` (SHA-256 hex). */
  hash: string;
  /** When it was signed (ms since the epoch). */
  time: number;
  /** The gateway instance that signed it, when known. */
  instance?: string;
  /** Key id of the signing key (its RFC 7638 thumbprint). */
  kid: string;
  alg: "ES256";
  /**
   * Compact JWS (ES256, header `{alg, kid, typ: "cosmosgate-audit-checkpoint"}`) over the
   * canonical JSON of `{seq, hash, time, instance?}`.
   */
  jws: string;
  /** Public JWK of the signing key, kept so the checkpoint verifies after the key has retired. */
  jwk: JWK;
}

/** The JWS `typ` of a checkpoint: a checkpoint is never mistaken for a token, nor a token for one. */
export const CHECKPOINT_TYP = "cosmosgate-audit-checkpoint";

/** The fields a checkpoint signs. */
export interface CheckpointClaims {
  seq: number;
  hash: string;
  time: number;
  instance?: string;
}

/** The key that signs, as the identity keyring hands it out. */
export interface CheckpointSigningKey {
  kid: string;
  key: CryptoKey | KeyObject;
  /** Its public JWK (kty, crv, x, y). */
  jwk: JWK;
}

/**
 * Where checkpoints get their key: the gateway's token-signing keyring fits this shape
 * (`identity.keyring`). The audit module does not import identity code.
 */
export interface CheckpointKeys {
  /** The key that signs now. */
  signer(): Promise<{ kid: string; key: CryptoKey | KeyObject }>;
  /** The published keys; must hold the signer's public JWK. */
  jwks(): { keys: readonly JWK[] };
}

/**
 * Signs a checkpoint of `claims` with `key`.
 *
 * @example
 * ```ts
 * const { kid, key } = await keyring.signer();
 * const jwk = keyring.jwks().keys.find((k) => k.kid === kid)!;
 * const cp = await signCheckpoint({ seq: 1000, hash, time: Date.now() }, { kid, key, jwk });
 * ```
 */
export async function signCheckpoint(
  claims: CheckpointClaims,
  signing: CheckpointSigningKey,
): Promise<AuditCheckpoint> {
  const payload = checkpointPayload(claims);
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: "ES256", kid: signing.kid, typ: CHECKPOINT_TYP })
    .sign(signing.key);
  const { kty, crv, x, y } = signing.jwk;
  const cp: AuditCheckpoint = {
    seq: claims.seq,
    hash: claims.hash,
    time: claims.time,
    kid: signing.kid,
    alg: "ES256",
    jws,
    jwk: { kty, crv, x, y, kid: signing.kid, alg: "ES256", use: "sig" },
  };
  if (claims.instance !== undefined) cp.instance = claims.instance;
  return cp;
}

/** The text a checkpoint's JWS signs. */
function checkpointPayload(c: CheckpointClaims): string {
  return canonicalJson({ seq: c.seq, hash: c.hash, time: c.time, instance: c.instance });
}

/** Why a checkpoint does not verify (`ok: false`), for a person. */
export type CheckpointCheck = { ok: true } | { ok: false; reason: string };

/** Options of {@link verifyCheckpoint}. */
export interface VerifyCheckpointOptions {
  /**
   * Trusted keys (a JWKS, e.g. the gateway's `/.well-known/jwks.json`): when given, the checkpoint's
   * key must be one of them, not only the key it carries.
   */
  jwks?: { keys: readonly JWK[] };
  /** Imported keys by JWK thumbprint, shared across calls so each key is imported once. */
  cache?: Map<string, Promise<CryptoKey | KeyObject | Uint8Array>>;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks a checkpoint: its shape, that `kid` is the thumbprint of the JWK it carries, that the JWS
 * verifies with that JWK (ES256, typ {@link CHECKPOINT_TYP}, header kid = `kid`), and that the
 * signed payload is exactly its `seq`, `hash`, `time` and `instance`. With `opts.jwks`, the key must
 * also be one of those. Never throws for a bad checkpoint: says why.
 *
 * What this proves: the checkpoint was signed by the holder of the key in it. That this key is the
 * gateway's is for the caller to establish (a JWKS, or copies of checkpoints kept elsewhere).
 *
 * @example
 * ```ts
 * const check = await verifyCheckpoint(cp, { jwks: await (await fetch(jwksUrl)).json() });
 * if (!check.ok) console.log(`checkpoint ${cp.seq}: ${check.reason}`);
 * ```
 */
export async function verifyCheckpoint(
  cp: AuditCheckpoint,
  opts: VerifyCheckpointOptions = {},
): Promise<CheckpointCheck> {
  const shape = checkShape(cp);
  if (shape !== undefined) return { ok: false, reason: shape };
  const { jwk } = cp;
  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y }, "sha256");
  } catch {
    return { ok: false, reason: "its public key is not a valid EC JWK" };
  }
  if (thumbprint !== cp.kid)
    return { ok: false, reason: `its kid is not the thumbprint of the key it carries` };
  if (opts.jwks !== undefined) {
    const trusted = opts.jwks.keys.find((k) => k.kid === cp.kid);
    if (trusted === undefined || trusted.x !== jwk.x || trusted.y !== jwk.y) {
      return { ok: false, reason: `its key ${cp.kid} is not in the trusted key set` };
    }
  }
  let key: CryptoKey | KeyObject | Uint8Array;
  try {
    const cache = opts.cache;
    let imported = cache?.get(thumbprint);
    if (imported === undefined) {
      imported = importJWK({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, "ES256");
      cache?.set(thumbprint, imported);
    }
    key = await imported;
  } catch {
    return { ok: false, reason: "its public key cannot be imported as a P-256 key" };
  }
  let payload: Uint8Array;
  try {
    const verified = await compactVerify(cp.jws, key, { algorithms: ["ES256"] });
    if (verified.protectedHeader.kid !== cp.kid || verified.protectedHeader.typ !== CHECKPOINT_TYP) {
      return { ok: false, reason: "its signature header does not name this checkpoint's key and type" };
    }
    payload = verified.payload;
  } catch {
    return { ok: false, reason: "its signature does not verify (forged, or signed by another key)" };
  }
  if (new TextDecoder().decode(payload) !== checkpointPayload(cp)) {
    return { ok: false, reason: "its seq, hash or time differ from what was signed (edited after signing)" };
  }
  return { ok: true };
}

function checkShape(cp: AuditCheckpoint): string | undefined {
  if (typeof cp !== "object" || cp === null) return "it is not an object";
  if (!Number.isSafeInteger(cp.seq) || cp.seq < 1) return "its seq is not a positive integer";
  if (typeof cp.hash !== "string" || !HEX64.test(cp.hash)) return "its hash is not a SHA-256 hex string";
  if (typeof cp.time !== "number" || !Number.isFinite(cp.time)) return "its time is not a number";
  if (cp.instance !== undefined && typeof cp.instance !== "string") return "its instance is not a string";
  if (typeof cp.kid !== "string" || cp.kid === "") return "it names no key (kid)";
  if (cp.alg !== "ES256") return `its algorithm ${JSON.stringify(cp.alg)} is not ES256`;
  if (typeof cp.jws !== "string") return "it carries no signature (jws)";
  const jwk = cp.jwk as JWK | undefined;
  if (typeof jwk !== "object" || jwk === null || jwk.kty !== "EC" || jwk.crv !== "P-256") {
    return "its public key (jwk) is not a P-256 EC key";
  }
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string" || "d" in jwk) {
    return "its public key (jwk) is malformed";
  }
  return undefined;
}

/**
 * Reads checkpoints from JSON text as `GET /audit/checkpoints` serves it (`{"checkpoints": [...]}`),
 * a bare array, or JSON lines (an export: only its `{"checkpoint": {...}}` lines are taken). Sorted
 * by seq, oldest first. Does not verify them.
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` when the text holds none of these.
 *
 * @example
 * ```ts
 * const external = parseCheckpoints(await readFile("checkpoints.json", "utf8"));
 * ```
 */
export function parseCheckpoints(text: string): AuditCheckpoint[] {
  let list: unknown[] | undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) list = value;
    else if (
      typeof value === "object" &&
      value !== null &&
      Array.isArray((value as { checkpoints?: unknown }).checkpoints)
    ) {
      list = (value as { checkpoints: unknown[] }).checkpoints;
    } else if (typeof value === "object" && value !== null && "checkpoint" in value) {
      list = [(value as { checkpoint: unknown }).checkpoint];
    }
  } catch {
    // Not one JSON document: try JSON lines.
    list = [];
    for (const line of text.split("\n")) {
      if (!line.includes('"checkpoint"')) continue;
      try {
        const v = JSON.parse(line) as { checkpoint?: unknown; seq?: unknown };
        // A checkpoint line has no seq of its own (a record line always has one).
        if (typeof v === "object" && v !== null && v.checkpoint !== undefined && v.seq === undefined) {
          list.push(v.checkpoint);
        }
      } catch {
        // A record line that mentions "checkpoint": not ours.
      }
    }
  }
  if (list === undefined) {
    throw new AuditError(
      "ERR_AUDIT_ARGUMENT",
      'the checkpoints file is not {"checkpoints": [...]} (as GET /audit/checkpoints serves it), a JSON array, or an export with {"checkpoint": ...} lines.',
    );
  }
  for (const [i, cp] of list.entries()) {
    if (typeof cp !== "object" || cp === null || !Number.isSafeInteger((cp as { seq?: unknown }).seq)) {
      throw new AuditError(
        "ERR_AUDIT_ARGUMENT",
        `checkpoint #${i + 1} of the checkpoints file has no integer seq.`,
      );
    }
  }
  return (list as AuditCheckpoint[]).sort((a, b) => a.seq - b.seq);
}

interface CheckpointRow {
  seq: number;
  hash: string;
  time: number;
  instance: string | null;
  kid: string;
  alg: string;
  jws: string;
  jwk: string;
}

const COLUMNS = "seq, hash, time, instance, kid, alg, jws, jwk";

function fromRow(r: CheckpointRow): AuditCheckpoint {
  let jwk: JWK;
  try {
    jwk = JSON.parse(r.jwk) as JWK;
  } catch {
    jwk = {} as JWK; // verifyCheckpoint says the key is malformed
  }
  const cp: AuditCheckpoint = {
    seq: r.seq,
    hash: r.hash,
    time: r.time,
    kid: r.kid,
    alg: r.alg as "ES256",
    jws: r.jws,
    jwk,
  };
  if (r.instance !== null) cp.instance = r.instance;
  return cp;
}

/** True when `db` has the checkpoint table (schema version 4 or later). */
export function hasCheckpointTable(db: Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_checkpoints'").get() !==
    undefined
  );
}

/** Options of {@link listCheckpoints}. */
export interface ListCheckpointsOptions {
  /** Only checkpoints with seq >= fromSeq. */
  fromSeq?: number;
  /** Only checkpoints with seq <= toSeq. */
  toSeq?: number;
  /** At most this many. */
  limit?: number;
  /** Newest first (default oldest first). */
  newestFirst?: boolean;
}

/**
 * The stored checkpoints (none when the table does not exist yet), e.g. for an export to interleave
 * with the records it writes.
 *
 * @example
 * ```ts
 * for (const cp of listCheckpoints(db, { fromSeq: 1, toSeq: 5000 })) out.write(`${JSON.stringify({ checkpoint: cp })}\n`);
 * ```
 */
export function listCheckpoints(db: Database, opts: ListCheckpointsOptions = {}): AuditCheckpoint[] {
  if (!hasCheckpointTable(db)) return [];
  const rows = db
    .prepare<[number, number, number], CheckpointRow>(
      `SELECT ${COLUMNS} FROM audit_checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq ${opts.newestFirst ? "DESC" : "ASC"} LIMIT ?`,
    )
    .all(opts.fromSeq ?? 0, opts.toSeq ?? Number.MAX_SAFE_INTEGER, opts.limit ?? -1);
  return rows.map(fromRow);
}

/** Stores a checkpoint (ignored when one for that seq exists). */
export function insertCheckpoint(db: Database, cp: AuditCheckpoint): void {
  db.prepare(`INSERT OR IGNORE INTO audit_checkpoints (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
    cp.seq,
    cp.hash,
    cp.time,
    cp.instance ?? null,
    cp.kid,
    cp.alg,
    cp.jws,
    canonicalJson(cp.jwk),
  );
}

/** Options of {@link createCheckpointer}. */
export interface CheckpointerOptions {
  /** A read-write connection to the audit database (migrated here). */
  db: Database;
  keys: CheckpointKeys;
  /** A checkpoint after this many new records... Default 1000. */
  every?: number;
  /** ...or after this many ms since the last one, whichever first (only when records were added). Default 60 s. */
  intervalMs?: number;
  /** How often the timer looks at the chain head. Default min(250 ms, intervalMs). */
  pollMs?: number;
  /** ms since the epoch; default Date.now. */
  clock?: () => number;
  instance?: string;
  /**
   * Makes the records up to the head just read durable before a checkpoint vouches for them (the
   * gateway: fdatasync of the WAL). Without it, a crash could lose records a published checkpoint
   * already covers, and an auditor's copy would then call the trail truncated.
   */
  durable?: () => Promise<void>;
  /** A checkpoint could not be written (the timer retries at its next tick). */
  onError?: (err: AuditError) => void;
}

/** Writes checkpoints of the chain head on a timer. Create with {@link createCheckpointer}. */
export interface Checkpointer {
  /** Starts the (unref'd) timer. */
  start(): void;
  /** One timer step: writes a checkpoint if one is due (N records or T ms). */
  tick(): Promise<AuditCheckpoint | undefined>;
  /** Writes a checkpoint of the head now, if records were added since the last one. */
  checkpoint(): Promise<AuditCheckpoint | undefined>;
  /** The newest `limit` checkpoints, newest first. */
  recent(limit?: number): AuditCheckpoint[];
  /** Stops the timer and writes a last checkpoint of what is committed. Does not close the database. */
  close(): Promise<void>;
}

interface Head {
  seq: number;
  hash: string;
}

/**
 * Creates the writer of signed checkpoints. It never sits on the data path: a timer (every
 * `pollMs`) reads the chain head (one primary-key lookup) and, when `every` records were added or
 * `intervalMs` passed since the last checkpoint and there is something new, makes the head durable
 * (`durable`), signs `{seq, hash, time, instance}` with the keyring's current key (ES256 compact
 * JWS, via jose) and stores it with the key's public JWK. At most one checkpoint is in flight.
 * "Every N records" is therefore checked `pollMs` apart: at high rates a checkpoint covers more
 * than N records.
 *
 * @example
 * ```ts
 * const cps = createCheckpointer({ db, keys: identity.keyring, every: 1000, intervalMs: 60_000 });
 * cps.start();
 * app.get("/audit/checkpoints", () => ({ checkpoints: cps.recent(100) }));
 * await cps.close();
 * ```
 */
export function createCheckpointer(opts: CheckpointerOptions): Checkpointer {
  const { db, keys } = opts;
  const every = opts.every ?? 1000;
  const intervalMs = opts.intervalMs ?? 60_000;
  if (!Number.isInteger(every) || every < 1) throw new TypeError("every must be a positive integer");
  if (!(intervalMs > 0)) throw new TypeError("intervalMs must be positive");
  const pollMs = opts.pollMs ?? Math.min(250, intervalMs);
  const clock = opts.clock ?? Date.now;
  try {
    migrate(db, auditMigrations);
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_WRITE",
      `cannot prepare the checkpoint table in "${db.name}": ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const selectHead: Statement<[], Head> = db.prepare<[], Head>(
    "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
  );
  const selectRecent = db.prepare<[number], CheckpointRow>(
    `SELECT ${COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT ?`,
  );
  const newest = selectRecent.get(1);
  let last = { seq: newest?.seq ?? 0, time: newest?.time ?? clock() };
  let inFlight: Promise<AuditCheckpoint | undefined> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const write = async (head: Head): Promise<AuditCheckpoint> => {
    const { kid, key } = await keys.signer();
    const jwk = keys.jwks().keys.find((k) => k.kid === kid);
    if (jwk === undefined) {
      throw new AuditError(
        "ERR_AUDIT_WRITE",
        `the signing key ${kid} is not in the published key set; cannot checkpoint`,
      );
    }
    await opts.durable?.();
    const cp = await signCheckpoint(
      { seq: head.seq, hash: head.hash, time: clock(), instance: opts.instance },
      { kid, key, jwk },
    );
    insertCheckpoint(db, cp);
    last = { seq: cp.seq, time: cp.time };
    return cp;
  };

  const run = (force: boolean): Promise<AuditCheckpoint | undefined> => {
    if (inFlight !== undefined) {
      // One checkpoint at a time; a forced one waits for the one in flight, then covers what is new.
      const again = () => (force ? run(true) : undefined);
      return inFlight.then(again, again);
    }
    let head: Head | undefined;
    try {
      head = selectHead.get();
    } catch (err) {
      return Promise.reject(toWriteError(err));
    }
    if (head === undefined || head.seq <= last.seq) return Promise.resolve(undefined);
    if (!force && head.seq - last.seq < every && clock() - last.time < intervalMs)
      return Promise.resolve(undefined);
    const h = head;
    inFlight = write(h)
      .catch((err: unknown) => {
        throw toWriteError(err);
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const report = (err: unknown) => opts.onError?.(toWriteError(err));

  return {
    start() {
      if (timer !== undefined || closed) return;
      timer = setInterval(() => {
        run(false).catch(report);
      }, pollMs);
      timer.unref();
    },
    tick: () => run(false),
    checkpoint: () => run(true),
    recent(limit = 100) {
      return selectRecent.all(limit).map(fromRow);
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await run(true).catch(report);
    },
  };
}

/**
 * Opens its own connection to the audit file and starts a {@link createCheckpointer} on it, with
 * `durable` = an fdatasync of the WAL (records committed by the data plane's writer, which syncs
 * asynchronously, are on disk before a checkpoint covers them). `close()` also closes the connection.
 *
 * @example
 * ```ts
 * const cps = await startCheckpointer(join(stateDir, "audit.db"), { keys: identity.keyring, every: 1000, intervalMs: 60_000 });
 * ```
 */
export async function startCheckpointer(
  file: string,
  opts: Omit<CheckpointerOptions, "db" | "durable">,
): Promise<Checkpointer> {
  let db: Database;
  try {
    // NORMAL: this connection never fsyncs inside COMMIT (that would block the event loop);
    // `durable` and the data plane writer's own fdatasync of the same WAL make it durable.
    db = openDatabase(file, { synchronous: "NORMAL" });
    // Never run SQLite's WAL checkpoint from this connection: its commits come when the WAL is
    // already past SQLite's default 1000 pages (the data-plane writer lets it grow to 10000), so
    // every checkpoint insert would copy the WAL into the database and fsync it, on the event
    // loop (measured ~8 ms each). The data-plane writer's connection checkpoints for both.
    db.pragma("wal_autocheckpoint = 0");
  } catch (err) {
    throw new AuditError("ERR_AUDIT_WRITE", messageOf(err), { cause: err });
  }
  let cps: Checkpointer;
  try {
    cps = createCheckpointer({
      ...opts,
      db,
      durable: async () => {
        const wal = await open(`${file}-wal`, "r");
        try {
          await wal.datasync();
        } finally {
          await wal.close();
        }
      },
    });
  } catch (err) {
    db.close();
    throw err;
  }
  cps.start();
  return {
    ...cps,
    async close() {
      await cps.close();
      db.close();
    },
  };
}

function toWriteError(err: unknown): AuditError {
  return err instanceof AuditError
    ? err
    : new AuditError("ERR_AUDIT_WRITE", `an audit checkpoint could not be written: ${messageOf(err)}`, {
        cause: err,
      });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
