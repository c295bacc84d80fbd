export { StoreError, type StoreErrorCode } from "./errors.js";
export { type Migration, migrate } from "./migrate.js";
export { type Database, type OpenDatabaseOptions, openDatabase } from "./sqlite.js";
