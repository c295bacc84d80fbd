import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { GatewayCredentialError } from "./errors.js";
import { FederatedCredential, gitHubActionsToken } from "./federated.js";
import type { FetchLike } from "./oauth.js";

const key = new TextEncoder().encode("k".repeat(32));
const jwt = (exp: number) =>
  new SignJWT({ sub: "ci" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(key);

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

describe("FederatedCredential", () => {
  it("passes the federated token through and caches it until two minutes before its exp", async () => {
    let now = 1_800_000_000_000;
    let calls = 0;
    const credential = new FederatedCredential({
      getToken: async () => {
        calls++;
        return jwt(Math.floor(now / 1000) + 600);
      },
      clock: () => now,
    });
    const [a, b] = await Promise.all([credential.getToken(), credential.getToken()]);
    expect(calls).toBe(1);
    expect(a).toBe(b);
    expect(a.expiresOnTimestamp).toBe(now + 600_000);
    now += 470_000; // 130 s left: still used
    expect(await credential.getToken()).toBe(a);
    expect(calls).toBe(1);
    now += 20_000; // 110 s left: fetched again
    const c = await credential.getToken();
    expect(calls).toBe(2);
    expect(c.token).not.toBe(a.token);
  });

  it("exchanges at the gateway's token endpoint with the RFC 8693 parameters", async () => {
    const seen: { url: string; body: URLSearchParams }[] = [];
    const fetchStub = (async (url: string, init: RequestInit) => {
      seen.push({ url, body: new URLSearchParams(String(init.body)) });
      return jsonResponse(200, { access_token: "gw.token.sig", token_type: "Bearer", expires_in: 300 });
    }) as unknown as FetchLike;
    const credential = new FederatedCredential({
      getToken: () => jwt(Math.floor(Date.now() / 1000) + 3600),
      exchange: { gateway: "http://localhost:8080/" },
      fetch: fetchStub,
    });
    const token = await credential.getToken();
    expect(token.token).toBe("gw.token.sig");
    expect(seen).toHaveLength(1);
    expect(seen[0]?.url).toBe("http://localhost:8080/oauth/token");
    expect(seen[0]?.body.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:token-exchange");
    expect(seen[0]?.body.get("subject_token_type")).toBe("urn:ietf:params:oauth:token-type:jwt");
    expect(seen[0]?.body.get("subject_token")?.split(".")).toHaveLength(3);
  });

  it("reports the gateway's refusal with its description, and refuses non-JWT or non-expiring tokens", async () => {
    const refusing = new FederatedCredential({
      getToken: () => jwt(Math.floor(Date.now() / 1000) + 3600),
      exchange: { gateway: "http://localhost:8080" },
      fetch: (async () =>
        jsonResponse(400, {
          error: "invalid_request",
          error_description:
            'the subject_token is refused (ERR_TOKEN_REQUIREMENT): repository equals "acme/shop"',
        })) as unknown as FetchLike,
    });
    await expect(refusing.getToken()).rejects.toThrow(/ERR_TOKEN_REQUIREMENT.*acme\/shop/);

    await expect(new FederatedCredential({ getToken: () => "opaque" }).getToken()).rejects.toBeInstanceOf(
      GatewayCredentialError,
    );
    const noExp = await new SignJWT({ sub: "x" }).setProtectedHeader({ alg: "HS256" }).sign(key);
    await expect(new FederatedCredential({ getToken: () => noExp }).getToken()).rejects.toThrow(/no exp/);
    expect(
      () => new FederatedCredential({ getToken: () => "x", exchange: { gateway: "http://evil.example" } }),
    ).toThrow(/http/i);
  });
});

describe("gitHubActionsToken", () => {
  it("asks the runner's endpoint for the audience with the request token", async () => {
    let asked: { url: string; auth: string | null } | undefined;
    const value = await gitHubActionsToken("https://cosmos.example.com", {
      env: {
        ACTIONS_ID_TOKEN_REQUEST_URL: "https://pipelines.actions.example/idtoken?api-version=2.0",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: "req-token",
      },
      fetch: (async (url: string, init: RequestInit) => {
        asked = { url, auth: new Headers(init.headers).get("authorization") };
        return jsonResponse(200, { value: "a.b.c" });
      }) as unknown as FetchLike,
    });
    expect(value).toBe("a.b.c");
    expect(asked?.auth).toBe("bearer req-token");
    const url = new URL(asked?.url ?? "");
    expect(url.searchParams.get("audience")).toBe("https://cosmos.example.com");
    expect(url.searchParams.get("api-version")).toBe("2.0");
  });

  it("says what is missing outside Actions or without the permission", async () => {
    const outside = gitHubActionsToken("aud", { env: {} });
    await expect(outside).rejects.toMatchObject({
      code: "ERR_NOT_SIGNED_IN",
      name: "CredentialUnavailableError",
    });
    const forbidden = gitHubActionsToken("aud", {
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: "https://x.example/t", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "t" },
      fetch: (async () => jsonResponse(403, { message: "no" })) as unknown as FetchLike,
    });
    await expect(forbidden).rejects.toThrow(/403.*id-token permission/);
  });
});
