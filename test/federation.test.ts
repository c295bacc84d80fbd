import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { decodeJwt } from "jose";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { loadConfig } from "../src/config/load.js";
import { startGateway } from "../src/server/gateway.js";
import { metricValue, readAuditRecords, scrapeMetrics, waitUntil } from "./helpers/auditProbe.js";
import { type FakeIdp, startFakeIdp } from "./helpers/fakeIdp.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { freePort } from "./helpers/upstream.js";

/**
 * Federated identity through a real gateway: local identity providers imitating Entra ID (v2.0 and
 * v1), Okta custom authorization servers and GitHub Actions serve discovery and RS256 keys over
 * loopback; their tokens reach the data plane over HTTPS as `type=aad` credentials. Every refusal is
 * a 401 that never reaches the upstream, counted under its error code in the metrics, with a
 * message that names the reason; accepted tokens show their role mapping as 200 against 403.
 */

const aad = (jwt: string) => `type=aad&ver=1.0&sig=${jwt}`;

/** A user whose object ID (oid) is a policy member by `sub:`; another user's pairwise sub may equal it. */
const MEMBER_OID = randomUUID();
/** An Entra security group (object ID) mapped to the admin role. */
const ADMIN_GROUP = randomUUID();
const OTHER_TENANT = randomUUID();

const POLICY = `
roles:
  admin:
    - allow: ["*"]
      on: /
  reader:
    - allow: [metadata]
      on: /
members:
  admin: ["group:Orders.Admin", "group:${ADMIN_GROUP}", "group:okta-admins", "group:ci-deploy"]
  reader: ["group:Orders.Read", "group:analysts", "group:ci-read", "sub:${MEMBER_OID}"]
`;

interface Outcome {
  status: number;
  code: string | undefined;
  message: string;
  reachedUpstream: boolean;
}

/** Full verifications that ended with this result (`valid` or an ERR_TOKEN_* code). */
async function verifications(h: Harness, result: string): Promise<number> {
  return metricValue(
    await scrapeMetrics(h.controlUrl),
    `cosmosgate_token_verifications_total{result="${result}"}`,
  );
}

/** `GET /` (account read: `metadata` on `/`) — any role of the policy allows it. */
async function read(h: Harness, jwt: string): Promise<Outcome> {
  return send(h, jwt, "GET", "/");
}

/** `POST /dbs` (create a database: `manage`) — only the admin role allows it. */
async function manage(h: Harness, jwt: string): Promise<Outcome> {
  return send(h, jwt, "POST", "/dbs", JSON.stringify({ id: `db-${randomUUID().slice(0, 8)}` }));
}

