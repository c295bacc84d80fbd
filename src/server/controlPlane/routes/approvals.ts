import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ApprovalView } from "../../../agents/contract.js";
import type { ApprovalRecord } from "../../../approvals/approvalStore.js";
import type { ApprovalPerson, EventOrigin } from "../../../approvals/approvals.js";
import { approvalChallenge } from "../../../approvals/operation.js";
import { WebAuthnError } from "../../../identity/webauthn/index.js";
import { signedInCaller } from "../bearer.js";
import { bodyObject, optionalString } from "../body.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { readSignedIn, type SignedIn } from "../session.js";

/** A comment line keeps an idle event stream open through proxies. */
const HEARTBEAT_MS = 15_000;
/** Event streams one person may hold open at a time. */
const MAX_STREAMS_PER_USER = 8;

function notFound(): ApiError {
  return new ApiError(
    404,
    "ERR_APPROVAL_NOT_FOUND",
    "no approval with this id that you asked for or may approve; list yours at GET /api/approvals.",
  );
}

function tapRequired(why: string): ApiError {
  return new ApiError(
    403,
    "ERR_TAP_REQUIRED",
    `approving needs a tap on one of your keys over this exact operation: ${why} Ask for new options (POST /api/approvals/ID/options), touch your key, and send its response.`,
  );
}

function notPending(a: ApprovalRecord): ApiError {
  return new ApiError(
    409,
    "ERR_APPROVAL_NOT_PENDING",
    `approval ${a.id} is ${a.status}: it can no longer be approved${a.status === "approved" ? " (it already has its approvals)" : ""}.`,
  );
}

/**
 * Approvals (cookie session; writes need `content-type: application/json` and the CSRF header),
 * as src/agents/contract.ts names them:
 * - `GET /api/approvals` → `{approvals: ApprovalView[]}`: those I may approve, and mine (asked by
 *   me or by my agents); open ones and those ended in the last 7 days
 * - `GET /api/approvals/:id` → ApprovalView (its approvers and the person who asked; else 404)
 * - `POST /api/approvals/:id/options` `{}` → WebAuthn request options over my keys, whose challenge
 *   is base64url(SHA-256("cosmosgate-approval:" + id + ":" + operationHash))
 * - `POST /api/approvals/:id/approve` `{response}` → ApprovalView: the tap is verified against that
 *   challenge (so it signs exactly this operation), one per person; at `quorum` distinct people it
 *   is approved
 * - `POST /api/approvals/:id/deny` `{reason?}` → ApprovalView (an approver, or the person who asked)
 * - `GET /api/approvals/stream` → text/event-stream of `approval` events (ApprovalView JSON): the
 *   open approvals I may see when it opens, then each one that appears or changes
 */
