import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  type JWK,
} from "jose";
import type { IdentityStore, SigningKeyRecord } from "../../store/ports.js";
import { decryptPrivateKey, encryptPrivateKey } from "./keyEncryption.js";
import { SigningKeyError } from "./keyErrors.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Attempts of one ensure/rotate against concurrent writers before giving up. */
const MAX_ATTEMPTS = 8;

/** What the keyring tells the audit trail. Every change of the key set emits one or more. */
export type KeyringEventType =
  | "signing_key.created"
  | "signing_key.activated"
  | "signing_key.retired"
  | "signing_key.rotation_scheduled"
  | "signing_key.removed"
  | "signing_key.ensure_failed";

/** An audit event of the keyring. `at` is the keyring clock (ms) when it was recorded. */
export interface KeyringEvent {
  type: KeyringEventType;
  /** Why, in words (e.g. "scheduled rotation", "forced rotation (cosmosgate keys rotate)"). */
  reason: string;
  kid?: string;
  at: number;
}

/** Options of {@link createKeyring}. */
export interface KeyringOptions {
  /** Where keys live; several gateway processes may share it. */
  store: Pick<IdentityStore, "listSigningKeys" | "replaceSigningKeys">;
  /** Milliseconds since the epoch. */
  clock: () => number;
  /** How long a key signs. Default 24 h. Must be at least `2 × jwksCacheMs`. */
  rotateEveryMs?: number;
  /** The longest lifetime of a token signed by these keys. Default 10 min. */
  tokenTtlMs?: number;
  /**
   * Publication lead: a key is in the JWKS at least this long before it signs, so that every
   * verifier's cached JWKS (other gateway processes, clients) holds it by then. Default 10 min.
   */
  jwksCacheMs?: number;
  /** Clock skew allowed by verifiers; a retired key stays published this much longer. Default 30 s. */
  skewMs?: number;
  /** 32-byte key encryption key: when given, private keys are stored AES-256-GCM encrypted. */
  kek?: Uint8Array;
  /** Audit sink. Called after the change is committed; an exception it throws is ignored. */
  events?: (event: KeyringEvent) => void;
}

/** A key as {@link Keyring.list} shows it at the keyring's clock. */
export interface KeySummary {
  kid: string;
  /** `next`: published, not signing yet; `current`: signing; `retired`: published until `expiresAt`. */
  state: "next" | "current" | "retired";
  createdAt: number;
  activatesAt: number;
  retiresAt: number;
  expiresAt: number;
  encrypted: boolean;
}

/** The key that signs now. */
export interface SigningKey {
  kid: string;
  key: CryptoKey;
}

/** What {@link Keyring.rotate} did. */
export interface RotationResult {
  /** The key that signed when rotate() was called. */
  previousKid: string;
  /** The key that replaces it. */
  kid: string;
  /** When `kid` signs (now when `immediate`). */
  activatesAt: number;
  /** True when the new key signs at once; false when its activation was brought forward to `activatesAt`. */
  immediate: boolean;
}

/** The gateway's own ES256 signing keys, with scheduled rotation and a JWKS that publishes ahead. */
export interface Keyring {
  /** The longest token lifetime the schedule allows for (`tokenTtlMs`). */
  readonly tokenTtlMs: number;
  /**
   * Brings the stored key set to the invariants at `clock()`: one current key, a next key
   * published ahead, retired keys published until their tokens have expired, expired keys removed.
   * Safe to call from several processes at once. Throws {@link SigningKeyError} (KEK problems,
   * damaged keys, `ERR_KEYRING_CONFLICT`).
   */
  ensure(): Promise<void>;
  /** Re-reads the store (no writes), e.g. when a token names a kid this process has not seen yet. */
  refresh(): Promise<void>;
  /** The key that signs at `clock()`. Cheap (in memory); runs `ensure()` only when no loaded key is current. */
  signer(): Promise<SigningKey>;
  /**
   * The public JWKS at `clock()`: next, current and retired keys until their `expiresAt`. Cheap: the
   * same object is returned until the set changes (so a consumer can compare by identity).
   */
  jwks(): JSONWebKeySet;
  /** Forced rotation now; see {@link createKeyring} for the exact semantics. */
  rotate(): Promise<RotationResult>;
  /** The loaded keys at `clock()`, oldest activation first. */
  list(): KeySummary[];
  /** Runs `ensure()` periodically (every min(rotateEvery/10, jwksCache/4, 1 min), at least 1 s) on an unref'd timer. */
  start(): void;
  stop(): void;
}

