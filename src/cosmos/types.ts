/**
 * Types of the Cosmos DB wire as the gateway sees it. Pure data: no I/O, no policy.
 */

/** Short action names used by policy; each maps to native Cosmos DB data actions (see actions.ts). */
export type Action =
  | "metadata"
  | "read"
  | "create"
  | "upsert"
  | "replace"
  | "patch"
  | "delete"
  | "query"
  | "changeFeed"
  | "execute"
  | "conflicts"
  | "manage";

export const ALL_ACTIONS: readonly Action[] = [
  "metadata",
  "read",
  "create",
  "upsert",
  "replace",
  "patch",
  "delete",
  "query",
  "changeFeed",
  "execute",
  "conflicts",
  "manage",
];

/** A partition key value as sent in `x-ms-documentdb-partitionkey`: a JSON array (hierarchical keys have several). */
export type PartitionKeyValue = ReadonlyArray<string | number | boolean | null | Record<string, never>>;

/** One operation inside a transactional batch or bulk request. */
export interface BatchOperation {
  /** Index in the request body. */
  index: number;
  operationType: "Create" | "Upsert" | "Read" | "Delete" | "Replace" | "Patch";
  action: Action;
  id?: string;
  partitionKey?: PartitionKeyValue;
}

/** What one data-plane request is, in Cosmos DB terms. */
export interface CosmosOperation {
  /** Upper-case HTTP method. */
  method: string;
  /**
   * A short stable name of the operation, for audit and messages (classify.ts):
   * "account.read"; "database.{list,query,create,upsert,read,delete}";
   * "container.{list,query,create,upsert,read,replace,delete}"; "item.{read,create,upsert,replace,
   * patch,delete,readFeed,query,queryPlan,changeFeed,batch,bulk}"; "pkranges.{read,query}";
   * "sproc.{list,query,create,upsert,read,replace,delete,execute}"; "udf.*" and "trigger.*" (as sproc,
   * without execute); "conflict.{list,query,read,delete}"; "user.*" and "permission.*" (list, query,
   * create, upsert, read, replace, delete); "offer.{list,query,read,replace}";
   * "clientEncryptionKey.{list,query,create,upsert,read,replace}"; "partitionKey.delete".
   */
  name: string;
  /** The type segment the request targets ("" for the account, "dbs", "colls", "docs", ...). */
  resourceType: string;
  /** Decoded resource path segments, e.g. ["dbs","shop","colls","orders","docs","a1"]; [] for the account. */
  segments: string[];
  /** Decoded resource path for policy and audit: "/" or "/dbs/shop/colls/orders/docs/a1". */
  resource: string;
  /** What the Cosmos DB master-key signature covers (resource link without a leading slash, ids decoded). */
  signing: { resourceType: string; resourceLink: string };
  /**
   * Actions the request needs (shared frozen arrays: never mutate). For batch/bulk, classifyBatchBody
   * sets the union of `batch[].action`; before it runs, every item action (so forgetting it fails closed).
   */
  actions: Action[];
  partitionKey?: PartitionKeyValue;
  /** For batch and bulk requests: each operation, in body order. */
  batch?: BatchOperation[];
  /** True for an atomic transactional batch, false for bulk; undefined for other requests. */
  atomic?: boolean;
}
