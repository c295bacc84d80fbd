import { CosmosWireError } from "./errors.js";

/** The account-read fields that list regional endpoints the SDK will route to. */
const LOCATION_FIELDS = [
  "writableLocations",
  "readableLocations",
  "thinClientWritableLocations",
  "thinClientReadableLocations",
] as const;

/**
 * Rewrites the account read (`GET /`) so every regional endpoint is the gateway's public URL. With
 * endpoint discovery on (the SDK's default) the SDK sends reads to `readableLocations[]` and writes
 * to `writableLocations[]`; without the rewrite it would bypass the gateway. Region names are kept.
 *
 * @param publicUrl the data-plane URL clients use; a trailing "/" is added if missing
 * @throws CosmosWireError ERR_UPSTREAM_BAD_ACCOUNT (502) when the body is not an account document
 * @example
 * ```ts
 * rewriteAccount('{"writableLocations":[{"name":"West US","databaseAccountEndpoint":"https://a-westus.documents.azure.com:443/"}]}', "https://localhost:8081");
 * // '{"writableLocations":[{"name":"West US","databaseAccountEndpoint":"https://localhost:8081/"}]}'
 * ```
 */
export function rewriteAccount(body: Buffer | string, publicUrl: string): string {
  const endpoint = publicUrl.endsWith("/") ? publicUrl : publicUrl + "/";
  let account: unknown;
  try {
    account = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    throw bad("is not JSON");
  }
  if (account === null || typeof account !== "object" || Array.isArray(account)) {
    throw bad("is not a JSON object");
  }
  const fields = account as Record<string, unknown>;
  for (const field of LOCATION_FIELDS) {
    const locations = fields[field];
    if (locations === undefined || locations === null) continue;
    if (!Array.isArray(locations)) throw bad(`has a "${field}" that is not an array`);
    for (const location of locations) {
      if (location === null || typeof location !== "object" || Array.isArray(location)) {
        throw bad(`has an entry in "${field}" that is not an object`);
      }
      (location as Record<string, unknown>).databaseAccountEndpoint = endpoint;
    }
  }
  return JSON.stringify(account);
}

function bad(what: string): CosmosWireError {
  return new CosmosWireError(
    "ERR_UPSTREAM_BAD_ACCOUNT",
    `The upstream account read (GET /) ${what}, so the gateway cannot point the client's regional endpoints at itself. Check upstream.endpoint in the gateway configuration.`,
    502,
  );
}
