import type { Command } from "commander";
import { registerAgentGrants } from "./agentGrants.js";
import { CliError, type Io } from "./io.js";

/** What `agent` commands may be given instead of the real process (tests). */
export interface AgentCommandDeps {
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  clock?: () => number;
}

/**
 * `cosmosgate agent keygen NAME` and `cosmosgate agent token NAME --grant ID`: an AI agent's own
 * key pair, and tokens it gets with it under a grant a person confirmed.
 */
export function registerAgent(program: Command, io: Io): void {
  const agent = program
    .command("agent")
    .description("an AI agent's key, and tokens under a grant a person confirmed with a tap")
    .addHelpText(
      "after",
      "\nAn agent acts for a person under a grant: the person makes it in the console (agent name, the agent's\n" +
        "public key, a subset of their own rights, a lifetime) and confirms it by touching their key. The agent\n" +
        "then gets short-lived tokens with its own private key, which never leaves the machine it runs on.\n" +
        "  1. cosmosgate agent keygen report-bot          (where the agent runs; paste the public key into the grant)\n" +
        "  2. the person creates and confirms the grant in the console (Agents), or with\n" +
        "     cosmosgate agent grant report-bot --allow read,query --on /dbs/shop   (opens the browser for the tap)\n" +
        "  3. cosmosgate agent token report-bot --grant gr_...   (or AgentCredential in code)",
    );

  agent
    .command("keygen")
    .description("make the agent's ES256 key pair: the private key in a 0600 file, the public key printed")
    .argument("<name>", "the agent's name (lower-case letters, digits, '-' and '_')")
    .option("--dir <dir>", "where to write NAME.jwk (default: $XDG_CONFIG_HOME/cosmosgate/agents)")
    .option("--json", "print {file, publicKey, thumbprint} as JSON")
    .addHelpText(
      "after",
      "\nThe private key file is created with mode 0600 and is never overwritten. Paste the printed public\n" +
        "key (JWK) into the grant; its thumbprint is the kid of the agent's assertions.\n" +
        "Example:\n  cosmosgate agent keygen report-bot",
    )
    .action(async (name: string, opts: { dir?: string; json?: boolean }) => {
      await runAgentKeygen(name, opts, io);
    });

  agent
    .command("token")
    .description("print an access token for the agent under a grant (client assertion signed with its key)")
    .argument("<name>", "the agent's name (its key file is $XDG_CONFIG_HOME/cosmosgate/agents/NAME.jwk)")
    .requiredOption("--grant <id>", "the grant id the person confirmed (gr_...)")
    .option("--gateway <url>", "the gateway's control-plane URL (default: $COSMOSGATE_GATEWAY)")
    .option("--key <file>", "the agent's private key file (default: the one keygen wrote)")
    .addHelpText(
      "after",
      "\nPrints only the token on stdout, for scripts:\n" +
        "  export T=$(cosmosgate agent token report-bot --grant gr_... --gateway https://gate.example.com)\n" +
        "Refused when the grant was revoked, expired or spent, or the person or their key is gone.",
    )
    .action(async (name: string, opts: { grant: string; gateway?: string; key?: string }) => {
      await runAgentToken(name, opts, io);
    });

  registerAgentGrants(agent, io);
}

/**
 * Writes a new agent key and prints its public JWK and thumbprint.
 *
 * @example await runAgentKeygen("report-bot", {}, io)
 */
export async function runAgentKeygen(
  name: string,
  opts: { dir?: string; json?: boolean },
  io: Io,
  deps: AgentCommandDeps = {},
): Promise<void> {
  const { agentKeyPath, createAgentKeyFile } = await import("../client/agentKey.js");
  await clientErrors(async () => {
    const file = agentKeyPath(name, {
      ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
      ...(deps.env !== undefined ? { env: deps.env } : {}),
    });
    const key = await createAgentKeyFile(file);
    if (opts.json) {
      io.out(
        `${JSON.stringify({ agent: name, file, publicKey: key.publicJwk, thumbprint: key.thumbprint }, null, 2)}\n`,
      );
      return;
    }
    io.out(
      `Agent ${name}: private key written to ${file} (mode 0600; it never leaves this machine).\n` +
        `Public key (paste it into the grant):\n${JSON.stringify(key.publicJwk)}\n` +
        `Thumbprint (the kid of its assertions): ${key.thumbprint}\n`,
    );
  });
}

/**
 * Prints an access token for the agent under a grant (and nothing else).
 *
 * @example await runAgentToken("report-bot", { grant: "gr_…", gateway: "http://localhost:8080" }, io)
 */
export async function runAgentToken(
  name: string,
  opts: { grant: string; gateway?: string; key?: string },
  io: Io,
  deps: AgentCommandDeps = {},
): Promise<void> {
  const { AgentCredential } = await import("../client/agentCredential.js");
  await clientErrors(async () => {
    const env = deps.env ?? process.env;
    const gateway = opts.gateway ?? env.COSMOSGATE_GATEWAY;
    if (gateway === undefined || gateway === "") {
      throw new CliError(
        "give the gateway's control-plane URL: --gateway URL (or set COSMOSGATE_GATEWAY)",
        2,
      );
    }
    const credential = new AgentCredential({
      gateway,
      grant: opts.grant,
      agent: name,
      ...(opts.key !== undefined ? { keyFile: opts.key } : {}),
      env,
      ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
      ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
    });
    const token = await credential.getToken("https://cosmos.azure.com/.default");
    io.out(`${token.token}\n`);
  });
}

/** Maps client errors to CliError (exit 1) with their message. */
async function clientErrors(fn: () => Promise<void>): Promise<void> {
  const { GatewayCredentialError } = await import("../client/errors.js");
  try {
    await fn();
  } catch (err) {
    if (err instanceof GatewayCredentialError) throw new CliError(err.message, 1);
    if (err instanceof TypeError && err.message.startsWith("AgentCredential"))
      throw new CliError(err.message, 2);
    throw err;
  }
}
