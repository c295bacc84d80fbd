import fastifyCookie from "@fastify/cookie";
import Fastify, { type FastifyInstance } from "fastify";
import { requestOrigin } from "../identity.js";
import type { ControlPlaneContext, ControlPlaneDeps } from "./context.js";
import { checkCsrf } from "./csrf.js";
import { ApiError, toErrorReply } from "./errors.js";
import { PAGE_CSP } from "./pages/html.js";
import { accountRoutes } from "./routes/account.js";
import { agentApprovalRoutes } from "./routes/agentApprovals.js";
import { approvalRoutes } from "./routes/approvals.js";
import { type AuditCheckpointSource, auditCheckpointRoutes } from "./routes/auditCheckpoints.js";
import { ceremonyRoutes } from "./routes/ceremonies.js";
import { consoleRoutes } from "./routes/console.js";
import { consoleAuditRoutes } from "./routes/consoleAudit.js";
import { consolePolicyRoutes } from "./routes/consolePolicy.js";
import { grantRoutes } from "./routes/grants.js";
import { oauthRoutes } from "./routes/oauth.js";
import { pageRoutes, readWebAuthnBundle } from "./routes/pages.js";
import { wellKnownRoutes } from "./routes/wellKnown.js";

export type { ControlPlaneDeps } from "./context.js";
export { SESSION_COOKIE } from "./session.js";

/** Request bodies are small JSON objects; anything larger is refused (400). */
export const BODY_LIMIT = 64 * 1024;
const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Builds the control plane — passkey enrollment and sign-in, "my keys", OAuth for the command line,
 * JWKS and discovery, health — as a Fastify instance that is not listening yet: the gateway calls
 * `app.listen({ host, port })` (or serves `app.server`) and `app.close()` on shutdown.
 *
 * Contract: JSON in and out; refusals are `{error, code, message}` with a 4xx status (`error` and
 * `code` are the same stable code; `{error, error_description}` on /oauth/token and /oauth/revoke,
 * RFC 6749 §5.2); malformed input is a 400, never a 500. Writes must be `content-type:
 * application/json` (415 otherwise; the OAuth token and revocation endpoints also take forms): with
 * the SameSite=Strict session cookie, a cross-site form cannot send them. On top of that, every
 * write under /api/ and /auth/ made with a live session cookie carries the session's CSRF token
 * (`x-cosmosgate-csrf`, from `GET /api/me`; csrf.ts), else 403 `ERR_CSRF`. Pages carry a strict CSP
 * and load their script from /assets/; the web console is served at /console/ (routes/console.ts).
 * Fastify's own request logging is off (URLs can carry invites); one summary line per request goes
 * to `deps.log` with the route pattern, never the query, body or cookies.
 *
 * @throws {TypeError} when `cookieSecret` is shorter than 32 characters.
 *
 * @example
 * ```ts
 * const app = createControlPlane({ identity, config, log, clock: Date.now, events: audit, cookieSecret, health });
 * await app.listen({ host: "127.0.0.1", port: 8080 });
 * ```
 */