interface LoadedKey {
  readonly record: SigningKeyRecord;
  readonly publicJwk: JWK;
  readonly privateKey: CryptoKey;
}

interface PlannedEvent {
  type: KeyringEventType;
  reason: string;
  kid: string;
}

interface Plan {
  add: SigningKeyRecord[];
  remove: string[];
  events: PlannedEvent[];
}

/**
 * Creates the signing keyring of the gateway's own tokens.
 *
 * Schedule. Each key signs for `rotateEveryMs` (`activatesAt <= now < retiresAt`) and stays in the
 * JWKS until `expiresAt = retiresAt + tokenTtlMs + skewMs`, when every token it signed has expired.
 * The next key is created when the current one starts signing and activates when it retires, so it
 * is published for about `rotateEveryMs` (never less than `jwksCacheMs`: if the next key is created
 * late — the gateway was down — the current key's `retiresAt` is extended to `now + jwksCacheMs`).
 * Only on an empty store, or when every stored key has retired (the gateway was stopped for longer
 * than `rotateEveryMs`), does a new key sign immediately. Which key signs is decided from the clock
 * in memory, so every process switches at the same instant without a write.
 *
 * Several processes. Every write goes through `store.replaceSigningKeys(expectedKids, add, remove)`,
 * a compare-and-set on the stored kid set; the loser re-reads and re-plans (usually to nothing).
 * Every write except the deferred forced rotation below changes the kid set, so the compare-and-set
 * cannot be fooled by a stale read (kids are thumbprints of fresh keys and never come back).
 *
 * Forced rotation (`rotate()`, `cosmosgate keys rotate`). A key may sign only after it has been in
 * the JWKS for `jwksCacheMs`, and rotation never breaks that:
 * - the next key was created at least `jwksCacheMs` ago (the normal case): it signs now, the
 *   current key retires now (still published until its tokens expire), and a new next key is
 *   created; `immediate: true`.
 * - it was created less than `jwksCacheMs` ago (e.g. just after another rotation): the switch is
 *   brought forward to `next.createdAt + jwksCacheMs`: the current key keeps signing until then and
 *   retires at that instant; `immediate: false` and `activatesAt` say when. Calling `rotate()` again
 *   before then changes nothing (at most one pending rotation). This write keeps the kid set; it is
 *   still safe against a concurrent stale writer because another process could only act differently
 *   on the old times at the old switch, `rotateEveryMs - jwksCacheMs >= jwksCacheMs` later.
 * The retired key stays in the JWKS `jwksCacheMs` longer than usual: another process may sign with
 * it until its next periodic `ensure()` reads the change.
 * A forced rotation is a routine measure: the old key stays verifiable until its tokens expire. It
 * is not the answer to a stolen key (that needs the key removed from the JWKS and sessions revoked).
 *
 * KEK. With `kek`, new private keys are stored encrypted (`encrypted: true`); existing plaintext
 * keys stay readable. Without it, a store holding encrypted keys is refused (`ERR_KEK_REQUIRED`);
 * a wrong KEK is `ERR_KEK_WRONG`, an altered key `ERR_KEY_TAMPERED`.
 *
 * @example
 * ```ts
 * const keyring = createKeyring({ store, clock: Date.now, kek: loadKek({ env: "COSMOSGATE_KEK" }),
 *   events: (e) => audit.write({ type: e.type, reason: e.reason, kid: e.kid }) });
 * await keyring.ensure(); // fails fast on a missing or wrong KEK
 * keyring.start();
 * const { kid, key } = await keyring.signer();
 * app.get("/.well-known/jwks.json", () => keyring.jwks());
 * ```
 */
