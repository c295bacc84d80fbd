import type { IssuerConfigEntry } from "../../config/schema.js";
import type { IssuerConfig, RemoteKeyOptions } from "../tokens/issuers.js";
import type { RequirementSpec } from "./requirements.js";

type Entry<P> = Extract<IssuerConfigEntry, { preset: P }>;
type CustomEntry = Exclude<IssuerConfigEntry, { preset: "entra" | "okta" | "github-actions" }>;

/** The issuer of Entra ID v2.0 access tokens of a tenant. */
export const entraV2Issuer = (tenant: string): string => `https://login.microsoftonline.com/${tenant}/v2.0`;
/** The issuer of Entra ID v1 access tokens of a tenant (note the trailing slash). */
export const entraV1Issuer = (tenant: string): string => `https://sts.windows.net/${tenant}/`;
/** The issuer of GitHub Actions OIDC tokens on github.com. */
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/**
 * Turns the `identity.issuers` entries of `cosmosgate.yaml` (validated by the config schema) into
 * the verifier's issuer entries: presets expand to what they stand for, relative JWKS files are
 * resolved, and key-fetch timings become jose's options. Throws a `TypeError` naming the entry when
 * a preset cannot be honoured (an Okta org authorization server, a GitHub entry that would admit
 * every repository).
 *
 * - `entra`: the v2.0 issuer of the tenant, keys by discovery, RS256, subject `oid`, groups from
 *   `roles` and `groups`, `tid` required to be the tenant, a groups overage refused; with
 *   `acceptV1` a second entry for `https://sts.windows.net/{tid}/`.
 * - `okta`: a custom authorization server's issuer, keys by discovery, groups from `groups`.
 * - `github-actions`: `https://token.actions.githubusercontent.com`, kind `service`, and the
 *   `repository`, `repositoryOwner`, `ref`, `environment` and `jobWorkflowRef` conditions as
 *   requirements on the claims of the same names.
 *
 * @example
 * ```ts
 * const issuers = expandIssuerEntries(config.identity.issuers, (p) => resolveConfigPath(loaded, p));
 * const verifier = createTokenVerifier({ issuers: [ownIssuer, ...issuers] });
 * ```
 */
export function expandIssuerEntries(
  entries: readonly IssuerConfigEntry[],
  resolvePath: (path: string) => string = (p) => p,
): IssuerConfig[] {
  const out: IssuerConfig[] = [];
  entries.forEach((entry, index) => {
    const where = `identity.issuers[${index}]`;
    switch (entry.preset) {
      case "entra":
        out.push(...entra(entry as Entry<"entra">));
        break;
      case "okta":
        out.push(okta(entry as Entry<"okta">, where));
        break;
      case "github-actions":
        out.push(githubActions(entry as Entry<"github-actions">, where));
        break;
      default:
        out.push(custom(entry as CustomEntry, resolvePath));
    }
  });
  return out;
}

function remoteOptions(
  keys: { timeout?: number; cooldown?: number; maxAge?: number } | undefined,
): RemoteKeyOptions {
  const options: RemoteKeyOptions = {};
  if (keys?.timeout !== undefined) options.timeoutDuration = keys.timeout;
  if (keys?.cooldown !== undefined) options.cooldownDuration = keys.cooldown;
  if (keys?.maxAge !== undefined) options.cacheMaxAge = keys.maxAge;
  return options;
}

function custom(entry: CustomEntry, resolvePath: (path: string) => string): IssuerConfig {
  const remote = remoteOptions(entry.keys);
  const jwks: IssuerConfig["jwks"] =
    entry.jwks !== undefined
      ? "file" in entry.jwks
        ? { file: resolvePath(entry.jwks.file) }
        : { url: entry.jwks.url, ...remote }
      : { discovery: entry.discovery ?? true, ...remote };
  if (entry.jwks !== undefined && entry.discovery !== undefined) {
    throw new TypeError(
      `identity.issuers entry ${JSON.stringify(entry.name ?? entry.issuer)}: give jwks or discovery, not both`,
    );
  }
  return {
    issuer: entry.issuer,
    audience: entry.audience,
    jwks,
    algorithms: entry.algorithms,
    subjectClaim: entry.subjectClaim,
    ...(entry.groupsClaim !== undefined
      ? { groupsClaim: entry.groupsClaim }
      : { groupsClaim: entry.rolesClaim ?? "roles" }),
    ...(entry.groups ? { groups: entry.groups } : {}),
    kind: entry.kind,
    ...(entry.require ? { require: entry.require as Record<string, RequirementSpec> } : {}),
    ...(entry.name ? { name: entry.name } : {}),
    flavor: "custom",
  };
}

