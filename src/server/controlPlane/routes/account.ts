import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { CredentialRecord } from "../../../store/ports.js";
import { bodyObject, nickname } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { clearSessionCookie, currentSignIn, type SignedIn } from "../session.js";
import { notSignedIn, requireRecentAuth } from "../signIn.js";

/** A key as `GET /api/me/keys` lists it. */
export interface KeyView {
  id: string;
  nickname: string;
  /** True for a hardware-bound key (not backup-eligible). */
  deviceBound: boolean;
  /** "hardware-bound" or "synced". */
  type: "hardware-bound" | "synced";
  aaguid: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601, or null when never used to sign in. */
  lastUsedAt: string | null;
  useCount: number;
  suspended: boolean;
  /** The key this session signed in with. */
  current: boolean;
}

function keyView(c: CredentialRecord, currentId: string): KeyView {
  return {
    id: c.id,
    nickname: c.nickname,
    deviceBound: c.deviceBound,
    type: c.deviceBound ? "hardware-bound" : "synced",
    aaguid: c.aaguid,
    createdAt: new Date(c.createdAt).toISOString(),
    lastUsedAt: c.lastUsedAt !== undefined ? new Date(c.lastUsedAt).toISOString() : null,
    useCount: c.useCount,
    suspended: c.suspendedAt !== undefined,
    current: c.id === currentId,
  };
}

/**
 * The signed-in user's account (cookie session; writes need `content-type: application/json`):
 * - `GET /api/me` → `{name, groups, admin, credential, sessionExpiresAt}`
 * - `GET /api/me/keys` → `{keys: KeyView[]}`
 * - `PATCH /api/me/keys/:id` `{nickname}` → the renamed key
 * - `DELETE /api/me/keys/:id` → `{removed, signedOut}`; the last usable key is refused (409), and
 *   so is a session whose key was not tapped within the last 5 minutes (403 `reauthentication_required`)
 */
export function accountRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const { store } = ctx.identity;
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

  app.get("/api/me", async (request, reply) => {
    const { user, session, credential } = me(request, reply);
    return {
      name: user.name,
      groups: user.groups,
      admin: user.admin,
      credential: credential.id,
      sessionExpiresAt: new Date(session.expiresAt).toISOString(),
    };
  });

  app.get("/api/me/keys", async (request, reply) => {
    const signedIn = me(request, reply);
    return { keys: store.listCredentials(signedIn.user.id).map((c) => keyView(c, signedIn.credential.id)) };
  });

  app.patch<{ Params: { id: string } }>("/api/me/keys/:id", async (request, reply) => {
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
    return keyView({ ...key, nickname: name }, signedIn.credential.id);
  });

  app.delete<{ Params: { id: string } }>("/api/me/keys/:id", async (request, reply) => {
    const signedIn = me(request, reply);
    const key = ownKey(signedIn, request.params.id);
    requireRecentAuth(ctx, signedIn.session);
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
      reason: `removed by its owner (${JSON.stringify(key.nickname)}); ${revoked.length} session(s) revoked`,
      decision: "allow",
      details: {
        revokedSessions: revoked.length,
        useCount: key.useCount,
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
  });
}
