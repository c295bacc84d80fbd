import type { Command } from "commander";
import type { GatewayCredentialOptions, StoredSession } from "../client/index.js";
import { CliError, type Io } from "./io.js";

/** What `token`, `whoami` and `logout` may be given instead of the real process (tests). */
export interface SessionCommandDeps {
  env?: Record<string, string | undefined>;
  file?: string;
  fetch?: typeof fetch;
  clock?: () => number;
}

const GATEWAY_HELP =
  "the gateway's control-plane URL (default: $COSMOSGATE_GATEWAY, else the only signed-in gateway)";

/** `cosmosgate token`, `cosmosgate whoami` and `cosmosgate logout`. */
export function registerToken(program: Command, io: Io): void {
  program
    .command("token")
    .description("print a fresh access token for the signed-in gateway (refreshed when needed)")
    .option("--gateway <url>", GATEWAY_HELP)
    .addHelpText(
      "after",
      "\nPrints only the token on stdout, for scripts:\n" +
        "  export T=$(cosmosgate token)\n" +
        '  curl -H "Authorization: type=aad&ver=1.0&sig=$T" ...\n' +
        "Refreshes the token when less than two minutes of it remain. Sign in first: cosmosgate login",
    )
    .action(async (opts: { gateway?: string }) => {
      await runToken(opts, io);
    });

  program
    .command("whoami")
    .description("show who the stored session signs in as, with which key, and until when")
    .option("--gateway <url>", GATEWAY_HELP)
    .option("--json", "print the session's claims as JSON")
    .addHelpText(
      "after",
      "\nReads the stored access token without verifying it and without contacting the gateway.\n" +
        "Example:\n  cosmosgate whoami --gateway https://cosmosgate.example.com",
    )
    .action(async (opts: { gateway?: string; json?: boolean }) => {
      await runWhoami(opts, io);
    });

  program
    .command("logout")
    .description("revoke the stored session at the gateway and delete it from this machine")
    .option("--gateway <url>", GATEWAY_HELP)
    .option("--all", "sign out of every gateway")
    .addHelpText(
      "after",
      "\nRevocation takes effect at the gateway's next request, even for access tokens already issued.\n" +
        "Examples:\n  cosmosgate logout\n  cosmosgate logout --all",
    )
    .action(async (opts: { gateway?: string; all?: boolean }) => {
      await runLogout(opts, io);
    });
}

/**
 * Prints a fresh access token (and nothing else) on stdout.
 *
 * @example await runToken({ gateway: "http://localhost:8080" }, io)
 */
export async function runToken(
  opts: { gateway?: string },
  io: Io,
  deps: SessionCommandDeps = {},
): Promise<void> {
  const { GatewayCredential } = await import("../client/index.js");
  await clientErrors(async () => {
    const token = await new GatewayCredential(credentialOptions(opts, deps)).getToken(
      "https://cosmos.azure.com/.default",
    );
    io.out(`${token.token}\n`);
  });
}

/**
 * Prints the stored session: gateway, data plane, subject, groups, amr, credential, session, times.
 *
 * @example await runWhoami({}, io)
 */
