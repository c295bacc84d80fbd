import type { FastifyInstance } from "fastify";
import { bodyObject, optionalString } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { clearSessionCookie, currentSignIn, readSignedIn, setSessionCookie } from "../session.js";
import { requireRecentAuth, signInWithKey, tokensFor } from "../signIn.js";

/**
 * The WebAuthn ceremony API (JSON):
 * - `POST /auth/webauthn/register/options` `{invite}` (new user) or signed in (another key; the key
 *   must have been tapped within the last 5 minutes, else 403 `reauthentication_required`)
 * - `POST /auth/webauthn/register/verify` `{response, nickname?}` → `{credentialId, nickname, deviceBound, aaguid}`
 *   (an enrollment also signs the new user in; another key must be finished by the same session
 *   that asked for the options, while it is still good, else 403 `ERR_WEBAUTHN_SESSION`)
 * - `POST /auth/webauthn/login/options` `{username?}`
 * - `POST /auth/webauthn/login/verify` `{response}` → tokens and the `cg_session` cookie
 * - `POST /auth/logout` → revokes the cookie's session and clears the cookie
 *
 * Made with a live session cookie, every one of these but the sign-in (`/auth/webauthn/login/*`)
 * carries the session's CSRF token in `x-cosmosgate-csrf` (checked for all routes by csrf.ts);
 * an enrollment by invite from a browser with no session needs none.
 */
export function ceremonyRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const { webauthn, sessions, store } = ctx.identity;

  app.post("/auth/webauthn/register/options", async (request, reply) => {
    const body = bodyObject(request.body);
    const invite = optionalString(body, "invite", 512);
    if (invite !== undefined) return webauthn.registrationOptions({ inviteSecret: invite });
    const me = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (me === undefined) {
      throw new ApiError(
        401,
        "ERR_NOT_SIGNED_IN",
        "to enroll a first key, send the invite from your enrollment link ({invite}); to add another key, sign in first.",
      );
    }
    requireRecentAuth(ctx, me.session);
    return webauthn.registrationOptions({ userId: me.user.id, sessionId: me.session.id });
  });

  app.post("/auth/webauthn/register/verify", async (request, reply) => {
    const body = bodyObject(request.body);
    if (body.response === undefined) {
      throw new ApiError(
        400,
        "ERR_BAD_REQUEST",
        "response is missing: send the credential the browser returned.",
      );
    }
    const nickname = optionalString(body, "nickname", 64);
    // The session this request is signed in with (checked): a key added by a signed-in user is
    // accepted only from the session that asked for the options, while it is still good.
    const signedIn = readSignedIn(request, store, ctx.clock()).signedIn;
    const { user, credential } = await webauthn.verifyRegistration({
      response: body.response,
      ...(nickname !== undefined ? { nickname } : {}),
      ...(signedIn !== undefined ? { sessionId: signedIn.session.id } : {}),
    });
    // The key just registered is the user's only one: this was an enrollment by invite, and the
    // new user is signed in with it (the enrollment page goes on to "my keys").
    const now = ctx.clock();
    if (signedIn?.user.id !== user.id && store.listCredentials(user.id).length === 1) {
      const amr = [
        credential.deviceBound ? "hwk" : "swk",
        "user",
        ...(ctx.config.identity.authenticators.userVerification === "required" ? ["pin"] : []),
      ];
      const { session } = sessions.start({ user, credentialId: credential.id, amr, authTime: now });
      setSessionCookie(reply, session, now, ctx.secure);
    }
    return {
      credentialId: credential.id,
      nickname: credential.nickname,
      deviceBound: credential.deviceBound,
      aaguid: credential.aaguid,
    };
  });

  app.post("/auth/webauthn/login/options", async (request) => {
    const body = bodyObject(request.body);
    const username = optionalString(body, "username", 256);
    return webauthn.authenticationOptions(username !== undefined && username !== "" ? { username } : {});
  });

  app.post("/auth/webauthn/login/verify", async (request, reply) => {
    const body = bodyObject(request.body);
    if (body.response === undefined) {
      throw new ApiError(
        400,
        "ERR_BAD_REQUEST",
        "response is missing: send the assertion the browser returned.",
      );
    }
    const signedIn = await signInWithKey(ctx, body.response);
    const tokens = await tokensFor(ctx, signedIn.user, signedIn.session, signedIn.refreshToken, {
      type: "token.issued",
      reason: "signed in with a key at the control plane",
      grant: "webauthn",
    });
    setSessionCookie(reply, signedIn.session, ctx.clock(), ctx.secure);
    return tokens;
  });

  app.post("/auth/logout", async (request, reply) => {
    const state = readSignedIn(request, store, ctx.clock());
    if (state.signedIn !== undefined) {
      sessions.revoke({ sessionId: state.signedIn.session.id }, "signed out");
    }
    clearSessionCookie(reply, ctx.secure);
    return { signedOut: true };
  });
}
