import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import { CliError, type Io } from "./io.js";

/** Options of `cosmosgate login` (as Commander parses them). */
export interface LoginCommandOptions {
  gateway?: string;
  /** false with --no-browser. */
  browser?: boolean;
  /** A duration such as "5m". */
  timeout?: string;
  config?: string;
}

/** What `runLogin` may be given instead of the real process (tests). */
export interface LoginDeps {
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** The credentials file (default: `$COSMOSGATE_CREDENTIALS` or the user's config directory). */
  file?: string;
  clock?: () => number;
  /** Opens a URL in a browser; resolves with why it could not, or undefined when it launched one. */
  openBrowser?: (url: string) => Promise<string | undefined>;
  signal?: AbortSignal;
}

/** `cosmosgate login`. */
export function registerLogin(program: Command, io: Io): void {
  program
    .command("login")
    .description("sign in to a gateway with your security key and keep the session for the CLI and SDK")
    .option(
      "--gateway <url>",
      "the gateway's control-plane URL (default: $COSMOSGATE_GATEWAY, else the config's controlPlane.publicUrl)",
    )
    .option("--no-browser", "do not open a browser; print the URL to open")
    .option("--timeout <duration>", "how long to wait for the browser sign-in", "5m")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .addHelpText(
      "after",
      "\nOpens the gateway's sign-in page in your browser (OAuth 2.0 with PKCE and a loopback redirect to\n" +
        "127.0.0.1); after you tap your key, the session is stored with mode 0600 in\n" +
        "$XDG_CONFIG_HOME/cosmosgate/credentials.json (or $COSMOSGATE_CREDENTIALS).\n" +
        "\nExamples:\n" +
        "  cosmosgate login --gateway https://cosmosgate.example.com\n" +
        "  cosmosgate login --no-browser            # print the URL, e.g. on a machine without a desktop\n" +
        "Then: cosmosgate whoami; export T=$(cosmosgate token); or new GatewayCredential() in code.",
    )
    .action(async (opts: LoginCommandOptions) => {
      await runLogin(opts, io);
    });
}

/**
 * Runs `cosmosgate login`: prints "Open this URL to sign in: URL" on stderr (and opens a browser
 * unless `browser: false`), waits for the loopback redirect, stores the session and prints
 * "Signed in to GATEWAY as SUB (groups ...), token valid until ..." on stdout.
 *
 * @example await runLogin({ gateway: "http://localhost:8080", browser: false }, io)
 */
export async function runLogin(opts: LoginCommandOptions, io: Io, deps: LoginDeps = {}) {
  const env = deps.env ?? process.env;
  const timeoutMs = parseDuration(opts.timeout ?? "5m");
  if (timeoutMs === undefined || timeoutMs < 1000 || timeoutMs > 3_600_000) {
    throw new CliError(`--timeout ${opts.timeout}: expected a duration between 1s and 1h, such as 5m`, 2);
  }
  let gateway = opts.gateway ?? (env.COSMOSGATE_GATEWAY || undefined);
  if (gateway === undefined) {
    const { configPath, loadConfig } = await import("../config/load.js");
    gateway = (await loadConfig(configPath(opts.config, env as NodeJS.ProcessEnv))).config.controlPlane
      .publicUrl;
  }
  const { login, decodeClaims, GatewayCredentialError } = await import("../client/index.js");
  const clock = deps.clock ?? Date.now;
  try {
    const result = await login({
      gateway,
      timeoutMs,
      env,
      clock,
      ...(deps.file !== undefined ? { file: deps.file } : {}),
      ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
      ...(deps.signal !== undefined ? { signal: deps.signal } : {}),
      onAuthorizeUrl: async (url, { redirectUri }) => {
        io.err(`Open this URL to sign in: ${url}\n`);
        const problem =
          opts.browser === false
            ? "--no-browser"
            : await (deps.openBrowser ?? ((u: string) => openBrowser(u, env)))(url);
        const wait = `waiting up to ${opts.timeout ?? "5m"} for the sign-in (Ctrl-C to cancel)`;
        if (problem === undefined) {
          io.err(`A browser window should open; ${wait}.\n`);
          return;
        }
        io.err(`No browser opened (${problem}): open the URL above in a browser on this machine; ${wait}.\n`);
        if (env.SSH_CONNECTION) {
          const port = new URL(redirectUri).port;
          io.err(
            `Over SSH, the browser must reach ${new URL(redirectUri).host} on this machine: forward it first, ` +
              `e.g. ssh -L ${port}:127.0.0.1:${port} THIS-HOST\n`,
          );
        }
      },
    });
    const claims = decodeClaims(result.session.accessToken) ?? {};
    const sub = typeof claims.sub === "string" ? claims.sub : "(unknown subject)";
    const groups = Array.isArray(claims.groups) ? claims.groups.map(String) : [];
    io.out(
      `Signed in to ${result.session.gateway} as ${sub} (${groups.length > 0 ? `groups ${groups.join(", ")}` : "no groups"}), ` +
        `token valid until ${new Date(result.session.expiresAt).toISOString()}\n`,
    );
    io.err(
      `Session stored in ${result.file}${result.replaced ? " (replacing the earlier one)" : ""}.` +
        (result.session.dataPlane
          ? ` Data plane: ${result.session.dataPlane} (CosmosClient endpoint, with new GatewayCredential()).`
          : "") +
        "\n",
    );
    return result;
  } catch (err) {
    if (err instanceof GatewayCredentialError) throw new CliError(`login failed: ${err.message}`, 1);
    throw err;
  }
}

/**
 * Opens `url` in the desktop's browser: `open` on macOS, `rundll32` on Windows, `xdg-open`
 * elsewhere (only when DISPLAY or WAYLAND_DISPLAY is set). The browser is started detached and not
 * waited for. Resolves with the reason when no browser could be started, undefined otherwise.
 *
 * @example const problem = await openBrowser(url); if (problem) console.error(problem);
 */
export async function openBrowser(
  url: string,
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
): Promise<string | undefined> {
  let command: string;
  let args: string[];
  if (platform === "darwin") {
    command = "open";
    args = [url];
  } else if (platform === "win32") {
    // rundll32 takes the URL as one argument; `cmd /c start` would parse & in it.
    command = "rundll32";
    args = ["url.dll,FileProtocolHandler", url];
  } else {
    if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return "no DISPLAY or WAYLAND_DISPLAY: no desktop session";
    command = "xdg-open";
    args = [url];
  }
  const { spawn } = await import("node:child_process");
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command, args, { detached: true, stdio: "ignore" });
    } catch (err) {
      resolve(`${command}: ${(err as Error).message}`);
      return;
    }
    child.once("error", (err: NodeJS.ErrnoException) => resolve(`${command}: ${err.code ?? err.message}`));
    child.once("spawn", () => {
      child.unref();
      resolve(undefined);
    });
  });
}
