import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import type { CredentialRecord } from "../store/ports.js";
import type { IdentityState } from "./identityState.js";
import { CliError, type Io } from "./io.js";

const CONFIG_HELP = "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)";

/** `cosmosgate users invite|list|disable|enable|keys|reenable-key`. */
export function registerUsers(program: Command, io: Io): void {
  const users = program
    .command("users")
    .description("invite, list, disable and enable users of the gateway's own identity provider")
    .addHelpText(
      "after",
      "\nThese commands work on the gateway's state directory (stateDir/state.db) and may run while the\n" +
        "gateway runs; changes are audited in stateDir/audit.db as done by cli:<your user name>.",
    );

  users
    .command("invite")
    .description("make a one-time enrollment URL for a new user")
    .argument("<name>", "the user name (1-64 of A-Z a-z 0-9 . _ @ -); it becomes the token's sub")
    .option("--group <group>", "a group the user joins (policy `group:` members), repeatable", collect, [])
    .option("--admin", "make the user an administrator")
    .option("--expires <duration>", "how long the URL stays valid (at most 30d)", "24h")
    .option("--json", "print {name, url, expiresAt} as JSON")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText(
      "after",
      "\nThe person opens the URL and enrolls a security key or passkey; it works once.\n" +
        "Examples:\n" +
        "  cosmosgate users invite ada --group analysts --group cosmos-readers\n" +
        "  cosmosgate users invite grace --admin --expires 2h",
    )
    .action(
      async (
        name: string,
        opts: { group: string[]; admin?: boolean; expires: string; json?: boolean; config?: string },
      ) => {
        const expiresInMs = parseDuration(opts.expires);
        if (expiresInMs === undefined || expiresInMs < 60_000 || expiresInMs > 30 * 86_400_000) {
          throw new CliError(
            `--expires ${opts.expires}: expected a duration between 1m and 30d, such as 24h`,
            2,
          );
        }
        await withState(opts.config, async (state) => {
          const { inviteUser } = await import("../identity/users/index.js");
          const { operatorName } = await import("./identityState.js");
          const { secret, expiresAt } = inviteUser(state.store, {
            name,
            groups: opts.group,
            admin: opts.admin === true,
            expiresInMs,
            createdBy: operatorName(),
            clock: Date.now,
            events: (e) => state.record({ ...e, ...(e.subject !== undefined ? { user: e.subject } : {}) }),
          });
          const url = `${state.loaded.config.controlPlane.publicUrl.replace(/\/+$/, "")}/enroll?invite=${secret}`;
          const until = new Date(expiresAt).toISOString();
          if (opts.json) {
            io.out(`${JSON.stringify({ name, url, expiresAt: until })}\n`);
            return;
          }
          const what = [
            opts.group.length > 0 ? `groups ${[...new Set(opts.group)].join(", ")}` : "no groups",
            ...(opts.admin ? ["administrator"] : []),
          ].join("; ");
          io.out(
            `Invited ${name} (${what}). Enrollment URL, valid once until ${until} (${opts.expires}):\n${url}\n`,
          );
          io.err("Send it over a channel you trust: whoever opens it first enrolls as this user.\n");
        });
      },
    );

  users
    .command("list")
    .description("list users: groups, administrator, disabled, number of keys, last use")
    .option("--json", "one JSON array")
    .option("-c, --config <file>", CONFIG_HELP)
    .action(async (opts: { json?: boolean; config?: string }) => {
      await withState(opts.config, async (state) => {
        const { listUsers } = await import("../identity/users/index.js");
        const rows = listUsers(state.store).map((u) => {
          const keys = state.store.listCredentials(u.id);
          const lastUsed = Math.max(0, ...keys.map((k) => k.lastUsedAt ?? 0));
          return {
            name: u.name,
            groups: u.groups,
            admin: u.admin,
            disabled: u.disabled,
            keys: keys.length,
            suspendedKeys: keys.filter((k) => k.suspendedAt !== undefined).length,
            lastUsed: lastUsed > 0 ? new Date(lastUsed).toISOString() : null,
          };
        });
        if (opts.json) {
          io.out(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        if (rows.length === 0) {
          io.out("No users yet. Invite one: cosmosgate users invite NAME\n");
          return;
        }
        io.out(
          table(
            ["NAME", "GROUPS", "ADMIN", "DISABLED", "KEYS", "LAST USED"],
            rows.map((r) => [
              r.name,
              r.groups.join(",") || "-",
              r.admin ? "yes" : "no",
              r.disabled ? "yes" : "no",
              r.suspendedKeys > 0 ? `${r.keys} (${r.suspendedKeys} suspended)` : String(r.keys),
              r.lastUsed ?? "never",
            ]),
          ),
        );
      });
    });

  users
    .command("disable")
    .description("disable a user and revoke their sessions at once")
    .argument("<name>", "the user name")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText(
      "after",
      "\nThe user can no longer sign in, and the gateway refuses their tokens from its next request on,\n" +
        "even tokens it has already verified. Example:\n  cosmosgate users disable mallory",
    )
    .action(async (name: string, opts: { config?: string }) => {
      await withState(opts.config, async (state) => {
        const { disableUser } = await import("../identity/users/index.js");
        const { revokedSessions } = disableUser(state.store, name, Date.now, (e) =>
          state.record({ ...e, ...(e.subject !== undefined ? { user: e.subject } : {}) }),
        );
        io.out(
          `Disabled ${name}; ${revokedSessions.length} session(s) revoked. ` +
            "The gateway refuses their tokens from its next request on.\n",
        );
      });
    });

  users
    .command("enable")
    .description("re-enable a disabled user (their revoked sessions stay revoked)")
    .argument("<name>", "the user name")
    .option("-c, --config <file>", CONFIG_HELP)
    .action(async (name: string, opts: { config?: string }) => {
      await withState(opts.config, async (state) => {
        const { enableUser } = await import("../identity/users/index.js");
        enableUser(state.store, name, Date.now, (e) =>
          state.record({ ...e, ...(e.subject !== undefined ? { user: e.subject } : {}) }),
        );
        io.out(`Enabled ${name}; they can sign in again with their keys.\n`);
      });
    });

  users
    .command("keys")
    .description("list a user's security keys and passkeys")
    .argument("<name>", "the user name")
    .option("--json", "one JSON array")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText("after", "\nExample:\n  cosmosgate users keys ada")
    .action(async (name: string, opts: { json?: boolean; config?: string }) => {
      await withState(opts.config, async (state) => {
        const { findUser } = await import("../identity/users/index.js");
        const user = findUser(state.store, name);
        const keys = state.store.listCredentials(user.id).map(describeKey);
        if (opts.json) {
          io.out(`${JSON.stringify(keys, null, 2)}\n`);
          return;
        }
        if (keys.length === 0) {
          io.out(`${name} has no keys yet (an unredeemed invite, or every key was removed).\n`);
          return;
        }
        io.out(
          table(
            ["CREDENTIAL ID", "NICKNAME", "TYPE", "CREATED", "LAST USED", "USES", "STATUS"],
            keys.map((k) => [
              k.id,
              k.nickname || "-",
              k.type,
              k.createdAt,
              k.lastUsedAt ?? "never",
              String(k.useCount),
              k.suspended ? `suspended ${k.suspended.at}: ${k.suspended.reason}` : "active",
            ]),
          ),
        );
      });
    });

  users
    .command("reenable-key")
    .description("re-enable a suspended key (suspended when its signature counter went backwards)")
    .argument("<credential-id>", "the key's credential ID, from `cosmosgate users keys NAME`")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText(
      "after",
      "\nA key is suspended when its signature counter goes backwards, a sign of a cloned authenticator.\n" +
        "Re-enable it only once you know why. Example:\n  cosmosgate users reenable-key 3q2-7wAAAA...",
    )
    .action(async (credentialId: string, opts: { config?: string }) => {
      await withState(opts.config, async (state) => {
        const credential = state.store.getCredential(credentialId);
        if (credential === undefined) {
          throw new CliError(
            `no key has the credential ID ${JSON.stringify(credentialId.slice(0, 200))}; list them with: cosmosgate users keys NAME`,
          );
        }
        const owner = state.store.getUserById(credential.userId)?.name ?? credential.userId;
        if (credential.suspendedAt === undefined) {
          io.out(`The key ${credentialId} of ${owner} is not suspended; nothing to do.\n`);
          return;
        }
        state.store.reenableCredential(credentialId);
        state.record({
          type: "credential.reenabled",
          user: owner,
          credential: credentialId,
          reason: `re-enabled (suspended ${new Date(credential.suspendedAt).toISOString()}: ${credential.suspendedReason ?? "no reason recorded"})`,
        });
        io.out(`Re-enabled the key ${credentialId} of ${owner}; it can sign in again.\n`);
      });
    });
}

/** Opens the state, runs `fn`, closes (writing audit events), and turns known errors into CliError. */
async function withState(
  configFlag: string | undefined,
  fn: (state: IdentityState) => Promise<void>,
): Promise<void> {
  const { openIdentityState } = await import("./identityState.js");
  const [{ UserError }, { StoreError }] = await Promise.all([
    import("../identity/users/errors.js"),
    import("../store/errors.js"),
  ]);
  let state: IdentityState;
  try {
    state = await openIdentityState(configFlag);
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(err.message);
    throw err;
  }
  try {
    await fn(state);
  } catch (err) {
    if (err instanceof UserError || err instanceof StoreError) throw new CliError(err.message);
    throw err;
  } finally {
    await state.close();
  }
}

function describeKey(k: CredentialRecord) {
  return {
    id: k.id,
    nickname: k.nickname,
    type: k.deviceBound ? "hardware-bound" : "synced passkey",
    aaguid: k.aaguid,
    attestation: k.fmt,
    backedUp: k.backedUp,
    transports: k.transports,
    createdAt: new Date(k.createdAt).toISOString(),
    lastUsedAt: k.lastUsedAt !== undefined ? new Date(k.lastUsedAt).toISOString() : null,
    useCount: k.useCount,
    suspended:
      k.suspendedAt !== undefined
        ? { at: new Date(k.suspendedAt).toISOString(), reason: k.suspendedReason ?? "" }
        : null,
  };
}

/** Left-aligned columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
