import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IssuerConfig } from "../tokens/issuers.js";
import { createTestIssuer, encodeSegment, type TestIssuer } from "../tokens/testing.js";
import { createTokenVerifier } from "../tokens/verify.js";
import {
  DOCTOR_CAUSES,
  type DoctorCheck,
  diagnoseIssuer,
  diagnoseToken,
  type TokenDiagnosis,
} from "./doctor.js";

const T0 = 1_750_000_000_000;
const clock = () => T0;
const NOW = Math.floor(T0 / 1000);
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "0b7a2a55-2b55-4d4a-9d63-1a3c2f4d5e6f";
const V2 = `https://login.microsoftonline.com/${TENANT}/v2.0`;
const V1 = `https://sts.windows.net/${TENANT}/`;
const GRAPH = "00000003-0000-0000-c000-000000000000";

let dir: string;
let entra: TestIssuer; // RS256 key of the "tenant", issuer v2
let stranger: TestIssuer; // another RS256 key with the same kid-less issuer: signs what the tenant did not
let okta: TestIssuer; // ES256, custom issuer

/** The entra preset as it expands (v2 only), with keys from a file instead of discovery. */
function entraV2(extra: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    issuer: V2,
    audience: [CLIENT_ID, "api://cosmosgate"],
    jwks: { file: entra.jwksFile },
    algorithms: ["RS256"],
    subjectClaim: "oid",
    groupsClaim: ["roles", "groups"],
    require: { tid: TENANT },
    refuseGroupsOverage: true,
    tenant: TENANT,
    flavor: "entra-v2",
    name: "Entra ID",
    ...extra,
  };
}

function entraV1(extra: Partial<IssuerConfig> = {}): IssuerConfig {
  return { ...entraV2(), issuer: V1, name: "Entra ID v1", flavor: "entra-v1", ...extra };
}

function oktaEntry(extra: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    issuer: "https://acme.okta.com/oauth2/default",
    audience: "api://cosmosgate",
    jwks: { file: okta.jwksFile },
    algorithms: ["ES256"],
    groupsClaim: "groups",
    flavor: "okta",
    name: "Okta",
    ...extra,
  };
}

const entraClaims = (claims: Record<string, unknown> = {}) => ({
  iss: V2,
  aud: CLIENT_ID,
  sub: "pairwise",
  oid: "oid-ada",
  tid: TENANT,
  roles: ["Orders.Read"],
  ver: "2.0",
  nbf: NOW,
  scp: "access_as_user",
  ...claims,
});

