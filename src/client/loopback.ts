import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GatewayCredentialError } from "./errors.js";
import { clean } from "./oauth.js";

/** The authorization code that reached the loopback, and how to answer the waiting browser. */
export interface LoopbackCallback {
  code: string;
  /** Answers the browser (once) and resolves when the page was sent. */
  respond(ok: boolean, message: string): Promise<void>;
}

/** A loopback redirect receiver (RFC 8252 §7.3). */
export interface Loopback {
  /** `http://127.0.0.1:PORT/callback`. */
  redirectUri: string;
  /**
   * Resolves with the first callback that carries `state` and a code. A callback with another state,
   * with `error=`, or without a code is answered with an error page and rejects (the login fails:
   * a forged or stale redirect is never ignored silently).
   */
  waitForCallback(
    state: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<LoopbackCallback>;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1, on a port the system picks, for the browser's redirect to `/callback`.
 * Only that path answers (other paths get 404); the first callback decides the outcome.
 *
 * @example
 * ```ts
 * const loopback = await startLoopback();
 * // ... send the browser to the authorization URL with redirect_uri = loopback.redirectUri
 * const { code, respond } = await loopback.waitForCallback(state, { timeoutMs: 300_000 });
 * await respond(true, "Signed in");
 * await loopback.close();
 * ```
 */
export async function startLoopback(host = "127.0.0.1"): Promise<Loopback> {
  let onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://loopback");
    if (url.pathname !== "/callback" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end("Not found\n");
      return;
    }
    if (onRequest === undefined) {
      page(res, 409, "Sign-in not expected", "This sign-in has already finished. You can close this tab.");
      return;
    }
    onRequest(req, res);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed = false;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    onRequest = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };

  const waitForCallback: Loopback["waitForCallback"] = (state, { timeoutMs, signal }) =>
    new Promise<LoopbackCallback>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        onRequest = undefined;
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new GatewayCredentialError(
            "ERR_LOGIN",
            `no sign-in arrived within ${describeMs(timeoutMs)}; run the login again (use --timeout for more time)`,
          ),
        );
      }, timeoutMs);
      const onAbort = () => {
        finish();
        reject(signal?.reason ?? new GatewayCredentialError("ERR_LOGIN", "the login was cancelled"));
      };
      signal?.addEventListener("abort", onAbort);
      onRequest = (req, res) => {
        finish();
        const q = new URL(req.url ?? "/", "http://loopback").searchParams;
        const error = q.get("error");
        if (q.get("state") !== state) {
          page(
            res,
            400,
            "Sign-in refused",
            "This answer does not belong to the sign-in the command line started. Run the login again.",
          );
          reject(
            new GatewayCredentialError(
              "ERR_LOGIN",
              "the browser came back with a different state than this login sent (a stale tab or a forged redirect); " +
                "nothing was stored. Run the login again.",
            ),
          );
          return;
        }
        if (error !== null) {
          const description = clean(q.get("error_description") ?? "");
          page(res, 400, "Sign-in failed", description || clean(error));
          reject(
            new GatewayCredentialError(
              "ERR_LOGIN",
              `the gateway refused the sign-in (${clean(error)})${description ? `: ${description}` : ""}`,
              { oauthError: clean(error) },
            ),
          );
          return;
        }
        const code = q.get("code");
        if (code === null || code === "") {
          page(res, 400, "Sign-in failed", "The answer carried no authorization code. Run the login again.");
          reject(
            new GatewayCredentialError("ERR_LOGIN", "the browser came back without an authorization code"),
          );
          return;
        }
        let answered = false;
        resolve({
          code,
          respond: (ok, message) => {
            if (answered) return Promise.resolve();
            answered = true;
            return new Promise<void>((done) => {
              res.once("close", () => done());
              page(res, ok ? 200 : 400, ok ? "Signed in" : "Sign-in failed", message);
            });
          },
        });
      };
    });

  return { redirectUri: `http://${host}:${port}/callback`, waitForCallback, close };
}

function page(res: ServerResponse, status: number, title: string, message: string): void {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} — cosmosgate</title>` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    "<style>body{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}" +
    "h1{font-size:1.4em}</style></head>" +
    `<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>\n`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    connection: "close",
  });
  res.end(body);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function describeMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}
