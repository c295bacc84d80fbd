import { describe, expect, it } from "vitest";
import { configSchema, type IssuerConfigEntry } from "../../config/schema.js";
import { type IssuerConfig, resolveIssuerConfig } from "../tokens/issuers.js";
import { entraV1Issuer, entraV2Issuer, expandIssuerEntries, GITHUB_ACTIONS_ISSUER } from "./presets.js";
import { unmetRequirement } from "./requirements.js";

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

/** `identity.issuers` as the config schema hands them over (defaults applied), expanded. */
function expand(...raw: unknown[]): IssuerConfig[] {
  const config = configSchema.parse({ identity: { issuers: raw } });
  return expandIssuerEntries(config.identity.issuers, (p) => `/etc/cosmosgate/${p}`);
}

/** One valid entry as the schema hands it over, to be altered past the schema's checks. */
function configEntry(raw: unknown): IssuerConfigEntry {
  return configSchema.parse({ identity: { issuers: [raw] } }).identity.issuers[0];
}

/** The schema's problems with one issuer entry, as text. */
function schemaProblems(raw: unknown): string {
  const result = configSchema.safeParse({ identity: { issuers: [raw] } });
  expect(result.success).toBe(false);
  return result.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n") ?? "";
}

/** Whether a verified token with these claims meets every requirement of an expanded entry. */
function unmet(entry: IssuerConfig, claims: Record<string, unknown>) {
  return unmetRequirement(resolveIssuerConfig(entry).requirements, claims);
}

