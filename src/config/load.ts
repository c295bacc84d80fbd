import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { ConfigError } from "./errors.js";
import { type Config, configSchema } from "./schema.js";
import { formatProblems, locateIssues, yamlSyntaxProblems } from "./yamlIssues.js";

/** The loaded configuration plus where it came from; relative paths are resolved against `baseDir`. */
export interface LoadedConfig {
  config: Config;
  /** The file it was read from, or undefined when defaults were used. */
  file?: string;
  /** Directory that relative paths in the config are relative to. */
  baseDir: string;
}

/**
 * Where the configuration comes from: `--config`, else `COSMOSGATE_CONFIG`, else `./cosmosgate.yaml`
 * when it exists. The only place that reads the environment for settings.
 */
export function configPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return flag ?? env.COSMOSGATE_CONFIG ?? undefined;
}

/**
 * Parses and validates configuration text. Throws ConfigError(ERR_CONFIG_INVALID) listing every
 * problem as `file:line:col: key: expected …; found …`.
 *
 * @example parseConfig("dataPlane:\n  listen: 127.0.0.1:9443\n", "cosmosgate.yaml")
 */
export function parseConfig(text: string, file: string): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError("ERR_CONFIG_INVALID", invalid(file, formatProblems(file, yamlSyntaxProblems(doc))));
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(
      "ERR_CONFIG_INVALID",
      invalid(file, `${file}:1:1: (top level): expected a mapping of settings; found ${JSON.stringify(raw)}`),
    );
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      "ERR_CONFIG_INVALID",
      invalid(file, formatProblems(file, locateIssues(doc, lc, result.error.issues))),
    );
  }
  return result.data;
}

/**
 * Loads the configuration file. With no file, the defaults apply (and `./cosmosgate.yaml` is used
 * when present in the working directory).
 */
export async function loadConfig(file: string | undefined, cwd = process.cwd()): Promise<LoadedConfig> {
  const explicit = file !== undefined;
  const path = resolve(cwd, file ?? "cosmosgate.yaml");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !explicit) return { config: configSchema.parse({}), baseDir: cwd };
    if (code === "ENOENT") {
      throw new ConfigError(
        "ERR_CONFIG_NOT_FOUND",
        `configuration file ${path} does not exist; create one with \`cosmosgate init\` or fix --config / COSMOSGATE_CONFIG`,
      );
    }
    throw new ConfigError(
      "ERR_CONFIG_READ",
      `cannot read configuration file ${path}: ${(err as Error).message}`,
    );
  }
  return { config: parseConfig(text, path), file: path, baseDir: dirname(path) };
}

/** Resolves a path written in the config relative to the config file's directory. */
export function resolveConfigPath(loaded: Pick<LoadedConfig, "baseDir">, p: string): string {
  return isAbsolute(p) ? p : resolve(loaded.baseDir, p);
}

function invalid(file: string, details: string): string {
  return `invalid configuration in ${file}:\n${details}\nSee \`cosmosgate config schema\` for every key and its type.`;
}
