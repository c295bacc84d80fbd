/**
 * Errors of the Cosmos DB wire module. Each has a stable `code` and the HTTP status the edge should
 * answer with; the edge turns it into a Cosmos-shaped body with {@link cosmosErrorBody}.
 */

/** Stable codes of {@link CosmosWireError}. */
export type CosmosWireErrorCode =
  | "ERR_BAD_PATH"
  | "ERR_UNKNOWN_RESOURCE"
  | "ERR_UNSUPPORTED_OPERATION"
  | "ERR_BAD_HEADER"
  | "ERR_BAD_PARTITION_KEY"
  | "ERR_BAD_BATCH"
  | "ERR_UPSTREAM_BAD_ACCOUNT";

/**
 * A request (or an upstream answer) that does not fit the Cosmos DB wire the gateway understands.
 * `status` is the HTTP status to answer with (400 for client mistakes, 502 for upstream ones).
 *
 * @example
 * ```ts
 * try {
 *   classify("GET", "/dbs/a/../b", {});
 * } catch (err) {
 *   if (err instanceof CosmosWireError) console.log(err.status, err.code); // 400 "ERR_BAD_PATH"
 * }
 * ```
 */
export class CosmosWireError extends Error {
  readonly code: CosmosWireErrorCode;
  readonly status: number;
  /** Cosmos DB substatus to send in `x-ms-substatus`, when there is one. */
  declare readonly substatus?: number;

  constructor(code: CosmosWireErrorCode, message: string, status = 400, substatus?: number) {
    super(message);
    this.name = "CosmosWireError";
    this.code = code;
    this.status = status;
    if (substatus !== undefined) (this as { substatus?: number }).substatus = substatus;
  }
}

/**
 * The Cosmos DB style code (the `code` field of an error body) for an HTTP status.
 *
 * @example
 * ```ts
 * cosmosCodeForStatus(403); // "Forbidden"
 * ```
 */
export function cosmosCodeForStatus(status: number): string {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 408:
      return "RequestTimeout";
    case 409:
      return "Conflict";
    case 412:
      return "PreconditionFailed";
    case 413:
      return "RequestEntityTooLarge";
    case 429:
      return "TooManyRequests";
    case 502:
      return "BadGateway";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "InternalServerError" : "BadRequest";
  }
}

/**
 * The JSON body Cosmos DB sends with an error: `{"code": ..., "message": ...}`. The SDK parses every
 * non-empty error body as JSON and reads `message`, so the gateway's refusals must have this shape.
 *
 * @param code the Cosmos DB style code, e.g. "BadRequest", "Unauthorized", "Forbidden", "ServiceUnavailable"
 * @example
 * ```ts
 * cosmosErrorBody("Forbidden", "denied by policy"); // '{"code":"Forbidden","message":"denied by policy"}'
 * ```
 */
export function cosmosErrorBody(code: string, message: string): string {
  return JSON.stringify({ code, message });
}
