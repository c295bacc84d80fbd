import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { configPath, loadConfig, resolveConfigPath } from "../config/load.js";
import { CliError, type Io } from "./io.js";

/** `cosmosgate audit tail|verify`. */
export function registerAudit(program: Command, io: Io): void {
  const audit = program.command("audit").description("read and verify the audit trail");
  audit
    .command("tail")
    .description("print the most recent audit records, oldest first")
    .option("-n, --lines <n>", "how many records", "20")
    .option("--json", "one JSON record per line")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .action(async (opts: { lines: string; json?: boolean; config?: string }) => {
      const n = Number(opts.lines);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) {
        throw new CliError(`-n ${opts.lines}: expected a whole number from 1 to 100000`, 2);
      }
      const db = await openAudit(opts.config);
      const { formatRecord, tail } = await import("../audit/query.js");
      try {
        for (const r of tail(db, n)) io.out(`${opts.json ? JSON.stringify(r) : formatRecord(r)}\n`);
      } finally {
        db.close();
      }
    });
  audit
    .command("verify")
    .description("check the hash chain of the audit trail and name the first broken record")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .action(async (opts: { config?: string }) => {
      const db = await openAudit(opts.config);
      const { verifyChain } = await import("../audit/verify.js");
      try {
        const result = verifyChain(db);
        if (result.ok) {
          io.out(`audit chain OK: ${result.count} record(s) verified\n`);
          return;
        }
        const b = result.firstBroken!;
        throw new CliError(`audit chain BROKEN at record ${b.seq} (${b.kind}): ${b.detail}`, 1);
      } finally {
        db.close();
      }
    });
}

async function openAudit(flag: string | undefined) {
  const loaded = await loadConfig(configPath(flag));
  const file = join(resolveConfigPath(loaded, loaded.config.stateDir), "audit.db");
  try {
    await access(file);
  } catch {
    throw new CliError(
      `no audit trail at ${file}: start the gateway first, or point --config at its configuration`,
    );
  }
  const { openDatabase } = await import("../store/sqlite.js");
  return openDatabase(file, { readonly: true });
}
