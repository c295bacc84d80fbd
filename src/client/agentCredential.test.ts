import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentCredential, JWT_BEARER_ASSERTION } from "./agentCredential.js";
import { type AgentKey, createAgentKeyFile } from "./agentKey.js";
import { GatewayCredentialError } from "./errors.js";

const GATEWAY = "http://localhost:8080";
const GRANT = "gr_AAAAAAAAAAAAAAAAAAAAAA";

let dir: string;
let keyFile: string;
let key: AgentKey;
let now: number;
let calls: { url: string; body?: URLSearchParams }[];
let answer: () => { status: number; body: unknown };

/** A gateway's discovery and token endpoint, in a fetch. */
const fakeFetch: typeof fetch = async (input, init) => {
  const url = String(input);
  const body = init?.body !== undefined ? new URLSearchParams(String(init.body)) : undefined;
  calls.push({ url, ...(body ? { body } : {}) });
  if (url.endsWith("/.well-known/openid-configuration")) {
    return Response.json({
      issuer: GATEWAY,
      authorization_endpoint: `${GATEWAY}/oauth/authorize`,
      token_endpoint: `${GATEWAY}/oauth/token`,
    });
  }
  // Let a test observe concurrency: answer on the next turn.
  await new Promise((r) => setTimeout(r, 5));
  const a = answer();
  return Response.json(a.body, { status: a.status });
};

const tokenCalls = () => calls.filter((c) => c.url.endsWith("/oauth/token"));

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-agentcred-"));
  keyFile = join(dir, "bot.jwk");
  key = await createAgentKeyFile(keyFile);
  now = Date.UTC(2026, 0, 1, 12);
  calls = [];
  let n = 0;
  answer = () => ({
    status: 200,
    body: { access_token: `tok-${++n}`, token_type: "Bearer", expires_in: 600 },
  });
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const credential = (over: Partial<ConstructorParameters<typeof AgentCredential>[0]> = {}) =>
  new AgentCredential({
    gateway: GATEWAY,
    grant: GRANT,
    keyFile,
    fetch: fakeFetch,
    clock: () => now,
    ...over,
  });

describe("AgentCredential", () => {
  it("proves the key with an RFC 7523 assertion at the discovered token endpoint", async () => {
    const token = await credential().getToken("https://cosmos.azure.com/.default");
    expect(token).toMatchObject({ token: "tok-1", expiresOnTimestamp: now + 600_000, tokenType: "Bearer" });
    const [call] = tokenCalls();
    expect(call.url).toBe(`${GATEWAY}/oauth/token`);
    expect(call.body?.get("grant_type")).toBe("client_credentials");
    expect(call.body?.get("client_id")).toBe(GRANT);
    expect(call.body?.get("client_assertion_type")).toBe(JWT_BEARER_ASSERTION);
    const assertion = call.body?.get("client_assertion") as string;
    expect(decodeProtectedHeader(assertion)).toMatchObject({ alg: "ES256", kid: key.thumbprint });
    const { payload } = await jwtVerify(assertion, await importJWK(key.publicJwk, "ES256"), {
      issuer: GRANT,
      subject: GRANT,
      audience: `${GATEWAY}/oauth/token`,
      currentDate: new Date(now),
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(60);
    expect(typeof payload.jti).toBe("string");
    // Nothing of the private key is sent.
    const { d } = JSON.parse(readFileSync(keyFile, "utf8"));
    expect(call.body?.toString()).not.toContain(d);
  });

  it("caches the token until 2 minutes before expiry; concurrent calls share one request; each request has a new jti", async () => {
    const c = credential();
    const [a, b] = await Promise.all([c.getToken(), c.getToken()]);
    expect(a.token).toBe("tok-1");
    expect(b.token).toBe("tok-1");
    now += 7 * 60_000;
    expect((await c.getToken()).token).toBe("tok-1");
    now += 61_000;
    expect((await c.getToken()).token).toBe("tok-2");
    const jtis = tokenCalls().map(
      (t) =>
        JSON.parse(Buffer.from(String(t.body?.get("client_assertion")).split(".")[1], "base64url").toString())
          .jti,
    );
    expect(jtis).toHaveLength(2);
    expect(new Set(jtis).size).toBe(2);
    expect(calls.filter((x) => x.url.endsWith("openid-configuration"))).toHaveLength(1);
  });

  it("a short-lived token is refreshed at half its life", async () => {
    answer = () => ({
      status: 200,
      body: { access_token: `short-${now}`, token_type: "Bearer", expires_in: 60 },
    });
    const c = credential();
    const first = await c.getToken();
    now += 29_000;
    expect((await c.getToken()).token).toBe(first.token);
    now += 2_000;
    expect((await c.getToken()).token).not.toBe(first.token);
  });

  it("a refused grant is ERR_AGENT_REFUSED with the gateway's reason; nothing is cached", async () => {
    answer = () => ({
      status: 401,
      body: { error: "invalid_client", error_description: "grant gr_… was revoked (revoked by ada)" },
    });
    const err = await credential()
      .getToken()
      .catch((e) => e);
    expect(err).toBeInstanceOf(GatewayCredentialError);
    expect(err).toMatchObject({ code: "ERR_AGENT_REFUSED", oauthError: "invalid_client" });
    expect(err.message).toMatch(/revoked by ada/);
  });

  it("an unsafe key file is refused until it is fixed; an insecure gateway URL and missing options are refused", async () => {
    chmodSync(keyFile, 0o644);
    const c = credential();
    if (process.platform !== "win32") {
      await expect(c.getToken()).rejects.toMatchObject({ code: "ERR_AGENT_KEY" });
      expect(tokenCalls()).toHaveLength(0);
    }
    chmodSync(keyFile, 0o600);
    expect((await c.getToken()).token).toBe("tok-1");
    expect(() => new AgentCredential({ gateway: "http://gate.example.com", grant: GRANT, keyFile })).toThrow(
      GatewayCredentialError,
    );
    expect(() => new AgentCredential({ gateway: GATEWAY, grant: "", keyFile })).toThrow(/grant is required/);
    expect(() => new AgentCredential({ gateway: GATEWAY, grant: GRANT })).toThrow(/keyFile, key or agent/);
  });

  it("finds the key by agent name under $XDG_CONFIG_HOME, or takes a JWK; a given token endpoint skips discovery", async () => {
    const home = join(dir, "xdg");
    const named = await createAgentKeyFile(join(home, "cosmosgate", "agents", "report-bot.jwk"));
    const byName = credential({ keyFile: undefined, agent: "report-bot", env: { XDG_CONFIG_HOME: home } });
    expect(await byName.thumbprint()).toBe(named.thumbprint);
    const jwk = JSON.parse(readFileSync(join(home, "cosmosgate", "agents", "report-bot.jwk"), "utf8"));
    const given = credential({ keyFile: undefined, key: jwk, tokenEndpoint: `${GATEWAY}/oauth/token` });
    expect((await given.getToken()).token).toBe("tok-1");
    expect(calls.filter((x) => x.url.endsWith("openid-configuration"))).toHaveLength(0);
    const bad = credential({
      keyFile: undefined,
      key: { ...named.publicJwk, d: "x" },
      tokenEndpoint: `${GATEWAY}/oauth/token`,
    });
    await expect(bad.getToken()).rejects.toMatchObject({ code: "ERR_AGENT_KEY" });
  });
});
