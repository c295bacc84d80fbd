import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeGateway, startFakeGateway } from "../client/testing.js";
import { CliError } from "./io.js";
import { openBrowser, registerLogin, runLogin } from "./login.js";
import { captureIo } from "./testing.js";

let dir: string;
let file: string;
let gw: FakeGateway;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-login-"));
  file = join(dir, "cfg", "cosmosgate", "credentials.json");
  gw = await startFakeGateway();
});
afterEach(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Waits for the URL the command prints on stderr, then plays the browser: GET it, follow the redirect. */
async function browse(io: { stderr: string }): Promise<{ status: number; body: string; url: string }> {
  for (let i = 0; i < 200; i++) {
    const m = /Open this URL to sign in: (\S+)/.exec(io.stderr);
    if (m) {
      const res = await fetch(m[1]);
      return { status: res.status, body: await res.text(), url: m[1] };
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no URL printed; stderr: ${io.stderr}`);
}

describe("cosmosgate login (loopback + PKCE)", () => {
  it("signs in through the loopback redirect, with a correct S256 PKCE pair, and stores the session 0600", async () => {
    const io = captureIo();
    const login = runLogin({ gateway: `${gw.url}/`, browser: false, timeout: "10s" }, io, { file, env: {} });
    const page = await browse(io);
    await login;

    // the authorization request
    expect(gw.authorizeRequests).toHaveLength(1);
    const q = gw.authorizeRequests[0];
    expect(q).toMatchObject({
      response_type: "code",
      client_id: "cosmosgate-cli",
      code_challenge_method: "S256",
    });
    expect(q.redirect_uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(q.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // the token request: verifier of 32 random bytes whose S256 is the challenge
    expect(gw.tokenRequests).toHaveLength(1);
    const t = gw.tokenRequests[0];
    expect(t).toMatchObject({
      grant_type: "authorization_code",
      client_id: "cosmosgate-cli",
      redirect_uri: q.redirect_uri,
    });
    expect(Buffer.from(t.code_verifier, "base64url")).toHaveLength(32);
    expect(createHash("sha256").update(t.code_verifier).digest("base64url")).toBe(q.code_challenge);

    // the browser got the success page
    expect(page.status).toBe(200);
    expect(page.body).toContain("Signed in — you can close this tab");

    // stored, private
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "cfg", "cosmosgate")).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(readFileSync(file, "utf8"));
    expect(Object.keys(stored.gateways)).toEqual([gw.url]);
    expect(stored.gateways[gw.url]).toMatchObject({
      gateway: gw.url,
      tokenEndpoint: `${gw.url}/oauth/token`,
      revocationEndpoint: `${gw.url}/oauth/revoke`,
      dataPlane: "https://localhost:8081",
    });
    expect(gw.liveRefreshTokens.has(stored.gateways[gw.url].refreshToken)).toBe(true);

    // what the person sees
    expect(io.stdout).toMatch(
      new RegExp(
        `^Signed in to ${gw.url.replace(/\./g, "\\.")} as ada \\(groups analysts, ops\\), token valid until \\d{4}-`,
      ),
    );
    expect(io.stderr).toContain("No browser opened (--no-browser)");
  });

  it("refuses a redirect whose state does not match, storing nothing", async () => {
    gw.mode.authorize = "wrong-state";
    const io = captureIo();
    const login = runLogin({ gateway: gw.url, browser: false, timeout: "10s" }, io, { file, env: {} }).catch(
      (e: unknown) => e,
    );
    const page = await browse(io);
    const error = await login;
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toMatch(/different state/);
    expect(page.status).toBe(400);
    expect(page.body).toContain("does not belong to the sign-in");
    expect(gw.tokenRequests).toHaveLength(0);
    expect(() => statSync(file)).toThrow();
  });

  it("fails with the gateway's error description on error=", async () => {
    gw.mode.authorize = "error";
    const io = captureIo();
    const login = runLogin({ gateway: gw.url, browser: false, timeout: "10s" }, io, { file, env: {} }).catch(
      (e: unknown) => e,
    );
    const page = await browse(io);
    const error = await login;
    expect((error as Error).message).toBe(
      "login failed: the gateway refused the sign-in (access_denied): the key was not recognised",
    );
    expect(page.status).toBe(400);
    expect(page.body).toContain("the key was not recognised");
    expect(gw.tokenRequests).toHaveLength(0);
  });

  it("reports a refused code exchange to the terminal and the browser", async () => {
    gw.mode.tokenFailure = { status: 400, error: "invalid_grant", description: "code expired" };
    const io = captureIo();
    const login = runLogin({ gateway: gw.url, browser: false, timeout: "10s" }, io, { file, env: {} }).catch(
      (e: unknown) => e,
    );
    const page = await browse(io);
    expect(((await login) as Error).message).toMatch(
      /refused the request \(400 invalid_grant\): code expired/,
    );
    expect(page.status).toBe(400);
    expect(page.body).toContain("code expired");
  });

  it("times out when no browser comes back", async () => {
    const io = captureIo();
    const error = await runLogin({ gateway: gw.url, browser: false, timeout: "1s" }, io, {
      file,
      env: {},
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/no sign-in arrived within 1 s/);
  });

  it("opens the browser through the injected opener, and replaces (and revokes) an earlier session", async () => {
    const io = captureIo();
    const opened: string[] = [];
    const deps = {
      file,
      env: {},
      openBrowser: async (url: string) => {
        opened.push(url);
        void fetch(url).then((r) => r.text());
        return undefined;
      },
    };
    await runLogin({ gateway: gw.url, timeout: "10s" }, io, deps);
    const first = JSON.parse(readFileSync(file, "utf8")).gateways[gw.url].refreshToken;
    await runLogin({ gateway: gw.url, timeout: "10s" }, captureIo(), deps);
    expect(opened).toHaveLength(2);
    expect(io.stderr).toContain("A browser window should open");
    expect(gw.revoked).toEqual([first]);
  });

  it("refuses plain HTTP to another machine and a bad --timeout", async () => {
    await expect(
      runLogin({ gateway: "http://gateway.example.com", browser: false }, captureIo(), { file, env: {} }),
    ).rejects.toThrow(/plain HTTP/);
    await expect(
      runLogin({ gateway: gw.url, timeout: "soon" }, captureIo(), { file, env: {} }),
    ).rejects.toMatchObject({
      exitCode: 2,
    });
  });

  it("takes the default gateway from the configuration's controlPlane.publicUrl", async () => {
    const { writeFileSync } = await import("node:fs");
    const config = join(dir, "cosmosgate.yaml");
    writeFileSync(config, `controlPlane:\n  publicUrl: ${gw.url}\n`);
    const io = captureIo();
    const login = runLogin({ browser: false, timeout: "10s", config }, io, { file, env: {} });
    await browse(io);
    await login;
    expect(io.stdout).toContain(`Signed in to ${gw.url} as ada`);
  });

  it("registers `login` with help and options", async () => {
    const program = new Command("cosmosgate").exitOverride();
    const io = captureIo();
    program.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
    registerLogin(program, io);
    await expect(program.parseAsync(["node", "cosmosgate", "login", "--help"])).rejects.toMatchObject({
      code: "commander.helpDisplayed",
    });
    expect(io.stdout).toContain("--no-browser");
    expect(io.stdout).toContain("cosmosgate login --gateway https://");
  });

  it("does not try a browser without a desktop session", async () => {
    expect(await openBrowser("http://x", {}, "linux")).toMatch(/no DISPLAY/);
  });
});
