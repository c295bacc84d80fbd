import type { Command } from "commander";
import type { ApprovalView, GrantDraft, GrantRequest, GrantView } from "../agents/contract.js";
import { parseDuration } from "../config/duration.js";
import { CliError, type Io } from "./io.js";

/** What the grant and approval commands may be given instead of the real process (tests). */
export interface GrantCommandDeps {
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** The credentials file of `cosmosgate login` (default: `$COSMOSGATE_CREDENTIALS` or the config directory). */
  file?: string;
  /** Opens a URL in a browser; resolves with why it could not, or undefined when it launched one. */
  openBrowser?: (url: string) => Promise<string | undefined>;
  /** Between two polls, ms (default 1000). */
  pollMs?: number;
  /** Draw the spinner line (default: stderr is a terminal). */
  tty?: boolean;
  signal?: AbortSignal;
}

interface GatewayOpt {
  gateway?: string;
}

/**
 * The control plane's JSON API as the signed-in person of `cosmosgate login`: `Authorization: Bearer`
 * with the stored session's access token (refreshed by GatewayCredential when needed).
 */
async function controlPlane(opts: GatewayOpt, deps: GrantCommandDeps) {
  const { GatewayCredential } = await import("../client/GatewayCredential.js");
  const env = deps.env ?? process.env;
  const credential = new GatewayCredential({
    env,
    ...(opts.gateway !== undefined ? { gateway: opts.gateway } : {}),
    ...(deps.file !== undefined ? { file: deps.file } : {}),
    ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
  });
  const doFetch = deps.fetch ?? fetch;
  let base: string | undefined;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const token = await credential.getToken();
    base ??= (await credential.session()).gateway.replace(/\/$/, "");
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token.token}`,
          accept: "application/json",
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new CliError(`cannot reach the gateway at ${base}: ${(err as Error).message}`, 1);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json ?? {}) as { code?: string; error?: string; message?: string };
      const code = e.code ?? e.error ?? `HTTP ${res.status}`;
      const hint = res.status === 401 ? ` (sign in again: cosmosgate login --gateway ${base})` : "";
      throw new CliError(`${code}: ${e.message ?? (text.slice(0, 200) || res.statusText)}${hint}`, 1);
    }
    return json as T;
  };
  return {
    call,
    base: async () => {
      base ??= (await credential.session()).gateway.replace(/\/$/, "");
      return base;
    },
  };
}

/** Maps client errors to CliError (exit 1) with their message. */
async function clientErrors<T>(fn: () => Promise<T>): Promise<T> {
  const { GatewayCredentialError } = await import("../client/errors.js");
  try {
    return await fn();
  } catch (err) {
    if (err instanceof GatewayCredentialError) throw new CliError(err.message, 1);
    throw err;
  }
}

function timeoutOf(text: string | undefined, fallback: string): number {
  const ms = parseDuration(text ?? fallback);
  if (ms === undefined || ms < 1000 || ms > 24 * 3_600_000) {
    throw new CliError(`--timeout ${text}: expected a duration between 1s and 24h, such as 10m`, 2);
  }
  return ms;
}

async function open(url: string, noOpen: boolean, io: Io, deps: GrantCommandDeps): Promise<void> {
  io.err(`Open this URL: ${url}\n`);
  if (noOpen) return;
  const launch =
    deps.openBrowser ??
    (async (u: string) => (await import("./login.js")).openBrowser(u, deps.env ?? process.env));
  const problem = await launch(url);
  if (problem !== undefined) io.err(`No browser opened (${problem}): open the URL above yourself.\n`);
}

/**
 * Polls `check` until it returns a value, drawing a spinner line on a terminal; CliError at the
 * time-out. `check` returning undefined means "not yet".
 */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  io: Io,
  deps: GrantCommandDeps,
): Promise<T> {
  const tty = deps.tty ?? process.stderr.isTTY === true;
  const started = Date.now();
  const frames = ["|", "/", "-", "\\"];
  let frame = 0;
  const draw = () => {
    const s = Math.floor((Date.now() - started) / 1000);
    io.err(`\r${frames[frame++ % frames.length]} ${what} (${s}s, Ctrl-C to stop waiting)`);
  };
  const spinner = tty ? setInterval(draw, 150) : undefined;
  if (!tty) io.err(`${what}…\n`);
  const pollMs = deps.pollMs ?? 1000;
  try {
    for (;;) {
      if (deps.signal?.aborted) throw new CliError("stopped waiting", 1);
      const done = await check();
      if (done !== undefined) return done;
      if (Date.now() - started >= timeoutMs) {
        throw new CliError(`timed out after ${Math.round(timeoutMs / 1000)}s: ${what}`, 1);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    if (spinner !== undefined) {
      clearInterval(spinner);
      io.err("\r\x1b[2K");
    }
  }
}

/** The agent's public JWK from a file: a private key file of `agent keygen` (its public part), a public JWK, or keygen's --json output. */
async function publicKeyFrom(file: string): Promise<GrantRequest["publicKey"]> {
  const { readFile } = await import("node:fs/promises");
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === "ENOENT"
        ? `${file} does not exist; make the agent's key first: cosmosgate agent keygen NAME`
        : `${file} is not a JWK file (${code ?? (err as Error).message})`,
      1,
    );
  }
  if (typeof parsed.d === "string") {
    // A private key: read it the careful way (mode 0600, owner) and keep only the public part.
    const { readAgentKeyFile } = await import("../client/agentKey.js");
    return (await readAgentKeyFile(file)).publicJwk;
  }
  const jwk = (
    typeof parsed.publicKey === "object" && parsed.publicKey !== null ? parsed.publicKey : parsed
  ) as Record<string, unknown> | undefined;
  if (jwk?.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new CliError(`${file} does not hold an EC P-256 JWK (kty EC, crv P-256, x, y)`, 1);
  }
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}