export async function runWhoami(
  opts: { gateway?: string; json?: boolean },
  io: Io,
  deps: SessionCommandDeps = {},
): Promise<void> {
  const { GatewayCredential, decodeClaims } = await import("../client/index.js");
  await clientErrors(async () => {
    const session = await new GatewayCredential(credentialOptions(opts, deps)).session();
    const claims = decodeClaims(session.accessToken) ?? {};
    const now = (deps.clock ?? Date.now)();
    const info = {
      gateway: session.gateway,
      dataPlane: session.dataPlane ?? str(claims.aud),
      subject: str(claims.sub),
      groups: strings(claims.groups),
      amr: strings(claims.amr),
      credential: str(claims.cred),
      session: str(claims.sid),
      issuer: str(claims.iss),
      authTime:
        typeof claims.auth_time === "number" ? new Date(claims.auth_time * 1000).toISOString() : undefined,
      expiresAt: new Date(session.expiresAt).toISOString(),
      expired: session.expiresAt <= now,
      verified: false,
    };
    if (opts.json) {
      io.out(`${JSON.stringify(info, null, 2)}\n`);
      return;
    }
    const left = session.expiresAt - now;
    const rows: [string, string][] = [
      ["gateway", info.gateway],
      ["data plane", info.dataPlane ?? "(unknown)"],
      ["subject", info.subject ?? "(none)"],
      ["groups", info.groups.length > 0 ? info.groups.join(", ") : "(none)"],
      ["amr", info.amr.length > 0 ? `${info.amr.join(", ")}${describeAmr(info.amr)}` : "(none)"],
      ["credential", info.credential ?? "(none)"],
      ["session", info.session ?? "(none)"],
      ["signed in", info.authTime ?? "(unknown)"],
      [
        "token expires",
        `${info.expiresAt} (${left > 0 ? `in ${human(left)}` : `${human(-left)} ago; \`cosmosgate token\` refreshes it`})`,
      ],
      ["issuer", info.issuer ?? "(none)"],
    ];
    for (const [k, v] of rows) io.out(`${k.padEnd(14)}${v}\n`);
    io.out(
      "(decoded from the stored access token without verifying its signature; the gateway verifies every token it receives)\n",
    );
  });
}

/**
 * Deletes the stored session(s) and revokes their refresh tokens at the gateway (best effort: a
 * failed revocation is reported on stderr, and the local copy is deleted anyway).
 *
 * @example await runLogout({ all: true }, io)
 */
export async function runLogout(
  opts: { gateway?: string; all?: boolean },
  io: Io,
  deps: SessionCommandDeps = {},
): Promise<void> {
  const client = await import("../client/index.js");
  await clientErrors(async () => {
    const credential = new client.GatewayCredential(credentialOptions(opts, deps));
    const file = credential.file;
    let removed: StoredSession[] = [];
    if (opts.all) {
      await client.updateCredentials(file, (content) => {
        removed = Object.values(content.gateways);
        content.gateways = {};
        return content;
      });
      if (removed.length === 0) {
        io.out("Not signed in to any gateway; nothing to do.\n");
        return;
      }
    } else {
      const gateway = (await credential.session()).gateway; // throws when not signed in / ambiguous
      await client.updateCredentials(file, (content) => {
        // Under the lock: the refresh token as it is now (a concurrent refresh may have rotated it).
        const current = content.gateways[gateway];
        if (current !== undefined) removed = [current];
        delete content.gateways[gateway];
        return content;
      });
    }
    for (const session of removed) {
      let outcome: string;
      if (session.revocationEndpoint === undefined) {
        outcome = "the gateway offers no revocation endpoint; the session ends at its maximum age";
        io.err(`warning: ${session.gateway}: ${outcome}\n`);
      } else {
        try {
          await client.revokeToken(session.revocationEndpoint, session.refreshToken, {
            ...(deps.fetch ? { fetch: deps.fetch } : {}),
            timeoutMs: 10_000,
          });
          outcome = "session revoked";
        } catch (err) {
          outcome = "revocation FAILED";
          io.err(
            `warning: could not revoke the session at ${session.gateway}: ${(err as Error).message}. ` +
              "It stays valid on the gateway until it expires (identity.sessions.maxAge) or an administrator disables the user.\n",
          );
        }
      }
      io.out(`Signed out of ${session.gateway} (${outcome}; removed from ${file})\n`);
    }
  });
}

function credentialOptions(opts: { gateway?: string }, deps: SessionCommandDeps): GatewayCredentialOptions {
  return {
    ...(opts.gateway !== undefined ? { gateway: opts.gateway } : {}),
    ...(deps.env !== undefined ? { env: deps.env } : {}),
    ...(deps.file !== undefined ? { file: deps.file } : {}),
    ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
    ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
  };
}

/** Maps client errors to CliError (exit 1) with their message. */
async function clientErrors(fn: () => Promise<void>): Promise<void> {
  const { GatewayCredentialError } = await import("../client/errors.js");
  try {
    await fn();
  } catch (err) {
    if (err instanceof GatewayCredentialError) throw new CliError(err.message, 1);
    throw err;
  }
}

function describeAmr(amr: string[]): string {
  if (amr.includes("hwk")) return " (a device-bound hardware key)";
  if (amr.includes("swk")) return " (a synced passkey)";
  return "";
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : Array.isArray(v) && typeof v[0] === "string" ? v[0] : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function human(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  return `${Math.round(m / 60)} h`;
}
