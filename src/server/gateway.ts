import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { createGrantEnforcer } from "../agents/enforce.js";
import { openGrantStore } from "../agents/grantStore.js";
import { openApprovalStore } from "../approvals/approvalStore.js";
import { createApprovals } from "../approvals/approvals.js";
import { createApprovalGate } from "../approvals/gate.js";
import { createWebhookNotifier } from "../approvals/webhook.js";
import { startCheckpointer } from "../audit/checkpoints.js";
import { type AuditSink, createDurableAuditWriter } from "../audit/durableWriter.js";
import { startRetention } from "../audit/retention.js";
import type { LoadedConfig } from "../config/load.js";
import { resolveConfigPath } from "../config/load.js";
import { parseListen } from "../config/schema.js";
import { classify } from "../cosmos/classify.js";
import { startDevStore } from "../devstore/server.js";
import { openDevIssuer } from "../identity/dev/devIssuer.js";
import { expandIssuerEntries } from "../identity/federation/presets.js";
import type { IssuerConfig } from "../identity/tokens/issuers.js";
import { ownIssuerConfig } from "../identity/tokens/ownIssuer.js";
import { createTokenVerifier } from "../identity/tokens/verify.js";
import { firstAdminInvite } from "../identity/users/index.js";
import { createDataPlaneHandler } from "../proxy/handler.js";
import { createUpstream, type Upstream, type UpstreamAuth } from "../proxy/upstream.js";
import { createControlPlane } from "./controlPlane/index.js";
import { ensureDevTls } from "./devCa.js";
import {
  createIdentityServices,
  type IdentityEvent,
  type IdentityServices,
  identityAuditEvent,
} from "./identity.js";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics.js";
import { type PolicyHolder, policyEvent, readPolicyFile, watchPolicy } from "./policyWatcher.js";

export interface GatewayDeps {
  log: Logger;
  clock?: () => number;
  /** Trust the local development issuer (`cosmosgate dev`); refused with a real upstream. */
  devIssuer?: boolean;
  env?: NodeJS.ProcessEnv;
  /**
   * Internal, for bench/run.ts only (never a configuration value): the data plane's audit sink
   * instead of the durable writer, to measure the gateway with and without its audit side by side.
   */
  auditSink?: AuditSink;
}

export interface Gateway {
  /** The data plane's bound URL (https://127.0.0.1:PORT), useful when the port was 0. */
  dataPlaneUrl: string;
  controlPlaneUrl: string;
  /** PEM of the CA that signed the data plane's certificate (tls: auto), to trust in clients. */
  caPem?: string;
  caFile?: string;
  policyFile: string;
  policyMissing: boolean;
  policy: PolicyHolder;
  upstreamOrigin: string;
  /** The first administrator's one-time enrollment URL, on a start with no users. */
  firstAdminUrl?: string;
  identity: IdentityServices;
  upstreamType: "embedded" | "cosmos";
  /** The embedded store's SQLite file, when the upstream is embedded. */
  storeFile?: string;
  auditFile: string;
  /** This process's gateway instance id, written in every audit record it writes (random per start). */
  instance: string;
  stateDir: string;
  /** The gateway's metrics (also served at `GET /metrics` on the control plane). */
  metrics: GatewayMetrics;
  close(): Promise<void>;
}

/**
 * Builds and starts the gateway from a validated configuration: TLS, upstream, token verifier,
 * policy (watched), audit store, and the two listeners.
 *
 * @example const gw = await startGateway(await loadConfig("cosmosgate.yaml"), { log })
 */