function splitList(values: string[] | undefined): string[] {
  return [...new Set((values ?? []).flatMap((v) => v.split(/[\s,]+/)).filter((v) => v !== ""))];
}

function positive(text: string | undefined, what: string, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new CliError(`${what} ${text}: expected a positive ${integer ? "whole " : ""}number`, 2);
  }
  return n;
}

/** Options of `cosmosgate agent grant`. */
export interface AgentGrantOptions extends GatewayOpt {
  allow: string[];
  on: string[];
  partitionKey?: string[];
  ttl?: string;
  budgetRequests?: string;
  budgetRu?: string;
  publicKey?: string;
  /** false with --no-open. */
  open?: boolean;
  timeout?: string;
}

/**
 * `cosmosgate agent grant NAME`: makes the pending grant, opens the console where the person reads
 * its canonical JSON and taps, waits until it is active, and prints its ID (stdout) and how the
 * agent uses it.
 *
 * @example await runAgentGrant("report-bot", { allow: ["read,query"], on: ["/dbs/shop"] }, io)
 */
export async function runAgentGrant(
  name: string,
  opts: AgentGrantOptions,
  io: Io,
  deps: GrantCommandDeps = {},
): Promise<GrantView> {
  const timeoutMs = timeoutOf(opts.timeout, "10m");
  const actions = splitList(opts.allow);
  const scopes = splitList(opts.on);
  if (actions.length === 0) throw new CliError("give the actions: --allow read,query", 2);
  if (scopes.length === 0) throw new CliError("give at least one scope: --on /dbs/DB/colls/C", 2);
  const partitionKeys = (opts.partitionKey ?? []).map((pk) => {
    let v: unknown;
    try {
      v = JSON.parse(pk);
    } catch {
      throw new CliError(`--partition-key ${pk}: expected the JSON of the key, e.g. '["c1"]'`, 2);
    }
    return JSON.stringify(Array.isArray(v) ? v : [v]);
  });
  const requests = positive(opts.budgetRequests, "--budget-requests", true);
  const charge = positive(opts.budgetRu, "--budget-ru", false);
  return clientErrors(async () => {
    let keyFile = opts.publicKey;
    if (keyFile === undefined) {
      const { agentKeyPath } = await import("../client/agentKey.js");
      keyFile = agentKeyPath(name, { env: deps.env ?? process.env });
    }
    const publicKey = await publicKeyFrom(keyFile);
    const body: GrantRequest = {
      agent: name,
      actions,
      scopes,
      publicKey,
      ...(opts.ttl !== undefined ? { lifetime: opts.ttl } : {}),
      ...(partitionKeys.length > 0 ? { partitionKeys: [...new Set(partitionKeys)] } : {}),
      ...(requests !== undefined || charge !== undefined
        ? {
            budget: {
              ...(requests !== undefined ? { requests } : {}),
              ...(charge !== undefined ? { requestCharge: charge } : {}),
            },
          }
        : {}),
    };
    const api = await controlPlane(opts, deps);
    const draft = await api.call<GrantDraft>("POST", "/api/grants", body);
    const g = draft.grant;
    const base = await api.base();
    io.err(
      `Grant ${g.id} for agent ${g.agent} is waiting for your tap: ${g.actions.join(", ")} on ${g.scopes.join(", ")}` +
        `${g.partitionKeys ? ` (partition keys ${g.partitionKeys.join(", ")})` : ""}, until ${g.expiresAt}.\n` +
        `Agent's key thumbprint: ${g.keyThumbprint} — check the page shows the same.\n`,
    );
    await open(`${base}/console/#/agents?confirm=${encodeURIComponent(g.id)}`, opts.open === false, io, deps);
    const path = `/api/grants/${encodeURIComponent(g.id)}`;
    const active = await waitFor(
      "waiting for your tap in the browser",
      timeoutMs,
      async () => {
        const now = await api.call<GrantView>("GET", path);
        if (now.status === "active") return now;
        if (now.status !== "pending") {
          throw new CliError(
            `grant ${g.id} is ${now.status}${now.revokedReason ? ` (${now.revokedReason})` : ""}; make a new one`,
            1,
          );
        }
        return undefined;
      },
      io,
      deps,
    );
    io.out(`${active.id}\n`);
    io.err(
      `Grant ${active.id} is active until ${active.expiresAt}. The agent uses it with:\n` +
        `  cosmosgate mcp --agent ${active.agent} --grant ${active.id} --gateway ${base}\n` +
        `  cosmosgate agent token ${active.agent} --grant ${active.id} --gateway ${base}\n`,
    );
    return active;
  });
}

