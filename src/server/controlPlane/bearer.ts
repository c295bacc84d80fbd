import type { FastifyReply, FastifyRequest } from "fastify";
import { TokenError } from "../../identity/errors.js";
import type { Principal } from "../../identity/types.js";
import type { ControlPlaneContext } from "./context.js";
import { ApiError } from "./errors.js";
import { currentSignIn, SESSION_COOKIE, type SignedIn } from "./session.js";
import { checkSession, notSignedIn } from "./signIn.js";

/** Longest `Authorization` header considered (a gateway access token is far shorter). */
const MAX_AUTHORIZATION = 16_384;

function refused(why: string): ApiError {
  return new ApiError(
    401,
    "ERR_BEARER_REFUSED",
    `the bearer token is refused: ${why}. Sign in again with \`cosmosgate login\` and retry.`,
  );
}

/** Whether the request sends the console session cookie at all (valid or not). */
function sendsCookie(request: FastifyRequest): boolean {
  const raw = request.cookies?.[SESSION_COOKIE];
  return raw !== undefined && raw !== "";
}

/**
 * The person behind a `Authorization: Bearer` access token of a `cosmosgate login` session: the
 * gateway's own token (its issuer, not made by token exchange, naming no actor nor grant), verified
 * by the data plane's verifier, whose session (`sid`) is still live (not revoked nor past its
 * maximum age, its person enabled, its key present and not suspended — checked in the store on
 * every request). Returns undefined when the request carries no `Authorization` header.
 *
 * @throws {ApiError} 401 `ERR_BEARER_REFUSED` for any other bearer.
 */
export async function bearerSignIn(
  ctx: ControlPlaneContext,
  request: FastifyRequest,
): Promise<SignedIn | undefined> {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  if (typeof header !== "string" || header.length > MAX_AUTHORIZATION) throw refused("malformed header");
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  if (match === null) throw refused("expected `Authorization: Bearer <access token>`");
  const token = match[1] as string;
  const verifier = ctx.federation;
  if (verifier === undefined) throw refused("bearer tokens are not accepted on this gateway");
  let principal: Principal;
  try {
    principal = verifier.verifyCached(token) ?? (await verifier.verify(token));
  } catch (error) {
    if (error instanceof TokenError) throw refused(`${error.code}`);
    throw error;
  }
  if (principal.issuer !== ctx.identity.issuerUrl || principal.tokenIssuer !== undefined) {
    throw refused("only this gateway's own session tokens (cosmosgate login) are accepted here");
  }
  if (principal.actor !== undefined || principal.kind === "agent" || principal.grant !== undefined) {
    throw refused("an agent's token cannot manage grants or approvals");
  }
  if (principal.session === undefined) throw refused("the token names no session");
  const state = checkSession(ctx, principal.session);
  if (!state.ok) throw refused(state.reason);
  const credential = ctx.identity.store.getCredential(state.session.credentialId);
  if (
    credential === undefined ||
    state.user.name !== principal.sub ||
    (principal.credential !== undefined && principal.credential !== credential.id)
  ) {
    throw refused("the token does not match its session");
  }
  return { session: state.session, user: state.user, credential };
}

/**
 * The signed-in person of a control-plane API request: the console session cookie, or — when
 * `bearer` is allowed and the request sends no session cookie — a `cosmosgate login` access token
 * ({@link bearerSignIn}). A request with a cookie is always a cookie request (so the CSRF check of
 * csrf.ts, which runs before, applies), whatever else it carries.
 *
 * @throws {ApiError} 401 `ERR_NOT_SIGNED_IN` or `ERR_BEARER_REFUSED`.
 */
export async function signedInCaller(
  ctx: ControlPlaneContext,
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { bearer: boolean },
): Promise<SignedIn> {
  if (opts.bearer && !sendsCookie(request) && request.headers.authorization !== undefined) {
    const viaBearer = await bearerSignIn(ctx, request);
    if (viaBearer !== undefined) return viaBearer;
  }
  const signedIn = currentSignIn(request, reply, ctx.identity.store, ctx.clock(), ctx.secure);
  if (signedIn === undefined) throw notSignedIn();
  return signedIn;
}
