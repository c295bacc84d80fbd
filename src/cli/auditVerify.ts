import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import type { AuditCheckpoint } from "../audit/checkpoints.js";
import type { PruneResult } from "../audit/retention.js";
import type { TrailResult } from "../audit/verify.js";
import { configPath, loadConfig, resolveConfigPath } from "../config/load.js";
import type { Database } from "../store/sqlite.js";
import { operatorName } from "./identityState.js";
import { CliError, type Io } from "./io.js";
import { createProgress } from "./progress.js";

/** What the verify and prune commands take from their surroundings (tests replace them). */
export interface AuditVerifyDeps {
  /** Whether stderr is a terminal (the progress bar is drawn only then, unless --progress). */
  stderrIsTty?: boolean;
  /** For `--checkpoints URL`. */
  fetch?: typeof fetch;
  /** ms since the epoch (prune's cutoff). */
  clock?: () => number;
}

const CONFIG_HELP = "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)";

/**
 * `cosmosgate audit verify` and `cosmosgate audit prune`, on the `audit` command.
 *
 * verify: the live store (`--config`), or an exported JSONL file (`--file`); checkpoints kept
 * elsewhere with `--checkpoints FILE|URL`. Prints OK with counts and checkpoint coverage (exit 0),
 * or `BROKEN at record N (kind): detail` (exit 1). A progress bar on stderr when it is a terminal
 * (`--progress` forces it, `--no-progress` hides it).
 *
 * prune: applies `audit.retention` now (`--dry-run`: says what it would delete).
 *
 * @example
 * ```ts
 * const audit = program.command("audit");
 * registerAuditVerify(audit, io);
 * ```
 */
export function registerAuditVerify(audit: Command, io: Io, deps: AuditVerifyDeps = {}): void {
  audit
    .command("verify")
    .description(
      "check the audit trail: the hash chain, the signed checkpoints and a truncated tail; name the first broken record",
    )
    .option("-c, --config <file>", CONFIG_HELP)
    .option(
      "--file <export.jsonl>",
      "verify an export (audit export --format jsonl) instead of the live store",
    )
    .option(
      "--complete",
      "with --file: the export must hold the whole trail (start at seq 1 or at a retention anchor)",
    )
    .option(
      "--checkpoints <file|url>",
      "also check against checkpoints kept elsewhere (the JSON of GET /audit/checkpoints, a file or a URL)",
    )
    .option("--progress", "show a progress bar on stderr even when it is not a terminal")
    .option("--no-progress", "never show a progress bar")
    .action(
      async (opts: {
        config?: string;
        file?: string;
        complete?: boolean;
        checkpoints?: string;
        progress?: boolean;
      }) => {
        if (opts.complete && !opts.file) throw new CliError("--complete applies to --file only", 2);
        const external = opts.checkpoints ? await loadCheckpoints(opts.checkpoints, deps) : undefined;
        const bar = createProgress({
          write: (t) => io.err(t),
          enabled: opts.progress ?? deps.stderrIsTty ?? process.stderr.isTTY === true,
          unit: opts.file ? "bytes" : "records",
          label: "verifying",
        });
        const onProgress = (done: number, total: number) => bar.update(done, total);

        let result: TrailResult & { partial?: boolean };
        let what: string;
        if (opts.file) {
          const { verifyExport } = await import("../audit/exportVerify.js");
          try {
            result = await verifyExport(opts.file, { external, complete: opts.complete, onProgress });
          } catch (err) {
            throw new CliError((err as Error).message, 1);
          } finally {
            bar.finish();
          }
          what = `export ${opts.file}`;
        } else {
          const db = await openAudit(opts.config, true);
          const { verifyTrail } = await import("../audit/verify.js");
          try {
            result = await verifyTrail(db, { external, onProgress });
          } finally {
            bar.finish();
            db.close();
          }
          what = "audit chain";
        }
        if (!result.ok) {
          const b = result.firstBroken!;
          throw new CliError(`${what} BROKEN at record ${b.seq} (${b.kind}): ${b.detail}`, 1);
        }
        io.out(formatOk(what, result, opts.file !== undefined));
      },
    );

  audit
    .command("prune")
    .description(
      "delete audit records older than audit.retention, up to a signed checkpoint kept as the anchor (also runs daily in the gateway)",
    )
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--dry-run", "say what would be deleted; change nothing")
    .action(async (opts: { config?: string; dryRun?: boolean }) => {
      const loaded = await loadConfig(configPath(opts.config));
      const retentionMs = loaded.config.audit.retention;
      if (!(retentionMs > 0)) {
        io.out(
          'audit.retention is "0" (keep forever): nothing to prune. Set audit.retention, e.g. "400d".\n',
        );
        return;
      }
      const db = await openAudit(opts.config, opts.dryRun === true);
      const { pruneAudit } = await import("../audit/retention.js");
      const { createAuditWriter } = await import("../audit/writer.js");
      const writer = opts.dryRun ? undefined : createAuditWriter(db, { clock: deps.clock });
      let result: PruneResult;
      try {
        result = await pruneAudit(db, {
          retentionMs,
          clock: deps.clock,
          dryRun: opts.dryRun,
          append: writer ? (e) => writer.append(e) : undefined,
          subject: operatorName(),
          subjectKind: "operator",
        });
      } finally {
        await writer?.close();
        db.close();
      }
      if (result.status === "refused") throw new CliError(`audit prune refused: ${result.reason}`, 1);
      if (result.status === "nothing") {
        io.out(`nothing to prune: ${result.reason}\n`);
        return;
      }
      const a = result.anchor!;
      io.out(
        `${opts.dryRun ? "would prune" : "pruned"} ${result.deleted} record(s) (seq ${result.fromSeq}–${a.seq}: ` +
          `the checkpoint at seq ${a.seq} was signed ${iso(a.time)}, before the retention cutoff ${iso(result.cutoff)}); ` +
          `the trail ${opts.dryRun ? "would start" : "now starts"} after that checkpoint, kept as its anchor` +
          (result.eventSeq ? `; recorded as audit.pruned (record ${result.eventSeq})` : "") +
          "\n",
      );
    });
}

