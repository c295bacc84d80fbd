import { access, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { type AuditFilter, parseTime } from "../audit/search.js";
import { configPath, type LoadedConfig, loadConfig, resolveConfigPath } from "../config/load.js";
import { ALL_ACTIONS } from "../cosmos/types.js";
import type { Database } from "../store/index.js";
import { CliError, type Io } from "./io.js";
import { createProgress } from "./progress.js";

const CONFIG_HELP = "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)";

/** Raw filter options as commander hands them over. */
interface FilterFlags {
  actor?: string;
  key?: string;
  action?: string;
  type?: string;
  resource?: string;
  decision?: string;
  from?: string;
  to?: string;
  config?: string;
}

/**
 * Registers `audit search`, `audit export` and `audit keys` on the `audit` command.
 *
 * @example
 * ```ts
 * const audit = program.command("audit");
 * registerAuditSearch(audit, io);
 * ```
 */
export function registerAuditSearch(audit: Command, io: Io): void {
  const search = audit
    .command("search")
    .description(
      "find audit records by actor, key, action, resource, decision and time (through the indexes)",
    );
  filterOptions(search)
    .option("--limit <n>", "at most this many records (1 to 10000000)", "100")
    .option("--all", "every matching record (no limit)")
    .option("--order <order>", "newest (first) or oldest (first)", "newest")
    .option("--json", "one JSON record per line (the stored record with seq, prevHash and hash)")
    .addHelpText(
      "after",
      `
Times (--from, --to): ISO 8601 (2025-01-02, 2025-01-02T03:04:05Z; no zone means UTC), "now", or a
duration before now (90s, 15m, 1h, 7d). --from is included, --to is not.
--resource matches exactly, or every resource below a path ending in "/", or starting with what
comes before a final "*". --key takes a credential ID or a key's nickname (from the identity store).

Examples:
  cosmosgate audit search --actor ada --from 24h
  cosmosgate audit search --key "ada's YubiKey" --action delete --json
  cosmosgate audit search --resource /dbs/shop/colls/orders/ --decision deny --from 2025-01-01 --to 2025-02-01
  cosmosgate audit search --type "credential.*" --all --order oldest`,
    )
    .action(async (flags: FilterFlags & { limit: string; all?: boolean; order: string; json?: boolean }) => {
      const limit = flags.all ? undefined : wholeNumber("--limit", flags.limit, 1, 10_000_000);
      const order = flags.order === "newest" ? "desc" : flags.order === "oldest" ? "asc" : undefined;
      if (order === undefined) throw usage(`--order ${flags.order}: expected "newest" or "oldest"`);
      const filter = parseFilter(flags, Date.now());
      const opened = await openTrail(flags.config);
      try {
        resolveKey(filter, opened, io);
        const [{ searchAudit }, { formatRecord }] = await Promise.all([
          import("../audit/search.js"),
          import("../audit/query.js"),
        ]);
        let n = 0;
        let chunk = "";
        for (const r of auditCall(() => searchAudit(opened.db, { ...filter, limit, order }))) {
          chunk += `${flags.json ? JSON.stringify(r) : formatRecord(r)}\n`;
          n += 1;
          if (chunk.length >= 65_536) {
            io.out(chunk);
            chunk = "";
          }
        }
        if (chunk.length > 0) io.out(chunk);
        if (n === 0) io.err("no audit record matches\n");
      } finally {
        opened.close();
      }
    });

  const exp = audit
    .command("export")
    .description("export audit records as JSON lines (verifiable) or CSV, streaming, any size");
  filterOptions(exp)
    .option(
      "--format <format>",
      "jsonl (verifiable: records with their hashes, and checkpoints) or csv",
      "jsonl",
    )
    .option("-o, --out <file>", "write to this file (mode 0600) instead of standard output")
    .option("--force", "replace --out if it exists")
    .option("--progress", "show progress on standard error even when it is not a terminal")
    .option("--no-progress", "never show a progress bar")
    .addHelpText(
      "after",
      `
Records come in seq (chain) order. JSONL lines are the stored records (event fields, seq, prevHash,
hash) and {"checkpoint": {...}} lines after the record each signed checkpoint covers: verify the file
with \`cosmosgate audit verify\`. CSV has a header row, RFC 4180 quoting, actions joined by ";", and
cells that a spreadsheet would run as formulas (starting with = + - @) prefixed with '.
A progress bar shows on standard error when it is a terminal (or with --progress; never with
--no-progress).

Examples:
  cosmosgate audit export --out audit-2025-01.jsonl --from 2025-01-01 --to 2025-02-01
  cosmosgate audit export --format csv --actor ada --from 30d > ada.csv
  cosmosgate audit export --decision deny --format csv --out denials.csv --force`,
    )
    .action(
      async (flags: FilterFlags & { format: string; out?: string; force?: boolean; progress?: boolean }) => {
        if (flags.format !== "jsonl" && flags.format !== "csv")
          throw usage(`--format ${flags.format}: expected "jsonl" or "csv"`);
        const format = flags.format;
        const filter = parseFilter(flags, Date.now());
        if (flags.out !== undefined) await checkOut(flags.out, flags.force === true);
        const opened = await openTrail(flags.config);
        try {
          resolveKey(filter, opened, io);
          const { exportAudit } = await import("../audit/export.js");
          // The progress bar of `audit verify` too (src/cli/progress.ts): on stderr when it is a
          // terminal, or forced with --progress; --no-progress silences it.
          const showBar = flags.progress ?? process.stderr.isTTY === true;
          const bar = createProgress({
            write: (t) => io.err(t),
            enabled: showBar,
            unit: "records",
            label: "exporting",
          });
          const started = Date.now();
          const run = (write: (chunk: string) => void | Promise<void>) =>
            auditCall(() =>
              exportAudit(opened.db, write, {
                ...filter,
                format,
                onProgress: showBar ? (done, total) => bar.update(done, total) : undefined,
              }),
            );
          const result =
            flags.out === undefined ? await run((c) => io.out(c)) : await writeFileAtomically(flags.out, run);
          bar.finish();
          const seconds = Math.max(0.001, (Date.now() - started) / 1000);
          if (flags.out !== undefined || showBar) {
            const cps = result.checkpoints > 0 ? ` and ${result.checkpoints} checkpoint(s)` : "";
            io.err(
              `exported ${result.records} record(s)${cps}${flags.out !== undefined ? ` to ${flags.out}` : ""} ` +
                `in ${seconds.toFixed(1)} s (${Math.round(result.records / seconds)} records/s)\n`,
            );
          }
        } finally {
          opened.close();
        }
      },
    );

  audit
    .command("keys")
    .description("key-usage report: each credential's owner, model, uses by action, denials, suspensions")
    .option("--from <time>", "start of the window (default: the oldest record)")
    .option("--to <time>", "end of the window, excluded (default: now)")
    .option("--format <format>", "table, csv or html (one self-contained file with charts)", "table")
    .option("-o, --out <file>", "write to this file (mode 0600) instead of standard output")
    .option("--force", "replace --out if it exists")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText(
      "after",
      `
For every key in the identity store (and every key named in the window's records): owner, nickname,
authenticator model (AAGUID) and type (device-bound or synced), status, first and last use, uses by
action, denials, errors, sign-ins, suspensions. Times as for \`audit search\`.

Examples:
  cosmosgate audit keys --from 30d
  cosmosgate audit keys --from 2025-01-01 --to 2025-04-01 --format html --out keys-q1.html
  cosmosgate audit keys --format csv > keys.csv`,
    )
    .action(
      async (flags: {
        from?: string;
        to?: string;
        format: string;
        out?: string;
        force?: boolean;
        config?: string;
      }) => {
        if (flags.format !== "table" && flags.format !== "csv" && flags.format !== "html")
          throw usage(`--format ${flags.format}: expected "table", "csv" or "html"`);
        const now = Date.now();
        const from = flags.from === undefined ? undefined : time("--from", flags.from, now);
        const to = flags.to === undefined ? undefined : time("--to", flags.to, now);
        if (from !== undefined && to !== undefined && from >= to)
          throw usage(`--from ${flags.from} is not before --to ${flags.to}: swap them or widen the window`);
        if (flags.out !== undefined) await checkOut(flags.out, flags.force === true);
        const opened = await openTrail(flags.config);
        try {
          const report = await import("../audit/keysReport.js");
          let names: Map<string, string> | undefined;
          const metadataFile = opened.loaded.config.identity.authenticators.metadataFile;
          if (metadataFile !== undefined) {
            try {
              names = report.loadAuthenticatorNames(resolveConfigPath(opened.loaded, metadataFile));
            } catch (err) {
              io.err(
                `cosmosgate: warning: ${(err as Error).message} Authenticator names are limited to well-known ones.\n`,
              );
            }
          }
          const directory = opened.directory();
          if (directory === undefined)
            io.err(
              `cosmosgate: warning: no identity store at ${opened.stateFile}; owners and nicknames come from the audit records only.\n`,
            );
          const built = auditCall(() =>
            report.buildKeysReport(opened.db, {
              from,
              to,
              now: Date.now,
              directory,
              authenticatorNames: names,
            }),
          );
          const text =
            flags.format === "html"
              ? report.formatKeysHtml(built)
              : flags.format === "csv"
                ? report.formatKeysCsv(built)
                : report.formatKeysTable(built);
          if (flags.out === undefined) io.out(text);
          else {
            await writeFileAtomically(flags.out, async (write) => {
              await write(text);
            });
            io.err(`wrote the key-usage report (${built.keys.length} key(s)) to ${flags.out}\n`);
          }
        } finally {
          opened.close();
        }
      },
    );
}

/**
 * `audit tail -f`: prints each record committed after `afterSeq` as it comes (polling every
 * `intervalMs`), until the process is asked to stop (Ctrl-C, SIGTERM).
 *
 * @example
 * ```ts
 * await followAudit(db, io, { afterSeq: lastPrinted, json: false });
 * ```
 */
export async function followAudit(
  db: Database,
  io: Io,
  opts: { afterSeq: number; json: boolean; intervalMs?: number },
): Promise<void> {
  const { followTrail, formatRecord } = await import("../audit/query.js");
  const stop = new AbortController();
  void io.waitForStop().then(() => stop.abort());
  try {
    for await (const r of followTrail(db, {
      afterSeq: opts.afterSeq,
      signal: stop.signal,
      intervalMs: opts.intervalMs,
    })) {
      io.out(`${opts.json ? JSON.stringify(r) : formatRecord(r)}\n`);
    }
  } catch (err) {
    throw auditFailure(err);
  }
}

/** The highest seq of the trail (0 when empty): where `tail -f` starts following when it printed nothing. */
export function lastSeq(db: Database): number {
  return (db.prepare("SELECT coalesce(max(seq), 0) FROM audit_events").pluck().get() as number) ?? 0;
}

// ---- options -------------------------------------------------------------------------------

function filterOptions(cmd: Command): Command {
  return cmd
    .option("--actor <subject>", "the subject: a user name, an agent or service principal, cli:<user>")
    .option("--key <id|nickname>", "the credential (key) used: its ID, or its nickname in the identity store")
    .option("--action <action>", `an action of the record: ${ALL_ACTIONS.join(", ")}`)
    .option("--type <type>", 'event type, e.g. data.request, signin.failed, or a prefix: "credential.*"')
    .option(
      "--resource <path>",
      "exact resource, a path ending in / (everything below), or a prefix ending in *",
    )
    .option("--decision <decision>", "allow, deny or error")
    .option("--from <time>", "records at or after this time (ISO 8601, or 1h, 7d, ... ago)")
    .option("--to <time>", "records before this time")
    .option("-c, --config <file>", CONFIG_HELP);
}

const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*|\*)?$|^\*$/;
// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/** Validates the filter flags (exit 2 with what was wrong) and turns them into a filter. */
export function parseFilter(flags: FilterFlags, now: number): AuditFilter {
  const f: AuditFilter = {};
  for (const [name, value] of [
    ["--actor", flags.actor],
    ["--key", flags.key],
    ["--resource", flags.resource],
  ] as const) {
    if (value === undefined) continue;
    if (value.length === 0) throw usage(`${name}: give a value, e.g. ${name} ${EXAMPLE[name]}`);
    if (CONTROL.test(value)) throw usage(`${name}: the value holds a control character; remove it`);
  }
  if (flags.actor !== undefined) f.actor = flags.actor;
  if (flags.key !== undefined) f.key = flags.key;
  if (flags.resource !== undefined) f.resource = flags.resource;
  if (flags.action !== undefined) {
    if (!(ALL_ACTIONS as readonly string[]).includes(flags.action))
      throw usage(
        `--action ${JSON.stringify(flags.action)}: not an action; use one of ${ALL_ACTIONS.join(", ")}`,
      );
    f.action = flags.action;
  }
  if (flags.type !== undefined) {
    if (!TYPE.test(flags.type))
      throw usage(
        `--type ${JSON.stringify(flags.type)}: expected an event type in dot.case (signin.failed) or a prefix ending in * (credential.*)`,
      );
    f.type = flags.type;
  }
  if (flags.decision !== undefined) {
    if (flags.decision !== "allow" && flags.decision !== "deny" && flags.decision !== "error")
      throw usage(`--decision ${JSON.stringify(flags.decision)}: expected allow, deny or error`);
    f.decision = flags.decision;
  }
  if (flags.from !== undefined) f.from = time("--from", flags.from, now);
  if (flags.to !== undefined) f.to = time("--to", flags.to, now);
  if (f.from !== undefined && f.to !== undefined && f.from >= f.to)
    throw usage(`--from ${flags.from} is not before --to ${flags.to}: swap them or widen the window`);
  return f;
}

