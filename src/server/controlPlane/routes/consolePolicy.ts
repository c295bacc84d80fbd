import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { findUser } from "../../../identity/users/index.js";
import { type ExplainResult, explain, PolicyError } from "../../../policy/index.js";
import { toNativeRole } from "../../../policy/nativeRbac.js";
import { bodyObject, describe, optionalString } from "../body.js";
import type { PolicyView, RoleView } from "../consoleApi.js";
import type { ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { currentSignIn, type SignedIn } from "../session.js";
import { notSignedIn } from "../signIn.js";

/** At most this many groups in an explain request (as many as an invite may give a user). */
const MAX_GROUPS = 64;

/**
 * The console's policy API (cookie session; JSON; contract in consoleApi.ts):
 *
 * - `GET /api/policy` → {@link PolicyView}: the policy in force (version, file, when it was loaded),
 *   every role with its rules (one RuleView per scope), its members (administrators only; `[]` for
 *   everyone else) and what it maps to in Cosmos DB's native RBAC (src/policy/nativeRbac.ts).
 * - `POST /api/policy/explain` {@link ExplainRequest} → the policy module's ExplainResult:
 *   administrators may ask for anyone (`person`: a user of the identity store, whose groups are
 *   looked up; or `sub` + `groups` for a federated subject); everyone else only for themselves
 *   (403 `ERR_FORBIDDEN` otherwise), and the members of roles they do not hold are left out.
 *   An invalid action or resource is a 400 naming it.
 *
 * Without `ctx.console` the routes are not registered (404).
 */
export function consolePolicyRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const deps = ctx.console;
  if (deps === undefined) return;
  const { store } = ctx.identity;
  const me = (request: FastifyRequest, reply: FastifyReply): SignedIn => {
    const signedIn = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (signedIn === undefined) throw notSignedIn();
    return signedIn;
  };

  app.get("/api/policy", async (request, reply): Promise<PolicyView> => {
    const { user } = me(request, reply);
    const policy = deps.policy.holder.current;
    const roles: RoleView[] = policy.roles.map((role) => ({
      name: role.name,
      builtIn: role.builtIn,
      rules: role.rules.flatMap((rule) =>
        rule.on.map((on) => ({ allow: [...rule.allow], on, rule: rule.index })),
      ),
      members: user.admin ? [...role.members] : [],
      // Members decide only a note; everyone sees the same mapping.
      native: toNativeRole(role),
    }));
    return {
      version: policy.version,
      file: deps.policy.file,
      loadedAt: new Date(deps.policy.loadedAt()).toISOString(),
      roles,
    };
  });

  app.post("/api/policy/explain", async (request, reply): Promise<ExplainResult> => {
    const { user } = me(request, reply);
    const body = bodyObject(request.body);
    for (const key of Object.keys(body)) {
      if (!["person", "sub", "groups", "action", "resource"].includes(key))
        throw badRequest(
          `${key} is not a field of an explain request; send person or sub and groups, action and resource.`,
        );
    }
    const action = requiredString(body, "action", 512, "an action such as read or delete");
    const resource = requiredString(
      body,
      "resource",
      2048,
      "a resource path such as /dbs/shop/colls/orders/docs/a1",
    );
    const person = optionalString(body, "person", 256);
    const sub = optionalString(body, "sub", 1024);
    const groups = groupList(body.groups);
    if (person !== undefined && (sub !== undefined || groups !== undefined))
      throw badRequest("give either person (a user name) or sub and groups, not both.");
    if (groups !== undefined && sub === undefined && person === undefined && user.admin)
      throw badRequest("groups need a sub: give sub and groups (a federated subject), or person.");

    let subject = user.name;
    let subjectGroups: readonly string[] = user.groups;
    if (user.admin) {
      if (person !== undefined) {
        const target = findUser(store, person); // 404 ERR_USER_UNKNOWN
        subject = target.name;
        subjectGroups = target.groups;
      } else if (sub !== undefined) {
        subject = sub;
        subjectGroups = groups ?? [];
      }
    } else {
      const other =
        (person ?? sub ?? user.name) !== user.name ||
        (groups !== undefined && !sameGroups(groups, user.groups));
      if (other)
        throw new ApiError(
          403,
          "ERR_FORBIDDEN",
          "only administrators may explain decisions for someone else; leave out person, sub and groups to ask for yourself.",
        );
    }

    let result: ExplainResult;
    try {
      result = explain(deps.policy.holder.current, { subject, groups: subjectGroups, action, resource });
    } catch (err) {
      if (
        err instanceof PolicyError &&
        (err.code === "ERR_POLICY_BAD_ACTION" || err.code === "ERR_POLICY_BAD_RESOURCE")
      )
        throw new ApiError(400, err.code, err.message);
      throw err;
    }
    if (!user.admin) {
      // Who holds the roles that would allow it is for administrators to see.
      result = { ...result, wouldAllow: result.wouldAllow.map((r) => ({ ...r, members: [] })) };
    }
    return result;
  });
}

function requiredString(body: Record<string, unknown>, name: string, max: number, what: string): string {
  const value = optionalString(body, name, max);
  if (value === undefined || value.trim() === "") throw badRequest(`${name} is missing: send ${what}.`);
  return value;
}

function groupList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw badRequest(`groups must be an array of strings, not ${describe(value)}.`);
  if (value.length > MAX_GROUPS) throw badRequest(`groups has more than ${MAX_GROUPS} entries.`);
  for (const g of value) {
    if (typeof g !== "string" || g.length === 0 || g.length > 256)
      throw badRequest("groups must be an array of non-empty strings (at most 256 characters each).");
  }
  return value as string[];
}

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((g) => y.has(g));
}

function badRequest(message: string): ApiError {
  return new ApiError(400, "ERR_BAD_REQUEST", message);
}
