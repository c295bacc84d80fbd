import type BetterSqlite3 from "better-sqlite3";
import type { PartitionKeySpec } from "./partitionKey.js";
import type { UdfRunner } from "./udf.js";

type Statement = BetterSqlite3.Statement;

/** A database as the store keeps it in memory (the row is the source of truth). */
export interface DatabaseInfo {
  k: number;
  id: string;
  rid: string;
  ridBytes: Buffer;
  /** The resource JSON as returned to clients. */
  body: string;
  etag: string;
}

/** An item row as point operations read it. */
export interface ItemRow {
  pos: number;
  etag: string;
  expires_at: number | null;
  body: string;
}

/** Prepared statements on one container's items table. */
export interface ItemStatements {
  get: Statement;
  insert: Statement;
  update: Statement;
  remove: Statement;
  counters: Statement;
}

/** A container as the store keeps it in memory; its row holds the same, and is updated in the same transaction. */
export interface ContainerInfo {
  k: number;
  db: DatabaseInfo;
  id: string;
  rid: string;
  ridBytes: Buffer;
  /** `dbs/<db rid>/colls/<rid>/` */
  self: string;
  /** `dbs/<db id>/colls/<id>` (x-ms-alt-content-path). */
  altPath: string;
  body: string;
  etag: string;
  pk: PartitionKeySpec;
  /** undefined: TTL off; -1: on, items expire only with their own `ttl`; n: n seconds after the last write. */
  defaultTtl: number | undefined;
  /** Unique key paths, split, per unique key. */
  uniqueKeys: string[][][];
  /** Last LSN handed out (the change feed's clock). */
  lsn: number;
  /** Last item position handed out. */
  pos: number;
  table: string;
  stmts: ItemStatements;
  /** Statements built for queries, keyed by their SQL. */
  queryStmts: Map<string, Statement>;
  /** The container's UDFs, compiled on first use and dropped when one changes. */
  udfs?: UdfRunner;
  /** Set once the container is deleted: stale references fail instead of writing to a dropped table. */
  dropped: boolean;
}

/** One page of a feed or query: the JSON texts of its results and where the next page starts. */
export interface FeedPage {
  items: string[];
  continuation?: string;
  /** Documents read from storage to produce the page (for the request charge). */
  scanned: number;
  /** Container LSN when the page was read (session token). */
  lsn: number;
}

/** The outcome of an item write or read. */
export interface ItemResult {
  status: number;
  /** The document's JSON text; undefined for deletes and 304s. */
  body?: string;
  etag?: string;
  lsn: number;
}

/** The outcome of one change-feed read. */
export interface ChangeFeedPage {
  items: string[];
  /** The continuation as Cosmos DB sends it: an etag naming the last LSN read, e.g. `"42"`. */
  etag: string;
  lsn: number;
}