/** `cosmosgate agent list [--all]`. */
export async function runAgentList(
  opts: GatewayOpt & { all?: boolean; json?: boolean },
  io: Io,
  deps: GrantCommandDeps = {},
): Promise<GrantView[]> {
  return clientErrors(async () => {
    const api = await controlPlane(opts, deps);
    const { grants } = await api.call<{ grants: GrantView[] }>(
      "GET",
      opts.all ? "/api/grants?all=1" : "/api/grants",
    );
    if (opts.json) {
      io.out(`${JSON.stringify(grants, null, 2)}\n`);
      return grants;
    }
    if (grants.length === 0) {
      io.out("No grants.\n");
      return grants;
    }
    for (const g of grants) {
      const budget = [
        g.budget.requests !== null
          ? `${g.used.requests}/${g.budget.requests} requests`
          : `${g.used.requests} requests`,
        g.budget.requestCharge !== null
          ? `${g.used.requestCharge}/${g.budget.requestCharge} RU`
          : `${g.used.requestCharge} RU`,
      ].join(", ");
      io.out(
        `${g.id}  ${g.status.padEnd(9)}  agent ${g.agent}${opts.all ? ` for ${g.person}` : ""}  ` +
          `${g.actions.join(",")} on ${g.scopes.join(",")}  expires ${g.expiresAt}  used ${budget}\n`,
      );
    }
    return grants;
  });
}

/** `cosmosgate agent revoke ID`. */
export async function runAgentRevoke(
  id: string,
  opts: GatewayOpt,
  io: Io,
  deps: GrantCommandDeps = {},
): Promise<GrantView> {
  return clientErrors(async () => {
    const api = await controlPlane(opts, deps);
    const g = await api.call<GrantView>("DELETE", `/api/grants/${encodeURIComponent(id)}`, {});
    io.out(`Revoked grant ${g.id} of agent ${g.agent}: its next request is refused.\n`);
    return g;
  });
}

function describeApproval(a: ApprovalView): string {
  const op = a.operation;
  return (
    `${a.id}  ${a.status.padEnd(8)}  ${op.method} ${op.resource} (${op.operation})` +
    `${op.partitionKey !== null ? ` pk ${op.partitionKey}` : ""}  by ${op.person}` +
    `${op.agent ? ` via ${op.agent}` : ""}  ${a.approvals.length}/${a.quorum} approvals  expires ${a.expiresAt}`
  );
}

/** `cosmosgate approvals list`. */
export async function runApprovalsList(
  opts: GatewayOpt & { json?: boolean; all?: boolean },
  io: Io,
  deps: GrantCommandDeps = {},
): Promise<ApprovalView[]> {
  return clientErrors(async () => {
    const api = await controlPlane(opts, deps);
    const { approvals } = await api.call<{ approvals: ApprovalView[] }>("GET", "/api/approvals");
    const shown = opts.all
      ? approvals
      : approvals.filter((a) => a.status === "pending" || a.status === "approved");
    if (opts.json) io.out(`${JSON.stringify(shown, null, 2)}\n`);
    else if (shown.length === 0) io.out(opts.all ? "No approvals.\n" : "No open approvals.\n");
    else for (const a of shown) io.out(`${describeApproval(a)}\n`);
    return shown;
  });
}

/**
 * `cosmosgate approvals approve ID`: shows the operation, opens the approval's page (where the tap
 * happens) and waits for the decision, which it prints.
 */
