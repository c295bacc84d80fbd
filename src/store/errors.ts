/**
 * Stable codes of {@link StoreError}:
 * - `ERR_STORE_OPEN`: the database file cannot be opened;
 * - `ERR_STORE_MIGRATE`: its schema cannot be brought up to date;
 * - `ERR_STORE_CONFLICT`: a unique value is taken (a user name, a credential id, ...);
 * - `ERR_STORE_NOT_FOUND`: the record a change names does not exist;
 * - `ERR_STORE_INVALID`: the arguments of a call are malformed;
 * - `ERR_STORE_WRITE`: SQLite refused a write (disk full, busy, read-only file, ...).
 */
export type StoreErrorCode =
  | "ERR_STORE_OPEN"
  | "ERR_STORE_MIGRATE"
  | "ERR_STORE_CONFLICT"
  | "ERR_STORE_NOT_FOUND"
  | "ERR_STORE_INVALID"
  | "ERR_STORE_WRITE";

/**
 * An error of the persistence layer, with a stable `code` and a message that says what to do.
 *
 * @example
 * ```ts
 * try {
 *   openDatabase("/var/lib/cosmosgate/audit.db");
 * } catch (err) {
 *   if (err instanceof StoreError && err.code === "ERR_STORE_OPEN") console.error(err.message);
 * }
 * ```
 */
export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
