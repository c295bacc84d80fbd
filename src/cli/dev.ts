import { access, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import { configPath, loadConfig, resolveConfigPath } from "../config/load.js";
import { STARTER_POLICY } from "../config/templates.js";
import { CliError, type Io } from "./io.js";
import { runGateway } from "./serve.js";

/** `cosmosgate dev` and `cosmosgate dev-token`: one-command local start and its tokens. */
export function registerDev(program: Command, io: Io): void {
  program
    .command("dev")
    .description("run the gateway for local development: embedded store and a local token issuer")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .addHelpText(
      "after",
      "\nLike `serve`, and also trusts a development token issuer whose key is in the state directory\n" +
        "(mint tokens with `cosmosgate dev-token`). Writes the starter policy.yaml when there is none.\n" +
        "Refused when the upstream is a real Cosmos DB account.",
    )
    .action(async (opts: { config?: string }) => {
      const loaded = await loadConfig(configPath(opts.config));
      const policyFile = resolveConfigPath(loaded, loaded.config.policy);
      if (!(await exists(policyFile))) {
        await writeFile(policyFile, STARTER_POLICY, { flag: "wx" });
        io.out(`wrote the starter policy ${policyFile} (group "cosmos-admins" may do everything)\n`);
      }
      await runGateway(io, opts.config, true);
    });

  program
    .command("dev-token")
    .description("print a development access token for the gateway started with `cosmosgate dev`")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .requiredOption("--sub <subject>", "token subject (matched by sub: members in policy.yaml)")
    .option("--group <group>", "group claim value, repeatable (matched by group: members)", collect, [])
    .option("--ttl <duration>", "lifetime, e.g. 10m, 1h", "10m")
    .addHelpText(
      "after",
      "\nExample:\n  export COSMOSGATE_TOKEN=$(cosmosgate dev-token --sub alice --group cosmos-admins)\n" +
        "Development tokens are trusted only by `cosmosgate dev`; passkey sign-in replaces them.",
    )
    .action(async (opts: { config?: string; sub: string; group: string[]; ttl: string }) => {
      const loaded = await loadConfig(configPath(opts.config));
      const ttl = parseDuration(opts.ttl);
      if (ttl === undefined || ttl < 1000 || ttl > 86_400_000) {
        throw new CliError(`--ttl ${opts.ttl}: expected a duration between 1s and 24h, such as 10m`, 2);
      }
      const { openDevIssuer } = await import("../identity/dev/devIssuer.js");
      const dev = await openDevIssuer(resolveConfigPath(loaded, loaded.config.stateDir));
      const token = await dev.mint({
        sub: opts.sub,
        groups: opts.group,
        audience: loaded.config.dataPlane.publicUrl,
        ttlSeconds: Math.round(ttl / 1000),
      });
      io.out(`${token}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
