import type { FastifyInstance, FastifyReply } from "fastify";
import type { AgentApprovalStatus } from "../../../agents/contract.js";
import { createGrantEnforcer, grantOf } from "../../../agents/enforce.js";
import { TokenError } from "../../../identity/errors.js";
import { parseAuthorization } from "../../../identity/tokens/authorization.js";
import type { Principal } from "../../../identity/types.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";

const REVOKED = {
  subject: "the person is disabled",
  session: "the session was signed out or revoked",
  credential: "the key that confirmed the grant was removed or suspended",
} as const;

function notFound(): ApiError {
  return new ApiError(
    404,
    "ERR_APPROVAL_NOT_FOUND",
    "no approval with this id asked for by this agent for this person.",
  );
}

/**
 * An agent's view of its own approvals (src/agents/contract.ts):
 * `GET /api/agent/approvals/:id` with `Authorization: Bearer <agent access token>` →
 * {@link AgentApprovalStatus}. The token is verified as the data plane verifies it (signature,
 * audience, expiry; person, session and key not revoked) and must name an active agent grant of
 * this gateway whose person and agent are the token's. Only an approval whose person is the token's
 * `sub` and whose agent is its `act.sub` is answered; any other id is 404, as an unknown one. The
 * session cookie is not accepted (401 without a bearer token). No body, no approver identities.
 */
export function agentApprovalRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const approvals = ctx.approvals;
  if (approvals === undefined) return;
  const grants =
    ctx.agents === undefined
      ? undefined
      : createGrantEnforcer(ctx.agents.store, { issuer: ctx.identity.issuerUrl });

  const unauthorized = (reply: FastifyReply, why: string): ApiError => {
    reply.header("www-authenticate", 'Bearer realm="cosmosgate", error="invalid_token"');
    return new ApiError(401, "ERR_AGENT_TOKEN", `an agent's access token is required: ${why}`);
  };

  app.get<{ Params: { id: string } }>(
    "/api/agent/approvals/:id",
    async (request, reply): Promise<AgentApprovalStatus> => {
      const verifier = ctx.federation;
      const header = request.headers.authorization;
      if (verifier === undefined) throw unauthorized(reply, "this gateway verifies no bearer tokens here.");
      if (header === undefined || header === "") {
        throw unauthorized(
          reply,
          "send Authorization: Bearer <token> (from /oauth/token with the agent's key); a console session is not accepted.",
        );
      }
      let principal: Principal;
      try {
        const token = parseAuthorization(header);
        principal = verifier.verifyCached(token) ?? (await verifier.verify(token));
        const revoked = ctx.identity.revocation.revokedBy(principal);
        if (revoked) throw new TokenError("ERR_TOKEN_REVOKED", `token revoked: ${REVOKED[revoked]}`);
        if (principal.grant === undefined) {
          throw new ApiError(
            403,
            "ERR_NOT_AN_AGENT",
            "this endpoint answers agents acting under a grant of this gateway; people see approvals at GET /api/approvals.",
          );
        }
        grantOf(grants, principal, ctx.clock());
      } catch (error) {
        if (error instanceof TokenError) throw unauthorized(reply, `${error.code}: ${error.message}`);
        throw error;
      }
      const id = request.params.id;
      const a = typeof id === "string" && id.length <= 64 ? approvals.get(id) : undefined;
      if (
        a === undefined ||
        a.operation.person !== principal.sub ||
        a.operation.agent === null ||
        a.operation.agent !== principal.actor?.sub
      ) {
        throw notFound();
      }
      const view = approvals.view(a);
      return {
        id: view.id,
        status: view.status,
        quorum: view.quorum,
        approvals: view.approvals.length,
        expiresAt: view.expiresAt,
        url: view.url,
        operation: {
          method: a.operation.method,
          resource: a.operation.resource,
          operation: a.operation.operation,
          partitionKey: a.operation.partitionKey,
        },
      };
    },
  );
}
