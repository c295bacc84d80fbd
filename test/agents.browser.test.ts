import { mkdtempSync, rmSync, statSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient, type CosmosClientOptions } from "@azure/cosmos";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCredential } from "../src/client/agentCredential.js";
import { type AgentKey, agentKeyPath, createAgentKeyFile } from "../src/client/agentKey.js";
import { addVirtualAuthenticator, launchChromium, screenshots, webauthnSession } from "./helpers/browser.js";
import { type Harness, startHarness } from "./helpers/gateway.js";
import { sdkError } from "./helpers/sdkError.js";

/**
 * Agents and approvals in the web console, in headless Chromium with a DevTools virtual
 * authenticator, against a real gateway on the embedded store: the administrator enrolls, creates a
 * grant on the Agents page for an agent whose key pair the test made (the page shows the canonical
 * JSON; the tap confirms it); the agent (AgentCredential and the real @azure/cosmos SDK) queries, and
 * its delete waits for approval (403/5302 naming the approval); the Approvals page lists it live; the
 * approval page shows the operation exactly and checks its hash; "Approve with my key" approves it;
 * the retried delete runs once, and the same delete again needs a new approval. The Agents page with
 * the draft and the approval page are photographed at desktop and phone width.
 */

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
members:
  admin: ["group:cosmos-admins"]
approvals:
  - actions: [delete]
    on: /dbs/shop/colls/orders
    for: agents
    approvers: self
