/**
 * Stable codes of {@link AuditError}.
 *
 * - `ERR_AUDIT_WRITE`: a record could not be committed (the proxy answers 503).
 * - `ERR_AUDIT_CLOSED`: the writer was closed before the record was appended (also a 503).
 * - `ERR_AUDIT_EVENT`: the event itself is malformed (a missing field, a value JSON cannot hold).
 * - `ERR_AUDIT_READ`: the audit table could not be read.
 * - `ERR_AUDIT_ARGUMENT`: a bad argument to a query function.
 */
export type AuditErrorCode =
  | "ERR_AUDIT_WRITE"
  | "ERR_AUDIT_CLOSED"
  | "ERR_AUDIT_EVENT"
  | "ERR_AUDIT_READ"
  | "ERR_AUDIT_ARGUMENT";

/**
 * An error of the audit trail, with a stable `code`.
 *
 * @example
 * ```ts
 * try {
 *   await writer.append(event);
 * } catch (err) {
 *   if (err instanceof AuditError && err.code === "ERR_AUDIT_WRITE") return reply503();
 *   throw err;
 * }
 * ```
 */
export class AuditError extends Error {
  override readonly name = "AuditError";
  readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
