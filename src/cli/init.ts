import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { STARTER_CONFIG, STARTER_POLICY } from "../config/templates.js";
import { CliError, type Io } from "./io.js";

/** `cosmosgate init`: writes the commented starter files. */
export function registerInit(program: Command, io: Io): void {
  program
    .command("init")
    .description("write a commented starter cosmosgate.yaml and policy.yaml")
    .option("-d, --dir <dir>", "directory to write into", ".")
    .option("-f, --force", "overwrite existing files")
    .action(async (opts: { dir: string; force?: boolean }) => {
      for (const [name, text] of [
        ["cosmosgate.yaml", STARTER_CONFIG],
        ["policy.yaml", STARTER_POLICY],
      ] as const) {
        const file = resolve(opts.dir, name);
        try {
          await writeFile(file, text, { flag: opts.force ? "w" : "wx" });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") {
            throw new CliError(`${file} already exists; keep it, or run again with --force to overwrite`);
          }
          throw err;
        }
        io.out(`wrote ${file}\n`);
      }
      io.out("next: edit policy.yaml, then run `cosmosgate serve` (or `cosmosgate dev` to try it locally)\n");
    });
}
