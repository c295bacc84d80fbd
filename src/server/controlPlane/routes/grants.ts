import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { decodeJwt } from "jose";
import { AssertionError, verifyClientAssertion } from "../../../agents/assertion.js";
import { type GrantDraft, type GrantView, JWT_BEARER_ASSERTION } from "../../../agents/contract.js";
import type { GrantStore } from "../../../agents/grantStore.js";
import {
  actorOf,
  canonicalGrant,
  checkGrantAgainstPolicy,
  type GrantRecord,
  grantChallenge,
  grantStatus,
  grantView,
  type HeldRight,
  heldRights,
  isGrantId,
  newGrantId,
  normalizeGrantRequest,
} from "../../../agents/grants.js";
import { WebAuthnError } from "../../../identity/webauthn/index.js";
import type { PolicyHolder } from "../../policyWatcher.js";
import { signedInCaller } from "../bearer.js";
import { bodyObject } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError, OAuthError } from "../errors.js";
import type { SignedIn } from "../session.js";

/** What the grants API and the agents' token endpoint need from the running gateway. */
export interface AgentsDeps {
  /** stateDir/agents.db, shared with the data plane (its in-memory view sees these writes at once). */
  store: GrantStore;
  /** The policy in force: a grant may not ask for more than the person holds now. */
  policy: PolicyHolder;
  /** `agents.maxLifetime`, ms. */
  maxLifetimeMs: number;
}

/** How long after its creation a grant can be confirmed by a tap; after that, make a new one. */
export const GRANT_CONFIRM_WINDOW_MS = 10 * 60_000;
/** Grants one person may have pending or active at once. */
export const MAX_LIVE_GRANTS_PER_PERSON = 100;

/**
 * The agent grants API (cookie session; writes need `content-type: application/json` and the CSRF
 * header, see csrf.ts), as src/agents/contract.ts describes it:
 * - `POST /api/grants` GrantRequest → GrantDraft: a pending grant, its canonical JSON, and WebAuthn
 *   request options whose challenge is base64url(SHA-256(canonical)). Refused (403
 *   `ERR_GRANT_EXCEEDS_RIGHTS`) when any (action, scope) is not held by the person now.
 * - `POST /api/grants/:id/options` `{}` → the same options again (a pending grant, within 10 minutes
 *   of its creation), when the first ceremony timed out.
 * - `POST /api/grants/:id/confirm` `{response}` → GrantView (active): the person's tap over exactly
 *   that canonical JSON. The rights are checked again (they may have changed since).
 * - `GET /api/grants` → `{grants}` (own; administrators: `?all=1` for everyone's), `GET /api/grants/:id`.
 * - `GET /api/grants/rights` → `{rights: [{scope, actions}]}`: what the person holds now, scope by
 *   scope — what a grant may give (those scopes or beneath them, those actions or fewer).
 * - `DELETE /api/grants/:id` → GrantView (revoked; own, or any for administrators).
 *
 * Audited: `grant.created`, `grant.confirmed`, `grant.revoked`.
 */