const EXAMPLE: Record<string, string> = {
  "--actor": "ada",
  "--key": "<credential ID>",
  "--resource": "/dbs/shop/colls/orders/",
};

function time(name: string, value: string, now: number): number {
  const t = parseTime(value, now);
  if (t === undefined)
    throw usage(
      `${name} ${JSON.stringify(value)}: not a time; use ISO 8601 (2025-01-02, 2025-01-02T03:04:05Z), "now", or a duration before now (15m, 1h, 7d)`,
    );
  return t;
}

function wholeNumber(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw usage(`${name} ${value}: expected a whole number from ${min} to ${max}`);
  return n;
}

function usage(message: string): CliError {
  return new CliError(message, 2);
}

// ---- the trail and the identity store ------------------------------------------------------

interface OpenedTrail {
  db: Database;
  loaded: LoadedConfig;
  stateFile: string;
  /** The identity store's keys, read once (read-only); undefined when there is no state.db. */
  directory(): Map<string, import("../audit/keysReport.js").KeyDirectoryEntry> | undefined;
  close(): void;
}

/** Opens `stateDir/audit.db` read-only, checking it has the search indexes (schema 3 or later). */
async function openTrail(flag: string | undefined): Promise<OpenedTrail> {
  const loaded = await loadConfig(configPath(flag));
  const stateDir = resolveConfigPath(loaded, loaded.config.stateDir);
  const file = join(stateDir, "audit.db");
  try {
    await access(file);
  } catch {
    throw new CliError(
      `no audit trail at ${file}: start the gateway first, or point --config at its configuration`,
    );
  }
  const [{ openDatabase }, { StoreError }, keys] = await Promise.all([
    import("../store/sqlite.js"),
    import("../store/errors.js"),
    import("../audit/keysReport.js"),
  ]);
  let db: Database;
  try {
    db = openDatabase(file, { readonly: true });
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(err.message);
    throw err;
  }
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version < 3) {
    db.close();
    throw new CliError(
      `the audit trail at ${file} has schema version ${version}, without the search indexes (version 3): ` +
        "start this version of the gateway once (it upgrades the file in place), then search again",
    );
  }
  const stateFile = join(stateDir, "state.db");
  let directory: Map<string, import("../audit/keysReport.js").KeyDirectoryEntry> | undefined | null = null;
  return {
    db,
    loaded,
    stateFile,
    directory() {
      if (directory !== null) return directory;
      directory = undefined;
      let state: Database;
      try {
        state = openDatabase(stateFile, { readonly: true });
      } catch {
        return undefined; // no identity store: the caller says so
      }
      try {
        directory = keys.readKeyDirectory(state);
      } catch (err) {
        throw auditFailure(err);
      } finally {
        state.close();
      }
      return directory;
    },
    close: () => db.close(),
  };
}