async function send(h: Harness, jwt: string, method: string, path: string, body?: string): Promise<Outcome> {
  const before = h.seen.length;
  const headers: Record<string, string> = { authorization: aad(jwt), "x-ms-version": "2020-07-15" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await h.raw(method, path, headers, body);
  let parsed: { code?: string; message?: string } = {};
  try {
    parsed = res.json();
  } catch {
    // an upstream answer that is not JSON
  }
  return {
    status: res.status,
    code: parsed.code,
    message: parsed.message ?? "",
    reachedUpstream: h.seen.length !== before,
  };
}

/**
 * Sends a token that must be refused: 401, not forwarded, counted once under `code`, and a message
 * matching every pattern.
 */
async function expectRefused(h: Harness, jwt: string, code: string, ...why: RegExp[]): Promise<string> {
  const before = await verifications(h, code);
  const res = await read(h, jwt);
  expect(res.status, res.message).toBe(401);
  expect(res.code).toBe("Unauthorized");
  expect(res.reachedUpstream).toBe(false);
  for (const pattern of why) expect(res.message).toMatch(pattern);
  expect(await verifications(h, code)).toBe(before + 1);
  return res.message;
}

/** Waits for the audit record of the data-plane request whose subject is `sub`, the latest one. */
async function auditOf(h: Harness, sub: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await waitUntil(
    () => {
      found = readAuditRecords(h.gw.auditFile)
        .filter((r) => r.type === "data.request" && r.subject === sub)
        .at(-1);
      return found !== undefined;
    },
    5000,
    `the audit record of ${sub}`,
  );
  return found as AuditRecord;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/** A pattern matching `text` literally. */
const has = (text: string) => new RegExp(escapeRegExp(text));

/**
 * What a requirement refusal must name: the issuer entry, the requirement as the configuration
 * reads (`acrs contains "c1"`), and the claim's value as found in the token (or "absent").
 */
function unmet(entry: string, requirement: string, found: string): RegExp[] {
  return [has(`"${entry}"`), /does not meet/, has(requirement), has(found)];
}

describe("federated issuers: presets and requirements through a real gateway", () => {
  let h: Harness;
  /** Entra ID, v2.0 tokens only. */
  let entra: FakeIdp;
  /** Entra ID with acceptV1 and an amr requirement (v1 tokens carry amr; v2.0 ones do not). */
  let entraV1: FakeIdp;
  /** Entra ID with a Conditional Access authentication context requirement (acrs contains c1). */
  let entraCa: FakeIdp;
  /** An Okta custom authorization server requiring phishing-resistant sign-in. */
  let okta: FakeIdp;
  /** GitHub Actions (GHES issuer form), two entries: shop-deploy and reports-read. */
  let github: FakeIdp;
  /** A generic OIDC issuer with tid and matches requirements. */
  let generic: FakeIdp;
  const GENERIC_TENANT = randomUUID();

  beforeAll(async () => {
    [entra, entraV1, entraCa, okta, github, generic] = await Promise.all(
      Array.from({ length: 6 }, () => startFakeIdp()),
    );
    h = await startHarness({
      policy: POLICY,
      issuersYaml: `
    - preset: entra
      name: Entra plain
      tenant: ${entra.tenant}
      audience: ${entra.clientId}
      authority: ${entra.origin}
    - preset: entra
      name: Entra with v1
      tenant: ${entraV1.tenant}
      audience: [${entraV1.clientId}, ${entraV1.appIdUri}]
      authority: ${entraV1.origin}
      acceptV1: true
      require:
        amr: {anyOf: [mfa, rsa]}
    - preset: entra
      name: Entra with authentication context
      tenant: ${entraCa.tenant}
      audience: ${entraCa.clientId}
      authority: ${entraCa.origin}
      require:
        acrs: {contains: c1}
    - preset: okta
      name: Okta phishing-resistant
      url: ${okta.oktaIssuer}
      audience: api://cosmosgate
      require:
        acr: phr
        amr: {anyOf: [hwk, swk]}
    - preset: github-actions
      name: shop-deploy
      issuer: ${github.githubIssuer}
      audience: https://github.com/acme
      repository: acme/shop
      ref: refs/heads/main
      environment: production
      jobWorkflowRef: acme/shop/.github/workflows/deploy.yml@refs/heads/main
      groups: [ci-deploy]
    - preset: github-actions
      name: reports-read
      issuer: ${github.githubIssuer}
      audience: https://github.com/acme
      repository: acme/reports
      groups: [ci-read]
    - issuer: ${generic.oktaIssuer}
      name: Generic OIDC
      audience: api://cosmosgate
      discovery: true
      algorithms: [RS256]
      groupsClaim: groups
      require:
        tid: ${GENERIC_TENANT}
        email: {matches: "[a-z]+@contoso\\\\.test"}`,
    });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await Promise.all([entra, entraV1, entraCa, okta, github, generic].map((idp) => idp?.close()));
  });

  it("loaded every issuer's keys at start through discovery", () => {
    for (const idp of [entra, entraV1, entraCa, okta, github, generic]) {
      expect(idp.requests.discovery).toBeGreaterThanOrEqual(1);
      expect(idp.requests.jwks).toBeGreaterThanOrEqual(1);
    }
    expect(h.logs.join("")).not.toMatch(/could not load every issuer's keys/);
  });

  describe("Entra ID", () => {
    it("accepts a v2.0 token and maps its app role (roles) to the policy role: reader, not admin", async () => {
      const token = await entra.entraV2Token({ roles: ["Orders.Read"] });
      const ok = await read(h, token);
      expect(ok.status).toBe(200);
      expect(ok.reachedUpstream).toBe(true);
      const denied = await manage(h, token);
      expect(denied.status).toBe(403);
      expect(denied.code).toBe("Forbidden");
      expect(denied.reachedUpstream).toBe(false);
    });

    it("maps an admin app role and a group object ID (groups) to the admin role", async () => {
      expect((await manage(h, await entra.entraV2Token({ roles: ["Orders.Admin"] }))).status).toBe(201);
      expect(
        (await manage(h, await entra.entraV2Token({ roles: undefined, groups: [ADMIN_GROUP] }))).status,
      ).toBe(201);
      // A group that is not mapped, and no app role: no role at all.
      const none = await read(h, await entra.entraV2Token({ roles: undefined, groups: [randomUUID()] }));
      expect(none.status).toBe(403);
      expect(none.reachedUpstream).toBe(false);
    });

    it("takes the subject from oid, not from the pairwise sub", async () => {
      const member = await entra.entraV2Token({ roles: undefined, oid: MEMBER_OID, sub: "pairwise-x" });
      expect((await read(h, member)).status).toBe(200);
      const record = await auditOf(h, MEMBER_OID);
      expect(record.subjectKind).toBe("user");
      expect(record.issuer).toBe(entra.entraV2Issuer);
      expect(record.status).toBe(200);
      // Another user whose pairwise sub happens to be the member's oid gets nothing from it.
      const impostor = await entra.entraV2Token({ roles: undefined, oid: randomUUID(), sub: MEMBER_OID });
      expect((await read(h, impostor)).status).toBe(403);
    });

    it("refuses a v1 token when acceptV1 is not set, naming its issuer as not trusted", async () => {
      const v1 = await entra.entraV1Token({ aud: entra.clientId });
      await expectRefused(
        h,
        v1,
        "ERR_TOKEN_ISSUER",
        new RegExp(`issuer "${escapeRegExp(entra.entraV1Issuer)}" is not trusted`),
      );
    });

    it("accepts a v1 token (issuer https://sts.windows.net/{tid}/) with acceptV1, and maps its roles", async () => {
      const v1 = await entraV1.entraV1Token();
      expect(decodeJwt(v1).iss).toBe(`https://sts.windows.net/${entraV1.tenant}/`);
      expect((await read(h, v1)).status).toBe(200);
      expect((await manage(h, v1)).status).toBe(403);
      expect((await manage(h, await entraV1.entraV1Token({ roles: ["Orders.Admin"] }))).status).toBe(201);
    });

    it("requires amr any of [mfa, rsa] on v1 tokens: refuses a password-only sign-in, naming the requirement", async () => {
      expect((await read(h, await entraV1.entraV1Token({ amr: ["pwd", "mfa"] }))).status).toBe(200);
      expect((await read(h, await entraV1.entraV1Token({ amr: ["rsa"] }))).status).toBe(200);
      await expectRefused(
        h,
        await entraV1.entraV1Token({ amr: ["pwd"] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra with v1 v1", 'amr is or contains any of "mfa", "rsa"', "pwd"),
      );
      // v2.0 tokens carry no amr at all: the same requirement refuses them.
      await expectRefused(
        h,
        await entraV1.entraV2Token(),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra with v1", 'amr is or contains any of "mfa", "rsa"', "absent"),
      );
    });

    it("refuses a token of another tenant: its issuer is not trusted", async () => {
      const foreign = await entra.entraV2Token({
        iss: `https://login.microsoftonline.com/${OTHER_TENANT}/v2.0`,
        tid: OTHER_TENANT,
      });
      await expectRefused(
        h,
        foreign,
        "ERR_TOKEN_ISSUER",
        new RegExp(`${OTHER_TENANT}/v2\\.0" is not trusted`),
      );
    });

    it("refuses a token whose tid is another tenant's even under this tenant's issuer", async () => {
      const forged = await entra.entraV2Token({ tid: OTHER_TENANT });
      await expectRefused(
        h,
        forged,
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra plain", `tid equals "${entra.tenant}"`, OTHER_TENANT),
      );
      await expectRefused(
        h,
        await entra.entraV2Token({ tid: undefined }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra plain", `tid equals "${entra.tenant}"`, "absent"),
      );
    });

    it("refuses a groups overage and tells the administrator to use app roles", async () => {
      const overage = await entra.entraV2Token({
        roles: undefined,
        groups: undefined,
        _claim_names: { groups: "src1" },
        _claim_sources: {
          src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${MEMBER_OID}/getMemberObjects` },
        },
      });
      await expectRefused(
        h,
        overage,
        "ERR_TOKEN_CLAIMS",
        /groups overage/,
        /assign app roles to the groups/,
        /roles claim/,
      );
      // The implicit flow's form of the overage.
      await expectRefused(
        h,
        await entra.entraV2Token({ roles: undefined, groups: undefined, hasgroups: true }),
        "ERR_TOKEN_CLAIMS",
        /groups overage/,
        /app roles/,
      );
      // Even with app roles present: the overage means the group list is incomplete.
      await expectRefused(
        h,
        await entra.entraV2Token({
          roles: ["Orders.Admin"],
          _claim_names: { groups: "src1" },
          _claim_sources: {},
        }),
        "ERR_TOKEN_CLAIMS",
        /groups overage/,
      );
    });

    it("accepts acrs containing c1 and refuses c2 or no authentication context, naming the requirement", async () => {
      expect((await read(h, await entraCa.entraV2Token({ acrs: ["c1"] }))).status).toBe(200);
      expect((await read(h, await entraCa.entraV2Token({ acrs: ["c3", "c1"] }))).status).toBe(200);
      await expectRefused(
        h,
        await entraCa.entraV2Token({ acrs: ["c2"] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra with authentication context", 'acrs contains "c1"', "c2"),
      );
      await expectRefused(
        h,
        await entraCa.entraV2Token(),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra with authentication context", 'acrs contains "c1"', "absent"),
      );
      await expectRefused(
        h,
        await entraCa.entraV2Token({ acrs: ["c11"] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Entra with authentication context", 'acrs contains "c1"', "c11"),
      );
    });

    it("refuses a token in this tenant's name signed by another provider's key", async () => {
      const claims = decodeJwt(await entra.entraV2Token({ roles: ["Orders.Admin"] }));
      // Its own kid: not in this tenant's key set.
      await expectRefused(
        h,
        await okta.sign(claims),
        "ERR_TOKEN_UNKNOWN_KEY",
        has(`key id "${okta.kid}"`),
        has('is not in the key set of issuer "Entra plain"'),
      );
      // This tenant's kid in the header: the signature does not verify with that key.
      await expectRefused(
        h,
        await okta.sign(claims, { kid: entra.kid }),
        "ERR_TOKEN_SIGNATURE",
        has(`signature does not verify with issuer "Entra plain"'s key "${entra.kid}"`),
      );
    });

    it("refuses an Entra token for another API (audience), naming the audience", async () => {
      await expectRefused(
        h,
        await entra.entraV2Token({ aud: "00000003-0000-0000-c000-000000000000" }),
        "ERR_TOKEN_AUDIENCE",
        /audience "00000003-0000-0000-c000-000000000000"/,
        new RegExp(entra.clientId),
      );
    });
  });

  describe("Okta", () => {
    it("accepts a phishing-resistant token and maps the groups claim to policy roles", async () => {
      const analyst = await okta.oktaToken({ acr: "phr", groups: ["Everyone", "analysts"] });
      expect((await read(h, analyst)).status).toBe(200);
      expect((await manage(h, analyst)).status).toBe(403);
      expect((await manage(h, await okta.oktaToken({ acr: "phr", groups: ["okta-admins"] }))).status).toBe(
        201,
      );
      expect((await read(h, await okta.oktaToken({ acr: "phr", groups: ["Everyone"] }))).status).toBe(403);
      const record = await auditOf(h, "ada@example.com");
      expect(record.issuer).toBe(okta.oktaIssuer);
      expect(record.subjectKind).toBe("user");
    });

    it("refuses a token without acr phr, naming the requirement", async () => {
      await expectRefused(
        h,
        await okta.oktaToken({ acr: "urn:okta:loa:1fa:pwd" }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Okta phishing-resistant", 'acr equals "phr"', "urn:okta:loa:1fa:pwd"),
      );
      await expectRefused(
        h,
        await okta.oktaToken(),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Okta phishing-resistant", 'acr equals "phr"', "absent"),
      );
      // A list holding phr is not the value phr.
      await expectRefused(
        h,
        await okta.oktaToken({ acr: ["phr"] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Okta phishing-resistant", 'acr equals "phr"', "phr"),
      );
    });

    it("requires amr any of [hwk, swk]", async () => {
      expect((await read(h, await okta.oktaToken({ acr: "phr", amr: ["swk", "pop"] }))).status).toBe(200);
      await expectRefused(
        h,
        await okta.oktaToken({ acr: "phr", amr: ["pwd", "otp"] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Okta phishing-resistant", 'amr is or contains any of "hwk", "swk"', "otp"),
      );
      await expectRefused(
        h,
        await okta.oktaToken({ acr: "phr", amr: undefined }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Okta phishing-resistant", 'amr is or contains any of "hwk", "swk"', "absent"),
      );
    });
  });

  describe("GitHub Actions", () => {
    const deploySub = "repo:acme/shop:environment:production";

    it("accepts acme/shop on main in production as a service mapped to the deploy role, and audits kind service", async () => {
      const token = await github.githubToken();
      expect((await manage(h, token)).status).toBe(201);
      const record = await auditOf(h, deploySub);
      expect(record.subjectKind).toBe("service");
      expect(record.issuer).toBe(github.githubIssuer);
      expect(record.decision).toBe("allow");
      expect(record.status).toBe(201);
    });

    it("maps a second entry of the same issuer (reports-read) to its own role", async () => {
      const reports = await github.githubToken({
        repository: "acme/reports",
        sub: "repo:acme/reports:ref:refs/heads/dev",
        ref: "refs/heads/dev",
        environment: undefined,
        job_workflow_ref: "acme/reports/.github/workflows/nightly.yml@refs/heads/dev",
      });
      expect((await read(h, reports)).status).toBe(200);
      expect((await manage(h, reports)).status).toBe(403);
      const record = await auditOf(h, "repo:acme/reports:ref:refs/heads/dev");
      expect(record.subjectKind).toBe("service");
    });

    it("refuses another repository whose name starts with the allowed one (acme/shop-evil)", async () => {
      const evil = await github.githubToken({
        repository: "acme/shop-evil",
        sub: "repo:acme/shop-evil:environment:production",
        job_workflow_ref: "acme/shop-evil/.github/workflows/deploy.yml@refs/heads/main",
      });
      const message = await expectRefused(
        h,
        evil,
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("shop-deploy", 'repository equals "acme/shop"', "acme/shop-evil"),
        ...unmet("reports-read", 'repository equals "acme/reports"', "acme/shop-evil"),
      );
      expect(message).toMatch(/No identity\.issuers entry for .* accepts the token/);
    });

    it("refuses another ref, another environment and another workflow, naming each", async () => {
      await expectRefused(
        h,
        await github.githubToken({ ref: "refs/heads/feature-x" }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("shop-deploy", 'ref equals "refs/heads/main"', "refs/heads/feature-x"),
      );
      await expectRefused(
        h,
        await github.githubToken({ environment: "staging" }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("shop-deploy", 'environment equals "production"', "staging"),
      );
      await expectRefused(
        h,
        await github.githubToken({ environment: undefined }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("shop-deploy", 'environment equals "production"', "absent"),
      );
      await expectRefused(
        h,
        await github.githubToken({
          job_workflow_ref: "evil/tools/.github/workflows/deploy.yml@refs/heads/main",
        }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet(
          "shop-deploy",
          'job_workflow_ref equals "acme/shop/.github/workflows/deploy.yml@refs/heads/main"',
          "evil/tools/.github/workflows/deploy.yml",
        ),
      );
    });

    it("refuses a token for another audience", async () => {
      await expectRefused(
        h,
        await github.githubToken({ aud: "sts.amazonaws.com" }),
        "ERR_TOKEN_AUDIENCE",
        /audience "sts\.amazonaws\.com"/,
        /https:\/\/github\.com\/acme/,
      );
    });
  });

  describe("a generic issuer", () => {
    const claims = { acr: undefined, groups: ["analysts"], email: "ada@contoso.test" };

    it("accepts a token with the required tid and an email matching the expression", async () => {
      expect((await read(h, await generic.oktaToken({ ...claims, tid: GENERIC_TENANT }))).status).toBe(200);
    });

    it("refuses another tid, naming it", async () => {
      await expectRefused(
        h,
        await generic.oktaToken({ ...claims, tid: OTHER_TENANT }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Generic OIDC", `tid equals "${GENERIC_TENANT}"`, OTHER_TENANT),
      );
      // A list holding the tenant is not the tenant.
      await expectRefused(
        h,
        await generic.oktaToken({ ...claims, tid: [GENERIC_TENANT] }),
        "ERR_TOKEN_REQUIREMENT",
        ...unmet("Generic OIDC", `tid equals "${GENERIC_TENANT}"`, GENERIC_TENANT),
      );
    });

    it("matches the whole claim: a suffix or prefix around a matching value is refused", async () => {
      for (const email of ["ada@contoso.test.evil.example", "x ada@contoso.test", "ada@contosoxtest"]) {
        await expectRefused(
          h,
          await generic.oktaToken({ ...claims, tid: GENERIC_TENANT, email }),
          "ERR_TOKEN_REQUIREMENT",
          ...unmet("Generic OIDC", "email matches /^(?:[a-z]+@contoso\\.test)$/", email),
        );
      }
    });
  });
});

/** A fresh token of `idp`'s Okta server signed with its current key but naming `kid` in its header. */
async function withKid(idp: FakeIdp, kid: string, claims: Record<string, unknown> = {}): Promise<string> {
  return idp.sign(decodeJwt(await idp.oktaToken({ jti: randomUUID(), ...claims })), { kid });
}

/** Resolves when `ms` have passed since `since` (no wait when they already have). */
async function until(since: number, ms: number): Promise<void> {
  const left = since + ms - Date.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
}

describe("federated issuers: keys at the identity provider", () => {
  const COOLDOWN_MS = 1000;
  const TIMEOUT_MS = 300;
  let h: Harness;
  /** Rolls its signing key over. */
  let rolling: FakeIdp;
  /** Goes down after the keys were fetched. */
  let flaky: FakeIdp;
  /** Never answers, from the start. */
  let hanging: FakeIdp;
  /** Refuses connections, from the start. */
  let refusing: FakeIdp;
  let startedAt = 0;

  beforeAll(async () => {
    [rolling, flaky, hanging, refusing] = await Promise.all(Array.from({ length: 4 }, () => startFakeIdp()));
    hanging.setMode("hang");
    refusing.setMode("refuse");
    const okta = (name: string, idp: FakeIdp, keys: string) => `
    - preset: okta
      name: ${name}
      url: ${idp.oktaIssuer}
      audience: api://cosmosgate
      keys: ${keys}`;
    h = await startHarness({
      policy: POLICY,
      issuersYaml: [
        okta("Rolling IdP", rolling, `{cooldown: ${COOLDOWN_MS}ms}`),
        okta("Flaky IdP", flaky, `{maxAge: 200ms, timeout: ${TIMEOUT_MS}ms}`),
        okta("Hanging IdP", hanging, `{timeout: ${TIMEOUT_MS}ms}`),
        okta("Refusing IdP", refusing, `{timeout: ${TIMEOUT_MS}ms}`),
      ].join(""),
    });
    startedAt = Date.now();
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await Promise.all([rolling, flaky, hanging, refusing].map((idp) => idp?.close()));
  });

  it("accepts tokens signed with a new kid after exactly one JWKS refetch, shared by concurrent requests", async () => {
    expect(rolling.requests.jwks).toBe(1); // fetched once at start
    expect((await read(h, await rolling.oktaToken())).status).toBe(200);
    expect(rolling.requests.jwks).toBe(1);

    // The issuer rolls its key over; the gateway has not seen the new kid.
    await until(startedAt, COOLDOWN_MS + 50);
    const newKid = await rolling.rollover();
    const tokens = await Promise.all(
      Array.from({ length: 5 }, () => rolling.oktaToken({ jti: randomUUID() })),
    );
    for (const token of tokens) expect(decodeJwt(token).jti).toBeDefined();
    const results = await Promise.all(tokens.map((token) => read(h, token)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(rolling.requests.jwks).toBe(2); // one refetch for five requests with the unknown kid
    expect(rolling.kid).toBe(newKid);

    // Now known: no further fetch.
    for (let i = 0; i < 5; i++)
      expect((await read(h, await rolling.oktaToken({ jti: randomUUID() }))).status).toBe(200);
    expect(rolling.requests.jwks).toBe(2);
  });

  it("refuses a kid that is in no JWKS with ERR_TOKEN_UNKNOWN_KEY, refetching at most once per cooldown", async () => {
    // Just after the rollover's refetch: within the cooldown, unknown kids cause no fetch at all.
    const refetchedAt = Date.now();
    const before = rolling.requests.jwks;
    const unknownBefore = await verifications(h, "ERR_TOKEN_UNKNOWN_KEY");
    const storm = await Promise.all(
      Array.from({ length: 10 }, async () => read(h, await withKid(rolling, "no-such-kid"))),
    );
    for (const res of storm) {
      expect(res.status).toBe(401);
      expect(res.reachedUpstream).toBe(false);
      expect(res.message).toMatch(
        /key id "no-such-kid" \(alg "RS256"\) is not in the key set of issuer "Rolling IdP"/,
      );
    }
    expect(rolling.requests.jwks).toBe(before);

    // After the cooldown, one unknown kid refetches once; a burst right after does not.
    await until(refetchedAt, COOLDOWN_MS + 50);
    await expectRefused(
      h,
      await withKid(rolling, "still-unknown"),
      "ERR_TOKEN_UNKNOWN_KEY",
      /is not in the key set/,
    );
    expect(rolling.requests.jwks).toBe(before + 1);
    const burst = await Promise.all(
      Array.from({ length: 10 }, async () => read(h, await withKid(rolling, randomUUID()))),
    );
    expect(burst.every((r) => r.status === 401)).toBe(true);
    expect(rolling.requests.jwks).toBe(before + 1);
    expect(await verifications(h, "ERR_TOKEN_UNKNOWN_KEY")).toBe(unknownBefore + 21);
  });

  it("keeps accepting tokens with cached keys while the provider is down, logging the outage once and the recovery", async () => {
    const stale = /identity provider Flaky IdP is unreachable: its keys fetched before stay in use/;
    const recovered = /identity provider Flaky IdP answers again: keys refreshed/;
    const count = (pattern: RegExp) => h.logs.filter((line) => pattern.test(line)).length;
    const sent: string[] = [];
    const accept = async () => {
      const token = await flaky.oktaToken({ jti: randomUUID() });
      sent.push(token);
      const started = performance.now();
      const res = await read(h, token);
      expect(res.status, res.message).toBe(200);
      return performance.now() - started;
    };

    await accept();
    const fetchesBefore = flaky.requests.jwks;

    // Connections refused: once the cache is older than maxAge the refetch fails, the keys stay.
    flaky.setMode("refuse");
    await waitUntil(
      async () => {
        await accept();
        return count(stale) > 0;
      },
      5000,
      "the outage to be logged",
    );
    for (let i = 0; i < 5; i++) await accept();
    expect(count(stale)).toBe(1);
    const line = h.logs.find((l) => stale.test(l)) as string;
    expect(JSON.parse(line).level).toBe(40); // warn
    expect(JSON.parse(line).issuer).toBe(flaky.oktaIssuer);

    // The provider now hangs: the next refetch (after the retry pause) gives up after keys.timeout,
    // and the request is still served from the cache; the outage is not logged again.
    flaky.setMode("hang");
    const hangingFetches = flaky.requests.jwks;
    await waitUntil(
      async () => {
        const elapsed = await accept();
        expect(elapsed).toBeLessThan(TIMEOUT_MS + 1500);
        return flaky.requests.jwks > hangingFetches;
      },
      10_000,
      "a refetch while the provider hangs",
    );
    await accept();
    expect(count(stale)).toBe(1);
    expect(count(recovered)).toBe(0);

    // Back up: the next refetch succeeds and the recovery is logged, once.
    flaky.setMode("up");
    await waitUntil(
      async () => {
        await accept();
        return count(recovered) > 0;
      },
      10_000,
      "the recovery to be logged",
    );
    for (let i = 0; i < 3; i++) await accept();
    expect(count(recovered)).toBe(1);
    expect(count(stale)).toBe(1);
    expect(flaky.requests.jwks).toBeGreaterThan(fetchesBefore);

    // No token ever reaches the log.
    const logged = h.logs.join("");
    for (const token of sent) expect(logged.includes(token.split(".")[2] as string)).toBe(false);
  }, 30_000);

  it("refuses tokens of a provider unreachable from the start with ERR_TOKEN_KEYS_UNAVAILABLE, within the time-out", async () => {
    expect(h.logs.join("")).toMatch(/could not load every issuer's keys at start; will retry on use/);
    const refuse = async (idp: FakeIdp, name: string, why: RegExp) => {
      const started = performance.now();
      const message = await expectRefused(
        h,
        await idp.oktaToken({ jti: randomUUID() }),
        "ERR_TOKEN_KEYS_UNAVAILABLE",
        has(
          `signing keys of issuer "${name}" could not be discovered at ${idp.oktaIssuer}/.well-known/openid-configuration`,
        ),
        why,
        /Tokens from this issuer are refused until its keys load/,
      );
      const elapsed = performance.now() - started;
      expect(elapsed, message).toBeLessThan(TIMEOUT_MS + 1500);
      return elapsed;
    };

    // Refused connections: refused at once, every time.
    for (let i = 0; i < 3; i++) await refuse(refusing, "Refusing IdP", /could not be fetched/);

    // A provider that never answers: between attempts the last failure is returned at once; an
    // attempt (after the retry pause that follows the start-up failure) gives up after keys.timeout.
    const attempts = hanging.requests.discovery;
    let slowest = 0;
    await waitUntil(
      async () => {
        slowest = Math.max(slowest, await refuse(hanging, "Hanging IdP", /did not arrive within 300 ms/));
        return hanging.requests.discovery > attempts;
      },
      10_000,
      "a new discovery attempt at the hanging provider",
    );
    expect(slowest).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(await refuse(hanging, "Hanging IdP", /did not arrive within 300 ms/)).toBeLessThan(TIMEOUT_MS);
    expect(hanging.requests.jwks).toBe(0);
    expect(refusing.requests.jwks).toBe(0);
  }, 30_000);
});

describe("federated issuers: configuration mistakes stop the gateway at start", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-fed-config-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Loads and starts a gateway with these issuer entries; returns the error it refuses with. */
  async function refusal(issuersYaml: string): Promise<string> {
    const port = await freePort();
    const controlPort = await freePort();
    const file = join(dir, `cosmosgate-${randomUUID().slice(0, 8)}.yaml`);
    writeFileSync(join(dir, "policy.yaml"), POLICY);
    writeFileSync(
      file,
      `stateDir: ./state-${randomUUID().slice(0, 8)}
dataPlane:
  listen: 127.0.0.1:${port}
  publicUrl: https://localhost:${port}
controlPlane:
  listen: 127.0.0.1:${controlPort}
  publicUrl: http://localhost:${controlPort}
identity:
  issuers:
${issuersYaml}
policy: ./policy.yaml
`,
    );
    const log = pino({ level: "silent" }, new Writable({ write: (_c, _e, cb) => cb() }));
    try {
      const gw = await startGateway(await loadConfig(file), { log });
      await gw.close();
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("expected the gateway to refuse to start, and it started");
  }

  it("an Entra tenant that is not a GUID", async () => {
    const message = await refusal(`    - preset: entra
      tenant: contoso.onmicrosoft.com
      audience: api://cosmosgate`);
    expect(message).toMatch(/cosmosgate-[0-9a-f]+\.yaml:\d+:\d+/);
    expect(message).toMatch(/identity\.issuers\.0\.tenant|tenant/);
    expect(message).toMatch(/expected the tenant ID, a GUID/);
  });

  it("an Okta org authorization server URL", async () => {
    const message = await refusal(`    - preset: okta
      url: https://acme.okta.com
      audience: api://cosmosgate`);
    expect(message).toMatch(/custom authorization server/);
    expect(message).toMatch(/oauth2\//);
  });

  it("a GitHub Actions entry with no repository", async () => {
    const message = await refusal(`    - preset: github-actions
      audience: https://github.com/acme
      ref: refs/heads/main`);
    expect(message).toMatch(/repository/);
    expect(message).toMatch(/repositoryOwner/);
  });

  it("a malformed requirement", async () => {
    const message = await refusal(`    - preset: okta
      url: https://acme.okta.com/oauth2/default
      audience: api://cosmosgate
      require:
        amr: {anyOf: []}`);
    expect(message).toMatch(/require/);
    expect(message).toMatch(/amr/);
  });
});
