import { createServer } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AddressInfo } from "node:net";
import type { TokenCredential } from "@azure/core-auth";
import { CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FederatedCredential, gitHubActionsToken } from "../src/client/index.js";
import { readAuditRecords } from "./helpers/auditProbe.js";
import { type FakeIdp, startFakeIdp } from "./helpers/fakeIdp.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

/**
 * The real @azure/cosmos SDK reaches the data plane with federated tokens: an Entra ID v2.0 token
 * passed straight through a credential, and a GitHub Actions token exchanged at /oauth/token
 * (RFC 8693) for a gateway token. The audit names the federated issuer and subject of both.
 */

const POLICY = `
roles:
  orders-writer:
    - allow: [metadata, read, query, create, upsert, replace, delete]
      on: /dbs/fed/colls/orders
  admin:
    - allow: ["*"]
      on: /
members:
  admin: ["group:Cosmos.Admin"]
  orders-writer: ["group:shop-deploy"]
`;

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

let idp: FakeIdp;
let h: Harness;
let agent: HttpsAgent;
const clients: CosmosClient[] = [];

beforeAll(async () => {
  idp = await startFakeIdp();
  h = await startHarness({
    upstream: "embedded",
    policy: POLICY,
    issuersYaml: `
    - preset: entra
      tenant: ${idp.tenant}
      audience: ${idp.clientId}
      authority: ${idp.origin}
    - preset: github-actions
      name: shop-deploy
      issuer: ${idp.githubIssuer}
      audience: https://github.com/acme
      repository: acme/shop
      ref: refs/heads/main
      environment: production
      groups: [shop-deploy]`,
  });
  agent = new HttpsAgent({ ca: h.gw.caPem, keepAlive: true });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.dispose();
  agent?.destroy();
  await h?.close();
  await idp?.close();
});