export function createControlPlane(
  deps: ControlPlaneDeps & {
    auditCheckpoints?: AuditCheckpointSource;
    /** `GET /metrics` in Prometheus text format (server/metrics.ts). */
    metrics?: { contentType: string; text(): Promise<string> };
  },
): FastifyInstance {
  if (typeof deps.cookieSecret !== "string" || deps.cookieSecret.length < 32) {
    throw new TypeError(
      "cookieSecret must be a random secret of at least 32 characters (keep it in stateDir)",
    );
  }
  const publicUrl = deps.config.controlPlane.publicUrl.replace(/\/+$/, "");
  const parsed = new URL(publicUrl);
  const ctx: ControlPlaneContext = {
    ...deps,
    publicUrl,
    publicHost: parsed.host,
    secure: parsed.protocol === "https:",
    emit: (e) => {
      try {
        // Completed from the store (the key's nickname, AAGUID and kind; a session's user and key)
        // and from the request it happens in (client address, user agent).
        deps.events(deps.identity.describeEvent(e));
      } catch (error) {
        deps.log.error({ err: error, event: e.type }, "control plane: the audit sink failed");
      }
    },
  };
  const webauthnBundle = readWebAuthnBundle();
  const log = deps.log.child({ component: "control-plane" });

  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 2048 },
    return503OnClosing: true,
  });

  app.register(fastifyCookie, { secret: deps.cookieSecret, hook: "onRequest" });

  // JSON bodies: fastify's parser (it refuses __proto__ and constructor poisoning), with an empty
  // body taken as "no body" and every parse failure a clear 400.
  const defaultJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "application/json",
    { parseAs: "string", bodyLimit: BODY_LIMIT },
    (request, body, done) => {
      const text = typeof body === "string" ? body : body.toString("utf8");
      if (text.trim() === "") return done(null, undefined);
      defaultJson(request, text, (error, value) => {
        if (error) {
          done(
            new ApiError(
              400,
              "ERR_BAD_JSON",
              "the request body is not valid JSON; send a JSON object with content-type: application/json.",
            ),
            undefined,
          );
          return;
        }
        done(null, value);
      });
    },
  );

  // CSRF: every write must declare JSON (a cross-site HTML form cannot); the OAuth endpoints, which
  // use no cookie, also take forms. Checked before the body is read.
  app.addHook("onRequest", async (request) => {
    if (!WRITE_METHODS.has(request.method) || request.routeOptions.url === undefined) return;
    const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") return;
    const config = request.routeOptions.config as { forms?: boolean } | undefined;
    if (config?.forms === true && type === "application/x-www-form-urlencoded") return;
    throw new ApiError(
      415,
      "ERR_UNSUPPORTED_MEDIA_TYPE",
      type === ""
        ? "this request needs content-type: application/json (send a JSON object, {} when there is nothing to say)."
        : `content-type ${JSON.stringify(type.slice(0, 80))} is not accepted; send JSON with content-type: application/json.`,
    );
  });

  // CSRF, second layer: a cookie-authenticated write under /api/ and /auth/ carries the session's
  // token (csrf.ts). After the content-type check, still before the body is read.
  app.addHook("onRequest", async (request) => {
    checkCsrf(ctx, request);
  });

  // The audit's request origin: each handler runs inside requestOrigin.run (a callback hook, so the
  // handler is called synchronously from `done` and everything it awaits inherits the store), and
  // identity events emitted anywhere below it carry the client's address and user agent.
  app.addHook("preHandler", (request, _reply, done) => {
    const agent = request.headers["user-agent"];
    requestOrigin.run(
      { clientAddress: request.ip, ...(typeof agent === "string" ? { userAgent: agent } : {}) },
      done,
    );
  });

  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    if (!reply.hasHeader("cache-control")) reply.header("cache-control", "no-store");
    const type = String(reply.getHeader("content-type") ?? "");
    if (type.startsWith("text/html")) {
      reply.header("content-security-policy", PAGE_CSP);
      reply.header("x-frame-options", "DENY");
    }
    return payload;
  });

  app.addHook("onResponse", async (request, reply) => {
    const entry = {
      method: request.method,
      route: request.routeOptions.url ?? "(no route)",
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (reply.statusCode >= 500) log.error(entry, "control plane request failed");
    else if (reply.statusCode >= 400) log.info(entry, "control plane request refused");
    else log.debug(entry, "control plane request");
  });

  app.setErrorHandler(async (error, request, reply) => {
    const r = toErrorReply(error);
    if (r.internal) {
      log.error(
        { err: error, method: request.method, route: request.routeOptions.url ?? "(no route)" },
        "control plane: unexpected error",
      );
    }
    const config = request.routeOptions.config as { oauthErrors?: boolean } | undefined;
    reply.code(r.status).type("application/json; charset=utf-8");
    if (config?.oauthErrors === true) {
      if (r.status === 401) reply.header("www-authenticate", 'Basic realm="cosmosgate"');
      return { error: r.oauthError, error_description: r.message };
    }
    // `error` for the pages and the CLI, `code` as the console API's contract names it.
    return { error: r.code, code: r.code, message: r.message };
  });

  app.setNotFoundHandler(async (request, reply) => {
    reply.code(404).type("application/json; charset=utf-8");
    return {
      error: "ERR_NOT_FOUND",
      code: "ERR_NOT_FOUND",
      message: `no route ${request.method} ${request.url.split("?")[0].slice(0, 200)} on the control plane.`,
    };
  });

  ceremonyRoutes(app, ctx);
  accountRoutes(app, ctx);
  oauthRoutes(app, ctx);
  wellKnownRoutes(app, ctx);
  if (deps.auditCheckpoints) auditCheckpointRoutes(app, deps.auditCheckpoints);
  const metrics = deps.metrics;
  if (metrics) {
    // Counts and latencies only: no subject, key, token or resource appears in a label.
    app.get("/metrics", async (_request, reply) => {
      reply.type(metrics.contentType);
      return metrics.text();
    });
  }
  consoleRoutes(app, ctx);
  consoleAuditRoutes(app, ctx);
  consolePolicyRoutes(app, ctx);
  grantRoutes(app, ctx);
  approvalRoutes(app, ctx);
  agentApprovalRoutes(app, ctx);
  pageRoutes(app, ctx, webauthnBundle);
  return app;
}
