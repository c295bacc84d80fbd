import type { Command } from "commander";
import type { SigningKeyRecord } from "../store/ports.js";
import type { IdentityState } from "./identityState.js";
import { CliError, type Io } from "./io.js";
import { table } from "./users.js";

const CONFIG_HELP = "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)";

/** A signing key as `keys list` shows it. */
export interface KeyRow {
  kid: string;
  /** `next`: in the JWKS, not signing yet; `current`: signing; `retired`: in the JWKS until `leavesJwks`; `expired`: about to be removed. */
  state: "next" | "current" | "retired" | "expired";
  created: string;
  activates: string;
  retires: string;
  leavesJwks: string;
  encrypted: boolean;
}

/** `cosmosgate keys list|rotate`: the gateway's token-signing keys. */
export function registerKeys(program: Command, io: Io): void {
  const keys = program
    .command("keys")
    .description("list and rotate the gateway's token-signing keys")
    .addHelpText(
      "after",
      "\nThe gateway signs its access tokens (ES256) with a current key, publishes the next key in its JWKS\n" +
        "before it signs, and keeps retired keys published until every token they signed has expired.\n" +
        "Rotation is automatic every identity.tokens.rotateEvery; these commands may run while it runs.",
    );

  keys
    .command("list")
    .description("list the signing keys: kid, state, created, activates, retires, leaves the JWKS")
    .option("--json", "one JSON array")
    .option("-c, --config <file>", CONFIG_HELP)
    .action(async (opts: { json?: boolean; config?: string }) => {
      await withState(opts.config, async (state) => {
        const rows = keyRows(state.store.listSigningKeys(), Date.now());
        if (opts.json) {
          io.out(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        if (rows.length === 0) {
          io.out("No signing keys yet; the gateway creates them when it starts.\n");
          return;
        }
        io.out(formatKeys(rows));
      });
    });

  keys
    .command("rotate")
    .description("force a rotation: the next key starts signing, the current one retires")
    .option("-c, --config <file>", CONFIG_HELP)
    .addHelpText(
      "after",
      "\nA key signs only after it has been in the JWKS for identity.tokens.jwksCache. If the next key is\n" +
        "younger than that, the switch is scheduled for when it is old enough. The retired key stays in\n" +
        "the JWKS until the tokens it signed have expired. Audited.\n" +
        "Needs the key-encryption key when identity.tokens.keyEncryption is configured.\n" +
        "Example:\n  cosmosgate keys rotate && cosmosgate keys list",
    )
    .action(async (opts: { config?: string }) => {
      await withState(opts.config, async (state) => {
        const { createKeyring } = await import("../identity/tokens/keyring.js");
        const { loadKek } = await import("../identity/tokens/keyEncryption.js");
        const { resolveConfigPath } = await import("../config/load.js");
        const tokens = state.loaded.config.identity.tokens;
        const kekSource = tokens.keyEncryption;
        const kek = kekSource
          ? loadKek(
              "file" in kekSource
                ? { file: resolveConfigPath(state.loaded, kekSource.file) }
                : { env: kekSource.env },
            )
          : undefined;
        const keyring = createKeyring({
          store: state.store,
          clock: Date.now,
          rotateEveryMs: tokens.rotateEvery,
          tokenTtlMs: tokens.ttl,
          jwksCacheMs: tokens.jwksCache,
          skewMs: tokens.clockSkew,
          kek,
          events: (e) =>
            state.record({
              type: e.type,
              kid: e.kid,
              reason:
                e.type === "signing_key.ensure_failed" ? e.reason : `${e.reason} (cosmosgate keys rotate)`,
            }),
        });
        try {
          const r = await keyring.rotate();
          if (r.immediate) {
            io.out(
              `Rotated: ${r.kid} signs now; ${r.previousKid} retired (it stays in the JWKS until its tokens expire).\n`,
            );
          } else {
            io.out(
              `Rotation scheduled: ${r.kid} replaces ${r.previousKid} at ${new Date(r.activatesAt).toISOString()}, ` +
                "once it has been in the JWKS for identity.tokens.jwksCache.\n",
            );
          }
          io.out(formatKeys(keyRows(state.store.listSigningKeys(), Date.now())));
        } finally {
          keyring.stop();
        }
      });
    });
}

/**
 * The keys as `keys list` shows them at `now` (the same rule as the keyring's `list()`), oldest
 * activation first. Read from the store directly: listing needs no private key, so no KEK.
 *
 * @example keyRows(store.listSigningKeys(), Date.now())
 */
export function keyRows(records: SigningKeyRecord[], now: number): KeyRow[] {
  return [...records]
    .sort((a, b) => a.activatesAt - b.activatesAt)
    .map((r) => ({
      kid: r.kid,
      state:
        now < r.activatesAt
          ? "next"
          : now < r.retiresAt
            ? "current"
            : now < r.expiresAt
              ? "retired"
              : "expired",
      created: iso(r.createdAt),
      activates: iso(r.activatesAt),
      retires: iso(r.retiresAt),
      leavesJwks: iso(r.expiresAt),
      encrypted: r.encrypted,
    }));
}

function formatKeys(rows: KeyRow[]): string {
  return table(
    ["KID", "STATE", "CREATED", "ACTIVATES", "RETIRES", "LEAVES JWKS", "AT REST"],
    rows.map((r) => [
      r.kid,
      r.state,
      r.created,
      r.activates,
      r.retires,
      r.leavesJwks,
      r.encrypted ? "encrypted" : "plain",
    ]),
  );
}

async function withState(
  configFlag: string | undefined,
  fn: (state: IdentityState) => Promise<void>,
): Promise<void> {
  const { openIdentityState } = await import("./identityState.js");
  const [{ SigningKeyError }, { StoreError }] = await Promise.all([
    import("../identity/tokens/keyErrors.js"),
    import("../store/errors.js"),
  ]);
  let state: IdentityState | undefined;
  try {
    state = await openIdentityState(configFlag);
    await fn(state);
  } catch (err) {
    if (err instanceof SigningKeyError || err instanceof StoreError) throw new CliError(err.message);
    throw err;
  } finally {
    await state?.close();
  }
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}