export function grantRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const { webauthn } = ctx.identity;
  /**
   * The signed-in person: the console cookie, or (`bearer`) a `cosmosgate login` access token —
   * for the CLI's `agent grant/list/revoke`. The tap's options and the confirming tap itself are
   * cookie-only: taps happen in the browser.
   */
  const me = (request: FastifyRequest, reply: FastifyReply, bearer = false): Promise<SignedIn> =>
    signedInCaller(ctx, request, reply, { bearer });
  const agents = (): AgentsDeps => {
    if (ctx.agents === undefined) {
      throw new ApiError(404, "ERR_NOT_FOUND", "agent grants are not enabled on this gateway.");
    }
    return ctx.agents;
  };
  /** A grant the signed-in person may see and revoke: their own, or any for an administrator. */
  const visible = (signedIn: SignedIn, id: string, own = false): GrantRecord => {
    const g = isGrantId(id) ? agents().store.get(id) : undefined;
    if (g === undefined || (g.userId !== signedIn.user.id && (own || !signedIn.user.admin))) {
      throw new ApiError(
        404,
        "ERR_GRANT_NOT_FOUND",
        "you have no grant with this id; list them at GET /api/grants.",
      );
    }
    return g;
  };
  const view = (g: GrantRecord): GrantView => grantView(g, agents().store.usage(g), ctx.clock());
  /** Refuses a grant asking more than the person holds under the policy in force. */
  const withinRights = (signedIn: SignedIn, g: Pick<GrantRecord, "actions" | "scopes">): void => {
    const problems = checkGrantAgainstPolicy(
      agents().policy.current,
      { sub: signedIn.user.name, groups: signedIn.user.groups },
      g.actions,
      g.scopes,
    );
    if (problems.length > 0) {
      const shown = problems
        .slice(0, 5)
        .map((p) => `[${p.action}] on [${p.scope}]`)
        .join(", ");
      throw new ApiError(
        403,
        "ERR_GRANT_EXCEEDS_RIGHTS",
        `a grant can give an agent only what you hold yourself, and you do not hold ${shown}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ""}. Ask for less, or ask an administrator for the rights first.`,
      );
    }
  };
  const options = (g: GrantRecord) =>
    webauthn.authenticationOptions({
      userId: g.userId,
      purpose: "grant",
      challenge: grantChallenge(g.canonical),
    });
  const confirmable = (g: GrantRecord): void => {
    const now = ctx.clock();
    if (g.status !== "pending" || grantStatus(g, { requests: 0, requestCharge: 0 }, now) !== "pending") {
      throw new ApiError(
        409,
        "ERR_GRANT_NOT_PENDING",
        `grant ${g.id} is ${grantStatus(g, agents().store.usage(g), now)}, not waiting for a tap; make a new grant.`,
      );
    }
    if (now > g.createdAt + GRANT_CONFIRM_WINDOW_MS) {
      throw new ApiError(
        409,
        "ERR_GRANT_NOT_PENDING",
        `grant ${g.id} was not confirmed within ${GRANT_CONFIRM_WINDOW_MS / 60_000} minutes of being made; make a new grant.`,
      );
    }
  };

  app.post("/api/grants", async (request, reply): Promise<GrantDraft> => {
    const signedIn = await me(request, reply, true);
    const deps = agents();
    const asked = await normalizeGrantRequest(request.body, { maxLifetimeMs: deps.maxLifetimeMs });
    withinRights(signedIn, asked);
    const now = ctx.clock();
    if (deps.store.countLive(signedIn.user.id, now) >= MAX_LIVE_GRANTS_PER_PERSON) {
      throw new ApiError(
        409,
        "ERR_TOO_MANY_GRANTS",
        `you have ${MAX_LIVE_GRANTS_PER_PERSON} grants pending or active; revoke some (DELETE /api/grants/ID) first.`,
      );
    }
    const base = {
      id: newGrantId(),
      userId: signedIn.user.id,
      person: signedIn.user.name,
      agent: asked.agent,
      actions: asked.actions,
      scopes: asked.scopes,
      partitionKeys: asked.partitionKeys,
      publicKey: asked.publicKey,
      keyThumbprint: asked.keyThumbprint,
      createdAt: now,
      expiresAt: now + asked.lifetimeMs,
      budget: asked.budget,
    };
    const canonical = canonicalGrant(base, ctx.identity.issuerUrl);
    const record: GrantRecord = {
      ...base,
      status: "pending",
      confirmedBy: null,
      confirmedAt: null,
      confirmedAmr: null,
      revokedAt: null,
      revokedReason: null,
      canonical,
    };
    deps.store.create(record);
    ctx.emit({
      type: "grant.created",
      subject: signedIn.user.name,
      credential: signedIn.credential.id,
      session: signedIn.session.id,
      actor: actorOf(record.agent),
      grant: record.id,
      resource: `/grants/${record.id}`,
      reason: `${signedIn.user.name} made a grant for agent ${record.agent}, waiting for a tap to confirm it`,
      decision: "allow",
      details: grantDetails(record),
    });
    return { grant: view(record), canonical, options: await options(record) };
  });

  app.post<{ Params: { id: string } }>("/api/grants/:id/options", async (request, reply) => {
    const signedIn = await me(request, reply);
    const g = visible(signedIn, request.params.id, true);
    confirmable(g);
    return options(g);
  });

  app.post<{ Params: { id: string } }>(
    "/api/grants/:id/confirm",
    async (request, reply): Promise<GrantView> => {
      const signedIn = await me(request, reply);
      const deps = agents();
      const g = visible(signedIn, request.params.id, true);
      // Before the assertion is verified: a confirmed grant is never confirmed again.
      confirmable(g);
      // The tap signs the canonical JSON the person was shown; it must still be this grant's.
      if (canonicalGrant(g, ctx.identity.issuerUrl) !== g.canonical) {
        throw new ApiError(
          409,
          "ERR_GRANT_NOT_PENDING",
          `grant ${g.id} does not match what was shown; make a new grant.`,
        );
      }
      const response = bodyObject(request.body).response;
      if (response === undefined || response === null) {
        throw tapRequired(g.id, "the request carries no assertion (response).");
      }
      const challenge = grantChallenge(g.canonical);
      let verified: Awaited<ReturnType<typeof webauthn.verifyAuthentication>>;
      try {
        verified = await webauthn.verifyAuthentication({
          response,
          purpose: "grant",
          expectedChallenge: { challenge, userId: signedIn.user.id },
        });
      } catch (error) {
        if (error instanceof WebAuthnError && error.status < 500) {
          throw tapRequired(g.id, `the assertion was not accepted (${error.code}: ${error.message})`);
        }
        throw error;
      }
      if (verified.user.id !== signedIn.user.id) {
        throw tapRequired(g.id, "the assertion was made by another person's key.");
      }
      // The person's rights may have changed since the grant was made.
      withinRights(signedIn, g);
      const now = ctx.clock();
      const confirmed = deps.store.confirm(g.id, {
        credentialId: verified.credential.id,
        amr: verified.amr,
        at: now,
      });
      if (confirmed === undefined) {
        throw new ApiError(409, "ERR_GRANT_NOT_PENDING", `grant ${g.id} was confirmed or revoked meanwhile.`);
      }
      ctx.emit({
        type: "grant.confirmed",
        subject: signedIn.user.name,
        credential: verified.credential.id,
        session: signedIn.session.id,
        actor: actorOf(confirmed.agent),
        grant: confirmed.id,
        resource: `/grants/${confirmed.id}`,
        reason: `${signedIn.user.name} confirmed the grant for agent ${confirmed.agent} with a tap over its canonical JSON`,
        decision: "allow",
        details: { ...grantDetails(confirmed), challenge, amr: verified.amr.join(",") },
      });
      return view(confirmed);
    },
  );

  app.get("/api/grants", async (request, reply) => {
    const signedIn = await me(request, reply, true);
    const all = (request.query as Record<string, unknown>).all;
    const everyone = all === "1" || all === "true";
    if (everyone && !signedIn.user.admin) {
      throw new ApiError(
        403,
        "ERR_ADMIN_REQUIRED",
        "only administrators can list everyone's grants; ask an administrator.",
      );
    }
    const grants = agents().store.list(everyone ? {} : { userId: signedIn.user.id });
    return { grants: grants.map(view) };
  });

  app.get("/api/grants/rights", async (request, reply): Promise<{ rights: HeldRight[] }> => {
    const signedIn = await me(request, reply, true);
    return {
      rights: heldRights(agents().policy.current, { sub: signedIn.user.name, groups: signedIn.user.groups }),
    };
  });

  app.get<{ Params: { id: string } }>("/api/grants/:id", async (request, reply): Promise<GrantView> => {
    const signedIn = await me(request, reply, true);
    const g = visible(signedIn, request.params.id);
    const shown = view(g);
    // The person's own pending grant carries the text their tap will sign (the console's
    // #/agents?confirm=ID shows it, for a grant made by `cosmosgate agent grant`).
    if (g.userId === signedIn.user.id && shown.status === "pending")
      return { ...shown, canonical: g.canonical };
    return shown;
  });

  app.delete<{ Params: { id: string } }>("/api/grants/:id", async (request, reply): Promise<GrantView> => {
    const signedIn = await me(request, reply, true);
    const g = visible(signedIn, request.params.id);
    const byOwner = g.userId === signedIn.user.id;
    const reason = byOwner
      ? `revoked by ${signedIn.user.name}`
      : `revoked by administrator ${signedIn.user.name}`;
    const revoked = agents().store.revoke(g.id, reason, ctx.clock());
    if (revoked === undefined) {
      throw new ApiError(409, "ERR_GRANT_REVOKED", `grant ${g.id} is already revoked.`);
    }
    ctx.emit({
      type: "grant.revoked",
      subject: g.person,
      credential: signedIn.credential.id,
      session: signedIn.session.id,
      actor: actorOf(g.agent),
      grant: g.id,
      resource: `/grants/${g.id}`,
      reason: `${reason}: agent ${g.agent}'s next request is refused`,
      decision: "allow",
      details: { ...grantDetails(revoked), revokedBy: signedIn.user.name, wasStatus: g.status },
    });
    return view(revoked);
  });
}

