import type { Command } from "commander";
import { configPath, loadConfig } from "../config/load.js";
import type { Io } from "./io.js";

/** `cosmosgate config schema|check`. */
export function registerConfig(program: Command, io: Io): void {
  const config = program.command("config").description("inspect the configuration");
  config
    .command("schema")
    .description("print the JSON Schema of cosmosgate.yaml (for editor validation)")
    .addHelpText(
      "after",
      "\nVS Code (YAML extension): cosmosgate config schema > cosmosgate.schema.json, then add\n" +
        "  # yaml-language-server: $schema=./cosmosgate.schema.json\nat the top of cosmosgate.yaml.",
    )
    .action(async () => {
      const { z } = await import("zod");
      const { configSchema } = await import("../config/schema.js");
      io.out(`${JSON.stringify(z.toJSONSchema(configSchema, { io: "input" }), null, 2)}\n`);
    });
  config
    .command("check")
    .description("validate the configuration file and print the effective settings")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .action(async (opts: { config?: string }) => {
      const loaded = await loadConfig(configPath(opts.config));
      io.out(`${loaded.file ?? "(no file: defaults)"} is valid\n${JSON.stringify(loaded.config, null, 2)}\n`);
    });
}
