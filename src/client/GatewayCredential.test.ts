import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TokenCredential } from "@azure/core-auth";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readCredentials, type StoredSession, writeCredentials } from "./credentialsFile.js";
import { GatewayCredentialError } from "./errors.js";
import { decodeClaims, GatewayCredential } from "./GatewayCredential.js";
import { type FakeGateway, fakeJwt, startFakeGateway } from "./testing.js";

let dir: string;
let file: string;
let gw: FakeGateway;
let now: number;
const clock = () => now;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-cred-"));
  file = join(dir, "cosmosgate", "credentials.json");
  gw = await startFakeGateway();
  now = Date.now();
});
afterEach(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Stores a session whose access token has `leftMs` to live and whose refresh token the fake accepts. */
async function store(leftMs: number, gateway = gw.url, extra: Record<string, StoredSession> = {}) {
  const refreshToken = `rt-initial-${gateway}`;
  gw.liveRefreshTokens.add(refreshToken);
  const s: StoredSession = {
    gateway,
    tokenEndpoint: `${gw.url}/oauth/token`,
    revocationEndpoint: `${gw.url}/oauth/revoke`,
    accessToken: fakeJwt({ sub: "ada", n: 0 }),
    expiresAt: now + leftMs,
    refreshToken,
  };
  await writeCredentials(file, { version: 1, gateways: { ...extra, [gateway]: s } });
  return s;
}

const credential = (opts: { gateway?: string; env?: Record<string, string> } = {}) =>
  new GatewayCredential({
    file,
    clock,
    env: opts.env ?? {},
    ...(opts.gateway ? { gateway: opts.gateway } : {}),
  });

describe("GatewayCredential", () => {
  it("is an Azure TokenCredential", () => {
    const c: TokenCredential = credential();
    expect(typeof c.getToken).toBe("function");
  });

  it("returns the stored access token while more than 2 minutes remain, without calling the gateway", async () => {
    const s = await store(2 * 60_000 + 5000);
    const c = credential();
    const t = await c.getToken("https://cosmos.azure.com/.default");
    expect(t).toEqual({
      token: s.accessToken,
      expiresOnTimestamp: s.expiresAt,
      refreshAfterTimestamp: s.expiresAt - 120_000,
      tokenType: "Bearer",
    });
    expect((await c.getToken([])).token).toBe(s.accessToken);
    expect(gw.tokenRequests).toHaveLength(0);
  });

  it("refreshes below 2 minutes, stores the rotated refresh token and the data plane", async () => {
    const s = await store(2 * 60_000 - 1000);
    const t = await credential().getToken("https://cosmos.azure.com/.default");
    expect(gw.tokenRequests).toEqual([
      { grant_type: "refresh_token", refresh_token: s.refreshToken, client_id: "cosmosgate-cli" },
    ]);
    expect(decodeClaims(t.token)).toMatchObject({ sub: "ada", n: 1 });
    expect(t.expiresOnTimestamp).toBe(now + 600_000);
    const stored = (await readCredentials(file)).gateways[gw.url];
    expect(stored.accessToken).toBe(t.token);
    expect(stored.refreshToken).not.toBe(s.refreshToken);
    expect(gw.liveRefreshTokens.has(stored.refreshToken)).toBe(true);
    expect(stored.dataPlane).toBe("https://localhost:8081");
    expect(stored.expiresAt).toBe(now + 600_000);
  });

  it("refreshes an expired token, and uses the new one afterwards without asking again", async () => {
    await store(-60_000);
    const c = credential();
    const first = await c.getToken("s");
    now += 5 * 60_000;
    expect((await c.getToken("s")).token).toBe(first.token);
    expect(gw.tokenRequests).toHaveLength(1);
    now += 4 * 60_000; // 1 min left
    const third = await c.getToken("s");
    expect(third.token).not.toBe(first.token);
    expect(gw.tokenRequests).toHaveLength(2);
    // the second refresh presented the refresh token the first one stored
    expect(gw.tokenRequests[1].refresh_token).not.toBe(gw.tokenRequests[0].refresh_token);
  });

  it("shares one refresh among concurrent calls", async () => {
    await store(30_000);
    gw.mode.tokenDelayMs = 100;
    const c = credential();
    const tokens = await Promise.all(Array.from({ length: 8 }, () => c.getToken("s")));
    expect(gw.tokenRequests).toHaveLength(1);
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
  });

  it("never redeems one refresh token twice across instances (the file lock)", async () => {
    await store(30_000);
    gw.mode.tokenDelayMs = 100;
    const tokens = await Promise.all([
      credential().getToken("s"),
      credential().getToken("s"),
      credential().getToken("s"),
    ]);
    expect(gw.tokenRequests).toHaveLength(1);
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
  });

  it("says to sign in when there is no session", async () => {
    const error = await credential()
      .getToken("s")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayCredentialError);
    expect(error).toMatchObject({ code: "ERR_NOT_SIGNED_IN", name: "CredentialUnavailableError" });
    expect((error as Error).message).toContain("run `cosmosgate login --gateway URL` first");
    await store(600_000);
    await expect(credential({ gateway: "https://other.example.com" }).getToken("s")).rejects.toThrow(
      /not signed in to https:\/\/other\.example\.com.*cosmosgate login --gateway https:\/\/other\.example\.com/,
    );
  });

  it("says to sign in again when the session ended (invalid_grant)", async () => {
    const s = await store(60_000);
    gw.liveRefreshTokens.delete(s.refreshToken); // revoked at the gateway
    const error = await credential()
      .getToken("s")
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "ERR_SESSION_ENDED",
      name: "AuthenticationRequiredError",
      oauthError: "invalid_grant",
    });
    expect((error as Error).message).toMatch(/sign in again: cosmosgate login/);
    // nothing is stored over the ended session, and no token leaks into the message
    expect((await readCredentials(file)).gateways[gw.url].refreshToken).toBe(s.refreshToken);
    expect((error as Error).message).not.toContain(s.refreshToken);
  });

  it("keeps using a still-valid token when the gateway is briefly unreachable; fails once it expired", async () => {
    const s = await store(60_000);
    gw.mode.tokenFailure = { status: 503, error: "temporarily_unavailable" };
    const c = credential();
    expect((await c.getToken("s")).token).toBe(s.accessToken);
    expect(gw.tokenRequests).toHaveLength(1);
    expect((await c.getToken("s")).token).toBe(s.accessToken); // within the retry pause: no new request
    expect(gw.tokenRequests).toHaveLength(1);
    now += 61_000;
    await expect(c.getToken("s")).rejects.toMatchObject({ code: "ERR_TOKEN_ENDPOINT" });
    gw.mode.tokenFailure = undefined;
    await gw.close();
    await expect(c.getToken("s")).rejects.toThrow(/cannot reach the token endpoint/);
  });

  it("chooses the gateway: the option, COSMOSGATE_GATEWAY, the only one, else asks", async () => {
    const other: StoredSession = {
      gateway: "https://other.example.com",
      tokenEndpoint: "https://other.example.com/oauth/token",
      accessToken: "other-token",
      expiresAt: now + 600_000,
      refreshToken: "x",
    };
    await store(600_000, gw.url, { [other.gateway]: other });
    await expect(credential().getToken("s")).rejects.toMatchObject({
      code: "ERR_GATEWAY_AMBIGUOUS",
      name: "CredentialUnavailableError",
    });
    expect((await credential({ gateway: "https://other.example.com/" }).getToken("s")).token).toBe(
      "other-token",
    );
    expect(
      (await credential({ env: { COSMOSGATE_GATEWAY: "https://other.example.com" } }).getToken("s")).token,
    ).toBe("other-token");
    expect((await credential({ gateway: gw.url }).session()).gateway).toBe(gw.url);
  });

  it.skipIf(process.platform === "win32")("refuses a credentials file others can read", async () => {
    await store(600_000);
    chmodSync(file, 0o644);
    await expect(credential().getToken("s")).rejects.toThrow(`chmod 600 ${file}`);
  });

  it("honours an abort signal while waiting for a refresh", async () => {
    await store(30_000);
    gw.mode.tokenDelayMs = 300;
    const c = credential();
    const controller = new AbortController();
    const pending = c.getToken("s", { abortSignal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    // the shared refresh itself completes and serves the next caller
    expect(decodeClaims((await c.getToken("s")).token)).toMatchObject({ n: 1 });
    expect(gw.tokenRequests).toHaveLength(1);
  });
});