export function createKeyring(options: KeyringOptions): Keyring {
  const { store, clock } = options;
  const rotateEveryMs = duration(options.rotateEveryMs, 24 * HOUR, "rotateEveryMs");
  const tokenTtlMs = duration(options.tokenTtlMs, 10 * MINUTE, "tokenTtlMs");
  const jwksCacheMs = duration(options.jwksCacheMs, 10 * MINUTE, "jwksCacheMs", true);
  const skewMs = duration(options.skewMs, 30_000, "skewMs", true);
  if (rotateEveryMs < 2 * jwksCacheMs) {
    throw new TypeError(
      `rotateEveryMs (${rotateEveryMs}) must be at least twice jwksCacheMs (${jwksCacheMs}): a key must be published for jwksCacheMs before it signs`,
    );
  }
  const kek = options.kek;
  if (kek !== undefined && (!(kek instanceof Uint8Array) || kek.length !== 32)) {
    throw new SigningKeyError("ERR_KEK_INVALID", "The key encryption key (kek) must be exactly 32 bytes.");
  }
  if (typeof clock !== "function") throw new TypeError("clock must be a function returning ms");

  let keys: readonly LoadedKey[] = [];
  let loadedState = "";
  let signerCache: LoadedKey | undefined;
  let published: JSONWebKeySet = Object.freeze({ keys: Object.freeze([]) as unknown as JWK[] });
  let publishedUntil = Number.NEGATIVE_INFINITY;
  let queue: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const emit = (type: KeyringEventType, reason: string, kid: string | undefined, at: number): void => {
    try {
      options.events?.(kid === undefined ? { type, reason, at } : { type, reason, kid, at });
    } catch {
      // An audit sink failure must not break key rotation; the sink reports its own failures.
    }
  };

  /** Runs `task` after every earlier ensure/rotate/refresh of this keyring (one at a time). */
  const exclusive = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  };

  const withTimes = (record: SigningKeyRecord, activatesAt: number, retiresAt: number): SigningKeyRecord => ({
    ...record,
    activatesAt,
    retiresAt,
    expiresAt: retiresAt + tokenTtlMs + skewMs,
  });

  async function newKey(now: number, activatesAt: number, retiresAt: number): Promise<SigningKeyRecord> {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const pub = await exportJWK(pair.publicKey);
    const priv = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint({ kty: "EC", crv: pub.crv, x: pub.x, y: pub.y }, "sha256");
    const publicJwk = JSON.stringify({
      kty: "EC",
      crv: pub.crv,
      x: pub.x,
      y: pub.y,
      kid,
      alg: "ES256",
      use: "sig",
    });
    const privateJwk = JSON.stringify({ kty: "EC", crv: priv.crv, x: priv.x, y: priv.y, d: priv.d });
    return withTimes(
      {
        kid,
        alg: "ES256",
        publicJwk,
        privateKey: kek === undefined ? privateJwk : encryptPrivateKey(kek, privateJwk),
        encrypted: kek !== undefined,
        createdAt: now,
        activatesAt,
        retiresAt,
        expiresAt: 0,
      },
      activatesAt,
      retiresAt,
    );
  }

  async function importRecord(record: SigningKeyRecord): Promise<LoadedKey> {
    const where = `Signing key ${record.kid}`;
    if (record.alg !== "ES256") {
      throw new SigningKeyError(
        "ERR_KEY_FORMAT",
        `${where} has algorithm ${record.alg}; only ES256 is supported.`,
      );
    }
    if (record.encrypted && kek === undefined) throw kekRequired();
    const text = record.encrypted
      ? decryptPrivateKey(kek as Uint8Array, record.privateKey)
      : record.privateKey;
    let pub: JWK;
    let priv: JWK;
    try {
      pub = JSON.parse(record.publicJwk) as JWK;
      priv = JSON.parse(text) as JWK;
    } catch (cause) {
      throw new SigningKeyError(
        "ERR_KEY_FORMAT",
        `${where} is not stored as JSON JWKs; the state is damaged.`,
        {
          cause,
        },
      );
    }
    if (pub.kty !== "EC" || pub.crv !== "P-256" || typeof priv.d !== "string") {
      throw new SigningKeyError(
        "ERR_KEY_FORMAT",
        `${where} is not a P-256 EC key pair; the state is damaged.`,
      );
    }
    const thumbprint = await calculateJwkThumbprint(
      { kty: "EC", crv: "P-256", x: priv.x, y: priv.y },
      "sha256",
    );
    if (thumbprint !== record.kid || pub.x !== priv.x || pub.y !== priv.y) {
      throw new SigningKeyError(
        "ERR_KEY_FORMAT",
        `${where}: its private key does not belong to it (the kid is the public key's thumbprint). The state was altered; restore it or remove the signing keys.`,
      );
    }
    const privateKey = (await importJWK({ ...priv, alg: "ES256" }, "ES256", {
      extractable: false,
    })) as CryptoKey;
    const publicJwk = Object.freeze({
      kty: "EC",
      crv: "P-256",
      x: pub.x,
      y: pub.y,
      kid: record.kid,
      alg: "ES256",
      use: "sig",
    }) as JWK;
    return Object.freeze({ record: Object.freeze({ ...record }), publicJwk, privateKey });
  }

  /** Makes `rows` the in-memory key set (decrypting and importing keys not loaded yet). */
  async function adopt(rows: SigningKeyRecord[]): Promise<void> {
    const state = JSON.stringify([...rows].sort((a, b) => (a.kid < b.kid ? -1 : 1)));
    if (state === loadedState) return;
    if (kek === undefined && rows.some((r) => r.encrypted)) throw kekRequired();
    const before = new Map(keys.map((k) => [k.record.kid, k]));
    const next: LoadedKey[] = [];
    for (const record of rows) {
      const old = before.get(record.kid);
      if (old && old.record.privateKey === record.privateKey && old.record.publicJwk === record.publicJwk) {
        next.push(Object.freeze({ ...old, record: Object.freeze({ ...record }) }));
      } else {
        next.push(await importRecord(record));
      }
    }
    next.sort((a, b) => a.record.activatesAt - b.record.activatesAt);
    keys = Object.freeze(next);
    loadedState = state;
    signerCache = undefined;
    publishedUntil = Number.NEGATIVE_INFINITY;
  }

  /** The plan that brings `rows` to the invariants at `now`, or undefined when they hold. */
  async function planEnsure(rows: SigningKeyRecord[], now: number): Promise<Plan | undefined> {
    const plan: Plan = { add: [], remove: [], events: [] };
    const live: SigningKeyRecord[] = [];
    for (const row of rows) {
      if (row.expiresAt <= now) {
        plan.remove.push(row.kid);
        plan.events.push({
          type: "signing_key.removed",
          kid: row.kid,
          reason: `left the JWKS: every token it signed has expired (retired ${iso(row.retiresAt)})`,
        });
      } else live.push(row);
    }
    let current = currentOf(live, now);
    const future = futureOf(live, now);

    if (current === undefined) {
      const retiresAt = future[0]?.activatesAt ?? now + rotateEveryMs;
      const created = await newKey(now, now, retiresAt);
      const why =
        rows.length === 0
          ? "first start: the store held no signing keys"
          : "no key was current: every stored key had retired (the gateway was stopped for longer than rotateEvery)";
      plan.add.push(created);
      plan.events.push(
        { type: "signing_key.created", kid: created.kid, reason: `${why}; signs immediately` },
        { type: "signing_key.activated", kid: created.kid, reason: why },
      );
      current = created;
    } else if (future.length === 0 && current.activatesAt > current.createdAt) {
      // The previous next key took over on schedule (nothing is written at the switch itself).
      const predecessor = live
        .filter((r) => r.retiresAt <= now && r.kid !== current?.kid)
        .sort((a, b) => b.retiresAt - a.retiresAt)[0];
      plan.events.push({
        type: "signing_key.activated",
        kid: current.kid,
        reason: `scheduled rotation: signs since ${iso(current.activatesAt)}`,
      });
      if (predecessor !== undefined) {
        plan.events.push({
          type: "signing_key.retired",
          kid: predecessor.kid,
          reason: `scheduled rotation: stopped signing at ${iso(predecessor.retiresAt)}; in the JWKS until ${iso(predecessor.expiresAt)}`,
        });
      }
    }

    if (future.length === 0) {
      let activatesAt = current.retiresAt;
      if (activatesAt - now < jwksCacheMs) {
        // Created late: keep the current key signing until the next one has been published long enough.
        activatesAt = now + jwksCacheMs;
        const extended = withTimes(current, current.activatesAt, activatesAt);
        if (plan.add.includes(current)) plan.add[plan.add.indexOf(current)] = extended;
        else {
          plan.remove.push(current.kid);
          plan.add.push(extended);
        }
      }
      const next = await newKey(now, activatesAt, activatesAt + rotateEveryMs);
      plan.add.push(next);
      plan.events.push({
        type: "signing_key.created",
        kid: next.kid,
        reason: `next key: published now, signs from ${iso(activatesAt)}`,
      });
    }
    return plan.add.length === 0 && plan.remove.length === 0 ? undefined : plan;
  }

  async function planRotate(
    rows: SigningKeyRecord[],
    now: number,
  ): Promise<{ plan: Plan | undefined; result: RotationResult }> {
    const live = rows.filter((r) => r.expiresAt > now);
    const current = currentOf(live, now);
    const future = futureOf(live, now);
    const next = future[0];
    if (current === undefined || next === undefined) {
      throw new SigningKeyError(
        "ERR_KEYRING_CONFLICT",
        "The signing keys changed while rotating (no current or next key). Run the rotation again.",
      );
    }
    const switchAt = Math.max(now, next.createdAt + jwksCacheMs);
    if (next.activatesAt <= switchAt) {
      // Already as early as publication allows (e.g. a second rotate before the first one happened).
      return {
        plan: undefined,
        result: { previousKid: current.kid, kid: next.kid, activatesAt: next.activatesAt, immediate: false },
      };
    }
    const plan: Plan = { add: [], remove: [], events: [] };
    plan.remove.push(current.kid, next.kid);
    // Later keys were published but never signed; drop them so the schedule stays one chain.
    for (const extra of future.slice(1)) plan.remove.push(extra.kid);
    // Other processes switch when they next read the store (within the ensure interval, well under
    // jwksCacheMs) and may sign with the old key until then: keep it published that much longer.
    const retired = withTimes(current, current.activatesAt, switchAt);
    plan.add.push(
      { ...retired, expiresAt: retired.expiresAt + jwksCacheMs },
      withTimes(next, switchAt, switchAt + rotateEveryMs),
    );
    const immediate = switchAt === now;
    if (immediate) {
      const after = await newKey(now, switchAt + rotateEveryMs, switchAt + 2 * rotateEveryMs);
      plan.add.push(after);
      plan.events.push(
        {
          type: "signing_key.retired",
          kid: current.kid,
          reason: `forced rotation: stopped signing; in the JWKS until ${iso(retired.expiresAt + jwksCacheMs)}`,
        },
        {
          type: "signing_key.activated",
          kid: next.kid,
          reason: `forced rotation: signs now (published since ${iso(next.createdAt)})`,
        },
        {
          type: "signing_key.created",
          kid: after.kid,
          reason: `next key after forced rotation: signs from ${iso(after.activatesAt)}`,
        },
      );
    } else {
      plan.events.push({
        type: "signing_key.rotation_scheduled",
        kid: next.kid,
        reason:
          `forced rotation: replaces ${current.kid} at ${iso(switchAt)}, once it has been in the JWKS for ` +
          `${Math.round(jwksCacheMs / 1000)} s (published ${iso(next.createdAt)})`,
      });
    }
    return { plan, result: { previousKid: current.kid, kid: next.kid, activatesAt: switchAt, immediate } };
  }

  /** Reads, plans, compare-and-sets; re-reads and re-plans when another process wrote first. */
  async function writeLoop<T>(
    decide: (rows: SigningKeyRecord[], now: number) => Promise<{ plan: Plan | undefined; result: T }>,
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = clock();
      const rows = store.listSigningKeys();
      await adopt(rows);
      const { plan, result } = await decide(rows, now);
      if (plan === undefined) return result;
      const expected = rows.map((r) => r.kid);
      if (store.replaceSigningKeys(expected, plan.add, plan.remove)) {
        await adopt(store.listSigningKeys());
        for (const event of plan.events) emit(event.type, event.reason, event.kid, now);
        return result;
      }
    }
    throw new SigningKeyError(
      "ERR_KEYRING_CONFLICT",
      `Other gateway processes changed the signing keys ${MAX_ATTEMPTS} times in a row while this one tried to update them. Retry; if it persists, check that every process uses the same rotateEvery and jwksCache settings.`,
    );
  }

  const ensure = (): Promise<void> =>
    exclusive(() =>
      writeLoop(async (rows, now) => ({ plan: await planEnsure(rows, now), result: undefined })),
    );

  const selectSigner = (now: number): LoadedKey | undefined => {
    let found: LoadedKey | undefined;
    for (const k of keys) {
      if (k.record.activatesAt <= now && now < k.record.retiresAt) found = k; // latest activation wins
    }
    return found;
  };

  const keyring: Keyring = {
    tokenTtlMs,
    ensure,

    refresh: () => exclusive(() => adopt(store.listSigningKeys())),

    async signer() {
      const now = clock();
      let key = signerCache;
      if (key === undefined || now < key.record.activatesAt || now >= key.record.retiresAt) {
        key = selectSigner(now);
        if (key === undefined) {
          await ensure();
          key = selectSigner(clock());
          if (key === undefined) {
            throw new SigningKeyError(
              "ERR_KEYRING_CONFLICT",
              "No signing key is current even after updating the key set; retry.",
            );
          }
        }
        signerCache = key;
      }
      return { kid: key.record.kid, key: key.privateKey };
    },

    jwks() {
      const now = clock();
      if (now < publishedUntil) return published;
      const list: JWK[] = [];
      let until = Number.POSITIVE_INFINITY;
      for (const k of keys) {
        if (k.record.expiresAt > now) {
          list.push(k.publicJwk);
          if (k.record.expiresAt < until) until = k.record.expiresAt;
        }
      }
      published = Object.freeze({ keys: Object.freeze(list) as JWK[] });
      publishedUntil = until;
      return published;
    },

    rotate: () =>
      exclusive(async () => {
        await writeLoop(async (rows, now) => ({ plan: await planEnsure(rows, now), result: undefined }));
        return writeLoop(planRotate);
      }),

    list() {
      const now = clock();
      return keys.map(({ record: r }) => ({
        kid: r.kid,
        state: now < r.activatesAt ? "next" : now < r.retiresAt ? "current" : "retired",
        createdAt: r.createdAt,
        activatesAt: r.activatesAt,
        retiresAt: r.retiresAt,
        expiresAt: r.expiresAt,
        encrypted: r.encrypted,
      }));
    },

    start() {
      if (timer !== undefined) return;
      const every = Math.max(1000, Math.min(rotateEveryMs / 10, jwksCacheMs / 4 || MINUTE, MINUTE));
      timer = setInterval(() => {
        ensure().catch((error: unknown) => {
          emit(
            "signing_key.ensure_failed",
            error instanceof Error ? error.message : String(error),
            undefined,
            clock(),
          );
        });
      }, every);
      timer.unref();
    },

    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
  return keyring;
}

function currentOf(rows: SigningKeyRecord[], now: number): SigningKeyRecord | undefined {
  let found: SigningKeyRecord | undefined;
  for (const r of rows) {
    if (
      r.activatesAt <= now &&
      now < r.retiresAt &&
      (found === undefined || r.activatesAt > found.activatesAt)
    ) {
      found = r;
    }
  }
  return found;
}

function futureOf(rows: SigningKeyRecord[], now: number): SigningKeyRecord[] {
  return rows.filter((r) => r.activatesAt > now).sort((a, b) => a.activatesAt - b.activatesAt);
}

function kekRequired(): SigningKeyError {
  return new SigningKeyError(
    "ERR_KEK_REQUIRED",
    "The store holds encrypted signing keys, but no key encryption key (KEK) is configured. " +
      "Configure the KEK they were created with (identity.tokens.kek: {env: VAR} or {file: PATH} in cosmosgate.yaml).",
  );
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function duration(value: number | undefined, fallback: number, name: string, zeroOk = false): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
    throw new TypeError(`${name} must be a ${zeroOk ? "non-negative" : "positive"} number of milliseconds`);
  }
  return v;
}