export function approvalRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const approvals = ctx.approvals;
  if (approvals === undefined) return;
  const { store, webauthn } = ctx.identity;
  const streams = new Set<{ end(): void }>();
  const perUser = new Map<string, number>();
  const busy = new Set<string>();

  /**
   * The signed-in person: the console cookie, or (`bearer`, reads only) a `cosmosgate login` access
   * token — for the CLI's `approvals list/approve`. Taps, denials and the stream are cookie-only.
   */
  const me = (request: FastifyRequest, reply: FastifyReply, bearer = false): Promise<SignedIn> =>
    signedInCaller(ctx, request, reply, { bearer });
  const person = (s: SignedIn): ApprovalPerson => ({
    id: s.user.id,
    name: s.user.name,
    groups: s.user.groups,
  });
  const visible = (s: SignedIn, id: string): ApprovalRecord => {
    const a = typeof id === "string" && id.length <= 64 ? approvals.get(id) : undefined;
    if (a === undefined || !approvals.mayView(person(s), a)) throw notFound();
    return a;
  };
  const origin = (request: FastifyRequest, s: SignedIn): EventOrigin => {
    const agent = request.headers["user-agent"];
    return {
      clientAddress: request.ip,
      ...(typeof agent === "string" ? { userAgent: agent } : {}),
      session: s.session.id,
    };
  };

  app.get("/api/approvals", async (request, reply): Promise<{ approvals: ApprovalView[] }> => {
    const s = await me(request, reply, true);
    const p = person(s);
    return {
      approvals: approvals
        .list()
        .filter((a) => approvals.mayView(p, a))
        .map((a) => approvals.view(a)),
    };
  });

  app.get("/api/approvals/stream", async (request, reply) => {
    const s = await me(request, reply);
    const count = perUser.get(s.user.id) ?? 0;
    if (count >= MAX_STREAMS_PER_USER) {
      throw new ApiError(
        429,
        "ERR_TOO_MANY_STREAMS",
        `you already have ${count} approval streams open; close some pages and try again.`,
      );
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    let ended = false;
    const send = (a: ApprovalRecord) => {
      raw.write(`event: approval\nid: ${a.id}\ndata: ${JSON.stringify(approvals.view(a))}\n\n`);
    };
    // The session is checked again at each event: a sign-out or a disabled person stops the stream.
    const stillSignedIn = (): SignedIn | undefined => readSignedIn(request, store, ctx.clock()).signedIn;
    const unsubscribe = approvals.subscribe((a) => {
      if (ended) return;
      const now = stillSignedIn();
      if (now === undefined || now.session.id !== s.session.id) {
        stream.end();
        return;
      }
      if (approvals.mayView(person(now), a)) send(a);
    });
    const heartbeat = setInterval(() => {
      if (stillSignedIn() === undefined) stream.end();
      else raw.write(": keep-alive\n\n");
    }, HEARTBEAT_MS);
    heartbeat.unref();
    const stream = {
      end() {
        if (ended) return;
        ended = true;
        unsubscribe();
        clearInterval(heartbeat);
        streams.delete(stream);
        const left = (perUser.get(s.user.id) ?? 1) - 1;
        if (left <= 0) perUser.delete(s.user.id);
        else perUser.set(s.user.id, left);
        if (!raw.writableEnded) raw.end();
      },
    };
    streams.add(stream);
    perUser.set(s.user.id, count + 1);
    request.raw.on("close", () => stream.end());
    raw.write("retry: 3000\n\n");
    const p = person(s);
    for (const a of approvals.list()) {
      if ((a.status === "pending" || a.status === "approved") && approvals.mayView(p, a)) send(a);
    }
  });

  app.get<{ Params: { id: string } }>("/api/approvals/:id", async (request, reply): Promise<ApprovalView> => {
    const s = await me(request, reply, true);
    return approvals.view(visible(s, request.params.id));
  });

  app.post<{ Params: { id: string } }>("/api/approvals/:id/options", async (request, reply) => {
    const s = await me(request, reply);
    const a = visible(s, request.params.id);
    mayApprove(s, a);
    return webauthn.authenticationOptions({
      userId: s.user.id,
      purpose: "approval",
      challenge: approvalChallenge(a.id, a.operationHash),
    });
  });

  app.post<{ Params: { id: string } }>(
    "/api/approvals/:id/approve",
    async (request, reply): Promise<ApprovalView> => {
      const s = await me(request, reply);
      const a = visible(s, request.params.id);
      mayApprove(s, a);
      const response = bodyObject(request.body).response;
      if (response === undefined || response === null) {
        throw tapRequired("the request carries no assertion (response).");
      }
      // One tap at a time per approval: an assertion is verified (and the key's counter moved) once.
      if (busy.has(a.id)) {
        throw new ApiError(
          409,
          "ERR_APPROVAL_BUSY",
          "another approval of this request is being recorded; try again.",
        );
      }
      busy.add(a.id);
      try {
        let verified: Awaited<ReturnType<typeof webauthn.verifyAuthentication>>;
        try {
          verified = await webauthn.verifyAuthentication({
            response,
            purpose: "approval",
            expectedChallenge: { challenge: approvalChallenge(a.id, a.operationHash), userId: s.user.id },
          });
        } catch (error) {
          if (error instanceof WebAuthnError && error.status < 500) {
            throw tapRequired(`the assertion was not accepted (${error.code}: ${error.message})`);
          }
          throw error;
        }
        if (verified.user.id !== s.user.id) {
          throw tapRequired("the assertion was made by another person's key.");
        }
        const parts = assertionParts(response);
        const result = await approvals.approve(
          a,
          person(s),
          {
            id: verified.credential.id,
            nickname: verified.credential.nickname,
            aaguid: verified.credential.aaguid,
            deviceBound: verified.credential.deviceBound,
            publicKey: verified.credential.publicKey,
          },
          parts,
          origin(request, s),
        );
        if (!result.ok) {
          if (result.why === "already_voted") {
            throw new ApiError(
              409,
              "ERR_ALREADY_APPROVED",
              `you have already approved ${a.id}; a quorum needs ${a.quorum} distinct people.`,
            );
          }
          if (result.why === "not_found") throw notFound();
          throw notPending(result.record ?? { ...a, status: "expired" });
        }
        return approvals.view(result.record);
      } finally {
        busy.delete(a.id);
      }
    },
  );

  app.post<{ Params: { id: string } }>(
    "/api/approvals/:id/deny",
    async (request, reply): Promise<ApprovalView> => {
      const s = await me(request, reply);
      const a = visible(s, request.params.id);
      const p = person(s);
      if (!approvals.isApprover(p, a) && p.name !== a.operation.person) throw notFound();
      const reason = optionalString(bodyObject(request.body), "reason", 500) ?? "";
      if (a.status !== "pending" && a.status !== "approved") throw notPending(a);
      const denied = await approvals.deny(a, p, reason, origin(request, s));
      if (denied === undefined) throw notPending(approvals.get(a.id) ?? a);
      return approvals.view(denied);
    },
  );

  app.addHook("preClose", async () => {
    for (const stream of [...streams]) stream.end();
  });

  function mayApprove(s: SignedIn, a: ApprovalRecord): void {
    if (a.status !== "pending") throw notPending(a);
    const p = person(s);
    if (!approvals?.isApprover(p, a)) {
      throw new ApiError(
        403,
        "ERR_NOT_AN_APPROVER",
        a.approvers === "self"
          ? `only ${a.operation.person}, who asked, may approve ${a.id}.`
          : `${a.id} is approved by members of group ${a.approvers.slice(6)}${p.name === a.operation.person ? " other than the person who asked (you)" : ""}; you may deny it, not approve it.`,
      );
    }
    if (a.votes.some((v) => v.userId === p.id)) {
      throw new ApiError(
        409,
        "ERR_ALREADY_APPROVED",
        `you have already approved ${a.id}; a quorum needs ${a.quorum} distinct people.`,
      );
    }
  }
}

/** The assertion's parts as the authenticator sent them (base64url), for the audit's proof. */
function assertionParts(response: unknown): {
  authenticatorData: string;
  clientDataJSON: string;
  signature: string;
  userHandle?: string;
} {
  const r = (response as { response?: Record<string, unknown> }).response ?? {};
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  return {
    authenticatorData: text(r.authenticatorData),
    clientDataJSON: text(r.clientDataJSON),
    signature: text(r.signature),
    ...(typeof r.userHandle === "string" ? { userHandle: r.userHandle } : {}),
  };
}
