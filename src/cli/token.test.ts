import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readCredentials, type StoredSession, writeCredentials } from "../client/credentialsFile.js";
import { decodeClaims } from "../client/GatewayCredential.js";
import { type FakeGateway, fakeJwt, startFakeGateway } from "../client/testing.js";
import { CliError } from "./io.js";
import { captureIo } from "./testing.js";
import { registerToken, runLogout, runToken, runWhoami } from "./token.js";

let dir: string;
let file: string;
let gw: FakeGateway;
let now: number;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-token-"));
  file = join(dir, "credentials.json");
  gw = await startFakeGateway();
  now = Date.now();
});
afterEach(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

async function store(leftMs: number, gateway = gw.url): Promise<StoredSession> {
  const refreshToken = `rt-${gateway}`;
  gw.liveRefreshTokens.add(refreshToken);
  const s: StoredSession = {
    gateway,
    tokenEndpoint: `${gw.url}/oauth/token`,
    revocationEndpoint: `${gw.url}/oauth/revoke`,
    accessToken: fakeJwt({ ...gw.claims, iss: gw.url, exp: Math.floor((now + leftMs) / 1000) }),
    expiresAt: now + leftMs,
    refreshToken,
    dataPlane: "https://localhost:8081",
  };
  const content = await readCredentials(file);
  content.gateways[gateway] = s;
  await writeCredentials(file, content);
  return s;
}

const deps = () => ({ file, env: {}, clock: () => now });

describe("cosmosgate token", () => {
  it("prints the stored token and nothing else while it is fresh", async () => {
    const s = await store(5 * 60_000);
    const io = captureIo();
    await runToken({}, io, deps());
    expect(io.stdout).toBe(`${s.accessToken}\n`);
    expect(io.stderr).toBe("");
    expect(gw.tokenRequests).toHaveLength(0);
  });

  it("refreshes a token about to expire", async () => {
    await store(60_000);
    const io = captureIo();
    await runToken({ gateway: gw.url }, io, deps());
    expect(decodeClaims(io.stdout.trim())).toMatchObject({ n: 1 });
    expect(gw.tokenRequests).toHaveLength(1);
  });

  it("fails with exit 1 and the way out when not signed in or the session ended", async () => {
    const error = await runToken({}, captureIo(), deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({ exitCode: 1 });
    expect((error as Error).message).toContain("cosmosgate login --gateway URL");
    const s = await store(0);
    gw.liveRefreshTokens.delete(s.refreshToken);
    await expect(runToken({}, captureIo(), deps())).rejects.toThrow(/sign in again: cosmosgate login/);
  });
});

describe("cosmosgate whoami", () => {
  it("prints who, with which key, until when, and says it did not verify", async () => {
    await store(5 * 60_000);
    const io = captureIo();
    await runWhoami({}, io, deps());
    expect(io.stdout).toMatch(new RegExp(`gateway +${gw.url.replace(/\./g, "\\.")}\n`));
    expect(io.stdout).toMatch(/data plane +https:\/\/localhost:8081\n/);
    expect(io.stdout).toMatch(/subject +ada\n/);
    expect(io.stdout).toMatch(/groups +analysts, ops\n/);
    expect(io.stdout).toMatch(/amr +hwk, user, pin \(a device-bound hardware key\)\n/);
    expect(io.stdout).toMatch(/credential +cred-1\n/);
    expect(io.stdout).toMatch(/session +session-1\n/);
    expect(io.stdout).toMatch(/signed in +2027-01-15T08:00:00\.000Z\n/);
    expect(io.stdout).toMatch(/token expires +\S+ \(in 5 min\)\n/);
    expect(io.stdout).toContain("without verifying its signature");
    expect(gw.tokenRequests).toHaveLength(0);
  });

  it("prints JSON with --json and says when the token expired", async () => {
    await store(-60_000);
    const io = captureIo();
    await runWhoami({ json: true }, io, deps());
    expect(JSON.parse(io.stdout)).toMatchObject({
      gateway: gw.url,
      subject: "ada",
      groups: ["analysts", "ops"],
      amr: ["hwk", "user", "pin"],
      credential: "cred-1",
      session: "session-1",
      expired: true,
      verified: false,
    });
  });
});

describe("cosmosgate logout", () => {
  it("revokes the refresh token at the gateway and deletes the entry", async () => {
    const s = await store(5 * 60_000);
    await store(5 * 60_000, "https://other.example.com");
    const io = captureIo();
    await runLogout({ gateway: gw.url }, io, deps());
    expect(gw.revoked).toEqual([s.refreshToken]);
    expect(Object.keys((await readCredentials(file)).gateways)).toEqual(["https://other.example.com"]);
    expect(io.stdout).toContain(`Signed out of ${gw.url} (session revoked;`);
  });

  it("reports a failed revocation and still deletes the local session", async () => {
    await store(5 * 60_000);
    gw.mode.revokeStatus = 503;
    const io = captureIo();
    await runLogout({}, io, deps());
    expect(io.stderr).toMatch(/warning: could not revoke the session at .*answered 503/);
    expect(io.stdout).toContain("revocation FAILED");
    expect((await readCredentials(file)).gateways).toEqual({});
  });

  it("--all signs out of every gateway; without a session it says so", async () => {
    await store(5 * 60_000);
    await store(5 * 60_000, "http://localhost:1");
    const io = captureIo();
    await runLogout({ all: true }, io, deps());
    expect((await readCredentials(file)).gateways).toEqual({});
    expect(io.stdout.match(/Signed out of/g)).toHaveLength(2);
    const again = captureIo();
    await runLogout({ all: true }, again, deps());
    expect(again.stdout).toContain("Not signed in");
    await expect(runLogout({}, captureIo(), deps())).rejects.toThrow(/not signed in/);
  });

  it("registers token, whoami and logout with help", async () => {
    const program = new Command("cosmosgate").exitOverride();
    const io = captureIo();
    program.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
    registerToken(program, io);
    for (const cmd of ["token", "whoami", "logout"]) {
      await expect(program.parseAsync(["node", "cosmosgate", cmd, "--help"])).rejects.toMatchObject({
        code: "commander.helpDisplayed",
      });
    }
    expect(io.stdout).toContain("export T=$(cosmosgate token)");
    expect(io.stdout).toContain("cosmosgate logout --all");
  });
});
