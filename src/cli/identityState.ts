import { access } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { configPath, type LoadedConfig, loadConfig, resolveConfigPath } from "../config/load.js";
import type { SqliteIdentityStore } from "../store/identityStore.js";
import { CliError } from "./io.js";

/** An administrative change made from the command line, for the audit trail. */
export interface AdminEvent {
  type: string;
  /** The user the change is about. */
  user?: string;
  credential?: string;
  kid?: string;
  reason: string;
  decision?: "allow" | "deny";
}

/** The gateway's identity state opened by an administrative command. */
export interface IdentityState {
  loaded: LoadedConfig;
  stateDir: string;
  store: SqliteIdentityStore;
  /** Collects an event; {@link IdentityState.close} writes them to the audit trail. */
  record(event: AdminEvent): void;
  /** Closes the store and appends the recorded events to `stateDir/audit.db`. */
  close(): Promise<void>;
}

/**
 * Opens `stateDir/state.db` of the configuration named by `--config` (the gateway must have run at
 * least once: the file is not created here, so a wrong directory is reported instead of silently
 * getting an empty store). Administrative changes are appended to the gateway's audit trail as
 * events whose subject is `cli:<operating-system user>` (who had access to the state directory).
 *
 * @example
 * ```ts
 * const state = await openIdentityState(opts.config);
 * try { disableUser(state.store, name, Date.now, (e) => state.record({ ...e, user: e.subject })); }
 * finally { await state.close(); }
 * ```
 */
export async function openIdentityState(configFlag: string | undefined): Promise<IdentityState> {
  const loaded = await loadConfig(configPath(configFlag));
  const stateDir = resolveConfigPath(loaded, loaded.config.stateDir);
  const file = join(stateDir, "state.db");
  try {
    await access(file);
  } catch {
    throw new CliError(
      `no gateway state at ${file}: start the gateway once (cosmosgate serve / cosmosgate dev), or point --config at its configuration`,
    );
  }
  const { openIdentityStore } = await import("../store/identityStore.js");
  const store = openIdentityStore(file);
  const events: AdminEvent[] = [];
  let closed = false;
  return {
    loaded,
    stateDir,
    store,
    record: (e) => {
      events.push(e);
    },
    async close() {
      if (closed) return;
      closed = true;
      store.close();
      if (events.length > 0) await appendAdminEvents(stateDir, events);
    },
  };
}

/** Who runs the command, as the audit trail names them. */
export function operatorName(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? "unknown"}`;
  }
}

async function appendAdminEvents(stateDir: string, events: AdminEvent[]): Promise<void> {
  const [{ openDatabase }, { createAuditWriter }] = await Promise.all([
    import("../store/sqlite.js"),
    import("../audit/writer.js"),
  ]);
  const subject = operatorName();
  const file = join(stateDir, "audit.db");
  try {
    const db = openDatabase(file);
    try {
      const writer = createAuditWriter(db);
      const now = Date.now();
      await Promise.all(
        events.map((e) =>
          writer.append({
            time: now,
            type: e.type,
            subject,
            subjectKind: "operator",
            ...(e.credential !== undefined ? { credential: e.credential } : {}),
            actions: [],
            resource:
              e.user !== undefined ? `user:${e.user}` : e.kid !== undefined ? `signing_key:${e.kid}` : "",
            decision: e.decision ?? "allow",
            reason: e.reason,
            status: 0,
            durationMs: 0,
          }),
        ),
      );
      await writer.close();
    } finally {
      db.close();
    }
  } catch (err) {
    throw new CliError(
      `the change was made, but its audit record could not be written to ${file}: ${(err as Error).message}`,
    );
  }
}
