import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CosmosClient } from "@azure/cosmos";
import type { Browser, BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addVirtualAuthenticator,
  launchChromium,
  SCREENSHOTS,
  screenshots,
  webauthnSession,
} from "./helpers/browser.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

/**
 * The web console in headless Chromium (Debian's, through playwright-core) with DevTools virtual
 * authenticators, against a real gateway on the embedded store: the administrator enrolls and
 * invites bob; bob enrolls in a second browser context, adds a second key, takes an access token
 * and makes Cosmos DB requests with the real SDK; the administrator finds them in the audit explorer
 * by bob's key. Bob cannot reach people or others' audit, in the UI or the API, and removing a key
 * takes a tap. Every page is photographed at desktop and phone width into test-results/screenshots.
 */

const CONSOLE_ASSETS = join(process.cwd(), "dist", "console", "assets");

let h: Harness;
let browser: Browser;
let admin: Page;
let adminCdp: CDPSession;
let bobContext: BrowserContext;
let bob: Page;
let bobCdp: CDPSession;
let bobFirstAuth: string;
let bobSecondAuth: string;
let bobInvite: string;
let bobKeys: string[] = [];
const pageErrors: string[] = [];
const agent = new HttpsAgent({ keepAlive: true });
const clients: CosmosClient[] = [];

function watch(page: Page, who: string): void {
  // A missing element fails its step with the locator named, well inside the test's time-out.
  page.setDefaultTimeout(10_000);
  page.on("pageerror", (error) => pageErrors.push(`${who}: ${error.message}`));
}

function sdk(endpoint: string, token: string): CosmosClient {
  const client = new CosmosClient({
    endpoint,
    aadCredentials: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 300_000 }) },
    agent: new HttpsAgent({ ca: h.gw.caPem, keepAlive: true }),
    connectionPolicy: {
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
  clients.push(client);
  return client;
}

/** The access token the "My keys" page hands out, with the data plane's URL. */
async function consoleToken(page: Page): Promise<{ token: string; endpoint: string }> {
  await page.goto(`${h.controlUrl}/console/#/keys`);
  await page.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
  await page.getByRole("button", { name: "Get an access token" }).click();
  await page.getByTestId("access-token").waitFor();
  return {
    token: await page.getByTestId("access-token").inputValue(),
    endpoint: ((await page.getByTestId("token-endpoint").textContent()) ?? "").trim(),
  };
}

/** A fetch from inside the page (same origin, its cookie), with the CSRF token on writes. */
async function pageFetch(page: Page, method: string, path: string, body?: unknown) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const me = await fetch("/api/me");
      const csrf = me.ok ? ((await me.json()) as { csrfToken: string }).csrfToken : "";
      const res = await fetch(path, {
        method,
        headers: { "content-type": "application/json", "x-cosmosgate-csrf": csrf },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json().catch(() => null)) as { code?: string } | null };
    },
    { method, path, body },
  );
}

async function credentialsOf(cdp: CDPSession, authenticatorId: string) {
  return (
    (await cdp.send("WebAuthn.getCredentials", { authenticatorId })) as {
      credentials: { credentialId: string; signCount: number }[];
    }
  ).credentials;
}

beforeAll(async () => {
  // A short ceremony time-out, so that "the key did not answer in time" can be shown.
  h = await startHarness({ upstream: "embedded", identityYaml: "  authenticators: {timeout: 6s}" });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.dispose();
  agent.destroy();
  await browser?.close();
  await h?.close();
});