function check(d: TokenDiagnosis, id: string): DoctorCheck {
  const found = d.checks.find((c) => c.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${d.checks.map((c) => c.id).join(", ")}`);
  return found;
}

function expectCause(d: TokenDiagnosis, cause: keyof typeof DOCTOR_CAUSES, fix: string | RegExp): void {
  expect(d.ok).toBe(false);
  expect(d.causes).toContain(cause);
  const finding = d.findings.find((f) => f.cause === cause);
  expect(finding?.summary).toBe(DOCTOR_CAUSES[cause]);
  if (typeof fix === "string") expect(finding?.fix).toContain(fix);
  else expect(finding?.fix).toMatch(fix);
}

/** Asserts the diagnosis agrees with the real verifier. */
async function agreesWithVerifier(token: string, issuers: IssuerConfig[], d: TokenDiagnosis): Promise<void> {
  const verifier = createTokenVerifier({ issuers, clock, cacheSize: 0 });
  const accepted = await verifier.verify(token).then(
    () => true,
    () => false,
  );
  expect(d.ok).toBe(accepted);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-doctor-"));
  entra = await createTestIssuer({
    dir,
    alg: "RS256",
    issuer: V2,
    audience: CLIENT_ID,
    clock,
    kid: "entra-k1",
  });
  stranger = await createTestIssuer({
    dir,
    alg: "RS256",
    issuer: V2,
    audience: CLIENT_ID,
    clock,
    kid: "other-k9",
  });
  okta = await createTestIssuer({
    dir,
    alg: "ES256",
    issuer: "https://acme.okta.com/oauth2/default",
    audience: "api://cosmosgate",
    clock,
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("diagnoseToken: an accepted token", () => {
  it("passes every check in order and reports subject, groups and roles", async () => {
    const token = await entra.sign(entraClaims({ groups: ["g-1"] }));
    const issuers = [entraV2()];
    const d = await diagnoseToken(token, {
      issuers,
      clock,
      roles: (p) => (p.groups.includes("Orders.Read") ? ["orders-reader"] : []),
    });
    expect(d.ok).toBe(true);
    expect(d.causes).toEqual([]);
    expect(d.checks.map((c) => c.id)).toEqual([
      "shape",
      "signing",
      "issuer",
      "algorithm",
      "key",
      "signature",
      "exp",
      "nbf",
      "iat",
      "audience",
      "typ",
      "subject",
      "groups-overage",
      "require:tid",
      "principal",
      "roles",
      "verdict",
    ]);
    expect(d.checks.filter((c) => c.status === "fail" || c.status === "warn")).toEqual([]);
    expect(check(d, "typ").status).toBe("skip");
    expect(d.entry).toBe("Entra ID");
    expect(d.issuer).toBe(V2);
    expect(d.principal).toEqual({
      sub: "oid-ada",
      kind: "user",
      groups: ["Orders.Read", "g-1"],
      roles: ["orders-reader"],
      issuer: V2,
    });
    expect(check(d, "key").detail).toContain('kid "entra-k1"');
    expect(d.token).toEqual({ prefix: token.slice(0, 12), length: token.length });
    expect(JSON.stringify(d)).not.toContain(token.split(".")[2]);
    await agreesWithVerifier(token, issuers, d);
  });

  it("warns when the policy gives the accepted principal no role", async () => {
    const token = await entra.sign(entraClaims());
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock, roles: () => [] });
    expect(d.ok).toBe(true);
    expect(check(d, "roles")).toMatchObject({ status: "warn", cause: "no-roles" });
    expect(d.findings[0]?.fix).toContain("group:Orders.Read");
  });
});

describe("diagnoseToken: the named causes", () => {
  it("graph-token: a nonce header and the Graph audience, with the API's scope as the fix", async () => {
    // As Entra does: the signature covers another header (a hashed nonce), so nothing but Graph verifies it.
    const signed = await entra.sign(entraClaims({ iss: V1, aud: GRAPH, ver: "1.0" }), {
      nonce: "hashed",
    } as never);
    const [, body, signature] = signed.split(".");
    const token = `${encodeSegment({ typ: "JWT", nonce: "original", alg: "RS256", kid: "entra-k1" })}.${body}.${signature}`;
    const issuers = [entraV2(), entraV1()];
    const d = await diagnoseToken(token, { issuers, clock });
    expectCause(
      d,
      "graph-token",
      /this token is for Microsoft Graph; request your API's scope api:\/\/cosmosgate\/\.default/i,
    );
    expect(check(d, "signature")).toMatchObject({ status: "fail", cause: "graph-token" });
    expect(check(d, "audience")).toMatchObject({ status: "fail", cause: "graph-token" });
    expect(d.causes).not.toContain("bad-signature");
    expect(d.causes).not.toContain("wrong-audience");
    await agreesWithVerifier(token, issuers, d);

    // With v1 not configured, it is still named a Graph token, not a version mismatch.
    const v2only = await diagnoseToken(token, { issuers: [entraV2()], clock });
    expectCause(v2only, "graph-token", "api://cosmosgate/.default");
    expect(v2only.causes).not.toContain("entra-version-mismatch");
  });

  it("graph-token: without a configured scope the fix names api://<client-id>/.default", async () => {
    const token = await okta.sign({ aud: "https://graph.microsoft.com" });
    const d = await diagnoseToken(token, { issuers: [oktaEntry()], clock });
    expectCause(d, "graph-token", "request your API's scope api://<client-id>/.default");
  });

  it("entra-version-mismatch: a v1 token where only v2.0 is configured, and the reverse", async () => {
    const v1 = await entra.sign(entraClaims({ iss: V1, aud: "api://cosmosgate", ver: "1.0" }));
    const d = await diagnoseToken(v1, { issuers: [entraV2()], clock });
    expectCause(d, "entra-version-mismatch", "accessTokenAcceptedVersion: 2");
    expect(d.findings[0]?.fix).toContain("acceptV1: true");
    expect(check(d, "issuer").detail).toContain("v1 issuer");
    // Still walked: the times are reported.
    expect(check(d, "exp").status).toBe("pass");

    const v2 = await entra.sign(entraClaims());
    const reverse = await diagnoseToken(v2, { issuers: [entraV1()], clock });
    expectCause(reverse, "entra-version-mismatch", `preset: entra, tenant: ${TENANT}`);
    await agreesWithVerifier(v2, [entraV1()], reverse);
  });

  it("hmac-algorithm: an HS256 token where RS256 is expected; unsigned-token: alg none", async () => {
    const hs = await new SignJWT(entraClaims({ exp: NOW + 600, iat: NOW }))
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode("a shared secret of at least 32 bytes!!"));
    const d = await diagnoseToken(hs, { issuers: [entraV2()], clock });
    expectCause(d, "hmac-algorithm", "An asymmetric algorithm");
    expect(check(d, "signing").status).toBe("fail");
    expect(check(d, "algorithm")).toMatchObject({ status: "fail", cause: "hmac-algorithm" });
    expect(check(d, "signature").status).toBe("skip");
    expect(check(d, "audience").status).toBe("pass"); // kept walking
    expect(d.refusal?.code).toBe("ERR_TOKEN_ALGORITHM");

    const none = `${encodeSegment({ alg: "none" })}.${encodeSegment(entraClaims({ exp: NOW + 600, iat: NOW }))}.`;
    const unsigned = await diagnoseToken(none, { issuers: [entraV2()], clock });
    expectCause(unsigned, "unsigned-token", "signed access token");
    expect(unsigned.causes).not.toContain("malformed");
  });

  it("wrong-audience: says which audiences are accepted and the scope to request", async () => {
    const token = await entra.sign(entraClaims({ aud: "api://billing" }));
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock });
    expectCause(d, "wrong-audience", "scope api://cosmosgate/.default");
    expect(d.findings[0]?.fix).toContain(`"${CLIENT_ID}" or "api://cosmosgate"`);
    expect(check(d, "audience").detail).toContain('"api://billing"');
    expect(d.refusal?.code).toBe("ERR_TOKEN_AUDIENCE");

    const gh = await okta.sign({ aud: "sts.amazonaws.com" });
    const github = await diagnoseToken(gh, {
      issuers: [oktaEntry({ flavor: "github-actions", audience: "https://gate.example.com" })],
      clock,
    });
    expectCause(github, "wrong-audience", 'core.getIDToken("https://gate.example.com")');
  });

  it("clock-skew: iat and nbf in the future, with the size of the difference", async () => {
    const token = await entra.sign(entraClaims({ iat: NOW + 600, nbf: NOW + 600, exp: NOW + 4200 }));
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock, clockSkewSeconds: 30 });
    expectCause(d, "clock-skew", "A clock is off by about 10 min");
    expect(check(d, "iat")).toMatchObject({ status: "fail", cause: "clock-skew" });
    expect(check(d, "nbf")).toMatchObject({ status: "fail", cause: "clock-skew" });
    expect(d.causes).toEqual(["clock-skew"]);
    expect(d.refusal?.code).toBe("ERR_TOKEN_NOT_YET_VALID");
  });

  it("clock-skew vs expired: just outside the skew is a clock; long ago is a plain expiry", async () => {
    const justNow = await entra.sign(entraClaims({ iat: NOW - 3690, exp: NOW - 90 }));
    const skewed = await diagnoseToken(justNow, { issuers: [entraV2()], clock, clockSkewSeconds: 30 });
    expectCause(skewed, "clock-skew", "A clock is off by about 90 s");
    expect(skewed.causes).not.toContain("expired");

    const old = await entra.sign(entraClaims({ iat: NOW - 7200, nbf: NOW - 7200, exp: NOW - 3600 }));
    const expired = await diagnoseToken(old, { issuers: [entraV2()], clock, clockSkewSeconds: 30 });
    expectCause(expired, "expired", "Get a new token");
    expect(expired.causes).not.toContain("clock-skew");
    expect(check(expired, "exp").detail).toContain("60 min ago");
    expect(expired.refusal?.code).toBe("ERR_TOKEN_EXPIRED");

    // Within the skew: accepted.
    const edge = await entra.sign(entraClaims({ iat: NOW - 600, exp: NOW - 10 }));
    expect((await diagnoseToken(edge, { issuers: [entraV2()], clock, clockSkewSeconds: 30 })).ok).toBe(true);
  });

  it("unknown-issuer: lists the trusted ones and recognizes near misses", async () => {
    const token = await okta.sign({ iss: "https://evil.example.com" });
    const issuers = [entraV2(), oktaEntry()];
    const d = await diagnoseToken(token, { issuers, clock });
    expectCause(d, "unknown-issuer", "add this one to identity.issuers");
    expect(check(d, "issuer").detail).toContain(`"Entra ID" ("${V2}")`);
    expect(check(d, "issuer").detail).toContain('"Okta"');
    expect(check(d, "signature").status).toBe("skip");

    const slash = await okta.sign({ iss: "https://acme.okta.com/oauth2/default/" });
    const nearMiss = await diagnoseToken(slash, { issuers, clock });
    expectCause(nearMiss, "unknown-issuer", 'exactly "https://acme.okta.com/oauth2/default/"');

    const org = await okta.sign({ iss: "https://acme.okta.com" });
    const orgServer = await diagnoseToken(org, { issuers, clock });
    expectCause(orgServer, "unknown-issuer", "custom authorization server");

    const tenant = "11111111-2222-3333-4444-555555555555";
    const other = await entra.sign(
      entraClaims({ iss: `https://login.microsoftonline.com/${tenant}/v2.0`, tid: tenant }),
    );
    const otherTenant = await diagnoseToken(other, { issuers, clock });
    expectCause(otherTenant, "unknown-issuer", `sign in to tenant ${TENANT}`);
    expect(check(otherTenant, "issuer").detail).toContain(`tenant ${tenant}`);

    const none = await okta.sign({ iss: undefined });
    expectCause(
      await diagnoseToken(none, { issuers, clock }),
      "unknown-issuer",
      "every access token names its issuer",
    );
  });

  it("unknown-kid: a kid not in the issuer's key set, with rollover and wrong tenant suggested", async () => {
    const token = await stranger.sign(entraClaims());
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock });
    expectCause(d, "unknown-kid", "rolled its keys over just now");
    expect(d.findings[0]?.fix).toContain("another tenant");
    expect(check(d, "key").detail).toContain('kid "other-k9" is not in the current key set');
    expect(check(d, "key").detail).toContain('"entra-k1"');
    expect(check(d, "signature").status).toBe("skip");
    expect(check(d, "audience").status).toBe("pass");
    expect(d.refusal?.code).toBe("ERR_TOKEN_UNKNOWN_KEY");
  });

  it("requirement-unmet: every requirement listed, each pass or fail", async () => {
    const token = await entra.sign(entraClaims({ amr: ["pwd"], acrs: ["c1"] }));
    const issuers = [
      entraV2({ require: { tid: TENANT, acrs: { contains: "c1" }, amr: { anyOf: ["hwk", "fido"] } } }),
    ];
    const d = await diagnoseToken(token, { issuers, clock });
    expectCause(d, "requirement-unmet", "security key or passkey");
    expect(check(d, "require:tid").status).toBe("pass");
    expect(check(d, "require:acrs").status).toBe("pass");
    expect(check(d, "require:amr")).toMatchObject({
      status: "fail",
      title: 'Requirement amr is or contains any of "hwk", "fido"',
    });
    expect(check(d, "require:amr").detail).toContain('["pwd"]');
    expect(d.refusal?.code).toBe("ERR_TOKEN_REQUIREMENT");
    await agreesWithVerifier(token, issuers, d);
  });

  it("groups-overage: refused when the entry refuses it, a warning otherwise", async () => {
    const token = await entra.sign(
      entraClaims({ _claim_names: { groups: "src1" }, _claim_sources: { src1: {} } }),
    );
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock });
    expectCause(d, "groups-overage", "assign app roles");
    expect(d.refusal?.code).toBe("ERR_TOKEN_CLAIMS");

    const tolerated = await diagnoseToken(token, {
      issuers: [entraV2({ refuseGroupsOverage: false })],
      clock,
    });
    expect(tolerated.ok).toBe(true);
    expect(check(tolerated, "groups-overage")).toMatchObject({ status: "warn", cause: "groups-overage" });
  });

  it("issuer-unreachable: keys that cannot be fetched are reported clearly", async () => {
    const token = await entra.sign(entraClaims());
    const issuers = [entraV2({ jwks: { url: "http://127.0.0.1:1/keys", timeoutDuration: 2000 } })];
    const d = await diagnoseToken(token, { issuers, clock });
    expectCause(d, "issuer-unreachable", 'cosmosgate doctor issuer "Entra ID"'.replace(/"/g, "'"));
    expect(check(d, "key").detail).toContain("http://127.0.0.1:1/keys");
    expect(check(d, "audience").status).toBe("pass");
    expect(d.refusal?.code).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
  });
});