export async function runApprovalsApprove(
  id: string,
  opts: GatewayOpt & { open?: boolean; timeout?: string },
  io: Io,
  deps: GrantCommandDeps = {},
): Promise<ApprovalView> {
  const timeoutMs = timeoutOf(opts.timeout, "10m");
  return clientErrors(async () => {
    const api = await controlPlane(opts, deps);
    const path = `/api/approvals/${encodeURIComponent(id)}`;
    const a = await api.call<ApprovalView>("GET", path);
    io.err(`${describeApproval(a)}\n`);
    if (a.status !== "pending") {
      io.out(`${a.id} ${a.status}\n`);
      return a;
    }
    await open(a.url, opts.open === false, io, deps);
    const voted = a.approvals.length;
    const decided = await waitFor(
      "waiting for the decision in the browser",
      timeoutMs,
      async () => {
        const now = await api.call<ApprovalView>("GET", path);
        if (now.status !== "pending") return now;
        if (now.approvals.length > voted) {
          io.err(`\n${now.approvals.length} of ${now.quorum} approvals so far.\n`);
        }
        return undefined;
      },
      io,
      deps,
    );
    const who =
      decided.status === "denied" && decided.denial !== null
        ? ` by ${decided.denial.by}${decided.denial.reason ? ` (${decided.denial.reason})` : ""}`
        : decided.approvals.length > 0
          ? ` by ${decided.approvals.map((v) => v.by).join(", ")}`
          : "";
    io.out(`${decided.id} ${decided.status}${who}\n`);
    if (decided.status === "approved") io.err("Retry the same request once: it now goes through.\n");
    return decided;
  });
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Adds `grant`, `list` and `revoke` to `cosmosgate agent`. */
export function registerAgentGrants(agent: Command, io: Io): void {
  agent
    .command("grant")
    .description("make a grant for the agent and confirm it with a tap in the browser")
    .argument("<name>", "the agent's name (as in agent keygen NAME)")
    .requiredOption("--allow <actions...>", "actions the agent may do, e.g. read,query")
    .requiredOption("--on <scope>", "a scope, e.g. /dbs/shop/colls/orders (repeat --on for more)", collect)
    .option(
      "--partition-key <json>",
      "a partition key the agent may touch, as JSON: '[\"c1\"]' (repeatable)",
      collect,
    )
    .option("--ttl <duration>", "the grant's lifetime (default 8h)")
    .option("--budget-requests <n>", "most requests the agent may make")
    .option("--budget-ru <n>", "most request units the agent may spend")
    .option("--public-key <file>", "the agent's key file (default: the one agent keygen wrote)")
    .option("--gateway <url>", "the gateway's control-plane URL (default: the cosmosgate login session's)")
    .option("--no-open", "do not open a browser; print the URL to open")
    .option("--timeout <duration>", "how long to wait for the tap", "10m")
    .addHelpText(
      "after",
      "\nUses your `cosmosgate login` session. The confirming tap happens in the browser, over the grant's\n" +
        "canonical JSON. Prints the grant ID on stdout once it is active.\n" +
        "Example:\n  cosmosgate agent grant report-bot --allow read,query --on /dbs/shop/colls/orders --ttl 8h",
    )
    .action(async (name: string, opts: AgentGrantOptions) => {
      await runAgentGrant(name, opts, io);
    });

  agent
    .command("list")
    .description("list your agents' grants (administrators: --all for everyone's)")
    .option("--all", "everyone's grants (administrators)")
    .option("--json", "print the grants as JSON")
    .option("--gateway <url>", "the gateway's control-plane URL")
    .action(async (opts: { all?: boolean; json?: boolean; gateway?: string }) => {
      await runAgentList(opts, io);
    });

  agent
    .command("revoke")
    .description("revoke a grant: the agent's next request is refused")
    .argument("<id>", "the grant ID (gr_...)")
    .option("--gateway <url>", "the gateway's control-plane URL")
    .action(async (id: string, opts: GatewayOpt) => {
      await runAgentRevoke(id, opts, io);
    });
}

/** `cosmosgate approvals list|approve`. */
export function registerApprovals(program: Command, io: Io): void {
  const approvals = program
    .command("approvals")
    .description("operations waiting for a person's tap: list them, approve one in the browser");
  approvals
    .command("list")
    .description("approvals you may act on, and yours (open ones; --all for recent ended ones too)")
    .option("--all", "include approved, denied, expired and used ones")
    .option("--json", "print them as JSON")
    .option("--gateway <url>", "the gateway's control-plane URL")
    .action(async (opts: { all?: boolean; json?: boolean; gateway?: string }) => {
      await runApprovalsList(opts, io);
    });
  approvals
    .command("approve")
    .description("open the approval's page for your tap, and wait for the decision")
    .argument("<id>", "the approval ID (apr_...)")
    .option("--gateway <url>", "the gateway's control-plane URL")
    .option("--no-open", "do not open a browser; print the URL to open")
    .option("--timeout <duration>", "how long to wait for the decision", "10m")
    .action(async (id: string, opts: GatewayOpt & { open?: boolean; timeout?: string }) => {
      await runApprovalsApprove(id, opts, io);
    });
}