describe("the web console in a real browser", { timeout: 60_000 }, () => {
  it("the administrator enrolls with the first-administrator link and signs in to the console with a passkey", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    admin = await context.newPage();
    watch(admin, "admin");
    adminCdp = await webauthnSession(admin);
    await addVirtualAuthenticator(adminCdp);
    expect(h.gw.firstAdminUrl).toBeDefined();
    await admin.goto(h.gw.firstAdminUrl as string);
    await admin.getByLabel(/Key name/).fill("Admin key");
    await admin.getByRole("button", { name: "Enroll key" }).click();
    await admin.waitForURL(/\/keys/);

    await admin.goto(`${h.controlUrl}/`);
    await admin.waitForURL(/\/console\/#\/keys/);
    await admin.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    await admin.getByRole("button", { name: "Sign out" }).click();
    await admin.locator('[data-page="signin"]').waitFor();
    await screenshots(admin, "console-signin");
    await admin.getByRole("button", { name: "Sign in with a passkey" }).click();
    await admin.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    await expect(admin.getByTestId("who").textContent()).resolves.toMatch(/admin/);
    // One key only: the page warns.
    await admin.getByTestId("single-key-warning").waitFor();
    await screenshots(admin, "console-keys-single");

    // The administrator's token creates the container bob will read.
    const { token, endpoint } = await consoleToken(admin);
    expect(endpoint).toBe(h.endpoint);
    const client = sdk(endpoint, token);
    const { database } = await client.databases.createIfNotExists({ id: "shop" });
    const { container } = await database.containers.createIfNotExists({ id: "orders", partitionKey: "/id" });
    await container.items.upsert({ id: "o1", total: 12 });
  });

  it("invites bob: the enrollment link and its QR code", async () => {
    await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "People" }).click();
    await admin.locator('[data-page="people"]').waitFor();
    await admin.getByLabel("User name").fill("bob");
    await admin.getByLabel("Groups (optional)").fill("analysts");
    await admin.getByRole("button", { name: "Create invite" }).click();
    await admin.getByTestId("invite-result").waitFor();
    bobInvite = await admin.getByLabel("Enrollment link").inputValue();
    expect(bobInvite).toMatch(new RegExp(`^${h.controlUrl}/enroll\\?invite=[\\w-]{20,}$`));
    await admin.getByTestId("invite-qr").waitFor();
    await admin.getByTestId("person-row").filter({ hasText: "bob" }).waitFor();
    await screenshots(admin, "console-people");
  });

  it("bob enrolls in a second browser context, signs in and adds a second key", async () => {
    bobContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    bob = await bobContext.newPage();
    watch(bob, "bob");
    bobCdp = await webauthnSession(bob);
    bobFirstAuth = await addVirtualAuthenticator(bobCdp);
    await bob.goto(bobInvite);
    await bob.getByLabel(/Key name/).fill("Bob desk key");
    await bob.getByRole("button", { name: "Enroll key" }).click();
    await bob.waitForURL(/\/keys/);
    await bob.goto(`${h.controlUrl}/console/#/keys`);
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    await bob.getByRole("button", { name: "Sign out" }).click();
    await bob.getByRole("button", { name: "Sign in with a passkey" }).click();
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();

    // The second key lives on a second authenticator; the first one stays silent meanwhile.
    await bobCdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: bobFirstAuth,
      enabled: false,
    });
    bobSecondAuth = await addVirtualAuthenticator(bobCdp);
    await bob.getByLabel("Name of the new key").fill("Bob backup key");
    await bob.getByRole("button", { name: "Add key" }).click();
    await expect.poll(() => bob.getByTestId("key-row").count(), { timeout: 15_000 }).toBe(2);
    await bobCdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: bobFirstAuth,
      enabled: true,
    });
    await bobCdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: bobSecondAuth,
      enabled: false,
    });
    expect(await bob.getByTestId("single-key-warning").count()).toBe(0);
    expect(await credentialsOf(bobCdp, bobSecondAuth)).toHaveLength(1);
    bobKeys = await bob
      .getByTestId("key-row")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-key-id") ?? ""));
    expect(bobKeys).toHaveLength(2);
    await screenshots(bob, "console-keys");

    // Rename, from the keyboard-reachable inline editor.
    const desk = bob.getByTestId("key-row").filter({ hasText: "Bob desk key" });
    await desk.getByRole("button", { name: /Rename/ }).click();
    await desk.getByLabel(/New name for/).fill("Bob YubiKey");
    await desk.getByRole("button", { name: "Save" }).click();
    await bob.getByTestId("key-row").filter({ hasText: "Bob YubiKey" }).waitFor();
  });

  it("bob makes Cosmos DB requests through the data plane with his console token", async () => {
    const { token, endpoint } = await consoleToken(bob);
    const container = sdk(endpoint, token).database("shop").container("orders");
    const { resource } = await container.item("o1", "o1").read();
    expect(resource?.total).toBe(12);
    const { resources } = await container.items.query("SELECT * FROM c").fetchAll();
    expect(resources.map((r) => r.id)).toEqual(["o1"]);
    // analysts may read, not write.
    await expect(container.items.create({ id: "o2", total: 1 })).rejects.toMatchObject({
      code: 403,
      substatus: 5301,
    });
  });

  it("the administrator finds bob's requests in the audit explorer by his key", async () => {
    const signedInKey = await bob.evaluate(
      async () => ((await (await fetch("/api/me")).json()) as { credential: string }).credential,
    );
    expect(bobKeys).toContain(signedInKey);
    await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
    await admin.locator('[data-page="audit"]').waitFor();
    await admin.getByLabel("Key", { exact: true }).fill(signedInKey);
    await admin.getByLabel("Event type").fill("data.request");
    await admin.getByRole("button", { name: "Apply filters" }).click();
    await expect
      .poll(() => admin.getByTestId("audit-row").count(), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(3);
    const rows = admin.getByTestId("audit-row");
    const texts = await rows.allTextContents();
    for (const text of texts) expect(text).toContain("bob");
    const decisions = await rows.evaluateAll((all) => all.map((r) => r.getAttribute("data-decision")));
    expect(decisions).toContain("allow");
    expect(decisions).toContain("deny");
    await screenshots(admin, "console-audit");

    // A record's detail: its chain position and verification state.
    await rows
      .first()
      .getByRole("button", { name: /Details of record/ })
      .click();
    const detail = admin.getByTestId("audit-detail");
    await detail.getByText("Chain position").waitFor();
    await expect(detail.textContent()).resolves.toMatch(/bob/);
    await screenshots(admin, "console-audit-detail");
    await admin.keyboard.press("Escape");
    await admin.getByRole("dialog").waitFor({ state: "detached" });

    await admin
      .getByRole("navigation", { name: "Audit views" })
      .getByRole("link", { name: "Key usage" })
      .click();
    await admin.locator('[data-page="audit-keys"]').waitFor();
    await admin.locator(`[data-testid="key-usage-row"][data-key-id="${signedInKey}"]`).waitFor();
    await screenshots(admin, "console-audit-keys");
  });

  it("bob cannot reach people or others' audit, in the UI or the API", async () => {
    const nav = await bob.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents();
    expect(nav).not.toContain("People");
    expect(nav).not.toContain("Status");
    await bob.goto(`${h.controlUrl}/console/#/people`);
    await bob.getByTestId("forbidden").waitFor();
    expect(await bob.getByTestId("person-row").count()).toBe(0);
    await screenshots(bob, "console-forbidden");
    await bob.goto(`${h.controlUrl}/console/#/audit`);
    await bob.locator('[data-page="audit"]').waitFor();
    expect(await bob.getByLabel("Person").count()).toBe(0);
    await expect.poll(() => bob.getByTestId("audit-row").count(), { timeout: 10_000 }).toBeGreaterThan(0);
    for (const text of await bob.getByTestId("audit-row").allTextContents())
      expect(text).not.toMatch(/\badmin\b/);
    await screenshots(bob, "console-audit-own");

    const people = await pageFetch(bob, "GET", "/api/people");
    expect(people.status).toBe(403);
    const others = await pageFetch(bob, "GET", "/api/audit/records?actor=admin");
    expect(others.status).toBe(403);
    const invite = await pageFetch(bob, "POST", "/api/people/invite", {
      name: "mallory",
      groups: ["cosmos-admins"],
      admin: true,
    });
    expect(invite.status).toBe(403);
    const status = await pageFetch(bob, "GET", "/api/status");
    expect(status.status).toBe(403);
    // Nothing changed: no mallory.
    const list = await pageFetch(admin, "GET", "/api/people");
    expect(JSON.stringify(list.body)).not.toContain("mallory");
  });

  it("removing a key takes a tap: the server refuses without one, and the page gets one", async () => {
    await bob.goto(`${h.controlUrl}/console/#/keys`);
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    const backup = bob.getByTestId("key-row").filter({ hasText: "Bob backup key" });
    const backupId = (await backup.getAttribute("data-key-id")) as string;

    const untapped = await pageFetch(bob, "DELETE", `/api/me/keys/${encodeURIComponent(backupId)}`, {});
    expect(untapped.status).toBe(403);
    expect(untapped.body?.code).toBe("ERR_TAP_REQUIRED");
    expect(await bob.getByTestId("key-row").count()).toBe(2);

    const [before] = await credentialsOf(bobCdp, bobFirstAuth);
    await backup.getByRole("button", { name: /Remove/ }).click();
    await expect.poll(() => bob.getByTestId("key-row").count(), { timeout: 15_000 }).toBe(1);
    const [after] = await credentialsOf(bobCdp, bobFirstAuth);
    // The desk key signed the removal: its signature counter moved.
    expect(after?.signCount).toBeGreaterThan(before?.signCount ?? 0);
    await bob.getByTestId("single-key-warning").waitFor();
  });

  it("exports the current filter and tails live records", async () => {
    await admin.goto(`${h.controlUrl}/console/#/audit?actor=bob&type=data.request`);
    await admin.locator('[data-page="audit"] [data-testid="audit-row"]').first().waitFor();
    await admin.getByTestId("audit-timeline-chart").waitFor();
    const [download] = await Promise.all([
      admin.waitForEvent("download"),
      admin.getByRole("link", { name: "Export CSV" }).click(),
    ]);
    const csv = readFileSync((await download.path()) as string, "utf8");
    const lines = csv.trim().split("\n");
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines.slice(1)) expect(line).toMatch(/,bob,/);

    await admin.goto(`${h.controlUrl}/console/#/audit?actor=bob`);
    await admin.locator('[data-page="audit"] [data-testid="audit-row"]').first().waitFor();
    await admin.getByLabel("Live tail").check();
    const before = await admin.getByTestId("audit-row").count();
    // Bob renames his key; the administrator's list grows by itself.
    await bob.goto(`${h.controlUrl}/console/#/keys`);
    const row = bob.getByTestId("key-row").first();
    await row.getByRole("button", { name: /Rename/ }).click();
    await row.getByLabel(/New name for/).fill("Bob's only key");
    await row.getByRole("button", { name: "Save" }).click();
    await expect
      .poll(() => admin.getByTestId("audit-row").count(), { timeout: 10_000 })
      .toBeGreaterThan(before);
    await expect(admin.getByTestId("audit-row").first().textContent()).resolves.toMatch(
      /credential\.renamed/,
    );
    await admin.getByLabel("Live tail").uncheck();
  });

  it("people: groups, disable and enable; sign-in failures say what happened", async () => {
    await admin.goto(`${h.controlUrl}/console/#/people`);
    const bobRow = admin
      .getByTestId("person-row")
      .filter({ has: admin.getByRole("heading", { name: "bob" }) });
    await bobRow.getByRole("button", { name: /Edit groups/ }).click();
    await bobRow.getByLabel("Groups of bob").fill("analysts auditors");
    await bobRow.getByRole("button", { name: "Save groups" }).click();
    await bobRow.getByText("analysts, auditors").waitFor();

    await bobRow.getByRole("button", { name: "Disable bob" }).click();
    await admin.getByRole("dialog").getByRole("button", { name: "Disable bob" }).click();
    await expect.poll(() => bobRow.getAttribute("data-disabled")).toBe("true");
    // Bob's session ended with the disabling: his next page load goes to the sign-in.
    await bob.reload();
    await bob.locator('[data-page="signin"]').waitFor();
    await bob.getByRole("button", { name: "Sign in with a passkey" }).click();
    const error = bob.locator('[data-testid="error"][data-code]');
    await expect(error.getAttribute("data-code")).resolves.toBe("ERR_WEBAUTHN_USER_DISABLED");
    await expect(error.textContent()).resolves.toMatch(/disabled/i);
    await screenshots(bob, "console-signin-error");
    await bobRow.getByRole("button", { name: "Enable bob" }).click();
    await expect.poll(() => bobRow.getAttribute("data-disabled")).toBe("false");
    await bob.getByRole("button", { name: "Sign in with a passkey" }).click();
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();

    // A context whose authenticator holds no key for this site: "no key".
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    watch(page, "stranger");
    await addVirtualAuthenticator(await webauthnSession(page));
    await page.goto(`${h.controlUrl}/console/`);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    const noKey = page.locator('[data-testid="error"][data-code]');
    await expect(noKey.getAttribute("data-code", { timeout: 30_000 })).resolves.toBe("NotAllowedError");
    await expect(noKey.textContent()).resolves.toMatch(/no key/i);
    await stranger.close();

    // A key that never answers: the ceremony times out, and the page says so.
    await bob.getByRole("button", { name: "Sign out" }).click();
    await bob.locator('[data-page="signin"]').waitFor();
    await bobCdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: bobFirstAuth,
      enabled: false,
    });
    await bob.getByLabel("User name").fill("bob");
    await bob.getByRole("button", { name: "Sign in", exact: true }).click();
    const timedOut = bob.locator('[data-testid="error"][data-code]');
    await expect(timedOut.getAttribute("data-code", { timeout: 30_000 })).resolves.toBe("TimeoutError");
    await expect(timedOut.textContent()).resolves.toMatch(/did not answer in time/);
    await bobCdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: bobFirstAuth,
      enabled: true,
    });
    // By user name this time.
    await bob.getByRole("button", { name: "Sign in", exact: true }).click();
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
  });

  it("a cloned key is suspended, the sign-in says so, and the administrator re-enables it", async () => {
    await bob.getByRole("button", { name: "Sign out" }).click();
    await bob.locator('[data-page="signin"]').waitFor();
    // Present the desk key with a signature counter that went backwards: the gateway suspends it.
    const { credentials } = await bobCdp.send("WebAuthn.getCredentials", { authenticatorId: bobFirstAuth });
    const desk = credentials[0] as (typeof credentials)[number];
    await bobCdp.send("WebAuthn.removeCredential", {
      authenticatorId: bobFirstAuth,
      credentialId: desk.credentialId,
    });
    await bobCdp.send("WebAuthn.addCredential", {
      authenticatorId: bobFirstAuth,
      credential: { ...desk, signCount: 0 },
    });
    await bob.getByRole("button", { name: "Sign in with a passkey" }).click();
    const error = bob.locator('[data-testid="error"][data-code]');
    await expect(error.getAttribute("data-code")).resolves.toMatch(
      /ERR_WEBAUTHN_(CLONE_SUSPECTED|KEY_SUSPENDED)/,
    );
    await expect(error.textContent()).resolves.toMatch(/suspend|clone|copied/i);

    await admin.goto(`${h.controlUrl}/console/#/people`);
    await admin.reload();
    const bobRow = admin
      .getByTestId("person-row")
      .filter({ has: admin.getByRole("heading", { name: "bob" }) });
    await bobRow.getByText("Suspended").first().waitFor();
    await screenshots(admin, "console-people-suspended");
    await bobRow.getByRole("button", { name: /Re-enable/ }).click();
    await bobRow.getByText("Suspended").first().waitFor({ state: "detached" });

    // Re-enabled: with its counter ahead again, the key signs in.
    await bobCdp.send("WebAuthn.removeCredential", {
      authenticatorId: bobFirstAuth,
      credentialId: desk.credentialId,
    });
    await bobCdp.send("WebAuthn.addCredential", {
      authenticatorId: bobFirstAuth,
      credential: { ...desk, signCount: desk.signCount + 100 },
    });
    await bob.getByRole("button", { name: "Sign in with a passkey" }).click();
    await bob.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
  });

  it("policy and status pages, in light and dark", async () => {
    await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Policy" }).click();
    await admin.locator('[data-page="policy"] [data-testid="role-row"]').first().waitFor();
    // The native Cosmos DB RBAC mapping: orders-reader is exactly the built-in Data Reader; admin
    // has a definition for its data actions and says that manage cannot be granted natively.
    const reader = admin.locator('[data-testid="role-row"][data-role="orders-reader"]');
    await reader.getByText("Native Cosmos DB RBAC").click();
    await expect(reader.textContent()).resolves.toMatch(
      /Cosmos DB Built-in Data Reader.*00000000-0000-0000-0000-000000000001/s,
    );
    const adminRole = admin.locator('[data-testid="role-row"][data-role="admin"]');
    await adminRole.getByText("Native Cosmos DB RBAC").click();
    await expect(adminRole.textContent()).resolves.toMatch(/manage/);
    await admin.getByLabel("Person").fill("bob");
    await admin.getByLabel("Action").selectOption("delete");
    await admin.getByLabel("Resource").fill("/dbs/shop/colls/orders/docs/o1");
    await admin.getByRole("button", { name: "Explain" }).click();
    await expect(admin.getByTestId("explain-result").getAttribute("data-decision")).resolves.toBe("deny");
    await admin.getByLabel("Action").selectOption("read");
    await admin.getByRole("button", { name: "Explain" }).click();
    await expect.poll(() => admin.getByTestId("explain-result").getAttribute("data-decision")).toBe("allow");
    await screenshots(admin, "console-policy");

    await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Status" }).click();
    await admin.locator('[data-page="status"] [data-testid="status-version"]').waitFor();
    await expect(admin.getByTestId("status-upstream").textContent()).resolves.toMatch(/healthy/i);
    await screenshots(admin, "console-status");

    await admin.getByRole("button", { name: "Dark theme" }).click();
    await admin.goto(`${h.controlUrl}/console/#/audit`);
    await admin.locator('[data-page="audit"]').waitFor();
    expect(await admin.evaluate(() => document.documentElement.dataset.theme ?? "")).toMatch(/dark/);
    await screenshots(admin, "console-audit-dark");
  });

  it("weighs under 150 KB of JavaScript gzipped and loads in under a second", async () => {
    const scripts = readdirSync(CONSOLE_ASSETS).filter((f) => f.endsWith(".js"));
    const gzipped = scripts.reduce(
      (sum, f) => sum + gzipSync(readFileSync(join(CONSOLE_ASSETS, f))).length,
      0,
    );
    const page = await admin.context().newPage();
    const started = Date.now();
    await page.goto(`${h.controlUrl}/console/#/keys`);
    await page.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    const ready = Date.now() - started;
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      const paint = performance.getEntriesByName("first-contentful-paint")[0];
      return {
        load: Math.round(nav.loadEventEnd),
        domContentLoaded: Math.round(nav.domContentLoadedEventEnd),
        firstContentfulPaint: paint ? Math.round(paint.startTime) : null,
      };
    });
    await page.close();
    const figures = { javascriptGzipBytes: gzipped, scripts: scripts.length, ...timing, keysReadyMs: ready };
    console.log(`console page weight and load: ${JSON.stringify(figures)}`);
    writeFileSync(join(SCREENSHOTS, "console-figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
    expect(gzipped).toBeLessThan(150 * 1024);
    expect(timing.load).toBeGreaterThan(0);
    expect(timing.load).toBeLessThan(1000);
  });

  it("raised no script error in any page", () => {
    expect(pageErrors).toEqual([]);
  });
});
