import { randomUUID } from "node:crypto";
import type BetterSqlite3 from "better-sqlite3";
import type { Logger } from "pino";
import { migrate } from "../../store/migrate.js";
import { type Database, openDatabase } from "../../store/sqlite.js";
import { type Json, type JsonObject, type PrepareOptions, QueryError } from "../query/index.js";
import { type BatchOutcome, executeBatch } from "./batch.js";
import { multiHashEpk } from "./epk.js";
import {
  badRequest,
  conflict,
  DevStoreError,
  notFound,
  ownerNotFound,
  preconditionFailed,
  unsupported,
} from "./errors.js";
import {
  type ChangeFeedStart,
  changeFeed,
  type Paging,
  type PartitionFilter,
  pageResources,
  type QuerySpec,
  queryContainer,
  queryResources,
  readFeed,
} from "./feeds.js";
import {
  createItem,
  deleteItem,
  etagMatches,
  type PatchSpec,
  patchItem,
  readItem,
  replaceItem,
  type WriteOptions,
} from "./items.js";
import {
  type PartitionKeyComponent,
  type PartitionKeyDefinition,
  parsePath,
  partitionKeySpec,
  prefixRange,
} from "./partitionKey.js";
import { childRid, containerRidBytes, databaseRidBytes, ridText } from "./rid.js";
import { devStoreMigrations, itemsTable, itemsTableSql } from "./schema.js";
import type {
  ChangeFeedPage,
  ContainerInfo,
  DatabaseInfo,
  FeedPage,
  ItemResult,
  ItemStatements,
} from "./types.js";
import { UdfRunner } from "./udf.js";
import { checkId, checkTtl, clip, SYSTEM_PROPERTIES } from "./validate.js";
import { WalSync } from "./walSync.js";

type Statement = BetterSqlite3.Statement;

/** Script resource types a container holds. */
export type ScriptType = "sprocs" | "udfs" | "triggers";

/** What item functions need from the store (implemented by {@link DevStoreDb}). */
export interface StoreEnv {
  readonly now: () => number;
  /** A prepared statement on a container's table, cached by its SQL. */
  statement(c: ContainerInfo, sql: string): Statement;
  /** The `udf` option of the query engine for a container. */
  udfResolver(c: ContainerInfo): PrepareOptions["udf"];
  /** Throws 409 when `doc` breaks one of the container's unique keys within partition `pk`. */
  checkUniqueKeys(c: ContainerInfo, pk: string, doc: JsonObject, pos: number, now: number): void;
  /** Runs `fn` in a transaction (a savepoint when nested); the container's counters roll back with it. */
  transaction<T>(c: ContainerInfo, fn: () => T): T;
}

/** A resource (database, container, script) as returned to clients. */
export interface ResourceResult {
  status: number;
  body: string;
  etag: string;
}

/** Options of {@link DevStoreDb.open}. */
export interface DevStoreDbOptions {
  now?: () => number;
  logger?: Logger;
  /** Run UDFs in queries (default true); false refuses queries that call one. */
  udfs?: boolean;
}

const QUERY_STATEMENT_CACHE = 64;

/** Default indexing policy of a new container, as Cosmos DB reports it. */
const DEFAULT_INDEXING_POLICY: JsonObject = {
  indexingMode: "consistent",
  automatic: true,
  includedPaths: [{ path: "/*" }],
  excludedPaths: [{ path: '/"_etag"/?' }],
};

/**
 * The embedded store's persistence: databases, containers, scripts and items in one SQLite file
 * (WAL; a write is on disk once {@link DevStoreDb.flush} resolves). Every other method is
 * synchronous; one instance owns the file (exclusive lock), keeping databases and containers in
 * memory as well.
 *
 * @example
 * ```ts
 * const store = DevStoreDb.open("./.cosmosgate/store.db");
 * store.createDatabase({ id: "shop" });
 * const c = store.createContainer("shop", { id: "orders", partitionKey: { paths: ["/customer"] } });
 * ```
 */
export class DevStoreDb implements StoreEnv {
  readonly now: () => number;
  private readonly db: Database;
  private readonly log?: Logger;
  private readonly udfsEnabled: boolean;
  private readonly databases = new Map<string, DatabaseInfo>();
  /** Containers by `${db id}/${container id}`. */
  private readonly containers = new Map<string, ContainerInfo>();
  private readonly s: {
    insertDb: Statement;
    deleteDb: Statement;
    updateDb: Statement;
    insertColl: Statement;
    updateColl: Statement;
    deleteColl: Statement;
    listScripts: Statement;
    getScript: Statement;
    insertScript: Statement;
    updateScript: Statement;
    deleteScript: Statement;
  };
  private closed = false;
  private readonly wal?: WalSync;

