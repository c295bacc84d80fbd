import type { ServerResponse } from "node:http";

/** Cosmos DB error codes by HTTP status, as the service names them in error bodies. */
const CODE_BY_STATUS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  413: "RequestEntityTooLarge",
  500: "InternalServerError",
  502: "BadGateway",
  503: "ServiceUnavailable",
};

/**
 * Sends a Cosmos-shaped error `{code, message}`: the SDK JSON-parses every error body and shows
 * `message`, so it must always be JSON.
 */
export function sendError(res: ServerResponse, status: number, message: string, substatus?: number): void {
  const body = JSON.stringify({ code: CODE_BY_STATUS[status] ?? "Error", message });
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-ms-request-charge": 0,
  };
  if (substatus !== undefined) headers["x-ms-substatus"] = substatus;
  if (!res.headersSent) res.writeHead(status, headers);
  res.end(body);
}
