import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import { captureIo } from "../src/cli/testing.js";
import { encodeSegment } from "../src/identity/tokens/testing.js";
import { runCli } from "./helpers/cli.js";
import { type FakeIdp, startFakeIdp } from "./helpers/fakeIdp.js";

const now = () => Math.floor(Date.now() / 1000);

let idp: FakeIdp;
let dir: string;
let config: string;

const POLICY = `roles:
  readers:
    - {allow: [read, query], on: /dbs/shop}
  analysts-role:
    - {allow: [read], on: /dbs/reports}
members:
  readers: [group:Orders.Read]
  analysts-role: [group:analysts]
`;

/** A cosmosgate.yaml trusting the fake IdP as Entra ID (v2.0 only), Okta and GitHub Actions. */
function writeConfig(where: string): string {
  mkdirSync(where, { recursive: true });
  const file = join(where, "cosmosgate.yaml");
  writeFileSync(
    file,
    `stateDir: ./state
policy: ./policy.yaml
identity:
  issuers:
    - preset: entra
      tenant: ${idp.tenant}
      audience: [${idp.clientId}, ${idp.appIdUri}]
      authority: ${idp.origin}
    - preset: okta
      url: ${idp.oktaIssuer}
      audience: api://cosmosgate
    - preset: github-actions
      issuer: ${idp.githubIssuer}
      audience: https://github.com/acme
      repository: acme/shop
`,
  );
  writeFileSync(join(where, "policy.yaml"), POLICY);
  return file;
}

