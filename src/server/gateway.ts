import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { createDurableAuditWriter } from "../audit/durableWriter.js";
import type { AuditEvent } from "../audit/types.js";
import type { LoadedConfig } from "../config/load.js";
import { resolveConfigPath } from "../config/load.js";
import { parseListen } from "../config/schema.js";
import { startVercelUpstream } from "../devstore/vercel.js";
import { openDevIssuer } from "../identity/dev/devIssuer.js";
import type { IssuerConfig } from "../identity/tokens/issuers.js";
import { ownIssuerConfig } from "../identity/tokens/ownIssuer.js";
import { createTokenVerifier } from "../identity/tokens/verify.js";
import { firstAdminInvite } from "../identity/users/index.js";
import { createDataPlaneHandler } from "../proxy/handler.js";
import { createUpstream, type Upstream, type UpstreamAuth } from "../proxy/upstream.js";
import { createControlPlane } from "./controlPlane/index.js";
import { ensureDevTls } from "./devCa.js";
import { createIdentityServices, type IdentityEvent, type IdentityServices } from "./identity.js";
import { type PolicyHolder, readPolicyFile, watchPolicy } from "./policyWatcher.js";

export interface GatewayDeps {
  log: Logger;
  clock?: () => number;
  /** Trust the local development issuer (`cosmosgate dev`); refused with a real upstream. */
  devIssuer?: boolean;
  env?: NodeJS.ProcessEnv;
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
  auditFile: string;
  stateDir: string;
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
    const audit = await createDurableAuditWriter(auditFile, { clock });
    closers.push(() => audit.close());
    const recordIdentityEvent = (e: IdentityEvent) => {
      const event: AuditEvent = {
        time: clock(),
        type: e.type,
        subject: e.subject ?? "",
        credential: e.credential,
        actions: [],
        resource: e.kid ? `/keys/${e.kid}` : "",
        decision: e.decision ?? "allow",
        reason: e.reason,
        status: 0,
        durationMs: 0,
      };
      audit
        .append(event)
        .catch((err: Error) =>
          log.error({ problem: err.message, type: e.type }, "audit of an identity event failed"),
        );
    };

    // The gateway's own identity provider: passkeys, signing keys, sessions.
    const identity = await createIdentityServices(loaded, {
      clock,
      events: recordIdentityEvent,
      env,
      stateDir,
    });
    closers.push(() => identity.close());
    identity.keyring.start();
    let firstAdminUrl: string | undefined;
    if (identity.store.countUsers() === 0) {
      const invite = firstAdminInvite(identity.store, clock);
      if (invite) firstAdminUrl = `${identity.issuerUrl}/enroll?invite=${invite.secret}`;
    }

    // Upstream.
    let upstream: Upstream;
    const up = config.upstream;
    if (up.type === "embedded") {
      const embedded = await startVercelUpstream();
      closers.push(() => embedded.close());
      log.warn(
        { upstream: embedded.origin },
        "embedded upstream (@vercel/cosmosdb-server) keeps data IN MEMORY ONLY: everything is lost when the gateway stops",
      );
      upstream = createUpstream({
        origin: embedded.origin,
        auth: { type: "none" },
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
    for (const i of config.identity.issuers) {
      issuers.push({
        ...i,
        jwks: "file" in i.jwks ? { file: resolveConfigPath(loaded, i.jwks.file) } : i.jwks,
      });
    }
    if (deps.devIssuer) {
      const dev = await openDevIssuer(stateDir);
      issuers.push({
        issuer: dev.issuer,
        audience: config.dataPlane.publicUrl,
        jwks: { file: dev.jwksFile },
        algorithms: ["ES256"],
        rolesClaim: "groups",
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
    });
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
    const initial = await readPolicyFile(policyFile);
    if (initial.missing) {
      log.warn({ policyFile }, "no policy file: every request is denied. Create one with `cosmosgate init`");
    }
    const policy: PolicyHolder = { current: initial.policy, loads: 0, refusals: 0 };
    closers.push(watchPolicy(policyFile, policy, log));

    // Data plane.
    const dataListen = parseListen(config.dataPlane.listen)!;
    const dataServer = createHttpsServer(
      { cert: tls.cert, key: tls.key, keepAliveTimeout: 65_000 },
      createDataPlaneHandler({
        verifier,
        revocation: identity.revocation,
        policy,
        upstream,
        audit,
        publicUrl: config.dataPlane.publicUrl,
        maxBodyBytes: config.dataPlane.maxBodyBytes,
        log,
        clock,
      }),
    );
    await listen(dataServer, dataListen.host, dataListen.port);
    closers.push(() => closeServer(dataServer));

    // Control plane: passkey ceremonies, OAuth for the CLI, JWKS and discovery, pages, health.
    const controlListen = parseListen(config.controlPlane.listen)!;
    const app = createControlPlane({
      identity,
      config,
      log,
      clock,
      events: recordIdentityEvent,
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
      firstAdminUrl,
      identity,
      auditFile,
      stateDir,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
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