  private constructor(db: Database, opts: DevStoreDbOptions, wal: WalSync | undefined) {
    this.db = db;
    this.wal = wal;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
    this.udfsEnabled = opts.udfs !== false;
    this.s = {
      insertDb: db.prepare("INSERT INTO databases (id, body) VALUES (?, '') RETURNING k"),
      deleteDb: db.prepare("DELETE FROM databases WHERE k = ?"),
      updateDb: db.prepare("UPDATE databases SET body = ? WHERE k = ?"),
      insertColl: db.prepare("INSERT INTO containers (db, id, body) VALUES (?, ?, '') RETURNING k"),
      updateColl: db.prepare("UPDATE containers SET body = ? WHERE k = ?"),
      deleteColl: db.prepare("DELETE FROM containers WHERE k = ?"),
      listScripts: db.prepare("SELECT id, body FROM scripts WHERE coll = ? AND type = ? ORDER BY k"),
      getScript: db.prepare("SELECT k, body FROM scripts WHERE coll = ? AND type = ? AND id = ?"),
      insertScript: db.prepare("INSERT INTO scripts (coll, type, id, body) VALUES (?, ?, ?, '') RETURNING k"),
      updateScript: db.prepare("UPDATE scripts SET body = ? WHERE k = ?"),
      deleteScript: db.prepare("DELETE FROM scripts WHERE k = ?"),
    };
    this.load();
  }

