/**
 * Errors of the embedded store. Each has a stable `code`, the HTTP status the wire answers with,
 * and (where Cosmos DB sends one) the `x-ms-substatus`. The wire turns it into a Cosmos-shaped
 * body `{code, message}` (src/cosmos/errors.ts).
 */

/** Stable codes of {@link DevStoreError}. */
export type DevStoreErrorCode =
  /** The request is malformed: bad JSON, a bad id, a partition key that does not match, ... (400). */
  | "ERR_DEVSTORE_BAD_REQUEST"
  /** The request is valid Cosmos DB but the embedded store does not implement it (400). */
  | "ERR_DEVSTORE_UNSUPPORTED"
  /** The resource, or its owner (database, container), does not exist (404). */
  | "ERR_DEVSTORE_NOT_FOUND"
  /** A resource with that id already exists (409). */
  | "ERR_DEVSTORE_CONFLICT"
  /** An `If-Match` etag is stale, or a patch condition is false (412). */
  | "ERR_DEVSTORE_PRECONDITION"
  /** The document or the request body is larger than Cosmos DB allows (413). */
  | "ERR_DEVSTORE_TOO_LARGE"
  /** The master-key signature is missing, wrong or outside its time window (401). */
  | "ERR_DEVSTORE_UNAUTHORIZED"
  /** The SQLite file cannot be opened or written. */
  | "ERR_DEVSTORE_STORAGE";

const STATUS: Record<DevStoreErrorCode, number> = {
  ERR_DEVSTORE_BAD_REQUEST: 400,
  ERR_DEVSTORE_UNSUPPORTED: 400,
  ERR_DEVSTORE_NOT_FOUND: 404,
  ERR_DEVSTORE_CONFLICT: 409,
  ERR_DEVSTORE_PRECONDITION: 412,
  ERR_DEVSTORE_TOO_LARGE: 413,
  ERR_DEVSTORE_UNAUTHORIZED: 401,
  ERR_DEVSTORE_STORAGE: 500,
};

/**
 * An error of the embedded store with the status and substatus Cosmos DB would answer.
 *
 * @example
 * ```ts
 * throw new DevStoreError("ERR_DEVSTORE_NOT_FOUND", "Entity with the specified id does not exist in the system.");
 * ```
 */
export class DevStoreError extends Error {
  override readonly name = "DevStoreError";
  readonly code: DevStoreErrorCode;
  readonly status: number;
  readonly substatus?: number;

  constructor(code: DevStoreErrorCode, message: string, options?: { substatus?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = STATUS[code];
    if (options?.substatus !== undefined) this.substatus = options.substatus;
  }
}

/** Substatus codes Cosmos DB sends that the SDK or callers look at. */
export const SUBSTATUS = {
  /** 400: the partition key in the document does not match the header. */
  PARTITION_KEY_MISMATCH: 1001,
  /** 404: the database or container of the request does not exist. */
  OWNER_RESOURCE_NOT_FOUND: 1003,
} as const;

export function badRequest(message: string, substatus?: number): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_BAD_REQUEST", message, { substatus });
}

export function unsupported(message: string): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_UNSUPPORTED", message);
}

export function notFound(message = ITEM_NOT_FOUND, substatus?: number): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_NOT_FOUND", message, { substatus });
}

export function ownerNotFound(what: string): DevStoreError {
  return new DevStoreError(
    "ERR_DEVSTORE_NOT_FOUND",
    `Owner resource does not exist: ${what}. Create it first (or check the name's spelling and case).`,
    { substatus: SUBSTATUS.OWNER_RESOURCE_NOT_FOUND },
  );
}

export function conflict(message = ITEM_CONFLICT): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_CONFLICT", message);
}

export function preconditionFailed(message = PRECONDITION_FAILED): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_PRECONDITION", message);
}

export function tooLarge(message = "Request size is too large"): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_TOO_LARGE", message);
}

// Cosmos DB's own wording, so messages people search for lead to the service's documentation.
export const ITEM_NOT_FOUND = "Entity with the specified id does not exist in the system.";
export const ITEM_CONFLICT = "Entity with the specified id already exists in the system.";
export const PRECONDITION_FAILED =
  "Operation cannot be performed because one of the specified precondition is not met.";
export const PARTITION_KEY_MISMATCH =
  "PartitionKey extracted from document doesn't match the one specified in the header. Learn more: https://aka.ms/CosmosDB/sql/errors/wrong-pk-value";
