import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { CSRF_HEADER } from "./consoleApi.js";
import type { ControlPlaneContext } from "./context.js";
import { ApiError } from "./errors.js";
import { readSignedIn } from "./session.js";

/**
 * The CSRF token of a session: base64url(HMAC-SHA256(cookieSecret, "csrf:" + sessionId)). Derived,
 * not stored: it is the same for the whole session, differs between sessions, and cannot be
 * computed without the cookie secret. Pages read it from `GET /api/me` (`csrfToken`).
 *
 * @example
 * ```ts
 * const token = csrfToken(ctx.cookieSecret, session.id);
 * ```
 */
export function csrfToken(cookieSecret: string, sessionId: string): string {
  return createHmac("sha256", cookieSecret).update(`csrf:${sessionId}`, "utf8").digest("base64url");
}

/** Whether `presented` is the session's token; constant time in the token's content. */
export function csrfMatches(cookieSecret: string, sessionId: string, presented: unknown): boolean {
  if (typeof presented !== "string" || presented.length === 0 || presented.length > 128) return false;
  const expected = Buffer.from(csrfToken(cookieSecret, sessionId), "utf8");
  const given = Buffer.from(presented, "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Whether a route needs the CSRF token when the request is signed in: every write under `/api/`
 * and `/auth/`, except the sign-in ceremony (`/auth/webauthn/login/*`, which starts a session and
 * so cannot know one's token). `/oauth/*` uses no cookie and is not covered.
 */
export function csrfProtected(method: string, route: string | undefined): boolean {
  if (!WRITE_METHODS.has(method) || route === undefined) return false;
  if (route.startsWith("/auth/webauthn/login/")) return false;
  return route.startsWith("/api/") || route.startsWith("/auth/");
}

/**
 * The CSRF check of every request (an `onRequest` hook, after the cookie is parsed): a write to a
 * {@link csrfProtected} route made with a cookie of a live session must carry
 * `x-cosmosgate-csrf: <csrfToken>`, else 403 `ERR_CSRF`. A request without a cookie, or whose cookie
 * is forged or names a session that is over, has no authority to borrow and is left to the route
 * (which treats it as not signed in). This is the second layer: the session cookie is
 * SameSite=Strict and writes must be JSON, which a cross-site form cannot send.
 *
 * @throws {ApiError} 403 `ERR_CSRF`.
 */
export function checkCsrf(ctx: ControlPlaneContext, request: FastifyRequest): void {
  if (!csrfProtected(request.method, request.routeOptions.url)) return;
  const { signedIn } = readSignedIn(request, ctx.identity.store, ctx.clock());
  if (signedIn === undefined) return;
  if (csrfMatches(ctx.cookieSecret, signedIn.session.id, request.headers[CSRF_HEADER])) return;
  throw new ApiError(
    403,
    "ERR_CSRF",
    `this change was refused because it did not carry the page's security token (header ${CSRF_HEADER}); reload the page and try again.`,
  );
}