describe("diagnoseToken: walking on, input, several entries", () => {
  it("reports every problem at once: bad signature, expiry and audience", async () => {
    const token = await entra.sign(entraClaims({ aud: "api://billing", iat: NOW - 7200, exp: NOW - 3600 }));
    const [h, , s] = token.split(".");
    const tampered = `${h}.${encodeSegment(entraClaims({ aud: "api://billing", iat: NOW - 7200, exp: NOW - 3600, oid: "admin" }))}.${s}`;
    const d = await diagnoseToken(tampered, { issuers: [entraV2()], clock });
    expect(d.causes).toEqual(["bad-signature", "expired", "wrong-audience"]);
    expect(check(d, "signature").status).toBe("fail");
    expect(check(d, "exp").status).toBe("fail");
    expect(check(d, "audience").status).toBe("fail");
  });

  it("garbage, JWEs and oversize input fail the shape check without revealing the input", async () => {
    for (const [input, text] of [
      ["not a token at all", "not a JWT"],
      ["aaaa.bbbb.cccc.dddd.eeee", "encrypted token (JWE)"],
      ["eyJub3QganNvbg.eyJ4IjoxfQ.c2ln", "not base64url-encoded JSON"],
      ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", "GitHub access token"],
      ["", "no token"],
      ["a".repeat(20_000), "at most"],
    ] as const) {
      const d = await diagnoseToken(input, { issuers: [entraV2()], clock });
      expect(d.ok).toBe(false);
      expect(d.causes[0]).toBe("malformed");
      expect(check(d, "shape").detail).toContain(text);
      expect(d.checks.at(-1)?.id).toBe("verdict");
      if (input.length > 12) expect(JSON.stringify(d)).not.toContain(input);
    }
  });

  it("flags an ID token sent instead of an access token", async () => {
    const token = await entra.sign(entraClaims({ nonce: "n-1", scp: undefined, roles: undefined }));
    const d = await diagnoseToken(token, { issuers: [entraV2()], clock });
    expect(check(d, "shape")).toMatchObject({ status: "warn", cause: "id-token" });
    expect(d.findings[0]?.fix).toContain("not the id_token");
  });

  it("several entries for one issuer: the first that accepts is reported, the others summarized", async () => {
    const token = await okta.sign({ repository: "acme/api" });
    const issuers = [
      oktaEntry({ name: "shop", require: { repository: "acme/shop" } }),
      oktaEntry({ name: "api", require: { repository: "acme/api" } }),
    ];
    const d = await diagnoseToken(token, { issuers, clock });
    expect(d.ok).toBe(true);
    expect(d.entry).toBe("api");
    expect(check(d, "issuer").detail).toContain('"shop" (refuses: Requirement repository equals "acme/shop"');

    const nobody = await okta.sign({ repository: "acme/web" });
    const refused = await diagnoseToken(nobody, { issuers, clock });
    expectCause(refused, "requirement-unmet", "widen the entry");
    expect(refused.entry).toBe("shop");
  });

  it("a bad issuer configuration throws, as it stops the gateway", async () => {
    await expect(
      diagnoseToken("x.y.z", { issuers: [oktaEntry({ algorithms: ["HS256"] })], clock }),
    ).rejects.toThrow(TypeError);
  });
});