function entra(entry: Entry<"entra">): IssuerConfig[] {
  const tenant = entry.tenant.toLowerCase();
  const authority = entry.authority.replace(/\/+$/, "");
  const remote = remoteOptions(entry.keys);
  const groupsClaims = typeof entry.groupsClaim === "string" ? [entry.groupsClaim] : entry.groupsClaim;
  // The tenant pin comes last: a require.tid in the entry cannot widen it.
  const require: Record<string, RequirementSpec> = {
    ...((entry.require ?? {}) as Record<string, RequirementSpec>),
    tid: tenant,
  };
  const name = entry.name ?? `Entra ID (${tenant})`;
  const common = {
    audience: entry.audience,
    algorithms: entry.algorithms,
    subjectClaim: entry.subjectClaim,
    groupsClaim: entry.groupsClaim,
    ...(entry.groups ? { groups: entry.groups } : {}),
    kind: entry.kind,
    require,
    refuseGroupsOverage: groupsClaims.includes("groups"),
    tenant,
  } satisfies Partial<IssuerConfig>;
  const v2: IssuerConfig = {
    ...common,
    issuer: entry.issuer ?? entraV2Issuer(tenant),
    jwks: { discovery: `${authority}/${tenant}/v2.0/.well-known/openid-configuration`, ...remote },
    name,
    flavor: "entra-v2",
  };
  if (!entry.acceptV1) return [v2];
  return [
    v2,
    {
      ...common,
      issuer: entraV1Issuer(tenant),
      jwks: { discovery: `${authority}/${tenant}/.well-known/openid-configuration`, ...remote },
      name: `${name} v1`,
      flavor: "entra-v1",
    },
  ];
}

function okta(entry: Entry<"okta">, where: string): IssuerConfig {
  const issuer = entry.url.replace(/\/+$/, "");
  if (!/\/oauth2\/(?!v1$)[^/]+$/.test(new URL(issuer).pathname)) {
    throw new TypeError(
      `${where} (okta): url ${JSON.stringify(entry.url)} is not a custom authorization server. ` +
        "Okta's org authorization server issues access tokens only Okta can read; create or use a custom one " +
        "(Security → API → Authorization Servers) and give its issuer URL, e.g. https://ORG.okta.com/oauth2/default.",
    );
  }
  return {
    issuer,
    audience: entry.audience,
    jwks: { discovery: `${issuer}/.well-known/openid-configuration`, ...remoteOptions(entry.keys) },
    algorithms: entry.algorithms,
    subjectClaim: entry.subjectClaim,
    groupsClaim: entry.groupsClaim,
    ...(entry.groups ? { groups: entry.groups } : {}),
    kind: entry.kind,
    ...(entry.require ? { require: entry.require as Record<string, RequirementSpec> } : {}),
    name: entry.name ?? `Okta (${issuer})`,
    flavor: "okta",
  };
}

/** GitHub's claim names of the preset's conditions. */
const GITHUB_CONDITIONS = [
  ["repository", "repository"],
  ["repositoryOwner", "repository_owner"],
  ["ref", "ref"],
  ["environment", "environment"],
  ["jobWorkflowRef", "job_workflow_ref"],
] as const;

function githubActions(entry: Entry<"github-actions">, where: string): IssuerConfig {
  if (entry.repository === undefined && entry.repositoryOwner === undefined) {
    throw new TypeError(
      `${where} (github-actions): name the repository (or repositoryOwner) whose workflows may sign in. ` +
        "Every GitHub repository in the world gets tokens from the same issuer, and anyone can ask for any audience.",
    );
  }
  const require: Record<string, RequirementSpec> = {};
  for (const [option, claim] of GITHUB_CONDITIONS) {
    const condition = entry[option];
    if (condition === undefined) continue;
    require[claim] =
      typeof condition === "string"
        ? condition
        : Array.isArray(condition)
          ? { anyOf: condition }
          : { matches: condition.matches };
  }
  Object.assign(require, (entry.require ?? {}) as Record<string, RequirementSpec>);
  const issuer = entry.issuer.replace(/\/+$/, "");
  const what = entry.repository ?? entry.repositoryOwner;
  return {
    issuer,
    audience: entry.audience,
    jwks: { discovery: `${issuer}/.well-known/openid-configuration`, ...remoteOptions(entry.keys) },
    algorithms: ["RS256"],
    subjectClaim: "sub",
    groupsClaim: entry.groupsClaim ?? [],
    ...(entry.groups ? { groups: entry.groups } : {}),
    kind: "service",
    require,
    name: entry.name ?? `GitHub Actions (${typeof what === "string" ? what : JSON.stringify(what)})`,
    flavor: "github-actions",
  };
}