/**
 * `--key` takes an ID or a nickname: a value that is not a credential ID of the identity store but
 * the nickname of exactly one key becomes that key's ID; a nickname of several keys is refused
 * (exit 2) with their IDs. A value the store does not know stays as given (a removed key's ID is
 * still in the trail).
 */
function resolveKey(filter: AuditFilter, opened: OpenedTrail, io: Io): void {
  const value = filter.key;
  if (value === undefined) return;
  const directory = opened.directory();
  if (directory === undefined || directory.has(value)) return;
  const named = [...directory.values()].filter((e) => e.nickname === value);
  if (named.length === 1) {
    filter.key = named[0].id;
    io.err(`key "${value}" is credential ${named[0].id} (${named[0].owner ?? "owner unknown"})\n`);
    return;
  }
  if (named.length > 1)
    throw usage(
      `--key ${JSON.stringify(value)}: ${named.length} keys have this nickname (${named
        .map((e) => `${e.id} of ${e.owner ?? "?"}`)
        .join(", ")}); give the credential ID instead`,
    );
}

// ---- output --------------------------------------------------------------------------------

/** Refuses to replace an existing file without --force (exit 2). */
async function checkOut(file: string, force: boolean): Promise<void> {
  if (force) return;
  try {
    await access(file);
  } catch {
    return;
  }
  throw usage(`--out ${file}: the file exists; choose another name or add --force to replace it`);
}