function sdk(credential: TokenCredential): CosmosClient {
  const client = new CosmosClient({
    endpoint: h.endpoint,
    aadCredentials: credential,
    agent,
    connectionPolicy: {
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
  clients.push(client);
  return client;
}

async function exchange(subjectToken: string, extra: Record<string, string> = {}) {
  const res = await fetch(`${h.controlUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: JWT_TYPE,
      ...extra,
    }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe("federated tokens through the real SDK", () => {
  it("an Entra ID v2.0 token in aadCredentials: an administrator by app role creates a database and items", async () => {
    const client = sdk({
      getToken: async () => ({
        token: await idp.entraV2Token({ roles: ["Cosmos.Admin"] }),
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    });
    const { database } = await client.databases.createIfNotExists({ id: "fed" });
    const { container } = await database.containers.createIfNotExists({
      id: "orders",
      partitionKey: { paths: ["/customer"] },
    });
    await container.items.create({ id: "o1", customer: "c1", total: 10 });
    const { resource } = await container.item("o1", "c1").read();
    expect(resource?.total).toBe(10);

    const records = readAuditRecords(h.gw.auditFile).filter((r) => r.type === "data.request");
    const created = records.find((r) => r.operation === "item.create" && r.status === 201);
    expect(created).toMatchObject({
      issuer: idp.entraV2Issuer,
      subjectKind: "user",
      subjectName: "Ada Lovelace",
      decision: "allow",
    });
    // The subject is the oid, the same for the user in every app (not the pairwise sub).
    expect(created?.subject).toMatch(/^[0-9a-f-]{36}$/);
    expect(created?.tokenIssuer).toBeUndefined();
  });

  it("a GitHub Actions token exchanged for a gateway token: the CI job writes with no stored secret", async () => {
    const federated = await idp.githubToken();
    const exchanged = await exchange(federated);
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers.get("cache-control")).toBe("no-store");
    expect(exchanged.body).toMatchObject({
      token_type: "Bearer",
      issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
    });
    const accessToken = exchanged.body.access_token as string;
    expect(accessToken.split(".")).toHaveLength(3);
    expect(exchanged.body.expires_in).toBeGreaterThan(0);
    expect(exchanged.body.expires_in).toBeLessThanOrEqual(600);

    const client = sdk({
      getToken: async () => ({ token: accessToken, expiresOnTimestamp: Date.now() + 300_000 }),
    });
    const container = client.database("fed").container("orders");
    await container.items.upsert({ id: "o2", customer: "c2", total: 20 });
    const { resources } = await container.items
      .query({ query: "SELECT * FROM c WHERE c.customer = @c", parameters: [{ name: "@c", value: "c2" }] })
      .fetchAll();
    expect(resources.map((r) => r.id)).toEqual(["o2"]);
    // The grant is the role of its entry only: no database management.
    await expect(client.databases.create({ id: "not-allowed" })).rejects.toMatchObject({
      code: 403,
      substatus: 5301,
    });

    const records = readAuditRecords(h.gw.auditFile);
    const issued = records.find(
      (r) =>
        r.type === "token.issued" &&
        (r.details as { grant?: string } | undefined)?.grant === "token-exchange",
    );
    expect(issued).toMatchObject({
      subject: "repo:acme/shop:environment:production",
      subjectKind: "service",
      issuer: idp.githubIssuer,
      decision: "allow",
    });
    const upsert = records.find((r) => r.type === "data.request" && r.operation === "item.upsert");
    expect(upsert).toMatchObject({
      subject: "repo:acme/shop:environment:production",
      subjectKind: "service",
      issuer: idp.githubIssuer,
      tokenIssuer: h.controlUrl,
      jti: issued?.jti,
      decision: "allow",
    });
  });

  it("cosmosgate/client: FederatedCredential + gitHubActionsToken, as a workflow uses them", async () => {
    // The runner's OIDC endpoint, imitated: it checks the request token and mints for the audience asked.
    let asked = 0;
    const runner = createServer((req, res) => {
      asked++;
      const url = new URL(req.url ?? "/", "http://runner");
      if (req.headers.authorization !== "bearer runner-request-token") {
        res.writeHead(401).end();
        return;
      }
      idp.githubToken({ aud: url.searchParams.get("audience") }).then((value) => {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ value }));
      });
    });
    await new Promise<void>((resolve) => runner.listen(0, "127.0.0.1", resolve));
    try {
      const env = {
        ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${(runner.address() as AddressInfo).port}/token?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: "runner-request-token",
      };
      const credential = new FederatedCredential({
        getToken: () => gitHubActionsToken("https://github.com/acme", { env }),
        exchange: { gateway: h.controlUrl },
      });
      const container = sdk(credential).database("fed").container("orders");
      await container.items.upsert({ id: "o3", customer: "c3", total: 30 });
      const { resource } = await container.item("o3", "c3").read();
      expect(resource?.total).toBe(30);
      // One OIDC token and one exchange served every request: the credential caches.
      expect(asked).toBe(1);
      const upserts = readAuditRecords(h.gw.auditFile).filter(
        (r) => r.type === "data.request" && r.resource.endsWith("/docs/o3"),
      );
      expect(upserts.length).toBeGreaterThan(0);
      for (const r of upserts)
        expect(r).toMatchObject({ issuer: idp.githubIssuer, tokenIssuer: h.controlUrl });

      // Without the runner's endpoint, the credential says why.
      await expect(gitHubActionsToken("https://github.com/acme", { env: {} })).rejects.toThrow(
        /id-token: write/,
      );
    } finally {
      runner.closeAllConnections();
      await new Promise((resolve) => runner.close(resolve));
    }
  });

  it("the same GitHub token also works directly, without exchange", async () => {
    const client = sdk({
      getToken: async () => ({ token: await idp.githubToken(), expiresOnTimestamp: Date.now() + 300_000 }),
    });
    const { resource } = await client.database("fed").container("orders").item("o2", "c2").read();
    expect(resource?.total).toBe(20);
  });
});

describe("data-plane refusals that name the cause", () => {
  it("a Microsoft Graph token: 401 saying to request the gateway's own scope", async () => {
    const graph = await idp.graphToken();
    const res = await h.raw("GET", "/dbs", {
      authorization: encodeURIComponent(`type=aad&ver=1.0&sig=${graph}`),
      "x-ms-date": new Date().toUTCString(),
      "x-ms-version": "2020-07-15",
    });
    expect(res.status).toBe(401);
    expect(res.json().message).toMatch(/Microsoft Graph.*api:\/\/<client-id>\/\.default/);
  });

  it("an Entra v1 token where only v2.0 is trusted: 401 saying how to fix the app or the config", async () => {
    const res = await h.raw("GET", "/dbs", {
      authorization: encodeURIComponent(`type=aad&ver=1.0&sig=${await idp.entraV1Token()}`),
      "x-ms-date": new Date().toUTCString(),
      "x-ms-version": "2020-07-15",
    });
    expect(res.status).toBe(401);
    expect(res.json().message).toMatch(/Entra ID v1 token.*accessTokenAcceptedVersion: 2.*acceptV1: true/);
  });

  it("an unmet requirement shows the claim value as JSON, not doubly quoted", async () => {
    const res = await h.raw("GET", "/dbs", {
      authorization: encodeURIComponent(
        `type=aad&ver=1.0&sig=${await idp.githubToken({ environment: ["production"] })}`,
      ),
      "x-ms-date": new Date().toUTCString(),
      "x-ms-version": "2020-07-15",
    });
    expect(res.status).toBe(401);
    expect(res.json().message).toContain(
      'environment equals "production" (the token\'s environment: ["production"])',
    );
  });
});

describe("token exchange refusals", () => {
  it("refuses a token from another repository, naming the requirement, and audits the refusal", async () => {
    const refused = await exchange(await idp.githubToken({ repository: "acme/shop-evil" }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_request");
    expect(refused.body.error_description).toMatch(/ERR_TOKEN_REQUIREMENT/);
    expect(refused.body.error_description).toMatch(/repository equals "acme\/shop"/);
    const failed = readAuditRecords(h.gw.auditFile).filter((r) => r.type === "signin.failed");
    expect(failed.some((r) => /token exchange refused/.test(r.reason))).toBe(true);
  });

  it("refuses a gateway token (no re-exchange), an ID-token type, an actor token and another audience", async () => {
    const first = await exchange(await idp.githubToken());
    const gatewayToken = first.body.access_token as string;
    const again = await exchange(gatewayToken);
    expect(again.status).toBe(400);
    expect(again.body.error_description).toMatch(/already a gateway token/);

    const federated = await idp.githubToken();
    const idType = await exchange(federated, {
      subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
    });
    expect(idType.body.error_description).toMatch(/subject_token_type/);
    const actor = await exchange(federated, { actor_token: federated, actor_token_type: JWT_TYPE });
    expect(actor.body.error_description).toMatch(/actor_token/);
    const audience = await exchange(federated, { audience: "https://elsewhere.example" });
    expect(audience.body.error_description).toMatch(/audience must be the data plane/);
    const resource = await exchange(federated, { resource: "https://elsewhere.example" });
    expect(resource.body.error).toBe("invalid_target");
    const missing = await exchange("", {});
    expect(missing.body.error_description).toMatch(/subject_token is missing/);
    const garbage = await exchange("not-a-jwt");
    expect(garbage.status).toBe(400);
    expect(garbage.body.error_description).toMatch(/ERR_TOKEN_MALFORMED/);
  });

  it("an exchanged token expires no later than the federated token it came from", async () => {
    const soon = Math.floor(Date.now() / 1000) + 90;
    const exchanged = await exchange(await idp.githubToken({ exp: soon }));
    expect(exchanged.status).toBe(200);
    expect(exchanged.body.expires_in).toBeLessThanOrEqual(90);
    const payload = JSON.parse(
      Buffer.from((exchanged.body.access_token as string).split(".")[1] as string, "base64url").toString(),
    );
    expect(payload.exp).toBeLessThanOrEqual(soon);
    expect(payload).toMatchObject({
      fed_iss: idp.githubIssuer,
      fed_kind: "service",
      groups: ["shop-deploy"],
    });
    expect(payload.sid).toBeUndefined();
  });
});
