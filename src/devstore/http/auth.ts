import { timingSafeEqual } from "node:crypto";
import { signMasterKey } from "../../cosmos/masterKey.js";
import type { CosmosOperation } from "../../cosmos/types.js";
import { DevStoreError } from "../store/errors.js";

/** How far `x-ms-date` may be from the store's clock (Cosmos DB allows 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/**
 * Verifies a master-key signature (`Authorization: type=master&ver=1.0&sig=...`, URL-encoded or
 * not) over the request's verb, resource type, resource link and `x-ms-date`, as Cosmos DB does
 * (COSMOS-WIRE.md). The signed resource is what `classify` derives from the path, so the store and
 * the gateway agree on it by construction.
 *
 * @throws DevStoreError ERR_DEVSTORE_UNAUTHORIZED (401) naming what was wrong, never the key
 */
export function verifyMasterKey(
  key: Buffer,
  op: CosmosOperation,
  authorization: string | undefined,
  date: string | undefined,
  now: number,
): void {
  if (authorization === undefined || authorization === "") {
    throw unauthorized(
      "Required Header authorization is missing. Ensure a valid Authorization token is passed: sign requests with the store's master key (type=master).",
    );
  }
  let text = authorization;
  if (text.includes("%")) {
    try {
      text = decodeURIComponent(text);
    } catch {
      throw unauthorized("The authorization header is not valid percent-encoding.");
    }
  }
  const fields = new Map<string, string>();
  for (const part of text.split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const type = fields.get("type");
  if (type !== "master") {
    throw unauthorized(
      `The authorization token type '${(type ?? "").slice(0, 16)}' is not accepted here: the embedded store checks master-key signatures only (type=master); AAD and resource tokens are for the gateway or Azure Cosmos DB.`,
    );
  }
  const sig = fields.get("sig");
  if (sig === undefined || sig === "") throw unauthorized("The authorization token has no signature (sig).");
  if (date === undefined || date === "") {
    throw unauthorized(
      "The request has no x-ms-date header; the master-key signature covers it, so send it.",
    );
  }
  const when = Date.parse(date);
  if (Number.isNaN(when))
    throw unauthorized(
      "The x-ms-date header is not a valid date (RFC 7231, e.g. 'Tue, 01 Nov 1994 08:12:31 GMT').",
    );
  if (Math.abs(now - when) > MAX_CLOCK_SKEW_MS) {
    throw unauthorized(
      `The authorization token is not valid at the current time: x-ms-date '${date}' is more than 15 minutes from the store's clock. Check the client's clock.`,
    );
  }
  const expected = decodeURIComponent(
    signMasterKey({
      verb: op.method,
      resourceType: op.signing.resourceType,
      resourceLink: op.signing.resourceLink,
      date,
      key,
    }),
  );
  const expectedSig = expected.slice(expected.indexOf("sig=") + 4);
  const a = Buffer.from(sig);
  const b = Buffer.from(expectedSig);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    const payload = `${op.method.toLowerCase()}\\n${op.signing.resourceType.toLowerCase()}\\n${op.signing.resourceLink}\\n${date.toLowerCase()}\\n\\n`;
    throw unauthorized(
      `The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. Server used the following payload to sign: '${payload}'`,
    );
  }
}

function unauthorized(message: string): DevStoreError {
  return new DevStoreError("ERR_DEVSTORE_UNAUTHORIZED", message);
}