function tapRequired(id: string, why: string): ApiError {
  return new ApiError(
    403,
    "ERR_TAP_REQUIRED",
    `confirming grant ${id} needs a tap on one of your keys over its canonical JSON: ${why} Ask for the options again (POST /api/grants/${id}/options), touch your key, and send its response.`,
  );
}

/** A grant's facts for its audit records (never the key itself: its thumbprint). */
function grantDetails(g: GrantRecord): Record<string, string | number | boolean> {
  return {
    agent: g.agent,
    actions: g.actions.join(","),
    scopes: g.scopes.join(","),
    ...(g.partitionKeys !== null ? { partitionKeys: g.partitionKeys.join(",") } : {}),
    keyThumbprint: g.keyThumbprint,
    expiresAt: new Date(g.expiresAt).toISOString(),
    ...(g.budget.requests !== null ? { budgetRequests: g.budget.requests } : {}),
    ...(g.budget.requestCharge !== null ? { budgetRequestCharge: g.budget.requestCharge } : {}),
  };
}

// ---- the agents' token endpoint ------------------------------------------------------------

/**
 * `POST /oauth/token` with `grant_type=client_credentials` (called by routes/oauth.ts): an agent
 * authenticates with a client assertion (RFC 7523 private_key_jwt, see agents/assertion.ts) for its
 * grant (`client_id` = grant id) and gets a short-lived access token for the person with `act:
 * {sub: "agent:NAME"}`, `grant` and `scope` (the grant's actions). Refused with 401
 * `invalid_client` (and a `signin.failed` record) when the assertion does not verify — wrong kid,
 * another key, expired, replayed jti, wrong aud, not ES256 — or when the grant is not active
 * (pending, revoked, expired, budget spent), its person disabled, or the key that confirmed it
 * removed or suspended. Audited: `agent.token_issued`.
 */
