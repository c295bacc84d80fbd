// Harness for the embedded store's conformance suite: a store on a temporary SQLite file, real
// @azure/cosmos clients against it, restart on the same file, and an adjustable clock.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient, type CosmosClientOptions } from "@azure/cosmos";
import {
  type DevStore,
  type DevStoreOptions,
  EMULATOR_KEY,
  startDevStore,
} from "../../src/devstore/server.js";

export { EMULATOR_KEY };

export interface StoreHarness {
  /** The running store (replaced by `restart`). */
  store: DevStore;
  /** The SQLite file the store writes. */
  file: string;
  /** A new SDK client against the current store, master key EMULATOR_KEY unless `key` is given. */
  client(key?: string, options?: Partial<CosmosClientOptions>): CosmosClient;
  /** Moves the store's clock (the injected `now`) forward by `ms`. */
  advance(ms: number): void;
  /** The store's clock, ms since the epoch. */
  now(): number;
  /** Closes the store and starts a new one on the same file (a new origin: use a new client). */
  restart(): Promise<void>;
  /** Closes the store and every client it handed out, and removes the temporary directory. */
  close(): Promise<void>;
}

export async function startStoreHarness(options: Partial<DevStoreOptions> = {}): Promise<StoreHarness> {
  const dir = mkdtempSync(join(tmpdir(), "cosmosgate-devstore-"));
  const file = join(dir, "store.db");
  let offset = 0;
  const now = () => Date.now() + offset;
  const clients: CosmosClient[] = [];
  const start = () => startDevStore({ file, masterKey: EMULATOR_KEY, now, ttlSweepMs: 100, ...options });
  const h: StoreHarness = {
    store: await start(),
    file,
    client(key = EMULATOR_KEY, extra = {}) {
      const c = new CosmosClient({ endpoint: h.store.origin, key, ...extra });
      clients.push(c);
      return c;
    },
    advance(ms) {
      offset += ms;
    },
    now,
    async restart() {
      await h.store.close();
      h.store = await start();
    },
    async close() {
      for (const c of clients) c.dispose();
      await h.store?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export interface SdkError {
  code: number;
  substatus?: number;
  message: string;
  body?: unknown;
}

/** Runs `fn`, which must fail with an SDK error, and returns that error's status, substatus and message. */
export async function sdkError(fn: () => Promise<unknown>): Promise<SdkError> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code: number | string; substatus?: number; message: string; body?: unknown };
    return { code: Number(e.code), substatus: e.substatus, message: e.message, body: e.body };
  }
  throw new Error("expected the SDK call to fail, and it succeeded");
}

/** Sorts a copy of `rows` by their `id` (queries without ORDER BY have no defined order). */
export function byId<T extends { id?: unknown }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

/** Sorts a copy of scalar results (strings or numbers) for order-free comparison. */
export function sorted<T extends string | number>(values: T[]): T[] {
  return [...values].sort((a, b) =>
    typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b)),
  );
}