function formatOk(what: string, r: TrailResult & { partial?: boolean }, file: boolean): string {
  const lines: string[] = [];
  const range = r.count > 0 ? ` (seq ${r.firstSeq}–${r.lastSeq})` : "";
  lines.push(`${what} OK: ${r.count} record(s) verified${range}`);
  const c = r.checkpoints;
  const sources = [
    file ? `${c.stored} in the file` : `${c.stored} stored`,
    ...(c.external > 0 ? [`${c.external} external`] : []),
  ].join(", ");
  if (c.newest) {
    lines.push(
      `  checkpoints: ${c.matched} signed checkpoint(s) match their records (${sources} with valid signatures); ` +
        `newest at seq ${c.newest.seq} (${iso(c.newest.time)}, key ${c.newest.kid})` +
        (c.uncovered > 0
          ? `; ${c.uncovered} newer record(s) not covered by a checkpoint yet`
          : "; every record is covered"),
    );
  } else {
    lines.push(
      `  checkpoints: none cover these records (${sources}): a truncated tail would not show` +
        (file ? "" : "; the gateway writes them (audit.checkpoints)"),
    );
  }
  if (c.beforeAnchor > 0)
    lines.push(`  ${c.beforeAnchor} checkpoint(s) name records pruned before the anchor (not compared)`);
  if (r.anchor) {
    lines.push(
      `  starts at the retention anchor: the checkpoint at seq ${r.anchor.seq} (${iso(r.anchor.time)}); ` +
        `records up to ${r.anchor.seq} were pruned, and an audit.pruned record authorizes it`,
    );
  }
  if (r.partial) {
    lines.push(
      `  partial export: it starts at seq ${r.firstSeq}; the first record's link to record ${r.firstSeq - 1} ` +
        "(not in the file) is taken as given — only records from there on are verified",
    );
  }
  return `${lines.join("\n")}\n`;
}

async function loadCheckpoints(source: string, deps: AuditVerifyDeps): Promise<AuditCheckpoint[]> {
  const { parseCheckpoints } = await import("../audit/checkpoints.js");
  let text: string;
  if (/^https?:\/\//i.test(source)) {
    const doFetch = deps.fetch ?? fetch;
    try {
      const res = await doFetch(source, { headers: { accept: "application/json" } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      text = await res.text();
    } catch (err) {
      throw new CliError(
        `--checkpoints ${source}: cannot fetch it (${(err as Error).message}); check the URL (the gateway serves /audit/checkpoints on its control plane)`,
        1,
      );
    }
  } else {
    try {
      text = await readFile(source, "utf8");
    } catch (err) {
      throw new CliError(`--checkpoints ${source}: cannot read it (${(err as Error).message})`, 2);
    }
  }
  try {
    return parseCheckpoints(text);
  } catch (err) {
    throw new CliError(`--checkpoints ${source}: ${(err as Error).message}`, 2);
  }
}

/** Opens `stateDir/audit.db` of the configuration `flag` names, or says how to get one. */
export async function openAudit(flag: string | undefined, readonly: boolean): Promise<Database> {
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
  return openDatabase(file, { readonly });
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}