describe("preset: entra", () => {
  const entra = { preset: "entra", tenant: TENANT, audience: CLIENT_ID };

  it("trusts only the v2.0 issuer by default, with the real issuer format and keys by discovery", () => {
    const entries = expand(entra);
    expect(entries).toHaveLength(1);
    const [v2] = entries;
    expect(v2.issuer).toBe(`https://login.microsoftonline.com/${TENANT}/v2.0`);
    expect(v2.issuer).toBe(entraV2Issuer(TENANT));
    expect(v2.jwks).toEqual({
      discovery: `https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`,
    });
    expect(v2.flavor).toBe("entra-v2");
    expect(v2.tenant).toBe(TENANT);
    expect(v2.audience).toBe(CLIENT_ID);
  });

  it("uses RS256, the oid subject, roles and groups, kind user, and refuses a groups overage", () => {
    const resolved = resolveIssuerConfig(expand(entra)[0]);
    expect(resolved.algorithms).toEqual(["RS256"]);
    expect(resolved.subjectClaim).toBe("oid");
    expect(resolved.groupsClaims).toEqual(["roles", "groups"]);
    expect(resolved.kind).toBe("user");
    expect(resolved.refuseGroupsOverage).toBe(true);
  });

  it("requires tid to be the tenant", () => {
    const [v2] = expand(entra);
    expect(v2.require).toEqual({ tid: TENANT });
    expect(unmet(v2, { tid: TENANT })).toBeUndefined();
    const other = unmet(v2, { tid: "00000000-0000-0000-0000-000000000000" });
    expect(other?.requirement.description).toBe(`tid equals "${TENANT}"`);
    expect(unmet(v2, {})?.found).toBe("absent");
  });

  it("with acceptV1 adds a second entry for https://sts.windows.net/{tid}/ with its own discovery and name", () => {
    const entries = expand({ ...entra, audience: [CLIENT_ID, "api://cosmosgate"], acceptV1: true });
    expect(entries).toHaveLength(2);
    const [v2, v1] = entries;
    expect(v2.issuer).toBe(`https://login.microsoftonline.com/${TENANT}/v2.0`);
    expect(v1.issuer).toBe(`https://sts.windows.net/${TENANT}/`);
    expect(v1.issuer).toBe(entraV1Issuer(TENANT));
    expect(v1.jwks).toEqual({
      discovery: `https://login.microsoftonline.com/${TENANT}/.well-known/openid-configuration`,
    });
    expect(v1.flavor).toBe("entra-v1");
    expect(v1.audience).toEqual([CLIENT_ID, "api://cosmosgate"]);
    expect(v1.require).toEqual({ tid: TENANT });
    expect(v1.refuseGroupsOverage).toBe(true);
    expect(v1.subjectClaim).toBe("oid");
    expect(v1.name).not.toBe(v2.name);
    expect(v1.name).toContain(TENANT);
  });

  it("lower-cases the tenant in the issuer, the discovery URL and the tid requirement", () => {
    const [v2, v1] = expand({ ...entra, tenant: TENANT.toUpperCase(), acceptV1: true });
    expect(v2.issuer).toBe(entraV2Issuer(TENANT));
    expect(v1.issuer).toBe(entraV1Issuer(TENANT));
    expect(v2.require).toEqual({ tid: TENANT });
    expect(JSON.stringify(v2.jwks)).not.toContain(TENANT.toUpperCase());
  });

  it("fetches discovery at another authority (a sovereign cloud or a test double) without changing the issuer", () => {
    const [v2, v1] = expand({ ...entra, authority: "http://127.0.0.1:9999/", acceptV1: true });
    expect(v2.jwks).toEqual({
      discovery: `http://127.0.0.1:9999/${TENANT}/v2.0/.well-known/openid-configuration`,
    });
    expect(v1.jwks).toEqual({
      discovery: `http://127.0.0.1:9999/${TENANT}/.well-known/openid-configuration`,
    });
    expect(v2.issuer).toBe(entraV2Issuer(TENANT));
  });

  it("adds require conditions to the tid requirement", () => {
    const [v2] = expand({ ...entra, require: { acrs: { contains: "c1" } } });
    expect(v2.require).toEqual({ tid: TENANT, acrs: { contains: "c1" } });
    expect(unmet(v2, { tid: TENANT, acrs: ["c1"] })).toBeUndefined();
    expect(unmet(v2, { tid: TENANT, acrs: ["c2"] })?.requirement.description).toBe('acrs contains "c1"');
    expect(unmet(v2, { tid: "x", acrs: ["c1"] })?.requirement.claim).toBe("tid");
  });

  it("keeps the tenant pin even when require names tid (it cannot be widened)", () => {
    const [v2] = expand({ ...entra, require: { tid: { matches: ".*" } } });
    expect(v2.require?.tid).toBe(TENANT);
    expect(unmet(v2, { tid: "00000000-0000-0000-0000-000000000000" })?.requirement.claim).toBe("tid");
  });

  it("refuses a groups overage only when the groups claim is used", () => {
    expect(expand({ ...entra, groupsClaim: "roles" })[0].refuseGroupsOverage).toBe(false);
    expect(expand({ ...entra, groupsClaim: ["wids", "groups"] })[0].refuseGroupsOverage).toBe(true);
    expect(expand({ ...entra, groupsClaim: "groups" })[0].refuseGroupsOverage).toBe(true);
  });

  it("passes keys timings to jose's options", () => {
    const [v2] = expand({ ...entra, keys: { timeout: "2s", cooldown: "10s", maxAge: "5m" } });
    expect(v2.jwks).toMatchObject({ timeoutDuration: 2000, cooldownDuration: 10_000, cacheMaxAge: 300_000 });
  });

  it("refuses a tenant that is not a GUID, pointing at where to find it", () => {
    for (const tenant of ["contoso.onmicrosoft.com", "common", "organizations", `${TENANT}x`]) {
      expect(schemaProblems({ ...entra, tenant }), tenant).toMatch(/expected the tenant ID, a GUID/);
    }
  });

  it("refuses unknown keys and a missing audience", () => {
    expect(schemaProblems({ ...entra, tennant: TENANT })).toMatch(/tennant/);
    expect(schemaProblems({ preset: "entra", tenant: TENANT })).toMatch(/audience/);
  });
});

