import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { configPath, loadConfig, resolveConfigPath } from "../config/load.js";
import { CliError, type Io } from "./io.js";

/** `cosmosgate policy check|explain`. */
export function registerPolicy(program: Command, io: Io): void {
  const policy = program.command("policy").description("validate and explain the access policy");
  policy
    .command("check")
    .description("validate a policy file (default: the one cosmosgate.yaml names)")
    .argument("[file]", "policy file")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .action(async (file: string | undefined, opts: { config?: string }) => {
      const path = file ?? (await policyFileFromConfig(opts.config));
      const compiled = await load(path);
      io.out(`${path} is valid: ${compiled.roles.length} role(s), version ${compiled.version}\n`);
    });
  policy
    .command("explain")
    .description("show whether a subject may perform an action on a resource, and the rule that decides")
    .requiredOption("--subject <sub>", "token subject, e.g. alice")
    .option("--groups <groups>", "comma-separated group/role claim values, e.g. analysts,readers", "")
    .requiredOption("--action <action>", "action, e.g. read, query, delete, manage, or a native data action")
    .requiredOption("--resource <path>", "resource path, e.g. /dbs/shop/colls/orders/docs/o1")
    .option("--policy <file>", "policy file (default: the one cosmosgate.yaml names)")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  cosmosgate policy explain --subject bob --groups analysts --action delete --resource /dbs/shop/colls/orders/docs/o1",
    )
    .action(
      async (opts: {
        subject: string;
        groups: string;
        action: string;
        resource: string;
        policy?: string;
        config?: string;
        json?: boolean;
      }) => {
        const path = opts.policy ?? (await policyFileFromConfig(opts.config));
        const compiled = await load(path);
        const groups = opts.groups
          .split(",")
          .map((g) => g.trim())
          .filter(Boolean);
        const { explain, formatExplain, PolicyError } = await import("../policy/index.js");
        let result: ReturnType<typeof explain>;
        try {
          result = explain(compiled, {
            subject: opts.subject,
            groups,
            action: opts.action,
            resource: opts.resource,
          });
        } catch (err) {
          if (err instanceof PolicyError) throw new CliError(err.message, 2);
          throw err;
        }
        io.out(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatExplain(result)}\n`);
      },
    );
}

async function policyFileFromConfig(flag: string | undefined): Promise<string> {
  const loaded = await loadConfig(configPath(flag));
  return resolveConfigPath(loaded, loaded.config.policy);
}

async function load(path: string) {
  const { compilePolicy, PolicyError, parsePolicy } = await import("../policy/index.js");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read policy file ${path}: ${(err as Error).message}`, 2);
  }
  try {
    return compilePolicy(parsePolicy(text, path));
  } catch (err) {
    if (err instanceof PolicyError) throw new CliError(err.message, 2);
    throw err;
  }
}
