import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuthenticatorNames } from "../../../identity/webauthn/authenticatorNames.js";
import { WebAuthnError } from "../../../identity/webauthn/index.js";
import type { CredentialRecord } from "../../../store/ports.js";
import { bodyObject, nickname } from "../body.js";
import type { KeysView, KeyView, MeView, RemoveKeyResult } from "../consoleApi.js";
import type { ControlPlaneContext } from "../context.js";
import { csrfToken } from "../csrf.js";
import { ApiError } from "../errors.js";
import { clearSessionCookie, currentSignIn, type SignedIn } from "../session.js";
import { notSignedIn } from "../signIn.js";

/**
 * A key as the console API shows it (`GET /api/me/keys`, the people list): its nickname, type,
 * authenticator model (by AAGUID, when known), use and suspension. `currentId` is the key of the
 * session asking (its `current` flag).
 *
 * @example
 * ```ts
 * const view = keyView(credential, signedIn.credential.id, ctx.identity.authenticatorName);
 * ```
 */
export function keyView(c: CredentialRecord, currentId: string, nameOf: AuthenticatorNames): KeyView {
  return {
    id: c.id,
    nickname: c.nickname,
    deviceBound: c.deviceBound,
    type: c.deviceBound ? "hardware-bound" : "synced",
    aaguid: c.aaguid,
    authenticator: nameOf(c.aaguid),
    createdAt: new Date(c.createdAt).toISOString(),
    lastUsedAt: c.lastUsedAt !== undefined ? new Date(c.lastUsedAt).toISOString() : null,
    useCount: c.useCount,
    suspended: c.suspendedAt !== undefined,
    ...(c.suspendedAt !== undefined ? { suspendedReason: c.suspendedReason ?? "no reason recorded" } : {}),
    current: c.id === currentId,
  };
}

/** What a removal's tap is bound to: the action, the session that asked, and the key. */
const REMOVE_KEY = "remove-key";

function tapRequired(why: string): ApiError {
  return new ApiError(
    403,
    "ERR_TAP_REQUIRED",
    `removing a key needs a tap on one of your keys: ${why} Ask for new options (POST /api/me/keys/ID/remove/options), touch your key, and send its response.`,
  );
}

/**
 * The signed-in user's account (cookie session; writes need `content-type: application/json` and
 * the CSRF header, see csrf.ts):
 * - `GET /api/me` → {@link MeView} (with the session's `csrfToken`)
 * - `GET /api/me/keys` → `{keys: KeyView[]}`
 * - `PATCH /api/me/keys/:id` `{nickname}` → the renamed key
 * - `POST /api/me/keys/:id/remove/options` `{}` → WebAuthn request options (for
 *   `startAuthentication`) whose challenge is bound to removing this key from this session
 * - `DELETE /api/me/keys/:id` `{response}` → `{removed, signedOut}`, see below
 */