/**
 * Writes through `fill` to a temporary file beside `file` (mode 0600: audit data names people and
 * their keys), then renames it into place, so `file` is never half-written; removes the temporary
 * file on failure.
 */
async function writeFileAtomically<T>(
  file: string,
  fill: (write: (chunk: string) => Promise<void>) => Promise<T>,
): Promise<T> {
  const tmp = `${file}.${process.pid}.partial`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, "w", 0o600);
  } catch (err) {
    throw new CliError(
      `cannot write ${file}: ${(err as Error).message}; check the directory and its permissions`,
    );
  }
  try {
    const h = handle;
    const result = await fill(async (chunk) => {
      await h.write(chunk);
    });
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
    return result;
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E"))
      throw new CliError(
        `cannot write ${file}: ${(err as Error).message}; check the free space and permissions`,
      );
    throw err;
  }
}

/** Runs an audit-module call, turning its errors into CLI errors (usage problems exit 2). */
function auditCall<T>(fn: () => T): T {
  try {
    const v = fn();
    if (v instanceof Promise) return v.catch((err: unknown) => Promise.reject(auditFailure(err))) as T;
    if (isIterator(v)) return wrapIterator(v) as T;
    return v;
  } catch (err) {
    throw auditFailure(err);
  }
}

function isIterator(v: unknown): v is Generator<unknown> {
  return (
    typeof v === "object" && v !== null && typeof (v as Generator).next === "function" && Symbol.iterator in v
  );
}

function* wrapIterator<T>(it: Generator<T>): Generator<T> {
  try {
    for (;;) {
      let next: IteratorResult<T>;
      try {
        next = it.next();
      } catch (err) {
        throw auditFailure(err);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    it.return?.(undefined);
  }
}

function auditFailure(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && err.name === "AuditError")
    return new CliError(err.message, code === "ERR_AUDIT_ARGUMENT" ? 2 : 1);
  return err;
}
