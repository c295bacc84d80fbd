import { access } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { configPath, type LoadedConfig, loadConfig, resolveConfigPath } from "../config/load.js";
import type { SqliteIdentityStore } from "../store/identityStore.js";
import { CliError } from "./io.js";

/** An administrative change made from the command line, for the audit trail (docs/audit.md). */
export interface AdminEvent {
  type: string;
  /** The user the change is about: the record's resource is "/users/NAME". */
  user?: string;
  credential?: string;
  /** The key's nickname, AAGUID and kind; filled from the store when `credential` is set. */
  credentialName?: string;
  aaguid?: string;
  deviceBound?: boolean;
  /** A signing key's kid: the record's resource is "/keys/KID". */
  kid?: string;
  reason: string;
  decision?: "allow" | "deny" | "error";
  /** Event-specific facts; never a secret. */
  details?: Record<string, string | number | boolean>;
}

/** The gateway's identity state opened by an administrative command. */
export interface IdentityState {
  loaded: LoadedConfig;
  stateDir: string;
  store: SqliteIdentityStore;
  /**
   * Collects an event (stamped with the time now, its key described from the store);
   * {@link IdentityState.close} writes them to the audit trail.
   */
  record(event: AdminEvent): void;
  /** Closes the store and appends the recorded events to `stateDir/audit.db`. */
  close(): Promise<void>;
}

/**
 * Opens `stateDir/state.db` of the configuration named by `--config` (the gateway must have run at
 * least once: the file is not created here, so a wrong directory is reported instead of silently
 * getting an empty store). Administrative changes are appended to the gateway's audit trail as
 * events whose subject is `cli:<operating-system user>` (who had access to the state directory),
 * kind "operator", and whose resource is the user ("/users/NAME") or signing key ("/keys/KID")
 * changed; they carry no gateway instance id.
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
  const events: { time: number; event: AdminEvent }[] = [];
  let closed = false;
  return {
    loaded,
    stateDir,
    store,
    record: (e) => {
      let event = e;
      if (e.credential !== undefined && e.credentialName === undefined && !closed) {
        const key = store.getCredential(e.credential);
        if (key !== undefined) {
          event = { ...e, credentialName: key.nickname, aaguid: key.aaguid, deviceBound: key.deviceBound };
        }
      }
      events.push({ time: Date.now(), event });
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

/** The event's details, with the user and kid it is about (searchable without parsing the resource). */
function adminDetails(e: AdminEvent): Record<string, string | number | boolean> | undefined {
  if (e.user === undefined && e.kid === undefined) return e.details;
  return {
    ...(e.user !== undefined ? { user: e.user } : {}),
    ...(e.kid !== undefined ? { kid: e.kid } : {}),
    ...e.details,
  };
}

async function appendAdminEvents(
  stateDir: string,
  events: { time: number; event: AdminEvent }[],
): Promise<void> {
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
      await Promise.all(
        events.map(({ time, event: e }) =>
          writer.append({
            time,
            type: e.type,
            subject,
            subjectKind: "operator",
            credential: e.credential,
            credentialName: e.credentialName,
            aaguid: e.aaguid,
            deviceBound: e.deviceBound,
            actions: [],
            resource: e.user !== undefined ? `/users/${e.user}` : e.kid !== undefined ? `/keys/${e.kid}` : "",
            decision: e.decision ?? "allow",
            reason: e.reason,
            status: 0,
            durationMs: 0,
            details: adminDetails(e),
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
