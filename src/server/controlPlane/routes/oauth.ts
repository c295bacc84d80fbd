import formbody from "@fastify/formbody";
import type { FastifyInstance } from "fastify";
import { TokenError } from "../../../identity/errors.js";
import type { IssuedToken } from "../../../identity/tokens/issue.js";
import type { Principal } from "../../../identity/types.js";
import { bodyObject, requiredObject } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError, OAuthError } from "../errors.js";
import { CLI_CLIENT_ID, checkAuthorizeRequest, redirectWith } from "../oauth/authorizeRequest.js";
import { isCodeVerifier, issueCode, pkceMatches, redeemCode } from "../oauth/codes.js";
import { html } from "../pages/html.js";
import { sendPage } from "../pages/send.js";
import { authorizePage, errorPage } from "../pages/views.js";
import { checkSession, signInWithKey, tokensFor } from "../signIn.js";
import { agentTokenResponse } from "./grants.js";

/** RFC 8693 token exchange. */
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";

/** Route config: errors of these routes are answered the OAuth way, `{error, error_description}`. */
export const OAUTH_ERRORS = { oauthErrors: true, forms: true } as const;

/**
 * OAuth 2.0 for the command line — authorization code with PKCE S256 on a loopback redirect
 * (RFC 6749, 7636, 8252), refresh tokens that rotate, revocation (RFC 7009):
 * - `GET /oauth/authorize` → the authorization page, or a 400 page saying what is wrong
 * - `POST /oauth/authorize/approve` `{authorize, response}` → `{redirect_to}` (code valid once, 60 s)
 * - `POST /oauth/token` (JSON or form) `grant_type=authorization_code|refresh_token`, or token
 *   exchange (RFC 8693): `subject_token=<federated JWT>` → a gateway token for the same principal
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
      if (grantType === TOKEN_EXCHANGE) return exchangeToken(ctx, params);
      // An agent under a person's grant: RFC 7523 private_key_jwt (routes/grants.ts).
      if (grantType === "client_credentials") return agentTokenResponse(ctx, params);
      const clientId = param(params, "client_id");
      if (clientId === undefined) throw invalidRequest(`client_id is missing; send "${CLI_CLIENT_ID}".`);
      checkClientId(clientId);
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
        `grant_type must be "authorization_code", "refresh_token", "client_credentials" or "${TOKEN_EXCHANGE}".`,
      );
    });

    scope.post("/oauth/revoke", { config: OAUTH_ERRORS }, async (request, reply) => {
      reply.header("cache-control", "no-store");
      const params = oauthParams(request.body);
      const token = param(params, "token");
      if (token === undefined) throw invalidRequest("token is missing: send the refresh token to revoke.");
      checkClientId(param(params, "client_id"));
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

  /**
   * Token exchange (RFC 8693 §2): a federated access token the data plane would accept becomes a
   * gateway token for the same principal (subject, kind, groups, issuer), expiring no later than it.
   * The client is public; `client_id`, when sent, must be the CLI's. Refusals are `invalid_request`
   * (§2.2.2) whose description names the reason, as the data plane would.
   */
  async function exchangeToken(context: ControlPlaneContext, params: Record<string, unknown>) {
    checkClientId(param(params, "client_id"));
    const subjectToken = param(params, "subject_token", 16_384);
    if (subjectToken === undefined) {
      throw invalidRequest("subject_token is missing: send the access token your identity provider issued.");
    }
    const subjectType = param(params, "subject_token_type");
    if (subjectType !== ACCESS_TOKEN_TYPE && subjectType !== JWT_TOKEN_TYPE) {
      throw invalidRequest(
        `subject_token_type must be "${ACCESS_TOKEN_TYPE}" or "${JWT_TOKEN_TYPE}" (an access token for the gateway, not an ID token).`,
      );
    }
    const requested = param(params, "requested_token_type");
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
      throw invalidRequest(`requested_token_type must be "${ACCESS_TOKEN_TYPE}" or absent.`);
    }
    if (param(params, "actor_token") !== undefined) {
      throw invalidRequest("actor_token is not supported: exchange a token for its own subject only.");
    }
    const dataPlane = context.config.dataPlane.publicUrl.replace(/\/$/, "");
    for (const name of ["audience", "resource"] as const) {
      const value = param(params, name);
      if (value !== undefined && value.replace(/\/$/, "") !== dataPlane) {
        throw new OAuthError(
          400,
          name === "resource" ? "invalid_target" : "invalid_request",
          `${name} must be the data plane, ${dataPlane}, or absent.`,
        );
      }
    }
    const federation = context.federation;
    if (federation === undefined) {
      throw new OAuthError(400, "unsupported_grant_type", "token exchange is not enabled on this gateway.");
    }
    let principal: Principal;
    try {
      principal = federation.verifyCached(subjectToken) ?? (await federation.verify(subjectToken));
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      context.emit({
        type: "signin.failed",
        reason: `token exchange refused: ${error.message}`,
        decision: "deny",
        details: { via: "token-exchange", code: error.code },
      });
      throw invalidRequest(`the subject_token is refused (${error.code}): ${error.message}`);
    }
    if (principal.issuer === context.identity.issuerUrl || principal.tokenIssuer !== undefined) {
      throw invalidRequest(
        "the subject_token is already a gateway token; use it as it is (exchange federated tokens only).",
      );
    }
    if (principal.actor !== undefined || principal.kind === "agent") {
      throw invalidRequest("a token that names an actor (act) cannot be exchanged.");
    }
    let issued: IssuedToken;
    try {
      issued = await context.identity.issuer.issueExchanged({
        sub: principal.sub,
        groups: principal.groups,
        kind: principal.kind,
        federatedIssuer: principal.issuer,
        notAfter: principal.exp,
        ...(principal.name !== undefined ? { name: principal.name } : {}),
        ...(principal.amr !== undefined ? { amr: principal.amr } : {}),
        ...(principal.authTime !== undefined ? { authTime: principal.authTime } : {}),
      });
    } catch (error) {
      if (error instanceof RangeError) throw invalidRequest("the subject_token expires now; get a new one.");
      throw error;
    }
    context.emit({
      type: "token.issued",
      subject: principal.sub,
      subjectKind: principal.kind,
      issuer: principal.issuer,
      jti: issued.jti,
      resource: "",
      reason: `federated token of ${principal.issuer} exchanged for a gateway token (RFC 8693)`,
      decision: "allow",
      details: {
        grant: "token-exchange",
        expiresIn: issued.expires_in,
        ...(principal.jti !== undefined ? { subjectTokenJti: principal.jti } : {}),
        groups: principal.groups.join(","),
      },
    });
    return {
      access_token: issued.access_token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "Bearer",
      expires_in: issued.expires_in,
    };
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
function param(params: Record<string, unknown>, name: string, maxLength = 4096): string | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (Array.isArray(value)) throw invalidRequest(`${name} is given more than once.`);
  if (typeof value !== "string") throw invalidRequest(`${name} must be a string.`);
  if (value.length > maxLength) throw invalidRequest(`${name} is too long.`);
  return value;
}

/** A `client_id` that is sent must be the command line's (the only, public, client). */
function checkClientId(clientId: string | undefined): void {
  if (clientId !== undefined && clientId !== CLI_CLIENT_ID) {
    throw new OAuthError(401, "invalid_client", `unknown client_id; the only client is "${CLI_CLIENT_ID}".`);
  }
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError(400, "invalid_request", description);
}

function invalidGrant(description: string): OAuthError {
  return new OAuthError(400, "invalid_grant", description);
}
