import { type Dispatcher, Pool } from "undici";
import { rfc7231Date, signMasterKey } from "../cosmos/masterKey.js";
import type { CosmosOperation } from "../cosmos/types.js";

/** How the gateway proves itself to the upstream account. */
export type UpstreamAuth =
  | { type: "none" }
  | { type: "key"; key: string }
  | { type: "aad"; getToken: (scope: string) => Promise<{ token: string; expiresOnTimestamp: number }> };

export interface UpstreamOptions {
  /** Origin of the account, e.g. https://acct.documents.azure.com:443 or http://127.0.0.1:PORT */
  origin: string;
  auth: UpstreamAuth;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  connections?: number;
  /** Extra CA (PEM) to trust for an https upstream. */
  ca?: string;
  clock?: () => number;
}

export interface UpstreamRequest {
  method: string;
  /** Raw path and query as the client sent it. */
  path: string;
  /** Headers to forward (already filtered); send() adds x-ms-date and authorization to this object. */
  headers: Record<string, string | string[]>;
  body?: Buffer;
  op: CosmosOperation;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Signatures kept for the current second (one per verb and resource); the map is cleared beyond. */
const MAX_CACHED_SIGNATURES = 4096;

/** The upstream did not answer in time or could not be reached. */
export class UpstreamError extends Error {
  readonly code: "ERR_UPSTREAM_TIMEOUT" | "ERR_UPSTREAM_UNREACHABLE" | "ERR_UPSTREAM_AUTH";
  constructor(code: UpstreamError["code"], message: string) {
    super(message);
    this.name = "UpstreamError";
    this.code = code;
  }
}

/** Pooled, keep-alive client for the upstream account; signs each request with the gateway's credential. */
export interface Upstream {
  readonly origin: string;
  send(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/**
 * Creates the upstream client: an undici pool with keep-alive, bounded connect and response
 * timeouts (a hanging upstream becomes UpstreamError, never a hang), and per-request signing.
 *
 * @example const up = createUpstream({ origin, auth: { type: "key", key }, connectTimeoutMs: 5000, requestTimeoutMs: 30000 })
 */
export function createUpstream(opts: UpstreamOptions): Upstream {
  const clock = opts.clock ?? Date.now;
  const origin = new URL(opts.origin).origin;
  const pool = new Pool(origin, {
    connections: opts.connections ?? 64,
    connectTimeout: opts.connectTimeoutMs,
    headersTimeout: opts.requestTimeoutMs,
    bodyTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: 30_000,
    connect: opts.ca ? { ca: opts.ca } : undefined,
  });
  const aadScope = `${origin}/.default`;
  // Decoded once: signing is on every request.
  const keyBytes = opts.auth.type === "key" ? Buffer.from(opts.auth.key, "base64") : undefined;
  // x-ms-date has a resolution of one second: format it once per second.
  let dateSecond = -1;
  let dateText = "";
  // A master-key signature depends on the verb, the resource type and link, and x-ms-date only:
  // within one second the same resource gets the same signature. Cleared every second, bounded.
  const signatures = new Map<string, string>();
  const dateHeader = (now: number): string => {
    const second = Math.floor(now / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateText = rfc7231Date(new Date(second * 1000));
      signatures.clear();
    }
    return dateText;
  };
  const signWithKey = (req: UpstreamRequest, date: string, key: Uint8Array): string => {
    const { resourceType, resourceLink } = req.op.signing;
    const id = `${req.method}\n${resourceType}\n${resourceLink}`;
    let sig = signatures.get(id);
    if (sig === undefined) {
      sig = signMasterKey({ verb: req.method, resourceType, resourceLink, date, key });
      if (signatures.size >= MAX_CACHED_SIGNATURES) signatures.clear();
      signatures.set(id, sig);
    }
    return sig;
  };
  let aadToken: { token: string; refreshAt: number } | undefined;

  async function authorization(req: UpstreamRequest, date: string): Promise<string | undefined> {
    const auth = opts.auth;
    if (auth.type === "none") return undefined;
    if (auth.type === "key") return signWithKey(req, date, keyBytes ?? Buffer.from(auth.key, "base64"));
    if (!aadToken || aadToken.refreshAt <= clock()) {
      try {
        const t = await auth.getToken(aadScope);
        // Refresh five minutes early, as the Azure SDKs do.
        aadToken = { token: t.token, refreshAt: t.expiresOnTimestamp - 5 * 60_000 };
      } catch (err) {
        throw new UpstreamError(
          "ERR_UPSTREAM_AUTH",
          `the gateway could not get a token for the upstream account: ${(err as Error).message}`,
        );
      }
    }
    return encodeURIComponent(`type=aad&ver=1.0&sig=${aadToken.token}`);
  }

  return {
    origin,
    async send(req) {
      const date = dateHeader(clock());
      // The caller hands over a fresh header object (proxy/headers.ts); add to it, no copy.
      const headers = req.headers;
      headers["x-ms-date"] = date;
      // Key signing is synchronous (and usually cached): no await on the hot path.
      const authz =
        keyBytes !== undefined ? signWithKey(req, date, keyBytes) : await authorization(req, date);
      if (authz !== undefined) headers.authorization = authz;
      let res: Dispatcher.ResponseData;
      try {
        res = await pool.request({
          method: req.method as Dispatcher.HttpMethod,
          path: req.path,
          headers,
          body: req.body,
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        return { status: res.statusCode, headers: res.headers, body };
      } catch (err) {
        throw mapError(err, origin, opts);
      }
    },
    async close() {
      await pool.close();
    },
  };
}

function mapError(err: unknown, origin: string, opts: UpstreamOptions): UpstreamError {
  const code = (err as { code?: string }).code ?? "";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new UpstreamError(
      "ERR_UPSTREAM_TIMEOUT",
      `the upstream ${origin} did not answer within ${opts.requestTimeoutMs} ms (upstream.timeouts.request); try again later`,
    );
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") {
    return new UpstreamError(
      "ERR_UPSTREAM_TIMEOUT",
      `could not connect to the upstream ${origin} within ${opts.connectTimeoutMs} ms (upstream.timeouts.connect)`,
    );
  }
  return new UpstreamError(
    "ERR_UPSTREAM_UNREACHABLE",
    `the upstream ${origin} could not be reached (${code || (err as Error).message}); try again later`,
  );
}
