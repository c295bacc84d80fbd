export { StoreError, type StoreErrorCode } from "./errors.js";
export { identityMigrations } from "./identityMigrations.js";
export {
  type IdentityStoreOptions,
  openIdentityStore,
  REVOKED_SESSION_RETENTION_MS,
  type SqliteIdentityStore,
} from "./identityStore.js";
export { type Migration, migrate } from "./migrate.js";
export type * from "./ports.js";
export { preallocateWal, walBytes } from "./preallocateWal.js";
export { type Database, type OpenDatabaseOptions, openDatabase } from "./sqlite.js";
