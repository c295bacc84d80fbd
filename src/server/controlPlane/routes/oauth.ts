import formbody from "@fastify/formbody";
import type { FastifyInstance } from "fastify";
import { bodyObject, requiredObject } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError, OAuthError } from "../errors.js";
import { CLI_CLIENT_ID, checkAuthorizeRequest, redirectWith } from "../oauth/authorizeRequest.js";
import { isCodeVerifier, issueCode, pkceMatches, redeemCode } from "../oauth/codes.js";
import { html } from "../pages/html.js";
import { sendPage } from "../pages/send.js";
import { authorizePage, errorPage } from "../pages/views.js";
import { checkSession, signInWithKey, tokensFor } from "../signIn.js";

/** Route config: errors of these routes are answered the OAuth way, `{error, error_description}`. */
export const OAUTH_ERRORS = { oauthErrors: true, forms: true } as const;

/**
 * OAuth 2.0 for the command line — authorization code with PKCE S256 on a loopback redirect
 * (RFC 6749, 7636, 8252), refresh tokens that rotate, revocation (RFC 7009):
 * - `GET /oauth/authorize` → the authorization page, or a 400 page saying what is wrong
 * - `POST /oauth/authorize/approve` `{authorize, response}` → `{redirect_to}` (code valid once, 60 s)
 * - `POST /oauth/token` (JSON or form) `grant_type=authorization_code|refresh_token`
 * - `POST /oauth/revoke` (JSON or form) `token=<refresh token>` → 200
 */