describe("preset: okta", () => {
  const okta = { preset: "okta", url: "https://acme.okta.com/oauth2/default", audience: "api://cosmosgate" };

  it("trusts a custom authorization server with keys by discovery and groups from the groups claim", () => {
    const [entry] = expand(okta);
    expect(entry.issuer).toBe("https://acme.okta.com/oauth2/default");
    expect(entry.jwks).toEqual({
      discovery: "https://acme.okta.com/oauth2/default/.well-known/openid-configuration",
    });
    expect(entry.flavor).toBe("okta");
    const resolved = resolveIssuerConfig(entry);
    expect(resolved.groupsClaims).toEqual(["groups"]);
    expect(resolved.algorithms).toEqual(["RS256"]);
    expect(resolved.subjectClaim).toBe("sub");
    expect(resolved.kind).toBe("user");
    expect(resolved.requirements).toEqual([]);
  });

  it("drops a trailing slash from the URL, as Okta's iss has none", () => {
    const [entry] = expand({ ...okta, url: "https://acme.okta.com/oauth2/aus1a2b3c4/" });
    expect(entry.issuer).toBe("https://acme.okta.com/oauth2/aus1a2b3c4");
  });

  it("turns require into requirements (acr phr, amr any of)", () => {
    const [entry] = expand({ ...okta, require: { acr: "phr", amr: { anyOf: ["hwk", "swk"] } } });
    expect(unmet(entry, { acr: "phr", amr: ["pwd", "hwk"] })).toBeUndefined();
    expect(unmet(entry, { acr: "urn:okta:loa:1fa:any", amr: ["hwk"] })?.requirement.description).toBe(
      'acr equals "phr"',
    );
    expect(unmet(entry, { acr: "phr", amr: ["pwd"] })?.requirement.claim).toBe("amr");
  });

  it("refuses the org authorization server's URL in the config, saying what to use instead", () => {
    for (const url of [
      "https://acme.okta.com",
      "https://acme.okta.com/",
      "https://acme.okta.com/oauth2/",
      "https://acme.okta.com/oauth2/v1",
    ]) {
      const problems = schemaProblems({ ...okta, url });
      expect(problems, url).toMatch(
        /identity\.issuers\.0\.url: expected a custom authorization server's issuer URL/,
      );
      expect(problems).toMatch(/oauth2\/ID/);
    }
  });

  it("refuses it in expandIssuerEntries too (entries that did not come through the schema)", () => {
    for (const url of [
      "https://acme.okta.com",
      "https://acme.okta.com/oauth2",
      "https://acme.okta.com/oauth2/v1",
    ]) {
      const entry = { ...configEntry(okta), url } as IssuerConfigEntry;
      let message = "";
      try {
        expandIssuerEntries([configEntry({ preset: "entra", tenant: TENANT, audience: CLIENT_ID }), entry]);
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError);
        message = (error as Error).message;
      }
      expect(message, url).toMatch(
        /identity\.issuers\[1\] \(okta\): url .* is not a custom authorization server/,
      );
      expect(message).toMatch(/oauth2\/default/);
    }
  });
});

