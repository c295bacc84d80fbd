import type { ServerResponse } from "node:http";
import { cosmosCodeForStatus } from "../cosmos/errors.js";

/** Sends a JSON body the gateway made itself (a refusal or an error), with Cosmos's headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: Buffer | string,
  substatus?: number,
): void {
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-ms-request-charge": 0,
  };
  if (substatus !== undefined) headers["x-ms-substatus"] = substatus;
  if (!res.headersSent) res.writeHead(status, headers);
  res.end(body);
}

/**
 * Sends a Cosmos-shaped error `{code, message}`: the SDK JSON-parses every error body and shows
 * `message`, so it must always be JSON.
 */
export function sendError(res: ServerResponse, status: number, message: string, substatus?: number): void {
  sendJson(res, status, JSON.stringify({ code: cosmosCodeForStatus(status), message }), substatus);
}
