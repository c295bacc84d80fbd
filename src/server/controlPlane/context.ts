import type { Logger } from "pino";
import type { Approvals } from "../../approvals/approvals.js";
import type { AuditSink } from "../../audit/durableWriter.js";
import type { Config } from "../../config/schema.js";
import type { TokenVerifier } from "../../identity/tokens/verify.js";
import type { IdentityEvent, IdentityServices } from "../identity.js";
import type { PolicyHolder } from "../policyWatcher.js";
import type { AgentsDeps } from "./routes/grants.js";

/** What {@link createControlPlane} is built from. */
export interface ControlPlaneDeps {
  /** The gateway's own identity provider (store, ceremonies, keyring, issuer, sessions). */
  identity: IdentityServices;
  /** Approvals asked for by policy `approvals:` rules; without it, /api/approvals answers 404. */
  approvals?: Approvals;
  /** Agent grants (routes/grants.ts) and their tokens at /oauth/token; without it, /api/grants answers 404. */
  agents?: AgentsDeps;
  config: Config;
  /** Request summaries (method, route pattern, status, time) and faults; never tokens, codes, cookies or bodies. */
  log: Logger;
  /** Milliseconds since the epoch. */
  clock: () => number;
  /**
   * Audit sink for what the control plane does itself: token.*, credential.renamed/removed,
   * session.revoked on key removal. Events reach it completed by `identity.describeEvent` and carry
   * the request's client address and user agent.
   */
  events: (e: IdentityEvent) => void;
  /** Signs the console session cookie: at least 32 characters of a random secret, kept in stateDir. */
  cookieSecret: string;
  /**
   * The data plane's token verifier: token exchange (RFC 8693) at `/oauth/token` accepts the
   * federated tokens it accepts. Without it, token exchange is refused.
   */
  federation?: Pick<TokenVerifier, "verify" | "verifyCached">;
  /** What the web console's API reads beyond the identity provider. Without it, `/api/` console routes answer 404. */
  console?: ConsoleDeps;
  /** The body of `GET /healthz`. */
  health: () => Record<string, unknown>;
}

/** What the route modules share; built once by {@link createControlPlane}. @internal */
export interface ControlPlaneContext extends ControlPlaneDeps {
  /** The control plane's public URL without a trailing slash. */
  publicUrl: string;
  /** Its host (and port), as shown on pages: "localhost:8080". */
  publicHost: string;
  /** Secure cookies: the public URL is https. */
  secure: boolean;
  /** Sends an event; a failing sink never fails the request. */
  emit: (e: IdentityEvent) => void;
}

/** What the console API (people, audit, policy, status) needs from the running gateway. */
export interface ConsoleDeps {
  /** The policy in force (`holder.current` is replaced on every reload) and its file. */
  policy: { holder: PolicyHolder; file: string; loadedAt: () => number };
  /** The audit database; the console opens it read-only. */
  auditFile: string;
  /** The data plane's audit writer: state and queue, for status. */
  audit: Pick<AuditSink, "state" | "pending" | "accepting">;
  /** The upstream and a probe of its health (an account read with the gateway's credential). */
  upstream: {
    type: "embedded" | "cosmos";
    endpoint: string;
    probe(): Promise<{ healthy: boolean; latencyMs: number | null; problem?: string }>;
  };
  /** Trusted external issuers, for status. */
  issuers: { name: string; issuer: string }[];
  /** cosmosgate's version (package.json). */
  version: string;
  startedAt: number;
  /**
   * The built console (dist/console: index.html and assets/). When the directory is missing, /console/
   * answers a page saying how to build it.
   */
  consoleDir: string;
}