describe("preset: github-actions", () => {
  const github = { preset: "github-actions", audience: "https://github.com/acme", repository: "acme/shop" };
  const claims = {
    repository: "acme/shop",
    repository_owner: "acme",
    ref: "refs/heads/main",
    environment: "production",
    job_workflow_ref: "acme/shop/.github/workflows/deploy.yml@refs/heads/main",
  };

  it("trusts GitHub's issuer, RS256 only, subject sub, kind service, no groups from claims", () => {
    const [entry] = expand(github);
    expect(entry.issuer).toBe(GITHUB_ACTIONS_ISSUER);
    expect(entry.issuer).toBe("https://token.actions.githubusercontent.com");
    expect(entry.jwks).toEqual({
      discovery: "https://token.actions.githubusercontent.com/.well-known/openid-configuration",
    });
    expect(entry.flavor).toBe("github-actions");
    const resolved = resolveIssuerConfig(entry);
    expect(resolved.algorithms).toEqual(["RS256"]);
    expect(resolved.subjectClaim).toBe("sub");
    expect(resolved.kind).toBe("service");
    expect(resolved.groupsClaims).toEqual([]);
    expect(resolved.name).toContain("acme/shop");
  });

  it("takes a GitHub Enterprise Server issuer", () => {
    const [entry] = expand({ ...github, issuer: "https://github.example.com/_services/token/" });
    expect(entry.issuer).toBe("https://github.example.com/_services/token");
    expect(entry.jwks).toEqual({
      discovery: "https://github.example.com/_services/token/.well-known/openid-configuration",
    });
  });

  it("refuses an entry that names no repository nor owner, in the config and in expandIssuerEntries", () => {
    const noRepository = {
      preset: "github-actions",
      audience: "https://github.com/acme",
      ref: "refs/heads/main",
    };
    expect(schemaProblems(noRepository)).toMatch(
      /identity\.issuers\.0\.repository: expected the repository \(OWNER\/REPO\) or repositoryOwner/,
    );
    const entry = { ...configEntry(github), repository: undefined } as IssuerConfigEntry;
    let message = "";
    try {
      expandIssuerEntries([entry]);
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      message = (error as Error).message;
    }
    expect(message).toMatch(
      /identity\.issuers\[0\] \(github-actions\): name the repository \(or repositoryOwner\)/,
    );
    expect(message).toMatch(/Every GitHub repository/);
  });

  it("turns each condition into a requirement on the claim of the same name", () => {
    const [entry] = expand({
      ...github,
      repositoryOwner: "acme",
      ref: "refs/heads/main",
      environment: "production",
      jobWorkflowRef: "acme/shop/.github/workflows/deploy.yml@refs/heads/main",
    });
    expect(entry.require).toEqual({
      repository: "acme/shop",
      repository_owner: "acme",
      ref: "refs/heads/main",
      environment: "production",
      job_workflow_ref: "acme/shop/.github/workflows/deploy.yml@refs/heads/main",
    });
    expect(unmet(entry, claims)).toBeUndefined();
    expect(unmet(entry, { ...claims, repository: "acme/shop-evil" })?.requirement.claim).toBe("repository");
    expect(unmet(entry, { ...claims, ref: "refs/heads/dev" })?.requirement.claim).toBe("ref");
    expect(unmet(entry, { ...claims, environment: "staging" })?.requirement.claim).toBe("environment");
    expect(unmet(entry, { ...claims, environment: undefined })?.found).toBe("absent");
    expect(
      unmet(entry, { ...claims, job_workflow_ref: "evil/x/.github/workflows/deploy.yml@refs/heads/main" })
        ?.requirement.claim,
    ).toBe("job_workflow_ref");
  });

  it("a list becomes anyOf and {matches} stays anchored", () => {
    const [entry] = expand({
      ...github,
      repository: ["acme/shop", "acme/api"],
      ref: { matches: "refs/heads/(main|release/.+)" },
    });
    expect(entry.require).toEqual({
      repository: { anyOf: ["acme/shop", "acme/api"] },
      ref: { matches: "refs/heads/(main|release/.+)" },
    });
    expect(unmet(entry, { ...claims, repository: "acme/api", ref: "refs/heads/release/2" })).toBeUndefined();
    expect(unmet(entry, { ...claims, repository: "acme/shop-evil" })?.requirement.claim).toBe("repository");
    expect(unmet(entry, { ...claims, ref: "refs/heads/main-evil" })?.requirement.claim).toBe("ref");
  });

  it("repositoryOwner alone admits every repository of the owner and no other", () => {
    const [entry] = expand({ preset: "github-actions", audience: "x", repositoryOwner: "acme" });
    expect(unmet(entry, { ...claims, repository: "acme/other" })).toBeUndefined();
    expect(unmet(entry, { ...claims, repository_owner: "acme-evil" })?.requirement.claim).toBe(
      "repository_owner",
    );
  });

  it("keeps static groups, a name and extra require conditions", () => {
    const [entry] = expand({
      ...github,
      name: "shop-deploy",
      groups: ["ci-deploy"],
      require: { runner_environment: "github-hosted" },
    });
    expect(entry.name).toBe("shop-deploy");
    expect(resolveIssuerConfig(entry).groups).toEqual(["ci-deploy"]);
    expect(entry.require).toEqual({ repository: "acme/shop", runner_environment: "github-hosted" });
  });

  it("two entries of one issuer keep their own names, groups and conditions", () => {
    const [deploy, read] = expand(
      { ...github, name: "shop-deploy", environment: "production", groups: ["ci-deploy"] },
      { ...github, name: "shop-read", groups: ["ci-read"] },
    );
    expect(deploy.issuer).toBe(read.issuer);
    expect([deploy.name, read.name]).toEqual(["shop-deploy", "shop-read"]);
    expect(deploy.groups).toEqual(["ci-deploy"]);
    expect(read.groups).toEqual(["ci-read"]);
    expect(unmet(read, { ...claims, environment: "staging" })).toBeUndefined();
    expect(unmet(deploy, { ...claims, environment: "staging" })?.requirement.claim).toBe("environment");
  });
});

