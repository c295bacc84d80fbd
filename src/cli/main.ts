import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/errors.js";
import { registerAgent } from "./agent.js";
import { registerApprovals } from "./agentGrants.js";
import { registerAudit } from "./audit.js";
import { registerConfig } from "./config.js";
import { registerDev } from "./dev.js";
import { registerDevstore } from "./devstore.js";
import { registerDoctor } from "./doctor.js";
import { registerInit } from "./init.js";
import { CliError, type Io, processIo } from "./io.js";
import { registerKeys } from "./keys.js";
import { registerLogin } from "./login.js";
import { registerMcp } from "./mcp.js";
import { registerPolicy } from "./policy.js";
import { registerServe } from "./serve.js";
import { registerToken } from "./token.js";
import { registerUsers } from "./users.js";

/**
 * Runs the cosmosgate command line and resolves with the exit code: 0 success, 1 failure,
 * 2 invalid configuration or usage.
 *
 * @example process.exitCode = await main(process.argv)
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const program = new Command("cosmosgate")
    .description(
      "Identity-aware gateway for Azure Cosmos DB: verifies each caller's token, authorizes every request\n" +
        "against policy.yaml, forwards it with the gateway's own credential and audits it.",
    )
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  registerServe(program, io);
  registerDev(program, io);
  registerDevstore(program, io);
  registerInit(program, io);
  registerConfig(program, io);
  registerLogin(program, io);
  registerToken(program, io);
  registerUsers(program, io);
  registerKeys(program, io);
  registerPolicy(program, io);
  registerAudit(program, io);
  registerAgent(program, io);
  registerApprovals(program, io);
  registerDoctor(program, io);
  registerMcp(program, io);
  program.addHelpText(
    "after",
    "\nStart here:\n  cosmosgate dev                 gateway + embedded store; prints the first administrator's enrollment link\n" +
      "  cosmosgate devstore            the embedded Cosmos DB-compatible store alone, like the emulator\n" +
      "  cosmosgate login               sign in with your passkey or security key (for the CLI and GatewayCredential)\n" +
      "  cosmosgate init                write a commented cosmosgate.yaml and policy.yaml\n" +
      "  cosmosgate doctor token JWT    why is a token refused? every check, with the cause and the fix\n" +
      "  cosmosgate <command> --help    help for one command",
  );

  try {
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      )
        return 0;
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError) {
      io.err(`cosmosgate: ${err.message}\n`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(`cosmosgate: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`cosmosgate: ${(err as Error).message}\n`);
    return 1;
  }
}