  /**
   * Opens (creating if needed) the store's SQLite file: 0600 in a 0700 directory, WAL, held with
   * an exclusive lock (one process per file). Commits write the WAL without syncing it
   * (`synchronous = NORMAL`); {@link flush} makes them durable, one `fdatasync` for every write
   * made since the last (group commit): the wire acknowledges a write only after its flush.
   *
   * @throws StoreError ERR_STORE_OPEN / ERR_STORE_MIGRATE (src/store) when the file cannot be used
   */
  static open(file: string, opts: DevStoreDbOptions = {}): DevStoreDb {
    const inMemory = file === ":memory:" || file === "";
    // One connection holds the file (exclusive lock): a second store fails fast instead of waiting.
    const db = openDatabase(file, { synchronous: inMemory ? "FULL" : "NORMAL", busyTimeoutMs: 500 });
    try {
      if (!inMemory) db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("cache_size = -65536"); // 64 MB of page cache
      migrate(db, devStoreMigrations);
      return new DevStoreDb(db, opts, inMemory ? undefined : new WalSync(file));
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === "SQLITE_BUSY") {
        throw new DevStoreError(
          "ERR_DEVSTORE_STORAGE",
          `The store file "${file}" is in use by another process (another cosmosgate devstore or gateway). Stop it, or use a different file.`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Resolves once every write committed so far is on disk (see {@link open}). */
  flush(): Promise<void> {
    return this.wal === undefined ? Promise.resolve() : this.wal.flush();
  }

  /** Closes the SQLite connection (a checkpoint folds the WAL into the file and syncs it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wal?.close();
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // best effort: the WAL is replayed at the next open
    }
    this.db.close();
  }

  private load(): void {
    const dbs = this.db.prepare("SELECT k, id, body FROM databases").all() as {
      k: number;
      id: string;
      body: string;
    }[];
    for (const r of dbs) {
      const ridBytes = databaseRidBytes(r.k);
      this.databases.set(r.id, {
        k: r.k,
        id: r.id,
        rid: ridText(ridBytes),
        ridBytes,
        body: r.body,
        etag: (JSON.parse(r.body) as JsonObject)._etag as string,
      });
    }
    const byK = new Map([...this.databases.values()].map((d) => [d.k, d]));
    const colls = this.db.prepare("SELECT k, db, id, body, lsn, pos FROM containers").all() as {
      k: number;
      db: number;
      id: string;
      body: string;
      lsn: number;
      pos: number;
    }[];
    for (const r of colls) {
      const db = byK.get(r.db);
      if (db === undefined) continue;
      const c = this.containerInfo(db, r.k, r.id, r.body);
      c.lsn = r.lsn;
      c.pos = r.pos;
      this.containers.set(`${db.id}/${r.id}`, c);
    }
  }

  private containerInfo(db: DatabaseInfo, k: number, id: string, body: string): ContainerInfo {
    const doc = JSON.parse(body) as JsonObject;
    const ridBytes = containerRidBytes(db.ridBytes, k);
    const rid = ridText(ridBytes);
    const table = itemsTable(k);
    return {
      k,
      db,
      id,
      rid,
      ridBytes,
      self: `dbs/${db.rid}/colls/${rid}/`,
      altPath: `dbs/${db.id}/colls/${id}`,
      body,
      etag: doc._etag as string,
      pk: partitionKeySpec(doc.partitionKey),
      defaultTtl: checkTtl(doc.defaultTtl, "defaultTtl"),
      uniqueKeys: uniqueKeyPaths(doc.uniqueKeyPolicy),
      lsn: 0,
      pos: 0,
      table,
      stmts: this.itemStatements(table),
      queryStmts: new Map(),
      dropped: false,
    };
  }

  private itemStatements(t: string): ItemStatements {
    return {
      get: this.db.prepare(`SELECT pos, etag, expires_at, body FROM ${t} WHERE id = ? AND pk = ?`),
      insert: this.db.prepare(
        `INSERT INTO ${t} (pos, id, pk, etag, lsn, modified, expires_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      update: this.db.prepare(
        `UPDATE ${t} SET etag = ?, lsn = ?, modified = ?, expires_at = ?, body = ? WHERE pos = ?`,
      ),
      remove: this.db.prepare(`DELETE FROM ${t} WHERE pos = ?`),
      counters: this.db.prepare("UPDATE containers SET lsn = ?, pos = ? WHERE k = ?"),
    };
  }

  // ---------------------------------------------------------------- StoreEnv

  statement(c: ContainerInfo, sql: string): Statement {
    let stmt = c.queryStmts.get(sql);
    if (stmt === undefined) {
      try {
        stmt = this.db.prepare(sql);
      } catch (err) {
        // Only the query engine's SQL hint can be at fault here: never a client's mistake to pay for.
        throw new QueryError(
          "ERR_QUERY_UNSUPPORTED",
          `The embedded store could not plan this query (${(err as Error).message}).`,
        );
      }
      if (c.queryStmts.size >= QUERY_STATEMENT_CACHE) {
        const oldest = c.queryStmts.keys().next().value;
        if (oldest !== undefined) c.queryStmts.delete(oldest);
      }
      c.queryStmts.set(sql, stmt);
    }
    return stmt;
  }

  udfResolver(c: ContainerInfo): PrepareOptions["udf"] {
    return (name) => {
      if (!this.udfsEnabled) {
        throw new QueryError(
          "ERR_QUERY_UDF",
          `The query calls the user-defined function 'udf.${name}', but this store runs with user-defined functions turned off (cosmosgate devstore --no-udfs, or upstream.udfs: false in cosmosgate.yaml).`,
        );
      }
      if (c.udfs === undefined) {
        const rows = this.s.listScripts.all(c.k, "udfs") as { id: string; body: string }[];
        c.udfs = new UdfRunner(
          rows.map((r) => {
            const doc = JSON.parse(r.body) as JsonObject;
            return { id: r.id, body: typeof doc.body === "string" ? doc.body : "" };
          }),
        );
      }
      return c.udfs.resolve(name);
    };
  }

  checkUniqueKeys(c: ContainerInfo, pk: string, doc: JsonObject, pos: number, now: number): void {
    for (const key of c.uniqueKeys) {
      const conds: string[] = [];
      const params: (string | number | null)[] = [pk, pos, now];
      for (const path of key) {
        const v = lookup(doc, path);
        const jsonPath = "$" + path.map((p) => `."${p.replace(/"/g, '\\"')}"`).join("");
        conds.push("json_extract(body, ?) IS ?");
        params.push(jsonPath, sqlValue(v));
      }
      const sql = `SELECT 1 FROM ${c.table} WHERE pk = ? AND pos <> ? AND (expires_at IS NULL OR expires_at > ?) AND ${conds.join(" AND ")} LIMIT 1`;
      if (this.statement(c, sql).get(...params) !== undefined) {
        throw conflict("Unique index constraint violation.");
      }
    }
  }

  transaction<T>(c: ContainerInfo, fn: () => T): T {
    if (c.dropped) throw ownerNotFound(`the container '${c.id}' was deleted`);
    const lsn = c.lsn;
    const pos = c.pos;
    try {
      return this.db.transaction(() => {
        const out = fn();
        // The counters move with the rows, once per transaction.
        if (c.lsn !== lsn || c.pos !== pos) c.stmts.counters.run(c.lsn, c.pos, c.k);
        return out;
      })();
    } catch (err) {
      c.lsn = lsn;
      c.pos = pos;
      throw err;
    }
  }

  // ---------------------------------------------------------------- databases

  database(id: string): DatabaseInfo {
    const d = this.databases.get(id);
    if (d === undefined) throw notFound(`Resource Not Found: the database '${clip(id)}' does not exist.`);
    return d;
  }

  listDatabases(): string[] {
    return [...this.databases.values()].sort((a, b) => a.k - b.k).map((d) => d.body);
  }

  createDatabase(body: JsonObject): ResourceResult {
    const id = checkId(body.id, "database");
    if (this.databases.has(id)) {
      throw conflict(`Resource with specified id or name already exists: the database '${clip(id)}'.`);
    }
    const now = this.now();
    return this.db.transaction(() => {
      const { k } = this.s.insertDb.get(id) as { k: number };
      const ridBytes = databaseRidBytes(k);
      const rid = ridText(ridBytes);
      const etag = newEtag();
      const doc = {
        ...withoutSystem(body),
        id,
        _rid: rid,
        _self: `dbs/${rid}/`,
        _etag: etag,
        _colls: "colls/",
        _users: "users/",
        _ts: Math.floor(now / 1000),
      };
      const text = JSON.stringify(doc);
      this.s.updateDb.run(text, k);
      this.databases.set(id, { k, id, rid, ridBytes, body: text, etag });
      return { status: 201, body: text, etag };
    })();
  }

  readDatabase(id: string): ResourceResult {
    const d = this.database(id);
    return { status: 200, body: d.body, etag: d.etag };
  }

  deleteDatabase(id: string): void {
    const d = this.database(id);
    const colls = [...this.containers.values()].filter((c) => c.db === d);
    this.db.transaction(() => {
      for (const c of colls) this.db.exec(`DROP TABLE IF EXISTS ${c.table}`);
      this.s.deleteDb.run(d.k);
    })();
    for (const c of colls) this.forget(c);
    this.databases.delete(id);
  }

  // ---------------------------------------------------------------- containers

  /** The container `collId` of database `dbId`; 404 when either is missing. */
  container(dbId: string, collId: string): ContainerInfo {
    const c = this.containers.get(`${dbId}/${collId}`);
    if (c === undefined) {
      if (!this.databases.has(dbId))
        throw notFound(`Resource Not Found: the database '${clip(dbId)}' does not exist.`);
      throw notFound(
        `Resource Not Found: the container '${clip(collId)}' does not exist in the database '${clip(dbId)}'.`,
      );
    }
    return c;
  }

  /** Like {@link container}, for requests on a container's children (items, scripts): 404 with substatus 1003. */
  owner(dbId: string, collId: string): ContainerInfo {
    const c = this.containers.get(`${dbId}/${collId}`);
    if (c === undefined) {
      throw ownerNotFound(
        this.databases.has(dbId)
          ? `the container '${clip(collId)}' does not exist in the database '${clip(dbId)}'`
          : `the database '${clip(dbId)}' does not exist`,
      );
    }
    return c;
  }

  listContainers(dbId: string): string[] {
    const d = this.database(dbId);
    return [...this.containers.values()]
      .filter((c) => c.db === d)
      .sort((a, b) => a.k - b.k)
      .map((c) => c.body);
  }

  createContainer(dbId: string, body: JsonObject): ResourceResult {
    const d = this.databases.get(dbId);
    if (d === undefined) throw ownerNotFound(`the database '${clip(dbId)}' does not exist`);
    const id = checkId(body.id, "container");
    if (this.containers.has(`${dbId}/${id}`)) {
      throw conflict(`Resource with specified id or name already exists: the container '${clip(id)}'.`);
    }
    const spec = partitionKeySpec(body.partitionKey);
    checkTtl(body.defaultTtl, "defaultTtl");
    uniqueKeyPaths(body.uniqueKeyPolicy);
    const now = this.now();
    return this.db.transaction(() => {
      const { k } = this.s.insertColl.get(d.k, id) as { k: number };
      this.db.exec(itemsTableSql(k));
      const ridBytes = containerRidBytes(d.ridBytes, k);
      const rid = ridText(ridBytes);
      const etag = newEtag();
      const doc = containerDoc(id, withoutSystem(body), spec.definition, undefined);
      Object.assign(doc, containerSystemProperties(rid, `dbs/${d.rid}/colls/${rid}/`, etag, now));
      const text = JSON.stringify(doc);
      this.s.updateColl.run(text, k);
      const c = this.containerInfo(d, k, id, text);
      this.containers.set(`${dbId}/${id}`, c);
      return { status: 201, body: text, etag };
    })();
  }

  readContainer(dbId: string, id: string): ResourceResult {
    const c = this.container(dbId, id);
    return { status: 200, body: c.body, etag: c.etag };
  }

  /**
   * Replaces a container's settings (indexing policy, default TTL, ...). The id, the partition key
   * and the unique key policy cannot change. A new default TTL applies to existing items at once.
   */
  replaceContainer(dbId: string, id: string, body: JsonObject, ifMatch?: string): ResourceResult {
    const c = this.container(dbId, id);
    if (ifMatch !== undefined && !etagMatches(ifMatch, c.etag)) throw preconditionFailed();
    const bodyId = checkId(body.id, "container");
    if (bodyId !== id)
      throw badRequest(
        `The id in the body ('${clip(bodyId)}') differs from the container's id ('${clip(id)}').`,
      );
    if (body.partitionKey !== undefined && body.partitionKey !== null) {
      const next = partitionKeySpec(body.partitionKey);
      if (
        JSON.stringify(next.paths) !== JSON.stringify(c.pk.paths) ||
        next.definition.kind !== c.pk.definition.kind
      ) {
        throw badRequest(
          "A container's partition key cannot be changed. Create a new container and copy the items.",
        );
      }
    }
    const ttl = checkTtl(body.defaultTtl, "defaultTtl");
    const old = JSON.parse(c.body) as JsonObject;
    const now = this.now();
    const etag = newEtag();
    const doc = containerDoc(id, withoutSystem(body), c.pk.definition, old);
    Object.assign(doc, containerSystemProperties(c.rid, c.self, etag, now));
    const text = JSON.stringify(doc);
    this.db.transaction(() => {
      this.s.updateColl.run(text, c.k);
      if (ttl !== c.defaultTtl) this.recomputeExpiry(c, ttl);
    })();
    c.body = text;
    c.etag = etag;
    c.defaultTtl = ttl;
    return { status: 200, body: text, etag };
  }

  /** Re-derives every item's expiry from its last write time, its own `ttl` and the new default. */
  private recomputeExpiry(c: ContainerInfo, defaultTtl: number | undefined): void {
    if (defaultTtl === undefined) {
      this.db.prepare(`UPDATE ${c.table} SET expires_at = NULL WHERE expires_at IS NOT NULL`).run();
      return;
    }
    // An item's own ttl (a positive integer or -1) wins; otherwise the container's default.
    this.db
      .prepare(
        `UPDATE ${c.table} SET expires_at = CASE
           WHEN json_type(body, '$.ttl') = 'integer' AND json_extract(body, '$.ttl') = -1 THEN NULL
           WHEN json_type(body, '$.ttl') = 'integer' AND json_extract(body, '$.ttl') > 0
             THEN modified + json_extract(body, '$.ttl') * 1000
           WHEN ? = -1 THEN NULL
           ELSE modified + ? * 1000 END`,
      )
      .run(defaultTtl, defaultTtl);
  }

  deleteContainer(dbId: string, id: string): void {
    const c = this.container(dbId, id);
    this.db.transaction(() => {
      this.db.exec(`DROP TABLE IF EXISTS ${c.table}`);
      this.s.deleteColl.run(c.k);
    })();
    this.forget(c);
  }

  private forget(c: ContainerInfo): void {
    c.dropped = true;
    c.queryStmts.clear();
    c.udfs = undefined;
    this.containers.delete(`${c.db.id}/${c.id}`);
  }

  /** Deletes every item of one partition (or of every key that starts with a hierarchical prefix). */
  deletePartition(c: ContainerInfo, partition: PartitionFilter): number {
    return this.transaction(c, () => {
      let n: number;
      if (partition.prefix) {
        const [lo, hi] = prefixRange(partition.text);
        n = this.statement(c, `DELETE FROM ${c.table} WHERE pk >= ? AND pk < ?`).run(lo, hi).changes;
      } else {
        n = this.statement(c, `DELETE FROM ${c.table} WHERE pk = ?`).run(partition.text).changes;
      }
      c.lsn++;
      return n;
    });
  }

  // ---------------------------------------------------------------- scripts

  listScripts(c: ContainerInfo, type: ScriptType): string[] {
    return (this.s.listScripts.all(c.k, type) as { body: string }[]).map((r) => r.body);
  }

  readScript(c: ContainerInfo, type: ScriptType, id: string): ResourceResult {
    const row = this.s.getScript.get(c.k, type, id) as { body: string } | undefined;
    if (row === undefined)
      throw notFound(`Resource Not Found: the ${scriptNoun(type)} '${clip(id)}' does not exist.`);
    const etag = (JSON.parse(row.body) as JsonObject)._etag as string;
    return { status: 200, body: row.body, etag };
  }

  /** Creates (or with `upsert` creates or replaces) a stored procedure, UDF or trigger. */
  createScript(c: ContainerInfo, type: ScriptType, body: JsonObject, upsert: boolean): ResourceResult {
    const id = checkId(body.id, scriptNoun(type));
    checkScript(type, body);
    const existing = this.s.getScript.get(c.k, type, id) as { k: number; body: string } | undefined;
    if (existing !== undefined && !upsert) {
      throw conflict(
        `Resource with specified id or name already exists: the ${scriptNoun(type)} '${clip(id)}'.`,
      );
    }
    const r = this.transaction(c, () => {
      const k = existing?.k ?? (this.s.insertScript.get(c.k, type, id) as { k: number }).k;
      return this.writeScript(c, type, k, id, body, existing === undefined ? 201 : 200);
    });
    if (type === "udfs") c.udfs = undefined;
    return r;
  }

  replaceScript(
    c: ContainerInfo,
    type: ScriptType,
    id: string,
    body: JsonObject,
    ifMatch?: string,
  ): ResourceResult {
    const existing = this.s.getScript.get(c.k, type, id) as { k: number; body: string } | undefined;
    if (existing === undefined)
      throw notFound(`Resource Not Found: the ${scriptNoun(type)} '${clip(id)}' does not exist.`);
    if (
      ifMatch !== undefined &&
      !etagMatches(ifMatch, (JSON.parse(existing.body) as JsonObject)._etag as string)
    ) {
      throw preconditionFailed();
    }
    const bodyId = checkId(body.id, scriptNoun(type));
    if (bodyId !== id)
      throw badRequest(
        `The id in the body ('${clip(bodyId)}') differs from the id in the path ('${clip(id)}').`,
      );
    checkScript(type, body);
    const r = this.transaction(c, () => this.writeScript(c, type, existing.k, id, body, 200));
    if (type === "udfs") c.udfs = undefined;
    return r;
  }

  deleteScript(c: ContainerInfo, type: ScriptType, id: string): void {
    const existing = this.s.getScript.get(c.k, type, id) as { k: number } | undefined;
    if (existing === undefined)
      throw notFound(`Resource Not Found: the ${scriptNoun(type)} '${clip(id)}' does not exist.`);
    this.transaction(c, () => this.s.deleteScript.run(existing.k));
    if (type === "udfs") c.udfs = undefined;
  }

  private writeScript(
    c: ContainerInfo,
    type: ScriptType,
    k: number,
    id: string,
    body: JsonObject,
    status: number,
  ): ResourceResult {
    const rid = childRid(c.ridBytes, k);
    const etag = newEtag();
    const doc = {
      ...withoutSystem(body),
      id,
      _rid: rid,
      _self: `${c.self}${type}/${rid}/`,
      _etag: etag,
      _ts: Math.floor(this.now() / 1000),
    };
    const text = JSON.stringify(doc);
    this.s.updateScript.run(text, k);
    return { status, body: text, etag };
  }

  // ---------------------------------------------------------------- offers

  /**
   * One plausible offer (400 RU/s, manual) per container, so `container.readOffer()` finds one.
   * The embedded store does not meter throughput.
   */
  listOffers(): string[] {
    return [...this.containers.values()]
      .sort((a, b) => a.k - b.k)
      .map((c) => {
        const id = offerId(c);
        return JSON.stringify({
          resource: c.self,
          offerType: "Invalid",
          offerResourceId: c.rid,
          offerVersion: "V2",
          content: { offerThroughput: 400, offerIsRUPerMinuteThroughputEnabled: false },
          id,
          _rid: id,
          _self: `offers/${id}/`,
          _etag: `"${c.rid}"`,
          _ts: (JSON.parse(c.body) as JsonObject)._ts as number,
        });
      });
  }

  readOffer(id: string): ResourceResult {
    const want = id.toLowerCase();
    for (const body of this.listOffers()) {
      const doc = JSON.parse(body) as JsonObject;
      if (String(doc.id).toLowerCase() === want) return { status: 200, body, etag: doc._etag as string };
    }
    throw notFound(`Resource Not Found: the offer '${clip(id)}' does not exist.`);
  }

  // ---------------------------------------------------------------- items

  readItem(c: ContainerInfo, id: string, pk: string, ifNoneMatch?: string): ItemResult {
    return readItem(this, c, id, pk, ifNoneMatch);
  }

  createItem(
    c: ContainerInfo,
    pk: string,
    doc: JsonObject,
    upsert: boolean,
    opts?: WriteOptions,
  ): ItemResult {
    return this.transaction(c, () => createItem(this, c, pk, doc, upsert, opts));
  }

  replaceItem(c: ContainerInfo, id: string, pk: string, doc: JsonObject, opts?: WriteOptions): ItemResult {
    return this.transaction(c, () => replaceItem(this, c, id, pk, doc, opts));
  }

  patchItem(c: ContainerInfo, id: string, pk: string, patch: PatchSpec, opts?: WriteOptions): ItemResult {
    return this.transaction(c, () => patchItem(this, c, id, pk, patch, opts));
  }

  deleteItem(c: ContainerInfo, id: string, pk: string, opts?: WriteOptions): ItemResult {
    return this.transaction(c, () => deleteItem(this, c, id, pk, opts));
  }

  readFeed(c: ContainerInfo, partition: PartitionFilter | undefined, paging: Paging): FeedPage {
    return readFeed(this, c, partition, paging);
  }

  query(c: ContainerInfo, spec: QuerySpec, partition: PartitionFilter | undefined, paging: Paging): FeedPage {
    return queryContainer(this, c, spec, partition, paging);
  }

  queryResources(bodies: readonly string[], spec: QuerySpec, paging: Paging, feed: string): FeedPage {
    return queryResources(bodies, spec, paging, feed, this.now);
  }

  pageResources(bodies: readonly string[], paging: Paging, feed: string): FeedPage {
    return pageResources(bodies, paging, feed);
  }

  changeFeed(
    c: ContainerInfo,
    partition: PartitionFilter | PartitionFilter[] | undefined,
    start: ChangeFeedStart,
    maxItemCount?: number,
  ): ChangeFeedPage {
    return changeFeed(this, c, partition, start, maxItemCount);
  }

  /**
   * The partition keys of a hierarchical-key container whose effective partition key lies in
   * [min, max) (the SDK's EPK range for a prefix of the key).
   */
  partitionsInEpkRange(c: ContainerInfo, min: string, max: string): PartitionFilter[] {
    if (c.pk.definition.kind !== "MultiHash") {
      throw unsupported(
        "The embedded store has one partition-key range; it serves effective-partition-key sub-ranges only for hierarchical (MultiHash) keys.",
      );
    }
    const out: PartitionFilter[] = [];
    for (const { pk } of this.statement(c, `SELECT DISTINCT pk FROM ${c.table}`).all() as { pk: string }[]) {
      const epk = multiHashEpk(JSON.parse(pk) as PartitionKeyComponent[]);
      if (epk >= min && (max === "" || epk < max)) out.push({ text: pk, prefix: false });
    }
    return out;
  }

  batch(
    c: ContainerInfo,
    body: Json,
    opts: { atomic: boolean; partitionKey?: string; continueOnError: boolean },
  ): BatchOutcome {
    return executeBatch(this, c, body, opts);
  }

  /**
   * Deletes expired items (TTL), at most `limit` per container per call, and returns how many.
   * Reads already treat expired items as gone; this reclaims their space.
   */
  sweepExpired(limit = 1000): number {
    if (this.closed) return 0;
    const now = this.now();
    let total = 0;
    for (const c of this.containers.values()) {
      const stmt = this.statement(
        c,
        `DELETE FROM ${c.table} WHERE pos IN (SELECT pos FROM ${c.table} WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)`,
      );
      const n = stmt.run(now, limit).changes;
      total += n;
    }
    if (total > 0) this.log?.debug({ removed: total }, "devstore: removed expired items");
    return total;
  }

  /** Stored procedures, triggers and UDF bodies are JavaScript; executing a stored procedure is refused. */
  executeStoredProcedure(c: ContainerInfo, id: string): never {
    this.readScript(c, "sprocs", id); // 404 for a missing one, like Cosmos DB
    throw unsupported(
      `The embedded store does not run server-side JavaScript: the stored procedure '${clip(id)}' is stored but cannot be executed here. Run the logic in your application (a transactional batch gives the same all-or-nothing guarantee), or use Azure Cosmos DB or its emulator.`,
    );
  }
}

/**
 * A container's settings as kept: what the client sent, with Cosmos DB's defaults for the
 * policies it left out (on replace: the previous indexing policy), the validated partition key,
 * and the unique key policy of creation (it cannot change).
 */
function containerDoc(
  id: string,
  given: JsonObject,
  partitionKey: PartitionKeyDefinition,
  previous: JsonObject | undefined,
): JsonObject {
  const doc: JsonObject = {
    id,
    indexingPolicy: previous?.indexingPolicy ?? DEFAULT_INDEXING_POLICY,
    partitionKey: partitionKey as unknown as Json,
    conflictResolutionPolicy: {
      mode: "LastWriterWins",
      conflictResolutionPath: "/_ts",
      conflictResolutionProcedure: "",
    },
    geospatialConfig: { type: "Geography" },
  };
  for (const [k, v] of Object.entries(given)) {
    if (v !== null && k !== "id" && k !== "partitionKey") doc[k] = v;
  }
  if (previous !== undefined) {
    if (previous.uniqueKeyPolicy !== undefined) doc.uniqueKeyPolicy = previous.uniqueKeyPolicy;
    else delete doc.uniqueKeyPolicy;
  }
  return doc;
}

function scriptNoun(type: ScriptType): string {
  return type === "sprocs" ? "stored procedure" : type === "udfs" ? "user-defined function" : "trigger";
}

function checkScript(type: ScriptType, body: JsonObject): void {
  if (typeof body.body !== "string") {
    throw badRequest(`A ${scriptNoun(type)} needs its JavaScript source as a string in "body".`);
  }
  if (type === "triggers") {
    // The SDK sends "pre"/"create"; Cosmos DB keeps (and returns) "Pre"/"Create".
    const t = canonical(body.triggerType, ["Pre", "Post"]);
    const o = canonical(body.triggerOperation, ["All", "Create", "Update", "Delete", "Replace"]);
    if (t === undefined) throw badRequest('A trigger needs "triggerType": "Pre" or "Post".');
    if (o === undefined) {
      throw badRequest(
        'A trigger needs "triggerOperation": "All", "Create", "Update", "Delete" or "Replace".',
      );
    }
    body.triggerType = t;
    body.triggerOperation = o;
  }
}

function canonical(v: Json | undefined, names: string[]): string | undefined {
  if (typeof v !== "string") return undefined;
  return names.find((n) => n.toLowerCase() === v.toLowerCase());
}

function offerId(c: ContainerInfo): string {
  return `O${c.k.toString(36).toUpperCase()}`;
}

function newEtag(): string {
  return `"${randomUUID()}"`;
}

/** A copy of `body` without the system properties a client may have sent back. */
function withoutSystem(body: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(body)) {
    if ((SYSTEM_PROPERTIES as readonly string[]).includes(k)) continue;
    if (
      k === "_colls" ||
      k === "_users" ||
      k === "_docs" ||
      k === "_sprocs" ||
      k === "_triggers" ||
      k === "_udfs" ||
      k === "_conflicts"
    ) {
      continue;
    }
    out[k] = body[k];
  }
  return out;
}

/** Unique key policy → each unique key's paths, split. Validates the shape. */
function uniqueKeyPaths(policy: Json | undefined): string[][][] {
  if (policy === undefined || policy === null) return [];
  const keys = typeof policy === "object" && !Array.isArray(policy) ? policy.uniqueKeys : undefined;
  if (!Array.isArray(keys)) {
    throw badRequest('The "uniqueKeyPolicy" must look like {"uniqueKeys": [{"paths": ["/email"]}]}.');
  }
  return keys.map((k) => {
    const paths = k !== null && typeof k === "object" && !Array.isArray(k) ? k.paths : undefined;
    if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== "string")) {
      throw badRequest('Each unique key needs "paths", e.g. {"paths": ["/email"]}.');
    }
    return (paths as string[]).map(parsePath);
  });
}

function lookup(doc: JsonObject, path: string[]): Json | undefined {
  let v: Json | undefined = doc;
  for (const p of path) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    v = (v as JsonObject)[p];
  }
  return v;
}

/** A JSON value as SQLite's json_extract returns it, for comparison with IS. */
function sqlValue(v: Json | undefined): string | number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number" || typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A container document's system properties, as the service returns them. */
function containerSystemProperties(rid: string, self: string, etag: string, now: number): JsonObject {
  return {
    _rid: rid,
    _ts: Math.floor(now / 1000),
    _self: self,
    _etag: etag,
    _docs: "docs/",
    _sprocs: "sprocs/",
    _triggers: "triggers/",
    _udfs: "udfs/",
    _conflicts: "conflicts/",
  };
}
