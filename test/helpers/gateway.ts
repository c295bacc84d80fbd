import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { CosmosClient } from "@azure/cosmos";
import pino from "pino";
import { loadConfig } from "../../src/config/load.js";
import { type Gateway, startGateway } from "../../src/server/gateway.js";
import { createTestIssuer, type TestIssuer } from "./issuer.js";
import { freePort, type SeenRequest, startRecordingUpstream } from "./upstream.js";

export const ISSUER = "https://issuer.test.cosmosgate/";

export interface Harness {
  dir: string;
  gw: Gateway;
  issuer: TestIssuer;
  /** Public URL of the data plane (https://localhost:PORT). */
  endpoint: string;
  /** Public URL of the control plane (http://localhost:PORT), also the WebAuthn origin. */
  controlUrl: string;
  /** Requests the upstream received (empty when the upstream is embedded). */
  seen: SeenRequest[];
  logs: string[];
  policyFile: string;
  /** An @azure/cosmos client whose credential returns tokens for `sub` with `groups`. */
  client(sub: string, groups?: string[]): CosmosClient;
  /** A raw HTTPS request to the data plane, trusting the dev CA. */
  raw(
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: string,
  ): Promise<{
    status: number;
    headers: Record<string, unknown>;
    body: string;
    // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected field by field
    json: () => any;
  }>;
  close(): Promise<void>;
}

export const TEST_POLICY = `
roles:
  admin:
    - allow: ["*"]
      on: /
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
members:
  admin: ["group:cosmos-admins"]
  orders-reader: ["group:analysts"]
  Cosmos DB Built-in Data Contributor: ["sub:carol"]
`;

/**
 * Starts a real gateway in-process on real HTTPS with the dev CA, a file-backed test issuer, and
 * an upstream: by default a recording `@vercel/cosmosdb-server` reached as a `cosmos` upstream
 * with key auth (so signing is exercised), or `embedded`.
 */
export async function startHarness(
  opts: {
    upstream?: "recording" | "embedded";
    policy?: string;
    extraConfig?: string;
    upstreamYaml?: string;
    /**
     * More `identity.issuers` entries, appended verbatim after the built-in test issuer: YAML list
     * items indented by four spaces (`    - preset: entra`).
     */
    issuersYaml?: string;
    /** YAML lines under `identity:` (indented two spaces), e.g. "  authenticators: {timeout: 6s}". */
    identityYaml?: string;
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "cosmosgate-e2e-"));
  const port = await freePort();
  const endpoint = `https://localhost:${port}`;
  const controlPort = await freePort();
  const controlUrl = `http://localhost:${controlPort}`;
  const issuer = await createTestIssuer(dir, ISSUER, endpoint);
  let seen: SeenRequest[] = [];
  let closeUpstream = async () => {};
  let upstreamYaml = opts.upstreamYaml ?? "upstream: {type: embedded}";
  if (!opts.upstreamYaml && (opts.upstream ?? "recording") === "recording") {
    const up = await startRecordingUpstream();
    seen = up.seen;
    closeUpstream = up.close;
    upstreamYaml = `upstream:\n  type: cosmos\n  endpoint: ${up.origin}/\n  auth: {type: key, env: TEST_COSMOS_KEY}\n  timeouts: {connect: 2s, request: 5s}`;
  }
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, opts.policy ?? TEST_POLICY);
  const configFile = join(dir, "cosmosgate.yaml");
  writeFileSync(
    configFile,
    `stateDir: ./state
dataPlane:
  listen: 127.0.0.1:${port}
  publicUrl: ${endpoint}
controlPlane:
  listen: 127.0.0.1:${controlPort}
  publicUrl: ${controlUrl}
${upstreamYaml}
identity:
  rp: {id: localhost, name: cosmosgate test, origins: ["${controlUrl}"]}
${opts.identityYaml ? `${opts.identityYaml.trimEnd()}\n` : ""}  issuers:
    - issuer: ${ISSUER}
      audience: ${endpoint}
      jwks: {file: ${issuer.jwksFile}}
      algorithms: [ES256]
      rolesClaim: roles
${opts.issuersYaml ? `${opts.issuersYaml.replace(/^\n+/, "").trimEnd()}\n` : ""}policy: ./policy.yaml
log: {level: debug}
${opts.extraConfig ?? ""}`,
  );
  const logs: string[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const gw = await startGateway(await loadConfig(configFile), {
    log,
    env: { TEST_COSMOS_KEY: Buffer.from("test-account-key-for-signing").toString("base64") },
  });
  const ca = gw.caPem!;
  const httpsAgent = new HttpsAgent({ ca, keepAlive: true });
  const clients: CosmosClient[] = [];
  return {
    dir,
    gw,
    issuer,
    endpoint,
    controlUrl,
    seen,
    logs,
    policyFile,
    client(sub, groups = []) {
      const c = new CosmosClient({
        endpoint,
        aadCredentials: {
          getToken: async () => ({
            token: await issuer.sign({ sub, groups }),
            expiresOnTimestamp: Date.now() + 600_000,
          }),
        },
        agent: httpsAgent,
        connectionPolicy: {
          retryOptions: {
            maxRetryAttemptCount: 0,
            fixedRetryIntervalInMilliseconds: 0,
            maxWaitTimeInSeconds: 1,
          },
        },
      });
      clients.push(c);
      return c;
    },
    raw(method, path, headers = {}, body) {
      // node:https sends the path exactly as given (no dot-segment normalization), as an attacker would.
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          { host: "localhost", port, method, path, headers, agent: httpsAgent },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString();
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: text,
                json: () => JSON.parse(text),
              });
            });
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    async close() {
      for (const c of clients) c.dispose();
      httpsAgent.destroy();
      await gw.close();
      await closeUpstream();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
