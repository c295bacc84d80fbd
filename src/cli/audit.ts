import type { Command } from "commander";
import { followAudit, lastSeq, registerAuditSearch } from "./auditSearch.js";
import { openAudit, registerAuditVerify } from "./auditVerify.js";
import { CliError, type Io } from "./io.js";

/** `cosmosgate audit tail|verify|search|export|keys`. */
export function registerAudit(program: Command, io: Io): void {
  const audit = program.command("audit").description("read and verify the audit trail");
  audit
    .command("tail")
    .description("print the most recent audit records, oldest first")
    .option("-n, --lines <n>", "how many records", "20")
    .option("--json", "one JSON record per line")
    .option("-f, --follow", "then print new records as they are committed, until Ctrl-C")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .addHelpText("after", "\nExamples:\n  cosmosgate audit tail -n 50\n  cosmosgate audit tail -f --json")
    .action(async (opts: { lines: string; json?: boolean; follow?: boolean; config?: string }) => {
      const n = Number(opts.lines);
      if (!Number.isInteger(n) || n < (opts.follow ? 0 : 1) || n > 100_000) {
        throw new CliError(
          `-n ${opts.lines}: expected a whole number from ${opts.follow ? 0 : 1} to 100000`,
          2,
        );
      }
      const db = await openAudit(opts.config, true);
      const { formatRecord, tail } = await import("../audit/query.js");
      try {
        const shown = tail(db, n);
        for (const r of shown) io.out(`${opts.json ? JSON.stringify(r) : formatRecord(r)}\n`);
        if (opts.follow) {
          const after = shown.length > 0 ? shown[shown.length - 1].seq : lastSeq(db);
          await followAudit(db, io, { afterSeq: after, json: opts.json === true });
        }
      } finally {
        db.close();
      }
    });
  // search, export, keys, and tail -f: src/cli/auditSearch.ts
  registerAuditSearch(audit, io);
  // verify (and prune): src/cli/auditVerify.ts
  registerAuditVerify(audit, io);
}
