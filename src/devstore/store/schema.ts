import type { Migration } from "../../store/migrate.js";

/**
 * The embedded store's schema. Databases, containers and scripts live in three small tables; each
 * container's items live in a table of their own (`items_<k>`, created with the container, see
 * {@link itemsTableSql}), so that a scan of one container reads only its rows, in position order,
 * and deleting a container is a DROP TABLE.
 *
 * `containers.lsn` is the container's logical sequence number (every item write takes the next
 * one; the change feed reads items by it), `containers.pos` the last item position handed out
 * (positions are never reused, so a query resumed "after position p" never skips a new item).
 */
export const devStoreMigrations: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE databases (
  k     INTEGER PRIMARY KEY AUTOINCREMENT,
  id    TEXT NOT NULL UNIQUE,
  body  TEXT NOT NULL
);
CREATE TABLE containers (
  k     INTEGER PRIMARY KEY AUTOINCREMENT,
  db    INTEGER NOT NULL REFERENCES databases(k) ON DELETE CASCADE,
  id    TEXT NOT NULL,
  body  TEXT NOT NULL,
  lsn   INTEGER NOT NULL DEFAULT 0,
  pos   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (db, id)
);
CREATE TABLE scripts (
  k     INTEGER PRIMARY KEY AUTOINCREMENT,
  coll  INTEGER NOT NULL REFERENCES containers(k) ON DELETE CASCADE,
  type  TEXT NOT NULL CHECK (type IN ('sprocs', 'udfs', 'triggers')),
  id    TEXT NOT NULL,
  body  TEXT NOT NULL,
  UNIQUE (coll, type, id)
);
`,
  },
];

/**
 * The items table of container `k`:
 * - `pos`: stable scan position (the query engine's `pos`), also the tail of the item's `_rid`;
 * - `(id, pk)` unique: point operations, and id lookups across partitions (`WHERE c.id = ...`);
 * - `pk`: one partition's items in position order;
 * - `lsn`: the change feed;
 * - `expires_at` (ms since the epoch, NULL = never): TTL, swept in the background.
 * `body` is the document's full JSON text with its system properties, returned as stored.
 */
export function itemsTableSql(k: number): string {
  const t = itemsTable(k);
  return `
CREATE TABLE ${t} (
  pos         INTEGER PRIMARY KEY,
  id          TEXT NOT NULL,
  pk          TEXT NOT NULL,
  etag        TEXT NOT NULL,
  lsn         INTEGER NOT NULL,
  modified    INTEGER NOT NULL,
  expires_at  INTEGER,
  body        TEXT NOT NULL
);
CREATE UNIQUE INDEX ${t}_id_pk ON ${t} (id, pk);
CREATE INDEX ${t}_pk ON ${t} (pk);
CREATE INDEX ${t}_lsn ON ${t} (lsn);
CREATE INDEX ${t}_expires ON ${t} (expires_at) WHERE expires_at IS NOT NULL;
`;
}

export function itemsTable(k: number): string {
  if (!Number.isSafeInteger(k) || k < 1) throw new Error(`invalid container key ${k}`);
  return `items_${k}`;
}