describe("custom entries", () => {
  const base = { issuer: "https://idp.example.com/", audience: "api://cosmosgate" };

  it("default to OpenID Connect discovery at the issuer", () => {
    const [entry] = expand(base);
    expect(entry.jwks).toEqual({ discovery: true });
    expect(entry.flavor).toBe("custom");
    const resolved = resolveIssuerConfig(entry);
    expect(resolved.algorithms).toEqual(["RS256", "ES256"]);
    expect(resolved.subjectClaim).toBe("sub");
    expect(resolved.groupsClaims).toEqual(["roles"]);
    expect(resolved.kind).toBe("user");
  });

  it("take an explicit discovery URL, a JWKS URL or a JWKS file (resolved against the config)", () => {
    expect(
      expand({ ...base, discovery: "https://idp.example.com/.well-known/openid-configuration" })[0].jwks,
    ).toEqual({
      discovery: "https://idp.example.com/.well-known/openid-configuration",
    });
    expect(
      expand({ ...base, jwks: { url: "https://idp.example.com/keys" }, keys: { timeout: 500 } })[0].jwks,
    ).toEqual({
      url: "https://idp.example.com/keys",
      timeoutDuration: 500,
    });
    expect(expand({ ...base, jwks: { file: "keys/idp.json" } })[0].jwks).toEqual({
      file: "/etc/cosmosgate/keys/idp.json",
    });
  });

  it("refuse jwks and discovery together", () => {
    expect(() => expand({ ...base, jwks: { url: "https://idp.example.com/keys" }, discovery: true })).toThrow(
      /give jwks or discovery, not both/,
    );
  });

  it("keep groupsClaim (a list), the older rolesClaim, static groups, kind and require", () => {
    const [entry] = expand({
      ...base,
      groupsClaim: ["groups", "wids"],
      groups: ["partners"],
      kind: "service",
      require: { tid: "t1", scp: { matches: "(.* )?cosmos\\.read( .*)?" } },
      name: "Partner IdP",
    });
    const resolved = resolveIssuerConfig(entry);
    expect(resolved.groupsClaims).toEqual(["groups", "wids"]);
    expect(resolved.groups).toEqual(["partners"]);
    expect(resolved.kind).toBe("service");
    expect(resolved.name).toBe("Partner IdP");
    expect(unmet(entry, { tid: "t1", scp: "openid cosmos.read" })).toBeUndefined();
    expect(unmet(entry, { tid: "t1", scp: "openid cosmos.readwrite" })?.requirement.claim).toBe("scp");
    expect(resolveIssuerConfig(expand({ ...base, rolesClaim: "wids" })[0]).groupsClaims).toEqual(["wids"]);
  });

  it("are refused by the schema when a condition is malformed", () => {
    expect(schemaProblems({ ...base, require: { amr: { anyOf: [] } } })).toMatch(/require\.amr/);
    expect(schemaProblems({ ...base, require: { amr: { contains: "a", matches: "b" } } })).toMatch(
      /require\.amr/,
    );
  });
});