`;

const APPROVAL_REQUIRED = 5302;
const grantIdPattern = expect.stringMatching(/^gr_/);

let h: Harness;
let browser: Browser;
let page: Page;
let keyDir: string;
let agentKey: AgentKey;
let https: HttpsAgent;
let me: { name: string };
let grantId = "";
let approvalId = "";
let approvalUrl = "";
const pageErrors: string[] = [];
const clients: CosmosClient[] = [];

const connectionPolicy = {
  retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
};

function sdk(aadCredentials: NonNullable<CosmosClientOptions["aadCredentials"]>): CosmosClient {
  const c = new CosmosClient({ endpoint: h.endpoint, aadCredentials, agent: https, connectionPolicy });
  clients.push(c);
  return c;
}

function agentOrders() {
  const credential = new AgentCredential({
    gateway: h.controlUrl,
    grant: grantId,
    keyFile: agentKeyPath("claude", { dir: keyDir }),
  });
  return sdk(credential).database("shop").container("orders");
}

function approvalOf(message: string): { id: string; url: string } {
  const id = /approval ID (apr_[A-Za-z0-9_-]+)/.exec(message)?.[1];
  const url = /Approve it at (\S+) /.exec(message)?.[1];
  if (!id || !url) throw new Error(`no approval ID and URL in: ${message}`);
  return { id, url };
}

beforeAll(async () => {
  h = await startHarness({ upstream: "embedded", policy: POLICY });
  https = new HttpsAgent({ ca: h.gw.caPem, keepAlive: true });
  keyDir = mkdtempSync(join(tmpdir(), "cosmosgate-agent-"));
  agentKey = await createAgentKeyFile(agentKeyPath("claude", { dir: keyDir }));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.dispose();
  https?.destroy();
  await browser?.close();
  await h?.close();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

describe("agents and approvals in the web console", { timeout: 60_000 }, () => {
  it("the administrator enrolls with a passkey and the data exists", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await addVirtualAuthenticator(await webauthnSession(page));
    await page.goto(h.gw.firstAdminUrl as string);
    await page.getByLabel(/Key name/).fill("Admin key");
    await page.getByRole("button", { name: "Enroll key" }).click();
    await page.waitForURL(/\/keys/);
    await page.goto(`${h.controlUrl}/console/#/keys`);
    await page.locator('[data-page="keys"] [data-testid="key-row"]').first().waitFor();
    me = await page.evaluate(async () => (await (await fetch("/api/me")).json()) as { name: string });
    expect(me.name).toBeTruthy();

    // The administrator's console token creates shop/orders with two orders.
    await page.getByRole("button", { name: "Get an access token" }).click();
    const token = await page.getByTestId("access-token").inputValue();
    const admin = sdk({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 300_000 }) });
    const { database } = await admin.databases.createIfNotExists({ id: "shop" });
    const { container } = await database.containers.createIfNotExists({ id: "orders", partitionKey: "/id" });
    await container.items.upsert({ id: "o1", total: 12 });
    await container.items.upsert({ id: "o2", total: 5 });
  });

  it("creates a grant on the Agents page: the canonical JSON is shown and the tap confirms it", async () => {
    expect(statSync(agentKeyPath("claude", { dir: keyDir })).mode & 0o777).toBe(0o600);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Agents" }).click();
    await page.locator('[data-page="agents"]').waitFor();
    await page.getByTestId("grants-empty").waitFor();
    await page.getByLabel("Agent name").fill("claude");
    await page.getByLabel("The agent's public key (JWK)").fill(JSON.stringify(agentKey.publicJwk));
    for (const a of ["metadata", "read", "query", "delete"]) {
      await page.getByRole("checkbox", { name: a, exact: true }).check();
    }
    await page.getByLabel("Scopes, one a line").fill("/dbs/shop/colls/orders");
    await page.getByRole("button", { name: "Review the grant" }).click();
    await page.getByTestId("grant-draft").waitFor();

    const canonical = JSON.parse(
      (await page.getByTestId("grant-canonical").textContent()) ?? "null",
    ) as Record<string, unknown>;
    expect(canonical).toMatchObject({
      type: "cosmosgate.agent-grant/1",
      id: grantIdPattern,
      agent: "claude",
      person: me.name,
      gateway: h.controlUrl,
      keyThumbprint: agentKey.thumbprint,
      publicKey: agentKey.publicJwk,
      scopes: ["/dbs/shop/colls/orders"],
      partitionKeys: null,
    });
    expect([...(canonical.actions as string[])].sort()).toEqual(["delete", "metadata", "query", "read"]);
    // The browser recomputes the challenge over what it shows, and the key's thumbprint.
    await page.locator('[data-testid="grant-challenge-check"][data-ok="true"]').waitFor();
    await page.locator('[data-testid="grant-key-check"][data-ok="true"]').waitFor();
    await screenshots(page, "agents-draft");

    await page.getByRole("button", { name: "Confirm with my key" }).click();
    await page.getByTestId("grant-created").waitFor();
    grantId = ((await page.getByTestId("grant-id").textContent()) ?? "").trim();
    expect(grantId).toBe(canonical.id);
    await page
      .locator(`[data-testid="grant-row"][data-grant-id="${grantId}"][data-status="active"]`)
      .waitFor();
    await screenshots(page, "agents-created");
  });

  it("the agent queries under its grant; its delete waits for approval, listed live", async () => {
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: /^Approvals/ })
      .click();
    await page.locator('[data-page="approvals"]').waitFor();
    await page.locator('[data-testid="approvals-live-state"][data-live="true"]').waitFor();

    const orders = agentOrders();
    const { resources } = await orders.items.query("SELECT * FROM c").fetchAll();
    expect(resources.map((r) => r.id).sort()).toEqual(["o1", "o2"]);

    const refused = await sdkError(() => orders.item("o1", "o1").delete());
    expect(refused.code).toBe(403);
    expect(refused.substatus).toBe(APPROVAL_REQUIRED);
    ({ id: approvalId, url: approvalUrl } = approvalOf(refused.message));
    expect(approvalUrl).toBe(`${h.controlUrl}/console/#/approvals/${approvalId}`);

    // Live, without a reload: the row, the announcement and the navigation's count.
    await page
      .locator(
        `[data-testid="approvals-waiting"] [data-testid="approval-row"][data-approval-id="${approvalId}"]`,
      )
      .waitFor();
    await page.getByTestId("approvals-live").filter({ hasText: "New approval request" }).waitFor();
    await expect(page.getByTestId("approvals-badge").textContent()).resolves.toContain("1");
  });

  it("the approval page shows the operation exactly and approving with the key succeeds", async () => {
    await page.getByRole("link", { name: "Review it" }).click();
    await page.waitForURL(approvalUrl);
    await page
      .locator(
        `[data-page="approval"] [data-testid="approval"][data-approval-id="${approvalId}"][data-status="pending"]`,
      )
      .waitFor();
    await expect(page.getByTestId("approval-method").textContent()).resolves.toBe("DELETE");
    await expect(page.getByTestId("approval-resource").textContent()).resolves.toBe(
      "/dbs/shop/colls/orders/docs/o1",
    );
    await expect(page.getByTestId("approval-partition-key").textContent()).resolves.toBe('["o1"]');
    await expect(page.getByTestId("approval-person").textContent()).resolves.toBe(me.name);
    await expect(page.getByTestId("approval-agent").textContent()).resolves.toBe("claude");
    expect(await page.getByTestId("approval-hash").textContent()).toMatch(
      /^[A-Za-z0-9_-]{43}$|^[0-9a-f]{64}$/,
    );
    await page.locator('[data-testid="approval-hash-check"][data-ok="true"]').waitFor();
    await screenshots(page, "approval-delete");

    await page.getByRole("button", { name: "Approve with my key" }).click();
    await page
      .locator(`[data-testid="approval"][data-approval-id="${approvalId}"][data-status="approved"]`)
      .waitFor();
    await expect.poll(() => page.getByTestId("approvals-badge").count()).toBe(0);
    const server = await page.evaluate(
      async (id) =>
        (await (await fetch(`/api/approvals/${id}`)).json()) as {
          status: string;
          approvals: { by: string }[];
        },
      approvalId,
    );
    expect(server).toMatchObject({ status: "approved", approvals: [{ by: me.name }] });
    await screenshots(page, "approval-approved");
  });

  it("the retried delete runs once; the same delete again needs a new approval", async () => {
    const orders = agentOrders();
    await orders.item("o1", "o1").delete();
    // The page follows the approval live: used.
    await page
      .locator(`[data-testid="approval"][data-approval-id="${approvalId}"][data-status="used"]`)
      .waitFor();

    const again = await sdkError(() => orders.item("o1", "o1").delete());
    expect(again.code).toBe(403);
    expect(again.substatus).toBe(APPROVAL_REQUIRED);
    expect(approvalOf(again.message).id).not.toBe(approvalId);
    // o2 is untouched.
    const { resources } = await orders.items.query("SELECT c.id FROM c").fetchAll();
    expect(resources.map((r) => r.id)).toEqual(["o2"]);
  });

  it("raised no script error", () => {
    expect(pageErrors).toEqual([]);
  });
});
