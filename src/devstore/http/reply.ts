import type { ServerResponse } from "node:http";
import { CosmosWireError, cosmosCodeForStatus, cosmosErrorBody } from "../../cosmos/errors.js";
import { QueryError } from "../query/index.js";
import { PatchError } from "../query/patch.js";
import { DevStoreError } from "../store/errors.js";

/** An answer, before the common headers are added. */
export interface Reply {
  status: number;
  /** JSON text; none for 204 and 304. */
  body?: string;
  headers: Record<string, string>;
  /** RU charge (x-ms-request-charge). */
  charge: number;
}

export function reply(
  status: number,
  body: string | undefined,
  charge: number,
  headers: Record<string, string> = {},
): Reply {
  return { status, body, headers, charge };
}

/** A Cosmos-shaped error answer for anything thrown while handling a request. */
export function errorReply(err: unknown): { reply: Reply; unexpected: boolean } {
  if (err instanceof DevStoreError) {
    if (err.code !== "ERR_DEVSTORE_STORAGE")
      return { reply: errorOf(err.status, err.message, err.substatus), unexpected: false };
  }
  if (err instanceof CosmosWireError) {
    return { reply: errorOf(err.status, err.message, err.substatus), unexpected: false };
  }
  if (err instanceof QueryError || err instanceof PatchError) {
    return { reply: errorOf(400, err.message), unexpected: false };
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "SQLITE_FULL") {
    return {
      reply: errorOf(507, "The embedded store's disk is full; free some space and retry."),
      unexpected: true,
    };
  }
  return {
    reply: errorOf(
      500,
      "The embedded store failed to handle the request (an internal error, logged with this request's activity id). Retry; if it persists, report it with the log.",
    ),
    unexpected: true,
  };
}

export function errorOf(status: number, message: string, substatus?: number): Reply {
  const headers: Record<string, string> = {};
  if (substatus !== undefined) headers["x-ms-substatus"] = String(substatus);
  return {
    status,
    body: cosmosErrorBody(cosmosCodeForStatus(status), message),
    headers,
    charge: status === 401 ? 0 : 1,
  };
}

/** Writes `r` with the headers every Cosmos DB answer carries. */
export function send(res: ServerResponse, r: Reply, activityId: string, date: string): void {
  const h: Record<string, string | number> = {
    ...r.headers,
    "x-ms-activity-id": activityId,
    "x-ms-request-charge": formatCharge(r.charge),
    "x-ms-schemaversion": "1.18",
    "x-ms-serviceversion": "version=2.14.0.0",
    "x-ms-gatewayversion": "2.0.0",
    date,
  };
  if (r.body !== undefined && r.status !== 204 && r.status !== 304) {
    const buf = Buffer.from(r.body, "utf8");
    h["content-type"] = "application/json";
    h["content-length"] = buf.length;
    res.writeHead(r.status, h);
    res.end(buf);
  } else {
    h["content-length"] = 0;
    res.writeHead(r.status, h);
    res.end();
  }
}

export function formatCharge(ru: number): string {
  return String(Math.round(ru * 100) / 100);
}
