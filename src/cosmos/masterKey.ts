import { createHmac } from "node:crypto";

/** What {@link signMasterKey} signs. */
export interface MasterKeySigningInput {
  /** HTTP method, any case. */
  verb: string;
  /** The type segment the signature covers ("" for the account read), e.g. "docs". */
  resourceType: string;
  /** Resource link without a leading slash, ids decoded, e.g. "dbs/shop/colls/orders" ("" for the account). */
  resourceLink: string;
  /** The exact value sent in `x-ms-date` (RFC 7231 format; see {@link rfc7231Date}). */
  date: string;
  /** The account key: base64 text as the portal shows it, or its decoded bytes (cheaper per request). */
  key: string | Uint8Array;
}

/**
 * The `Authorization` header value for a request signed with a Cosmos DB account (master) key:
 * `encodeURIComponent("type=master&ver=1.0&sig=" + base64(HMAC-SHA256(key, text)))` where text is
 * `verb \n resourceType \n resourceLink \n date \n \n`, verb, type and date lower-cased and the link
 * kept as is (ids decoded, case preserved). Send the same `date` in `x-ms-date`.
 *
 * @example
 * ```ts
 * const date = rfc7231Date(new Date());
 * headers["x-ms-date"] = date;
 * headers.authorization = signMasterKey({ verb: "GET", resourceType: "dbs", resourceLink: "dbs/ToDoList", date, key });
 * ```
 */
export function signMasterKey(input: MasterKeySigningInput): string {
  const key = typeof input.key === "string" ? Buffer.from(input.key, "base64") : input.key;
  const text =
    input.verb.toLowerCase() +
    "\n" +
    input.resourceType.toLowerCase() +
    "\n" +
    input.resourceLink +
    "\n" +
    input.date.toLowerCase() +
    "\n" +
    "\n";
  const sig = createHmac("sha256", key).update(text, "utf8").digest("base64");
  return encodeURIComponent("type=master&ver=1.0&sig=" + sig);
}

/**
 * A date in the RFC 7231 (IMF-fixdate) format Cosmos DB expects in `x-ms-date`.
 *
 * @example
 * ```ts
 * rfc7231Date(new Date(Date.UTC(2017, 3, 27, 0, 51, 12))); // "Thu, 27 Apr 2017 00:51:12 GMT"
 * ```
 */
export function rfc7231Date(d: Date): string {
  // V8's toUTCString is exactly IMF-fixdate ("Thu, 27 Apr 2017 00:51:12 GMT"), as the SDK uses.
  return d.toUTCString();
}
