import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import { type RunningCli, startCli } from "./cli.js";
import { ISSUER, TEST_POLICY } from "./gateway.js";
import { createTestIssuer, type TestIssuer } from "./issuer.js";
import { freePort, type SeenRequest, startRecordingUpstream } from "./upstream.js";

/** `cosmosgate serve` as a child process (it can be SIGKILLed), with a recording upstream in this process. */
export interface ChildGateway {
  dir: string;
  configFile: string;
  auditFile: string;
  endpoint: string;
  controlUrl: string;
  issuer: TestIssuer;
  /** Requests the upstream received; the upstream outlives the gateway's restarts. */
  seen: SeenRequest[];
  /** The running process (undefined between a kill and a restart). */
  process(): RunningCli | undefined;
  /** Starts (or restarts) `cosmosgate serve` and waits for its banner. */
  start(): Promise<void>;
  /** An @azure/cosmos client that trusts the gateway's CA, does not retry, and times out quickly. */
  client(sub: string, groups?: string[]): CosmosClient;
  close(): Promise<void>;
}

/** Writes a configuration for `cosmosgate serve` (data plane, control plane, recording upstream, test issuer). */
export async function createChildGateway(opts: { auditYaml?: string } = {}): Promise<ChildGateway> {
  const dir = mkdtempSync(join(tmpdir(), "cosmosgate-child-"));
  const port = await freePort();
  const controlPort = await freePort();
  const endpoint = `https://localhost:${port}`;
  const controlUrl = `http://localhost:${controlPort}`;
  const issuer = await createTestIssuer(dir, ISSUER, endpoint);
  const upstream = await startRecordingUpstream();
  writeFileSync(join(dir, "policy.yaml"), TEST_POLICY);
  const configFile = join(dir, "cosmosgate.yaml");
  writeFileSync(
    configFile,
    `stateDir: ./state
dataPlane: {listen: "127.0.0.1:${port}", publicUrl: "${endpoint}"}
controlPlane: {listen: "127.0.0.1:${controlPort}", publicUrl: "${controlUrl}"}
upstream:
  type: cosmos
  endpoint: ${upstream.origin}/
  auth: {type: key, env: TEST_COSMOS_KEY}
  timeouts: {connect: 2s, request: 5s}
identity:
  rp: {id: localhost, name: cosmosgate test, origins: ["${controlUrl}"]}
  issuers:
    - {issuer: "${ISSUER}", audience: "${endpoint}", jwks: {file: "${issuer.jwksFile}"}, algorithms: [ES256], rolesClaim: roles}
policy: ./policy.yaml
${opts.auditYaml ?? "audit: {durability: strict}"}
log: {level: warn}
`,
  );
  const env = { TEST_COSMOS_KEY: Buffer.from("test-account-key-for-signing").toString("base64") };
  let running: RunningCli | undefined;
  const agents: HttpsAgent[] = [];
  const clients: CosmosClient[] = [];
  return {
    dir,
    configFile,
    auditFile: join(dir, "state", "audit.db"),
    endpoint,
    controlUrl,
    issuer,
    seen: upstream.seen,
    process: () => running,
    async start() {
      running = startCli(["serve", "--config", configFile], { cwd: dir, env });
      await running.waitFor(/Press Ctrl-C to stop/, 60_000);
    },
    client(sub, groups = []) {
      const agent = new HttpsAgent({
        ca: readFileSync(join(dir, "state", "tls", "ca.pem")),
        keepAlive: true,
      });
      agents.push(agent);
      const c = new CosmosClient({
        endpoint,
        aadCredentials: {
          getToken: async () => ({
            token: await issuer.sign({ sub, groups }),
            expiresOnTimestamp: Date.now() + 600_000,
          }),
        },
        agent,
        connectionPolicy: {
          enableEndpointDiscovery: false,
          requestTimeout: 5_000,
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
    async close() {
      for (const c of clients) c.dispose();
      for (const a of agents) a.destroy();
      await running?.stop("SIGTERM");
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
