import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addVirtualAuthenticator,
  type ControlPlaneHarness,
  launchChromium,
  screenshots,
  startControlPlane,
  webauthnSession,
} from "./helpers/browser.js";

/**
 * The pages in headless Chromium with the DevTools-protocol virtual authenticator (a CTAP2 USB key
 * with a PIN): enroll through /enroll, sign out, sign in on /signin, add a second key on "my keys",
 * and authorize the command line through /oauth/authorize down to its loopback redirect.
 */
describe("pages in headless Chromium with a virtual security key", () => {
  let h: ControlPlaneHarness;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    h = await startControlPlane();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it("enrolls, signs out, signs in, and adds a second key", async () => {
    const cdp = await webauthnSession(page);
    const firstKey = await addVirtualAuthenticator(cdp);
    const invite = h.adminInvite();

    // Enrollment page → "my keys".
    await page.goto(`${h.origin}/enroll?invite=${invite}`);
    await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe(
      "Enroll your security key",
    );
    await screenshots(page, "enroll");
    await page.getByLabel("Key name").fill("YubiKey on the desk");
    await page.getByRole("button", { name: "Enroll key" }).click();
    await page.waitForURL(`${h.origin}/keys`);
    await expect(page.locator("li.key").count()).resolves.toBe(1);
    await expect(page.locator("li.key h3").first().textContent()).resolves.toBe("YubiKey on the desk");
    await expect(page.getByRole("note").textContent()).resolves.toContain("You have only one key");
    await expect(page.locator("#status").textContent()).resolves.toContain("is enrolled");
    await expect(page.locator("li.key dd").first().textContent()).resolves.toBe("Hardware-bound key");

    // Sign out → sign in with the key (username given).
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${h.origin}/signin`);
    await screenshots(page, "signin");
    await page.getByLabel("User name").fill("admin");
    await page.getByRole("button", { name: "Sign in with your key" }).click();
    await page.waitForURL(`${h.origin}/keys`);
    await expect(page.locator("li.key dd").nth(2).textContent()).resolves.toBe("1"); // use count

    // Add a second key: a second authenticator; the first stops answering so the browser uses the new one.
    await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId: firstKey, enabled: false });
    const secondKey = await addVirtualAuthenticator(cdp);
    await page.getByLabel("Name of the new key").fill("Backup key");
    await page.getByRole("button", { name: "Add key" }).click();
    await page.waitForFunction(() => document.querySelectorAll("li.key").length === 2);
    const names = await page.locator("li.key h3").allTextContents();
    expect(names).toEqual(["YubiKey on the desk", "Backup key"]);
    await expect(page.getByRole("note").count()).resolves.toBe(0);
    await expect(page.locator("#status").textContent()).resolves.toContain("Added the key “Backup key”");
    await screenshots(page, "keys");

    // Sign in discoverably (no user name) with the second key.
    await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId: firstKey, enabled: true });
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: firstKey });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${h.origin}/signin`);
    await page.getByRole("button", { name: "Sign in with your key" }).click();
    await page.waitForURL(`${h.origin}/keys`);
    const current = await page
      .locator("li.key", { has: page.locator(".badge.current") })
      .locator("h3")
      .textContent();
    expect(current).toBe("Backup key");

    const keys = (await context.request.get(`${h.origin}/api/me/keys`)).json();
    await expect(keys).resolves.toMatchObject({
      keys: [{ nickname: "YubiKey on the desk" }, { nickname: "Backup key" }],
    });

    // Remove the first key: the page asks for a tap (the second key answers), then removes it.
    page.once("dialog", (d) => void d.accept());
    await page
      .locator("li.key", { hasText: "YubiKey on the desk" })
      .getByRole("button", { name: /Remove/ })
      .click();
    await page.waitForFunction(() => document.querySelectorAll("li.key").length === 1);
    await expect(page.locator("#status").textContent()).resolves.toContain(
      "Removed the key “YubiKey on the desk”",
    );
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: secondKey });
    expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
  });

  it("shows a clear message when the sign-in is cancelled (no key answers)", async () => {
    const fresh = await context.newPage();
    const cdp = await webauthnSession(fresh);
    const id = await addVirtualAuthenticator(cdp); // holds no credential for this site
    await fresh.goto(`${h.origin}/signin`);
    await fresh.getByLabel("User name").fill("admin");
    await fresh.getByRole("button", { name: "Sign in with your key" }).click();
    const alert = fresh.getByRole("alert");
    await alert.waitFor({ state: "visible", timeout: 15_000 });
    await expect(alert.textContent()).resolves.toMatch(/cancelled|no key/);
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: id });
    await fresh.close();
  });

  it("authorizes the command line: sign in on /oauth/authorize, then the loopback receives the code", async () => {
    // The CLI's loopback listener.
    const received: URL[] = [];
    const loopback: Server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      if (url.pathname === "/callback") received.push(url); // not the browser's /favicon.ico
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>cosmosgate</title><p>Signed in. You can close this window.</p>");
    });
    await new Promise<void>((r) => loopback.listen(0, "127.0.0.1", r));
    const { port } = loopback.address() as AddressInfo;
    try {
      const verifier = randomBytes(32).toString("base64url");
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      const redirectUri = `http://127.0.0.1:${port}/callback`;
      const query = new URLSearchParams({
        response_type: "code",
        client_id: "cosmosgate-cli",
        redirect_uri: redirectUri,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state: "xyz",
      });
      const cli = await context.newPage();
      const cdp = await webauthnSession(cli);
      const id = await addVirtualAuthenticator(cdp);
      // Enroll a key for a second user with this authenticator, through the API, like an admin's invite.
      const { inviteUser } = await import("../src/identity/users/index.js");
      const { secret } = inviteUser(h.identity.store, {
        name: "ada",
        groups: ["analysts"],
        admin: false,
        clock: h.now,
      });
      await cli.goto(`${h.origin}/enroll#invite=${secret}`);
      await cli.getByRole("button", { name: "Enroll key" }).click();
      await cli.waitForURL(`${h.origin}/keys`);

      await cli.goto(`${h.origin}/oauth/authorize?${query}`);
      await expect(cli.getByRole("heading", { level: 1 }).textContent()).resolves.toBe(
        `Authorize the cosmosgate command line on localhost:${h.port}?`,
      );
      await screenshots(cli, "authorize");
      await cli.getByRole("button", { name: "Sign in and authorize" }).click();
      await cli.waitForURL((u) => u.origin === `http://127.0.0.1:${port}`);
      expect(received).toHaveLength(1);
      expect(received[0].searchParams.get("state")).toBe("xyz");
      const code = received[0].searchParams.get("code")!;

      const token = await fetch(`${h.origin.replace("localhost", "127.0.0.1")}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code,
          redirect_uri: redirectUri,
          client_id: "cosmosgate-cli",
          code_verifier: verifier,
        }),
      });
      expect(token.status).toBe(200);
      const body = (await token.json()) as { token_type: string; refresh_token: string };
      expect(body.token_type).toBe("Bearer");
      await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: id });
      await cli.close();
    } finally {
      await new Promise<void>((r) => loopback.close(() => r()));
    }
  });

  it("refuses a bad authorization request with a readable page", async () => {
    const bad = await context.newPage();
    const res = await bad.goto(
      `${h.origin}/oauth/authorize?response_type=code&client_id=cosmosgate-cli&redirect_uri=https://evil.example/cb&code_challenge=${"a".repeat(43)}&code_challenge_method=S256`,
    );
    expect(res?.status()).toBe(400);
    await expect(bad.getByRole("alert").first().textContent()).resolves.toMatch(
      /this computer|http:\/\/ loopback/,
    );
    await screenshots(bad, "authorize-error");
    await bad.close();
  });
});