describe("diagnoseIssuer", () => {
  it("reads a JWKS file and lists its keys", async () => {
    const d = await diagnoseIssuer(entraV2());
    expect(d.ok).toBe(true);
    expect(d.keys).toEqual([{ kid: "entra-k1", kty: "RSA", alg: "RS256", use: "sig" }]);
    expect(d.checks.map((c) => [c.id, c.status])).toEqual([
      ["discovery", "skip"],
      ["jwks", "pass"],
      ["load", "pass"],
    ]);
  });

  it("reports discovery, issuer match, JWKS and timings through fetch", async () => {
    const jwks = entra.jwks;
    const fake: typeof fetch = async (url) => {
      const u = String(url);
      if (u.endsWith("/.well-known/openid-configuration")) {
        return Response.json({ issuer: "https://idp.example.com", jwks_uri: "https://idp.example.com/keys" });
      }
      if (u === "https://idp.example.com/keys") return Response.json(jwks);
      return new Response("nope", { status: 404 });
    };
    const entry: IssuerConfig = {
      issuer: "https://idp.example.com",
      audience: "a",
      jwks: { discovery: true },
    };
    const d = await diagnoseIssuer(entry, { fetch: fake });
    expect(d.checks.slice(0, 4).map((c) => [c.id, c.status])).toEqual([
      ["discovery", "pass"],
      ["discovery-issuer", "pass"],
      ["jwks-uri", "pass"],
      ["jwks", "pass"],
    ]);
    expect(d.checks[0]?.detail).toMatch(/→ HTTP 200 in \d+ ms/);
    expect(d.jwksUri).toBe("https://idp.example.com/keys");
    expect(d.keys[0]?.kid).toBe("entra-k1");

    const mismatch = await diagnoseIssuer({ ...entry, issuer: "https://idp.example.com/" }, { fetch: fake });
    expect(mismatch.ok).toBe(false);
    expect(mismatch.causes).toEqual(["discovery-mismatch"]);

    const down: typeof fetch = async () => new Response("busy", { status: 503 });
    const unavailable = await diagnoseIssuer(entry, { fetch: down });
    expect(unavailable.ok).toBe(false);
    expect(unavailable.checks[0]).toMatchObject({
      id: "discovery",
      status: "fail",
      cause: "issuer-unreachable",
    });
    expect(unavailable.checks[0]?.detail).toContain("HTTP 503");
  });

  it("reports a missing JWKS file", async () => {
    const d = await diagnoseIssuer(entraV2({ jwks: { file: join(dir, "missing.json") } }));
    expect(d.ok).toBe(false);
    expect(d.causes).toEqual(["issuer-unreachable"]);
  });
});