export async function startGateway(loaded: LoadedConfig, deps: GatewayDeps): Promise<Gateway> {
  const { config } = loaded;
  const log = deps.log;
  const clock = deps.clock ?? Date.now;
  const env = deps.env ?? process.env;
  const stateDir = resolveConfigPath(loaded, config.stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c();
  };

  try {
    // TLS for the data plane.
    let tls: { cert: string; key: string };
    let caPem: string | undefined;
    let caFile: string | undefined;
    if (config.dataPlane.tls === "auto") {
      const dev = await ensureDevTls(stateDir, clock);
      tls = dev;
      caPem = dev.ca;
      caFile = dev.files.caCert;
    } else {
      tls = {
        cert: await readFile(resolveConfigPath(loaded, config.dataPlane.tls.cert), "utf8"),
        key: await readFile(resolveConfigPath(loaded, config.dataPlane.tls.key), "utf8"),
      };
    }

    // Audit.
    const auditFile = `${stateDir}/audit.db`;
    const metrics = createGatewayMetrics();
    const audit = await createDurableAuditWriter(auditFile, {
      clock,
      durability: config.audit.durability,
      bufferedDelayMs: config.audit.bufferedDelay,
      maxQueue: config.audit.maxQueue,
      onCommit: metrics.auditCommitted,
      // The sink of last resort: the whole record (records never hold tokens or bodies).
      onLost: (record, err) => {
        metrics.auditLogSink();
        log.error({ auditRecord: record, problem: err.message }, "audit record could not be stored");
      },
      onStateChange: (change, err) => {
        if (change === "recovered") log.warn("audit store writable again: records are being stored");
        else
          log.error(
            { problem: err?.message },
            change === "failed"
              ? "audit store failed (fsync): no record can be stored until the gateway restarts"
              : "audit store cannot be written: retrying; records wait in memory",
          );
      },
    });
    closers.push(() => audit.close());
    const dataAudit = deps.auditSink ?? audit;
    metrics.watch({ audit: dataAudit });
    // Every record this process writes carries its instance id (docs/audit.md).
    const instance = randomUUID();
    const recordIdentityEvent = (e: IdentityEvent) => {
      audit
        .append(identityAuditEvent(e, clock(), instance))
        .catch((err: Error) =>
          log.error({ problem: err.message, type: e.type }, "audit of an identity event failed"),
        );
    };
    recordIdentityEvent(configLoadedEvent(loaded, stateDir, deps.devIssuer === true));

    // The gateway's own identity provider: passkeys, signing keys, sessions.
    const identity = await createIdentityServices(loaded, {
      clock,
      events: recordIdentityEvent,
      env,
      stateDir,
    });
    closers.push(() => identity.close());
    identity.keyring.start();

    // Signed checkpoints of the audit chain (from a timer, never per request), and retention.
    const checkpoints = await startCheckpointer(auditFile, {
      keys: identity.keyring,
      every: config.audit.checkpoints.every,
      intervalMs: config.audit.checkpoints.interval,
      clock,
      instance,
      onError: (err) => log.warn({ problem: err.message }, "audit checkpoint not written; will retry"),
    });
    closers.push(() => checkpoints.close());
    const retention = startRetention(auditFile, {
      retentionMs: config.audit.retention,
      append: (e) => audit.append(e),
      clock,
      instance,
      onResult: (r) => {
        if (r.status === "pruned")
          log.info({ deleted: r.deleted, anchor: r.anchor?.seq }, "audit retention: pruned");
        else if (r.status === "refused") log.error({ problem: r.reason }, "audit retention refused to prune");
      },
      onError: (err) => log.error({ problem: err.message }, "audit retention failed"),
    });
    closers.push(() => retention.close());
    let firstAdminUrl: string | undefined;
    if (identity.store.countUsers() === 0) {
      const invite = firstAdminInvite(identity.store, clock, recordIdentityEvent);
      if (invite) firstAdminUrl = `${identity.issuerUrl}/enroll?invite=${invite.secret}`;
    }

    // Upstream.
    let upstream: Upstream;
    let storeFile: string | undefined;
    const up = config.upstream;
    if (up.type === "embedded") {
      // The embedded store listens on loopback; a key made for this run only means no other local
      // process can reach it without going through the gateway.
      const storeKey = randomBytes(64).toString("base64");
      const file = isAbsolute(up.file) ? up.file : join(stateDir, up.file);
      storeFile = file;
      const embedded = await startDevStore({
        file,
        masterKey: storeKey,
        udfs: up.udfs,
        logger: log,
        now: clock,
      });
      closers.push(() => embedded.close());
      log.info(
        { upstream: "embedded", file },
        "embedded Cosmos DB-compatible store: data is kept in this SQLite file",
      );
      upstream = createUpstream({
        origin: embedded.origin,
        auth: { type: "key", key: storeKey },
        connectTimeoutMs: up.timeouts.connect,
        requestTimeoutMs: up.timeouts.request,
        clock,
      });
    } else {
      if (deps.devIssuer) {
        throw new Error(
          "the development issuer is refused with a real Cosmos DB upstream; use `cosmosgate serve`",
        );
      }
      upstream = createUpstream({
        origin: up.endpoint,
        auth: await upstreamAuth(loaded, up.auth, env),
        connectTimeoutMs: up.timeouts.connect,
        requestTimeoutMs: up.timeouts.request,
        connections: up.connections,
        ca: up.ca ? await readFile(resolveConfigPath(loaded, up.ca), "utf8") : undefined,
        clock,
      });
    }
    closers.push(() => upstream.close());

    // Identity: the trusted issuers (and, in dev, the local development issuer).
    const issuers: IssuerConfig[] = [
      ownIssuerConfig({
        keyring: identity.keyring,
        issuer: identity.issuerUrl,
        audience: config.dataPlane.publicUrl,
      }),
    ];
    issuers.push(...expandIssuerEntries(config.identity.issuers, (p) => resolveConfigPath(loaded, p)));
    if (deps.devIssuer) {
      const dev = await openDevIssuer(stateDir);
      issuers.push({
        issuer: dev.issuer,
        audience: config.dataPlane.publicUrl,
        jwks: { file: dev.jwksFile },
        algorithms: ["ES256"],
        groupsClaim: "groups",
        name: "cosmosgate development issuer",
      });
    }
    if (issuers.length === 0) {
      log.warn(
        "no trusted token issuers are configured (identity.issuers): every data-plane request will get 401",
      );
    }
    const verifier = await createTokenVerifier({
      issuers,
      clock,
      clockSkewSeconds: Math.round(config.identity.tokens.clockSkew / 1000),
      cacheSize: config.identity.tokens.cacheSize,
      onVerified: metrics.tokenVerified,
      onKeys: (event) => {
        if (event.type === "stale") {
          log.warn(
            { issuer: event.issuer, problem: event.problem },
            `identity provider ${event.name} is unreachable: its keys fetched before stay in use until it answers again`,
          );
        } else {
          log.info({ issuer: event.issuer }, `identity provider ${event.name} answers again: keys refreshed`);
        }
      },
    });
    metrics.watch({ tokens: verifier });
    try {
      await verifier.ready();
    } catch (err) {
      // A file that cannot be read is a configuration mistake; an unreachable JWKS URL may recover.
      log.warn(
        { problem: (err as Error).message },
        "could not load every issuer's keys at start; will retry on use",
      );
    }

    // Policy, watched for changes.
    const policyFile = resolveConfigPath(loaded, config.policy);
    let initial: Awaited<ReturnType<typeof readPolicyFile>>;
    try {
      initial = await readPolicyFile(policyFile);
    } catch (err) {
      recordIdentityEvent(
        policyEvent("policy.refused", "the policy file is invalid: the gateway does not start", {
          file: policyFile,
          problem: (err as Error).message,
        }),
      );
      throw err;
    }
    if (initial.missing) {
      log.warn({ policyFile }, "no policy file: every request is denied. Create one with `cosmosgate init`");
    }
    recordIdentityEvent(
      policyEvent(
        "policy.loaded",
        initial.missing
          ? "no policy file at start-up: every request is denied"
          : "policy in force at start-up",
        {
          file: policyFile,
          version: initial.policy.version,
          missing: initial.missing,
          roles: initial.policy.roles.length,
        },
      ),
    );
    const policy: PolicyHolder = { current: initial.policy, loads: 0, refusals: 0 };
    let policyLoadedAt = clock();
    closers.push(
      watchPolicy(policyFile, policy, log, {
        events: (e) => {
          if (e.type === "policy.loaded") policyLoadedAt = clock();
          recordIdentityEvent(e);
        },
      }),
    );

    // Approvals (policy approvals: rules): stateDir/approvals.db, decided in the control plane.
    const approvals = createApprovals({
      store: openApprovalStore(join(stateDir, "approvals.db")),
      controlPlaneUrl: config.controlPlane.publicUrl.replace(/\/+$/, ""),
      audit: (e) => audit.append(e),
      instance,
      log,
      clock,
      maxPending: config.approvals.maxPending,
      webhook:
        config.approvals.webhook === undefined
          ? undefined
          : createWebhookNotifier({
              url: config.approvals.webhook,
              timeoutMs: config.approvals.webhookTimeout,
              log,
            }),
    });
    closers.push(() => approvals.close());
    const approvalGate = createApprovalGate({ approvals, holdMs: config.approvals.holdSeconds * 1000 });

    // Agent grants: stateDir/agents.db, made and revoked in the control plane, enforced (from
    // memory) on the data plane.
    const grantStore = openGrantStore(join(stateDir, "agents.db"), {
      pollMs: config.identity.revocationPoll,
      flushMs: config.agents.usageFlush,
    });
    closers.push(() => grantStore.close());
    const grants = createGrantEnforcer(grantStore, { issuer: identity.issuerUrl });

    // Data plane.
    const dataListen = parseListen(config.dataPlane.listen)!;
    const dataServer = createHttpsServer(
      { cert: tls.cert, key: tls.key, keepAliveTimeout: 65_000 },
      createDataPlaneHandler({
        verifier,
        revocation: identity.revocation,
        policy,
        upstream,
        audit: dataAudit,
        auditOnFailure: config.audit.onFailure,
        metrics: metrics.proxy,
        credentials: identity.credentials,
        instance,
        publicUrl: config.dataPlane.publicUrl,
        maxBodyBytes: config.dataPlane.maxBodyBytes,
        log,
        clock,
        approvals: approvalGate,
        grants,
      }),
    );
    await listen(dataServer, dataListen.host, dataListen.port);
    closers.push(() => closeServer(dataServer));

    // Control plane: passkey ceremonies, OAuth for the CLI, JWKS and discovery, pages, health.
    const controlListen = parseListen(config.controlPlane.listen)!;
    const app = createControlPlane({
      federation: verifier,
      console: {
        policy: { holder: policy, file: policyFile, loadedAt: () => policyLoadedAt },
        auditFile,
        audit: dataAudit,
        upstream: {
          type: up.type,
          endpoint: up.type === "embedded" ? `embedded store, ${storeFile}` : up.endpoint,
          probe: () => probeUpstream(upstream, config.upstream.timeouts.request),
        },
        issuers: issuers
          .filter((i) => i.flavor !== "gateway")
          .map((i) => ({ name: i.name ?? i.issuer, issuer: i.issuer })),
        version: PACKAGE_VERSION,
        startedAt: clock(),
        consoleDir: CONSOLE_DIR,
      },
      identity,
      approvals,
      agents: { store: grantStore, policy, maxLifetimeMs: config.agents.maxLifetime },
      config,
      log,
      clock,
      events: recordIdentityEvent,
      auditCheckpoints: checkpoints,
      metrics,
      cookieSecret: await ensureSecretFile(`${stateDir}/cookie-secret`),
      health: () => ({
        status: "ok",
        policyVersion: policy.current.version,
        upstream: up.type,
        signingKeys: identity.keyring.list().length,
      }),
    });
    try {
      await app.listen({ host: controlListen.host, port: controlListen.port });
    } catch (err) {
      await app.close();
      const code = (err as NodeJS.ErrnoException).code;
      throw code === "EADDRINUSE"
        ? new Error(
            `cannot listen on ${config.controlPlane.listen}: the address is in use; stop the other process or change controlPlane.listen`,
          )
        : err;
    }
    closers.push(() => app.close());
    const controlServer = app.server;
    recordIdentityEvent({
      type: "gateway.started",
      subject: "cosmosgate",
      subjectKind: "system",
      resource: "/gateway",
      reason: "the gateway started and listens on both planes",
      decision: "allow",
      details: {
        dataPlane: urlOf(dataServer, "https"),
        controlPlane: urlOf(controlServer, "http"),
        upstreamType: up.type,
        policyVersion: policy.current.version,
        signingKeys: identity.keyring.list().length,
        pid: process.pid,
        node: process.version,
      },
    });

    return {
      dataPlaneUrl: urlOf(dataServer, "https"),
      controlPlaneUrl: urlOf(controlServer, "http"),
      caPem,
      caFile,
      policyFile,
      policyMissing: initial.missing,
      policy,
      upstreamOrigin: upstream.origin,
      upstreamType: up.type,
      storeFile,
      firstAdminUrl,
      identity,
      auditFile,
      instance,
      stateDir,
      metrics,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The `config.loaded` event: where the configuration came from and the settings an auditor asks
 * about (upstream, audit durability, identity). Never a secret: no keys, no key file contents, no
 * environment values; the upstream endpoint is reduced to its origin (no user info, no query).
 */
function configLoadedEvent(loaded: LoadedConfig, stateDir: string, devIssuer: boolean): IdentityEvent {
  const { config } = loaded;
  const up = config.upstream;
  const details: Record<string, string | number | boolean> = {
    configFile: loaded.file ?? "(none: defaults)",
    stateDir,
    upstreamType: up.type,
    dataPlaneUrl: config.dataPlane.publicUrl,
    controlPlaneUrl: config.controlPlane.publicUrl,
    tls: config.dataPlane.tls === "auto" ? "auto" : "files",
    policyFile: resolveConfigPath(loaded, config.policy),
    trustedIssuers: config.identity.issuers.length,
    devIssuer,
    rpId: config.identity.rp.id,
    userVerification: config.identity.authenticators.userVerification,
    requireDeviceBound: config.identity.authenticators.requireDeviceBound,
    tokenTtlMs: config.identity.tokens.ttl,
    signingKeyEncryption: config.identity.tokens.keyEncryption !== undefined,
  };
  if (up.type === "cosmos") {
    details.upstreamEndpoint = originOf(up.endpoint);
    details.upstreamAuth = up.auth.type;
  }
  // Every audit setting (durability, and whatever else audit: holds), flattened to "audit.KEY".
  flattenScalars(config.audit, "audit", details);
  return {
    type: "config.loaded",
    subject: "cosmosgate",
    subjectKind: "system",
    resource: "/config",
    reason: `configuration loaded from ${loaded.file ?? "defaults"}; audit durability ${config.audit.durability}`,
    decision: "allow",
    details,
  };
}

function flattenScalars(
  value: unknown,
  prefix: string,
  out: Record<string, string | number | boolean>,
): void {
  if (typeof value === "string" || typeof value === "boolean") out[prefix] = value;
  else if (typeof value === "number" && Number.isFinite(value)) out[prefix] = value;
  else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenScalars(v, `${prefix}.${k}`, out);
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(not a URL)";
  }
}

async function upstreamAuth(
  loaded: LoadedConfig,
  auth: { type: "key"; env?: string; file?: string } | { type: "managedIdentity"; clientId?: string },
  env: NodeJS.ProcessEnv,
): Promise<UpstreamAuth> {
  if (auth.type === "key") {
    let key: string | undefined;
    if (auth.env) {
      key = env[auth.env];
      if (!key)
        throw new Error(
          `upstream.auth.env: the environment variable ${auth.env} is not set; set it to the account key`,
        );
    } else {
      key = (await readFile(resolveConfigPath(loaded, auth.file!), "utf8")).trim();
    }
    return { type: "key", key };
  }
  const { ManagedIdentityCredential } = await import("@azure/identity");
  const credential = auth.clientId
    ? new ManagedIdentityCredential({ clientId: auth.clientId })
    : new ManagedIdentityCredential();
  return {
    type: "aad",
    async getToken(scope) {
      const t = await credential.getToken(scope);
      if (!t) throw new Error("managed identity returned no token");
      return t;
    },
  };
}

/** A random secret kept in a 0600 file, made on first use (the console's cookie-signing key). */
async function ensureSecretFile(file: string): Promise<string> {
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (text.length >= 32) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const secret = randomBytes(32).toString("base64url");
  await writeFile(file, secret, { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new Error(
              `cannot listen on ${host}:${port}: the address is in use; stop the other process or change the listen setting`,
            )
          : err,
      );
    });
    server.listen(port, host, () => resolve());
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function urlOf(server: Server, scheme: string): string {
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}

/** cosmosgate's version, from package.json. */
const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The built web console (npm run build:console writes it). */
const CONSOLE_DIR = fileURLToPath(new URL("../../dist/console", import.meta.url));

/** An account read through the upstream client, with the gateway's credential: is Cosmos DB there? */
async function probeUpstream(
  upstream: Upstream,
  timeoutMs: number,
): Promise<{ healthy: boolean; latencyMs: number | null; problem?: string }> {
  const started = performance.now();
  try {
    const res = await upstream.send({
      method: "GET",
      path: "/",
      headers: { "x-ms-version": "2020-07-15" },
      op: classify("GET", "/", {}),
    });
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    if (res.status === 200) return { healthy: true, latencyMs };
    return { healthy: false, latencyMs, problem: `the account read answered HTTP ${res.status}` };
  } catch (error) {
    return {
      healthy: false,
      latencyMs: null,
      problem: `${(error as Error).message} (time-out ${Math.round(timeoutMs / 1000)} s)`,
    };
  }
}