export function oauthRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const { store, sessions } = ctx.identity;

  app.get("/oauth/authorize", async (request, reply) => {
    const check = checkAuthorizeRequest(request.query as Record<string, unknown>, { responseType: true });
    if (!check.ok) {
      return sendPage(
        reply,
        errorPage(
          "This sign-in request is not valid",
          `The command line's authorization request was refused: ${check.problem}`,
          html`Nothing was sent anywhere. Run <code>cosmosgate login</code> again; if it keeps failing, update the command line.`,
        ),
        400,
      );
    }
    const deny = redirectWith(check.request, {
      error: "access_denied",
      error_description: "the user denied the request",
    });
    return sendPage(reply, authorizePage(ctx.publicHost, check.request, deny));
  });

  app.post("/oauth/authorize/approve", async (request) => {
    const body = bodyObject(request.body);
    const params = requiredObject(body, "authorize", "the authorization request's parameters");
    const check = checkAuthorizeRequest(params, { responseType: false });
    if (!check.ok) throw new ApiError(400, "ERR_BAD_AUTHORIZE_REQUEST", check.problem);
    if (body.response === undefined) {
      throw new ApiError(
        400,
        "ERR_BAD_REQUEST",
        "response is missing: send the assertion the browser returned.",
      );
    }
    const signedIn = await signInWithKey(ctx, body.response);
    const code = issueCode(
      store,
      ctx.clock(),
      check.request,
      { sessionId: signedIn.session.id, userId: signedIn.user.id },
      signedIn.refreshToken,
    );
    return { redirect_to: redirectWith(check.request, { code }) };
  });

  app.register(async (scope) => {
    await scope.register(formbody, { bodyLimit: 64 * 1024 });

    scope.post("/oauth/token", { config: OAUTH_ERRORS }, async (request, reply) => {
      reply.header("cache-control", "no-store").header("pragma", "no-cache");
      const params = oauthParams(request.body);
      const grantType = param(params, "grant_type");
      if (grantType === undefined) throw invalidRequest("grant_type is missing.");
      const clientId = param(params, "client_id");
      if (clientId === undefined) throw invalidRequest(`client_id is missing; send "${CLI_CLIENT_ID}".`);
      if (clientId !== CLI_CLIENT_ID) {
        throw new OAuthError(
          401,
          "invalid_client",
          `unknown client_id; the only client is "${CLI_CLIENT_ID}".`,
        );
      }
      if (grantType === "authorization_code") return exchangeCode(ctx, params);
      if (grantType === "refresh_token") {
        const refreshToken = param(params, "refresh_token");
        if (refreshToken === undefined) throw invalidRequest("refresh_token is missing.");
        const next = sessions.refresh(refreshToken);
        return tokensFor(ctx, next.user, next.session, next.refreshToken, {
          type: "token.refreshed",
          reason: "refresh token rotated at /oauth/token",
          grant: "refresh_token",
        });
      }
      throw new OAuthError(
        400,
        "unsupported_grant_type",
        'grant_type must be "authorization_code" or "refresh_token".',
      );
    });

    scope.post("/oauth/revoke", { config: OAUTH_ERRORS }, async (request, reply) => {
      reply.header("cache-control", "no-store");
      const params = oauthParams(request.body);
      const token = param(params, "token");
      if (token === undefined) throw invalidRequest("token is missing: send the refresh token to revoke.");
      const clientId = param(params, "client_id");
      if (clientId !== undefined && clientId !== CLI_CLIENT_ID) {
        throw new OAuthError(
          401,
          "invalid_client",
          `unknown client_id; the only client is "${CLI_CLIENT_ID}".`,
        );
      }
      // RFC 7009 §2.2: an unknown or already revoked token is not an error.
      const session = sessions.revoke({ refreshToken: token }, "revoked by the client");
      ctx.emit({
        type: "token.revoked",
        ...(session !== undefined ? { session: session.id } : {}),
        reason:
          session !== undefined
            ? "the client revoked its refresh token at /oauth/revoke: the session and its tokens are revoked"
            : "revocation requested at /oauth/revoke for a token this gateway does not know (nothing changed)",
        decision: "allow",
        details: { via: "oauth.revoke", known: session !== undefined },
      });
      return {};
    });
  });

  /** `grant_type=authorization_code`: PKCE, the code's bindings, then the session's tokens. */
  async function exchangeCode(context: ControlPlaneContext, params: Record<string, unknown>) {
    const code = param(params, "code");
    const redirectUri = param(params, "redirect_uri");
    const verifier = param(params, "code_verifier");
    if (code === undefined) throw invalidRequest("code is missing.");
    if (redirectUri === undefined)
      throw invalidRequest("redirect_uri is missing; send the one the authorization used.");
    if (verifier === undefined) throw invalidRequest("code_verifier is missing; PKCE is required.");
    if (!isCodeVerifier(verifier)) {
      throw invalidRequest("code_verifier must be 43–128 characters of A–Z a–z 0–9 - . _ ~ (RFC 7636).");
    }
    const now = context.clock();
    const redemption = redeemCode(store, now, code);
    if (redemption.status === "reused") {
      revokeQuietly(redemption.sessionId, "authorization code reused");
      context.emit({
        type: "token.revoked",
        session: redemption.sessionId,
        reason: "authorization code presented a second time: the session it gave is revoked",
        decision: "deny",
        details: { via: "authorization_code.reused" },
      });
    }
    if (redemption.status !== "ok") {
      throw invalidGrant(
        "the authorization code is unknown, already used or expired (a code is valid once, for 60 seconds); run `cosmosgate login` again.",
      );
    }
    const granted = redemption.code;
    const refuse = (why: string) => {
      revokeQuietly(granted.sessionId, "authorization code refused");
      return invalidGrant(`${why}; run \`cosmosgate login\` again.`);
    };
    if (granted.clientId !== CLI_CLIENT_ID) throw refuse("the code was issued to another client");
    if (granted.redirectUri !== redirectUri)
      throw refuse("redirect_uri differs from the one the code was issued for");
    if (!pkceMatches(verifier, granted.codeChallenge))
      throw refuse("code_verifier does not match the code_challenge (PKCE)");
    const state = checkSession(context, granted.sessionId);
    if (!state.ok) throw invalidGrant(`${state.reason}; sign in again with \`cosmosgate login\`.`);
    return tokensFor(context, state.user, state.session, granted.refreshToken, {
      type: "token.issued",
      reason: "authorization code exchanged by the command line (PKCE S256)",
      grant: "authorization_code",
    });
  }

  function revokeQuietly(sessionId: string, reason: string): void {
    try {
      sessions.revoke({ sessionId }, reason);
    } catch {
      // Already gone: nothing to revoke.
    }
  }
}

function oauthParams(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest(
      "the request body must be a JSON object or a form (application/x-www-form-urlencoded).",
    );
  }
  return body as Record<string, unknown>;
}

/** One parameter: absent, or a string given once (RFC 6749 §3.2: parameters must not repeat). */
function param(params: Record<string, unknown>, name: string): string | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (Array.isArray(value)) throw invalidRequest(`${name} is given more than once.`);
  if (typeof value !== "string") throw invalidRequest(`${name} must be a string.`);
  if (value.length > 4096) throw invalidRequest(`${name} is too long.`);
  return value;
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError(400, "invalid_request", description);
}

function invalidGrant(description: string): OAuthError {
  return new OAuthError(400, "invalid_grant", description);
}