export function accountRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const { store, webauthn } = ctx.identity;
  const nameOf = ctx.identity.authenticatorName;
  const me = (request: FastifyRequest, reply: FastifyReply): SignedIn => {
    const signedIn = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (signedIn === undefined) throw notSignedIn();
    return signedIn;
  };
  const ownKey = (signedIn: SignedIn, id: string): CredentialRecord => {
    const key = store.getCredential(id);
    if (key === undefined || key.userId !== signedIn.user.id) {
      throw new ApiError(
        404,
        "ERR_KEY_NOT_FOUND",
        "you have no key with this id; list your keys at GET /api/me/keys.",
      );
    }
    return key;
  };
  /** Refuses to remove the person's last usable key (they would be locked out). */
  const notLastKey = (signedIn: SignedIn, key: CredentialRecord): void => {
    const others = store
      .listCredentials(signedIn.user.id)
      .filter((c) => c.id !== key.id && c.suspendedAt === undefined);
    if (others.length === 0) {
      throw new ApiError(
        409,
        "ERR_LAST_KEY",
        "this is your only usable key: removing it would lock you out. Add another key first, then remove this one.",
      );
    }
  };

  app.get("/api/me", async (request, reply): Promise<MeView> => {
    const { user, session, credential } = me(request, reply);
    return {
      name: user.name,
      groups: user.groups,
      admin: user.admin,
      credential: credential.id,
      sessionExpiresAt: new Date(session.expiresAt).toISOString(),
      csrfToken: csrfToken(ctx.cookieSecret, session.id),
    };
  });

  app.get("/api/me/keys", async (request, reply): Promise<KeysView> => {
    const signedIn = me(request, reply);
    return {
      keys: store.listCredentials(signedIn.user.id).map((c) => keyView(c, signedIn.credential.id, nameOf)),
    };
  });

  app.patch<{ Params: { id: string } }>("/api/me/keys/:id", async (request, reply): Promise<KeyView> => {
    const signedIn = me(request, reply);
    const key = ownKey(signedIn, request.params.id);
    const name = nickname(bodyObject(request.body).nickname);
    store.renameCredential(key.id, name);
    ctx.emit({
      type: "credential.renamed",
      subject: signedIn.user.name,
      credential: key.id,
      credentialName: name,
      aaguid: key.aaguid,
      deviceBound: key.deviceBound,
      session: signedIn.session.id,
      reason: `renamed from ${JSON.stringify(key.nickname)} to ${JSON.stringify(name)}`,
      decision: "allow",
      details: { from: key.nickname, to: name },
    });
    return keyView({ ...key, nickname: name }, signedIn.credential.id, nameOf);
  });

  app.post<{ Params: { id: string } }>("/api/me/keys/:id/remove/options", async (request, reply) => {
    const signedIn = me(request, reply);
    const key = ownKey(signedIn, request.params.id);
    notLastKey(signedIn, key);
    // Offers every usable key of the person; the challenge remembers what it confirms.
    return webauthn.authenticationOptions({
      userId: signedIn.user.id,
      purpose: "approval",
      data: { action: REMOVE_KEY, session: signedIn.session.id, key: key.id },
    });
  });

  /**
   * Removes one of the person's keys, confirmed by a tap: `{response}` is the assertion of
   * `startAuthentication` on the options of `POST /api/me/keys/:id/remove/options`, made by any of
   * the person's usable keys (the key being removed included), with user verification as
   * configured. Its challenge is single use and bound to this session and this key id: an assertion
   * for another key, another session, a sign-in, or one already used is refused. Without a valid
   * assertion → 403 `ERR_TAP_REQUIRED` (malformed, replayed, expired or foreign assertions too, the
   * reason in the message); the last usable key → 409 `ERR_LAST_KEY`. The key's sessions are
   * revoked; removing the session's own key signs it out (`signedOut`).
   *
   * The 5-minute re-authentication rule of adding a key (REAUTH_MAX_AGE_MS) does not apply here:
   * the tap is a fresher proof than any sign-in — seconds old, from a key the person holds, over a
   * challenge that names this removal — so a stolen session cookie alone still cannot remove a key,
   * and a person signed in for hours is not sent to sign in again only to tap once more.
   */
  app.delete<{ Params: { id: string } }>(
    "/api/me/keys/:id",
    async (request, reply): Promise<RemoveKeyResult> => {
      const signedIn = me(request, reply);
      const key = ownKey(signedIn, request.params.id);
      notLastKey(signedIn, key);
      const response = bodyObject(request.body).response;
      if (response === undefined || response === null) {
        throw tapRequired("the request carries no assertion (response).");
      }
      let verified: Awaited<ReturnType<typeof webauthn.verifyAuthentication>>;
      try {
        verified = await webauthn.verifyAuthentication({ response, purpose: "approval" });
      } catch (error) {
        if (error instanceof WebAuthnError && error.status < 500) {
          throw tapRequired(`the assertion was not accepted (${error.code}: ${error.message})`);
        }
        throw error;
      }
      const bound = verified.challengeData;
      if (
        verified.user.id !== signedIn.user.id ||
        bound?.action !== REMOVE_KEY ||
        bound.session !== signedIn.session.id ||
        bound.key !== key.id
      ) {
        throw tapRequired("the assertion confirms something else (another key, session or action).");
      }
      // Checked again: another removal may have finished while the key was being tapped.
      notLastKey(signedIn, key);
      const now = ctx.clock();
      store.removeCredential(key.id);
      const revoked = store.revokeSessionsOf({ credentialId: key.id }, "credential removed", now);
      // The key is gone from the store: its description comes from the record read above.
      ctx.emit({
        type: "credential.removed",
        subject: signedIn.user.name,
        credential: key.id,
        credentialName: key.nickname,
        aaguid: key.aaguid,
        deviceBound: key.deviceBound,
        session: signedIn.session.id,
        reason: `removed by its owner (${JSON.stringify(key.nickname)}), confirmed by a tap; ${revoked.length} session(s) revoked`,
        decision: "allow",
        details: {
          revokedSessions: revoked.length,
          useCount: key.useCount,
          confirmedWith: verified.credential.id,
          ...(key.lastUsedAt !== undefined ? { lastUsedAt: new Date(key.lastUsedAt).toISOString() } : {}),
        },
      });
      for (const id of revoked) {
        ctx.emit({
          type: "session.revoked",
          subject: signedIn.user.name,
          credential: key.id,
          credentialName: key.nickname,
          aaguid: key.aaguid,
          deviceBound: key.deviceBound,
          session: id,
          reason: "credential removed",
          decision: "allow",
        });
      }
      const signedOut = key.id === signedIn.credential.id;
      if (signedOut) clearSessionCookie(reply, ctx.secure);
      return { removed: key.id, signedOut };
    },
  );
}
