import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import { cosmosErrorBody } from "../cosmos/errors.js";
import { preallocateWal, walBytes } from "../store/preallocateWal.js";
import { createRequestHandler } from "./http/handler.js";
import { DevStoreDb } from "./store/store.js";

/** Options of {@link startDevStore}. */
export interface DevStoreOptions {
  /** SQLite database file (created with 0600, parent directory 0700). */
  file: string;
  /** Address to listen on; default "127.0.0.1". */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
  /** PEM certificate and key: HTTPS when given, else plain HTTP. */
  tls?: { cert: string; key: string };
  /**
   * The account key (base64). When set, every request must carry a valid master-key signature
   * (`Authorization: type=master...`, `x-ms-date` within 15 minutes), else 401. When absent, no
   * authentication: for in-process use behind the gateway, on loopback only.
   */
  masterKey?: string;
  logger?: Logger;
  /** Injected clock, ms since the epoch (TTL, `_ts`, signature dates). Default `Date.now`. */
  now?: () => number;
  /** How often expired items are deleted in the background, ms; default 1000. */
  ttlSweepMs?: number;
  /**
   * Run user-defined functions in queries (default true). They run in `node:vm`, which is not a
   * security sandbox (see store/udf.ts); false answers queries that call one with 400.
   */
  udfs?: boolean;
}

/** A running embedded store. */
export interface DevStore {
  /** "http://127.0.0.1:PORT", or "https://localhost:PORT" with TLS. */
  origin: string;
  /** Stops listening (open connections are closed) and closes SQLite cleanly. */
  close(): Promise<void>;
}

/** The Cosmos DB emulator's well-known key, default for `cosmosgate devstore`. */
export const EMULATOR_KEY =
  "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/** Largest request header block accepted (bytes); more answers 431. */
const MAX_HEADER_BYTES = 32 * 1024;

/**
 * Starts the embedded Cosmos DB-compatible store: the Cosmos DB REST API (as the @azure/cosmos
 * SDK uses it) over a SQLite file, on node:http or node:https. Data survives restarts; a write is
 * on disk before it is acknowledged.
 *
 * @example
 * ```ts
 * const store = await startDevStore({ file: "./.cosmosgate/store.db", masterKey: EMULATOR_KEY });
 * const client = new CosmosClient({ endpoint: store.origin, key: EMULATOR_KEY });
 * // ...
 * await store.close();
 * ```
 */
export async function startDevStore(options: DevStoreOptions): Promise<DevStore> {
  const now = options.now ?? Date.now;
  const log = options.logger;
  let masterKey: Buffer | undefined;
  if (options.masterKey !== undefined) {
    masterKey = Buffer.from(options.masterKey, "base64");
    if (masterKey.length < 16)
      throw new Error("startDevStore: masterKey must be base64 of at least 16 bytes");
  }
  const store = DevStoreDb.open(options.file, { now, logger: log, udfs: options.udfs });
  // Grow the WAL to its checkpoint size (SQLite's default 1000 pages) so write fsyncs skip growth.
  await preallocateWal(options.file, walBytes(1000, 4096)).catch(() => {});
  const host = options.host ?? "127.0.0.1";
  let origin = "";
  const handler = createRequestHandler({
    store,
    masterKey,
    now,
    logger: log,
    origin: () => origin,
    tls: options.tls !== undefined,
  });
  const serverOptions = {
    maxHeaderSize: MAX_HEADER_BYTES,
    keepAliveTimeout: 30_000,
    requestTimeout: 120_000,
  };
  const server = options.tls
    ? https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(serverOptions, handler);
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    const body = cosmosErrorBody(
      status === 431 ? "RequestHeaderFieldsTooLarge" : "BadRequest",
      status === 431 ? "The request headers are too large." : "The request is not valid HTTP.",
    );
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    store.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const shownHost = options.tls ? tlsHost(host) : host.includes(":") ? `[${host}]` : host;
  origin = `${options.tls ? "https" : "http"}://${shownHost}:${port}`;

  const sweepMs = options.ttlSweepMs ?? 1000;
  const sweep = setInterval(() => {
    try {
      store.sweepExpired();
    } catch (err) {
      log?.warn({ err }, "devstore: TTL sweep failed; it will run again");
    }
  }, sweepMs);
  sweep.unref();

  let closing: Promise<void> | undefined;
  return {
    origin,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(sweep);
        server.close(() => {
          store.close();
          resolve();
        });
        server.closeIdleConnections();
        // Requests in flight finish (they are synchronous once their body is read); then drop the rest.
        setImmediate(() => server.closeAllConnections());
      });
      return closing;
    },
  };
}

/** With TLS the dev certificate names localhost: show loopback addresses as "localhost". */
function tlsHost(host: string): string {
  if (host === "127.0.0.1" || host === "::1" || host === "0.0.0.0" || host === "::" || host === "localhost")
    return "localhost";
  return host.includes(":") ? `[${host}]` : host;
}
