/** Stable codes of {@link StoreError}. */
export type StoreErrorCode = "ERR_STORE_OPEN" | "ERR_STORE_MIGRATE";

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