export async function agentTokenResponse(
  ctx: ControlPlaneContext,
  params: Record<string, unknown>,
): Promise<{ access_token: string; token_type: "Bearer"; expires_in: number; scope: string }> {
  const deps = ctx.agents;
  if (deps === undefined) {
    throw new OAuthError(400, "unsupported_grant_type", "client_credentials is not enabled on this gateway.");
  }
  const assertionType = text(params, "client_assertion_type");
  if (assertionType !== JWT_BEARER_ASSERTION) {
    throw new OAuthError(
      400,
      "invalid_request",
      `client_credentials needs client_assertion_type=${JWT_BEARER_ASSERTION} and a client_assertion signed with the agent's key.`,
    );
  }
  const assertion = text(params, "client_assertion", 8192);
  if (assertion === undefined) {
    throw new OAuthError(
      400,
      "invalid_request",
      "client_assertion is missing: send a JWT signed with the agent's key.",
    );
  }
  if (text(params, "client_secret") !== undefined) {
    throw new OAuthError(
      400,
      "invalid_request",
      "agents authenticate with a client assertion only, never a secret.",
    );
  }
  let clientId = text(params, "client_id");
  if (clientId === undefined) {
    try {
      const iss = decodeJwt(assertion).iss;
      clientId = typeof iss === "string" ? iss : undefined;
    } catch {
      clientId = undefined;
    }
  }
  const refuse = (why: string, code: string, grantId?: string): OAuthError => {
    ctx.emit({
      type: "signin.failed",
      ...(grantId !== undefined ? { grant: grantId } : {}),
      reason: `agent token refused: ${why}`,
      decision: "deny",
      details: { via: "client_credentials", code },
    });
    return new OAuthError(401, "invalid_client", why);
  };
  const grant = isGrantId(clientId) ? deps.store.get(clientId) : undefined;
  if (grant === undefined) {
    throw refuse(
      "client_id is not a grant this gateway knows; use the id of the grant the person confirmed.",
      "ERR_GRANT_UNKNOWN",
    );
  }
  const now = ctx.clock();
  try {
    await verifyClientAssertion(assertion, {
      grantId: grant.id,
      publicKey: grant.publicKey,
      keyThumbprint: grant.keyThumbprint,
      audience: `${ctx.publicUrl}/oauth/token`,
      now,
      jtis: deps.store,
    });
  } catch (error) {
    if (error instanceof AssertionError) throw refuse(error.message, error.code, grant.id);
    throw error;
  }
  // Only the holder of the key learns the grant's state.
  const status = grantStatus(grant, deps.store.usage(grant), now);
  if (status !== "active") {
    const why: Record<string, string> = {
      pending: `grant ${grant.id} was never confirmed by ${grant.person}'s tap`,
      revoked: `grant ${grant.id} was revoked (${grant.revokedReason ?? "no reason given"})`,
      expired: `grant ${grant.id} expired at ${new Date(grant.expiresAt).toISOString()}`,
      exhausted: `grant ${grant.id} has spent its budget`,
    };
    throw refuse(
      `${why[status]}; ask ${grant.person} for a new grant.`,
      `ERR_GRANT_${status.toUpperCase()}`,
      grant.id,
    );
  }
  const person = ctx.identity.store.getUserById(grant.userId);
  if (person === undefined || person.disabled || person.name !== grant.person) {
    throw refuse(
      `${grant.person} is disabled or no longer exists: their agents get no tokens.`,
      "ERR_GRANT_PERSON",
      grant.id,
    );
  }
  const key = grant.confirmedBy === null ? undefined : ctx.identity.store.getCredential(grant.confirmedBy);
  if (key === undefined || key.suspendedAt !== undefined || key.userId !== person.id) {
    throw refuse(
      `the key that confirmed grant ${grant.id} was removed or suspended; ask ${grant.person} for a new grant.`,
      "ERR_GRANT_KEY",
      grant.id,
    );
  }
  const scope = grant.actions.join(" ");
  const issued = await ctx.identity.issuer.issueForAgent({
    sub: person.name,
    groups: person.groups,
    credentialId: key.id,
    amr: grant.confirmedAmr ?? [],
    authTime: grant.confirmedAt ?? now,
    actor: actorOf(grant.agent),
    grant: grant.id,
    scope,
    notAfter: grant.expiresAt,
  });
  ctx.emit({
    type: "agent.token_issued",
    subject: person.name,
    subjectKind: "agent",
    credential: key.id,
    actor: actorOf(grant.agent),
    grant: grant.id,
    jti: issued.jti,
    resource: `/grants/${grant.id}`,
    reason: `agent ${grant.agent} got a token for ${person.name} under grant ${grant.id} (client assertion, private_key_jwt)`,
    decision: "allow",
    details: { grant: "client_credentials", expiresIn: issued.expires_in, scope },
  });
  return { access_token: issued.access_token, token_type: "Bearer", expires_in: issued.expires_in, scope };
}

/** One form or JSON parameter: absent, or a string given once. */
function text(params: Record<string, unknown>, name: string, maxLength = 4096): string | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (Array.isArray(value)) throw new OAuthError(400, "invalid_request", `${name} is given more than once.`);
  if (typeof value !== "string") throw new OAuthError(400, "invalid_request", `${name} must be a string.`);
  if (value.length > maxLength) throw new OAuthError(400, "invalid_request", `${name} is too long.`);
  return value;
}