/** `cosmosgate doctor ARGS --config FILE`, in process, through the real command line. */
async function doctor(args: string[], file = config) {
  const io = captureIo();
  const code = await main(["node", "cosmosgate", "doctor", ...args, "--config", file], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

async function doctorJson(args: string[], file = config) {
  const res = await doctor([...args, "--json"], file);
  return { ...res, json: JSON.parse(res.stdout) };
}

/** The real `cosmosgate` binary, with `input` on its stdin. */
const spawnCli = (args: string[], input: string) => runCli(args, { input, timeoutMs: 30_000 });

const NO_STACK = /\n\s+at .+:\d+:\d+/;

beforeAll(async () => {
  idp = await startFakeIdp();
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-doctor-"));
  config = writeConfig(join(dir, "main"));
});

afterAll(async () => {
  await idp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("cosmosgate doctor token: an accepted token", () => {
  it("walks every check, shows subject, groups and roles, exits 0 and never prints the token", async () => {
    const token = await idp.entraV2Token({ roles: ["Orders.Read"] });
    const res = await doctor(["token", token]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    for (const line of [
      "✓ Token shape",
      "✓ Trusted issuer",
      "✓ Algorithm allowed",
      "✓ Signing key (kid)",
      "✓ Signature",
      "✓ Expiry (exp)",
      "✓ Audience",
      `✓ Requirement tid equals "${idp.tenant}"`,
      "✓ Policy roles",
      "✓ Gateway verdict",
    ]) {
      expect(res.stdout).toContain(line);
    }
    expect(res.stdout).toMatch(/\nSubject +[0-9a-f-]{36} \(user, Ada Lovelace\)\n/);
    expect(res.stdout).toMatch(/\nGroups +Orders\.Read\n/);
    expect(res.stdout).toMatch(/\nRoles +readers\n/);
    expect(res.stdout).toContain("Result: ACCEPTED");
    expect(res.stdout).toContain(`Token ${token.slice(0, 12)}…`);
    expect(res.stdout + res.stderr).not.toContain(token.slice(0, 13));
    expect(res.stdout).toContain("the gateway's own issuer is not checked: no gateway state");

    const { code, json } = await doctorJson(["token", token]);
    expect(code).toBe(0);
    expect(json).toMatchObject({
      ok: true,
      causes: [],
      entry: `Entra ID (${idp.tenant})`,
      principal: { kind: "user", groups: ["Orders.Read"], roles: ["readers"], issuer: idp.entraV2Issuer },
      token: { prefix: token.slice(0, 12), length: token.length },
    });
    expect(json.principal.sub).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(json)).not.toContain(token.slice(0, 13));
  });

  it("accepts a service principal of GitHub Actions and Okta groups mapped to roles", async () => {
    const gh = await doctorJson(["token", await idp.githubToken()]);
    expect(gh.code).toBe(0);
    expect(gh.json.principal).toMatchObject({
      sub: "repo:acme/shop:environment:production",
      kind: "service",
      roles: [],
    });
    expect(gh.json.checks.find((c: { id: string }) => c.id === "roles")).toMatchObject({
      status: "warn",
      cause: "no-roles",
    });

    const okta = await doctorJson(["token", await idp.oktaToken()]);
    expect(okta.code).toBe(0);
    expect(okta.json.principal).toMatchObject({
      sub: "ada@example.com",
      groups: ["Everyone", "analysts"],
      roles: ["analysts-role"],
    });
  });

  it("takes the token as Bearer, in the Cosmos DB form, quoted, or after Authorization:", async () => {
    const token = await idp.oktaToken();
    for (const form of [
      `Bearer ${token}`,
      `type=aad&ver=1.0&sig=${token}`,
      encodeURIComponent(`type=aad&ver=1.0&sig=${token}`),
      `"${token}"`,
      `Authorization: Bearer ${token}`,
    ]) {
      const res = await doctor(["token", form]);
      expect({ form: form.slice(0, 20), code: res.code }).toEqual({ form: form.slice(0, 20), code: 0 });
    }
    const split = await doctor(["token", "Bearer", token]);
    expect(split.code).toBe(0);
  });

  it("includes the gateway's own issuer when its state exists: an exchanged token names the federated issuer", async () => {
    const where = join(dir, "own");
    const file = writeConfig(where);
    mkdirSync(join(where, "state"), { recursive: true });
    const { openIdentityStore } = await import("../src/store/identityStore.js");
    const { createKeyring } = await import("../src/identity/tokens/keyring.js");
    const { createTokenIssuer } = await import("../src/identity/tokens/issue.js");
    const store = openIdentityStore(join(where, "state", "state.db"));
    const keyring = createKeyring({ store, clock: Date.now });
    await keyring.ensure();
    const issued = await createTokenIssuer({
      keyring,
      issuer: "http://localhost:8080",
      audience: "https://localhost:8081",
      ttlMs: 300_000,
      clock: Date.now,
    }).issueExchanged({
      sub: "ada@example.com",
      groups: ["analysts"],
      kind: "user",
      federatedIssuer: idp.oktaIssuer,
      notAfter: now() + 3600,
    });
    keyring.stop();
    store.close();

    const { code, json } = await doctorJson(["token", issued.access_token], file);
    expect(code, JSON.stringify(json.checks, null, 1)).toBe(0);
    expect(json.entry).toBe("cosmosgate");
    expect(json.principal).toMatchObject({
      sub: "ada@example.com",
      issuer: idp.oktaIssuer,
      tokenIssuer: "http://localhost:8080",
      roles: ["analysts-role"],
    });
    expect(json.checks.find((c: { id: string }) => c.id === "typ")).toMatchObject({ status: "pass" });
    expect(json.notes).toEqual([]);
  });
});

interface CauseCase {
  cause: string;
  fix: string;
  token: () => Promise<string>;
  before?: () => void;
  after?: () => void;
}

const CAUSES: CauseCase[] = [
  {
    cause: "graph-token",
    fix: "request your API's scope api://cosmosgate-test/.default",
    token: () => idp.graphToken(),
  },
  {
    cause: "entra-version-mismatch",
    fix: "Set accessTokenAcceptedVersion: 2 in its app manifest",
    token: () => idp.entraV1Token(),
  },
  {
    cause: "hmac-algorithm",
    fix: "An asymmetric algorithm (e.g. RS256 or ES256) is expected",
    token: () =>
      new SignJWT({
        iss: idp.entraV2Issuer,
        aud: idp.clientId,
        oid: "x",
        tid: idp.tenant,
        iat: now(),
        exp: now() + 600,
      })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .sign(new TextEncoder().encode("an HMAC secret that is long enough!!")),
  },
  {
    cause: "unsigned-token",
    fix: "cosmosgate never accepts unsigned tokens",
    token: async () =>
      `${encodeSegment({ alg: "none", typ: "JWT" })}.${encodeSegment({ iss: idp.oktaIssuer, aud: "api://cosmosgate", sub: "admin", iat: now(), exp: now() + 600 })}.`,
  },
  {
    cause: "wrong-audience",
    fix: "Request a token for the gateway's API, scope api://cosmosgate-test/.default",
    token: () => idp.entraV2Token({ aud: "api://billing" }),
  },
  {
    cause: "clock-skew",
    fix: "A clock is off by about 10 min",
    token: () => idp.entraV2Token({ iat: now() + 600, nbf: now() + 600, exp: now() + 4200 }),
  },
  {
    cause: "expired",
    fix: "Get a new token: access tokens live minutes to hours",
    token: () => idp.oktaToken({ iat: now() - 10_800, nbf: now() - 10_800, exp: now() - 7200 }),
  },
  {
    cause: "unknown-issuer",
    fix: "add this one to identity.issuers in cosmosgate.yaml",
    token: () =>
      idp.sign({
        iss: "https://idp.evil.example",
        aud: "api://cosmosgate",
        sub: "x",
        iat: now(),
        exp: now() + 600,
      }),
  },
  {
    cause: "unknown-kid",
    fix: "If the issuer rolled its keys over just now, retry in a minute",
    token: async () => {
      const token = await idp.oktaToken();
      const [, body, sig] = token.split(".");
      return `${encodeSegment({ alg: "RS256", typ: "JWT", kid: "kid-from-elsewhere" })}.${body}.${sig}`;
    },
  },
  {
    cause: "requirement-unmet",
    fix: 'Run the workflow where "GitHub Actions (acme/shop)" allows it',
    token: () => idp.githubToken({ repository: "evil/shop", sub: "repo:evil/shop:ref:refs/heads/main" }),
  },
  {
    cause: "groups-overage",
    fix: "assign app roles to the groups",
    token: () =>
      idp.entraV2Token({
        _claim_names: { groups: "src1" },
        _claim_sources: { src1: { endpoint: "https://graph.microsoft.com/v1.0/users/x/getMemberObjects" } },
      }),
  },
  {
    cause: "issuer-unreachable",
    fix: "`cosmosgate doctor issuer 'Okta (",
    token: () => idp.oktaToken(),
    before: () => idp.setMode("refuse"),
    after: () => idp.setMode("up"),
  },
];

describe("cosmosgate doctor token: each named cause with its fix, in text and JSON", () => {
  it.each(CAUSES)("$cause", async ({ cause, fix, token, before, after }) => {
    const jwt = await token();
    before?.();
    try {
      const res = await doctor(["token", jwt]);
      expect(res.code, res.stdout).toBe(1);
      expect(res.stdout).toContain(`Cause: ${cause} — `);
      expect(res.stdout).toMatch(new RegExp(`\\nFix: +[^\\n]*${fix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      expect(res.stdout).toContain("Result: REFUSED — the gateway answers 401");
      expect(res.stderr).toContain("the gateway would refuse this token");
      expect(res.stdout + res.stderr).not.toContain(jwt.slice(0, 13));
      expect(res.stdout).toMatch(/\n {2}✗ /);

      const { code, json } = await doctorJson(["token", jwt]);
      expect(code).toBe(1);
      expect(json.ok).toBe(false);
      expect(json.causes).toContain(cause);
      const finding = json.findings.find((f: { cause: string }) => f.cause === cause);
      expect(finding.fix).toContain(fix);
      expect(json.refusal.code).toMatch(/^ERR_TOKEN_/);
      expect(json.checks.at(-1)).toMatchObject({ id: "verdict", status: "fail" });
    } finally {
      after?.();
    }
  });
});

describe("cosmosgate doctor issuer", () => {
  it("checks discovery and the key set of a reachable issuer, by name or by URL", async () => {
    const res = await doctor(["issuer", `Okta (${idp.oktaIssuer})`]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(
      new RegExp(
        `✓ Discovery document +GET ${idp.oktaIssuer}/\\.well-known/openid-configuration → HTTP 200 in \\d+ ms`,
      ),
    );
    expect(res.stdout).toContain(`✓ Issuer matches      the document names "${idp.oktaIssuer}"`);
    expect(res.stdout).toContain(`✓ jwks_uri            ${idp.oktaIssuer}/v1/keys`);
    expect(res.stdout).toContain(`1 key(s): "${idp.kid}" (RSA, RS256, sig)`);
    expect(res.stdout).toMatch(/Result: REACHABLE \(1 key\(s\), \d+ ms\)/);

    const byUrl = await doctorJson(["issuer", idp.githubIssuer]);
    expect(byUrl.code).toBe(0);
    expect(byUrl.json.ok).toBe(true);
    expect(byUrl.json.issuers).toHaveLength(1);
    expect(byUrl.json.issuers[0]).toMatchObject({
      name: "GitHub Actions (acme/shop)",
      discoveryUrl: `${idp.githubIssuer}/.well-known/openid-configuration`,
      jwksUri: `${idp.githubIssuer}/.well-known/jwks`,
      keys: [{ kid: idp.kid, alg: "RS256", kty: "RSA" }],
    });

    const all = await doctorJson(["issuer"]);
    expect(all.code).toBe(0);
    expect(all.json.issuers.map((i: { flavor: string }) => i.flavor)).toEqual([
      "entra-v2",
      "okta",
      "github-actions",
    ]);
  });

  it("reports an unreachable issuer with exit 1, and an unknown name with the names configured", async () => {
    idp.setMode("refuse");
    try {
      const res = await doctor(["issuer", idp.oktaIssuer]);
      expect(res.code).toBe(1);
      expect(res.stdout).toContain("✗ Discovery document");
      expect(res.stdout).toContain("Cause: issuer-unreachable");
      expect(res.stdout).toContain("Result: UNREACHABLE");
      const { code, json } = await doctorJson(["issuer", idp.oktaIssuer]);
      expect(code).toBe(1);
      expect(json.ok).toBe(false);
      expect(json.issuers[0].causes).toEqual(["issuer-unreachable"]);
    } finally {
      idp.setMode("up");
    }
    idp.setMode("error");
    try {
      const res = await doctor(["issuer", idp.oktaIssuer]);
      expect(res.code).toBe(1);
      expect(res.stdout).toContain("→ HTTP 503");
    } finally {
      idp.setMode("up");
    }

    const unknown = await doctor(["issuer", "Auth0"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no configured issuer is named "Auth0"');
    expect(unknown.stderr).toContain(`Okta (${idp.oktaIssuer})`);
    expect(unknown.stderr).toContain("GitHub Actions (acme/shop)");
  });
});

describe("cosmosgate doctor: bad input and help", () => {
  it("a garbage token, empty stdin and a refused header form give a clear message and exit code, no stack trace", async () => {
    const garbage = await spawnCli(["doctor", "token", "hello-world", "--config", config], "");
    expect(garbage.code).toBe(1);
    expect(garbage.stdout).toContain("✗ Token shape");
    expect(garbage.stdout).toContain("not a JWT");
    expect(garbage.stdout).toContain("Cause: malformed");
    expect(garbage.stderr).toContain("cosmosgate: the gateway would refuse this token");
    expect(garbage.stdout + garbage.stderr).not.toMatch(NO_STACK);

    const empty = await spawnCli(["doctor", "token", "--config", config], "  \n");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("cosmosgate: no token on stdin");
    expect(empty.stdout + empty.stderr).not.toMatch(NO_STACK);

    const master = await doctor(["token", "type=master&ver=1.0&sig=abc"]);
    expect(master.code).toBe(1);
    expect(master.stderr).toContain("Account keys (Authorization: type=master) are not accepted");

    const noConfig = await doctor(["token", "x.y.z"], join(dir, "missing.yaml"));
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain("does not exist");
  });

  it("reads the token from stdin with - (and without an argument when stdin is a pipe)", async () => {
    const token = await idp.oktaToken();
    const dash = await spawnCli(["doctor", "token", "-", "--config", config, "--json"], `Bearer ${token}\n`);
    expect(dash.code, dash.stderr).toBe(0);
    expect(JSON.parse(dash.stdout)).toMatchObject({ ok: true, principal: { sub: "ada@example.com" } });
    const piped = await spawnCli(["doctor", "token", "--config", config], `${token}\n`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toContain("Result: ACCEPTED");
    expect(piped.stdout + piped.stderr).not.toContain(token.slice(0, 13));
  });

  it("prints help with examples for both commands", async () => {
    for (const sub of ["token", "issuer"]) {
      const io = captureIo();
      const code = await main(["node", "cosmosgate", "doctor", sub, "--help"], io);
      expect(code).toBe(0);
      expect(io.stdout).toContain(`Usage: cosmosgate doctor ${sub}`);
      expect(io.stdout).toContain("Examples:");
    }
    const io = captureIo();
    await main(["node", "cosmosgate", "--help"], io);
    expect(io.stdout).toContain("doctor");
  });
});
