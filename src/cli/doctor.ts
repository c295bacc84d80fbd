import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { JSONWebKeySet, JWK } from "jose";
import { ConfigError } from "../config/errors.js";
import { configPath, type LoadedConfig, loadConfig, resolveConfigPath } from "../config/load.js";
import type {
  CheckStatus,
  DoctorCheck,
  IssuerDiagnosis,
  TokenDiagnosis,
} from "../identity/federation/doctor.js";
import { parseAuthorization } from "../identity/tokens/authorization.js";
import type { IssuerConfig } from "../identity/tokens/issuers.js";
import type { Keyring } from "../identity/tokens/keyring.js";
import type { Principal } from "../identity/types.js";
import type { SigningKeyRecord } from "../store/ports.js";
import type { IdentityState } from "./identityState.js";
import { CliError, type Io } from "./io.js";

const CONFIG_HELP = "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)";

/** What the doctor commands may be given instead of the real process (tests). */
export interface DoctorDeps {
  /** Reads all of stdin. Default: the process's stdin. */
  readStdin?: () => Promise<string>;
  /** Whether stdin is a terminal (then a missing token is a usage error, not a read). Default: the process's. */
  stdinIsTTY?: boolean;
  clock?: () => number;
  fetch?: typeof fetch;
}

/** `cosmosgate doctor token` and `cosmosgate doctor issuer`. */
export function registerDoctor(program: Command, io: Io): void {
  const doctor = program
    .command("doctor")
    .description("explain why a token is accepted or refused, and check that issuers are reachable");

  doctor
    .command("token")
    .description("walk every check the gateway makes on a token and explain each failure with its fix")
    .argument(
      "[token...]",
      'the access token (a JWT, "Bearer JWT" or "type=aad&ver=1.0&sig=JWT"); - or nothing: read stdin',
    )
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the diagnosis as JSON (checks, causes, principal)")
    .addHelpText(
      "after",
      "\nThe token is decoded without trusting it, then checked as the gateway checks it, against the issuers of\n" +
        "cosmosgate.yaml (and the gateway's own, when its state directory exists): issuer, algorithm, key (kid) in the\n" +
        "issuer's current key set, signature, exp/nbf/iat with the clock skew, audience, typ, groups overage, every\n" +
        "requirement, then the principal and its policy roles. Known causes are named, each with its fix:\n" +
        "graph-token, entra-version-mismatch, hmac-algorithm, unsigned-token, wrong-audience, clock-skew, expired,\n" +
        "unknown-issuer, unknown-kid, requirement-unmet, groups-overage, issuer-unreachable.\n" +
        "Only the token's first 12 characters are ever printed.\n" +
        "Exit code: 0 the gateway accepts the token, 1 it refuses it, 2 no token or a bad configuration.\n" +
        "Examples:\n" +
        "  cosmosgate doctor token eyJ0eXAiOiJKV1Qi...\n" +
        "  az account get-access-token --scope api://CLIENT-ID/.default --query accessToken -o tsv | cosmosgate doctor token\n" +
        "  cosmosgate token | cosmosgate doctor token - --json\n" +
        '  cosmosgate doctor token "Bearer eyJ0eXAiOiJKV1Qi..." --config /etc/cosmosgate/cosmosgate.yaml',
    )
    .action(async (words: string[], opts: { config?: string; json?: boolean }) => {
      await runDoctorToken(words, opts, io);
    });

  doctor
    .command("issuer")
    .description("check an issuer's discovery document and key set (JWKS) are reachable and sound")
    .argument("[name]", "the entry's name or issuer URL (default: every configured issuer)")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .option("--timeout <ms>", "time allowed for each request (default: the entry's keys.timeout, else 5000)")
    .addHelpText(
      "after",
      "\nFetches the discovery document (URL, HTTP result, the issuer it names, jwks_uri), then the key set (HTTP\n" +
        "result, keys with kids and algorithms), then loads the keys as the gateway does, with the time each took.\n" +
        "Exit code: 0 reachable, 1 a problem (unreachable, wrong issuer, no keys), 2 unknown name or bad configuration.\n" +
        "Examples:\n" +
        '  cosmosgate doctor issuer "Entra ID (72f988bf-86f1-41af-91ab-2d7cd011db47)"\n' +
        "  cosmosgate doctor issuer https://token.actions.githubusercontent.com --json\n" +
        "  cosmosgate doctor issuer          # every configured issuer",
    )
    .action(async (name: string | undefined, opts: { config?: string; json?: boolean; timeout?: string }) => {
      await runDoctorIssuer(name, opts, io);
    });
}

/**
 * `cosmosgate doctor token`: diagnoses a token against the configured issuers and policy.
 * Resolves when the gateway would accept it; throws {@link CliError} (exit 1) when it would refuse it.
 *
 * @example await runDoctorToken(["eyJ…"], { json: true }, io)
 */
export async function runDoctorToken(
  words: readonly string[] | undefined,
  opts: { config?: string; json?: boolean },
  io: Io,
  deps: DoctorDeps = {},
): Promise<void> {
  const token = extractToken(await tokenInput(words ?? [], deps));
  const view = await openGatewayView(opts.config, deps.clock ?? Date.now);
  try {
    const { diagnoseToken } = await import("../identity/federation/doctor.js");
    let diagnosis: TokenDiagnosis;
    try {
      diagnosis = await diagnoseToken(token, {
        issuers: view.issuers,
        clock: deps.clock,
        clockSkewSeconds: view.skewSeconds,
        ...(view.roles !== undefined ? { roles: view.roles } : {}),
      });
    } catch (error) {
      if (error instanceof TypeError) throw new CliError(error.message, 2);
      throw error;
    }
    if (opts.json) {
      io.out(`${JSON.stringify({ ...diagnosis, notes: view.notes }, null, 2)}\n`);
    } else {
      io.out(formatTokenDiagnosis(diagnosis, view.notes));
    }
    if (!diagnosis.ok) {
      throw new CliError(
        `the gateway would refuse this token (${diagnosis.refusal?.code ?? "refused"}; causes: ${diagnosis.causes.join(", ") || "see above"})`,
        1,
      );
    }
  } finally {
    await view.close();
  }
}

/**
 * `cosmosgate doctor issuer [NAME]`: discovery and JWKS reachability of configured issuers.
 *
 * @example await runDoctorIssuer("Okta (https://acme.okta.com/oauth2/default)", {}, io)
 */
export async function runDoctorIssuer(
  name: string | undefined,
  opts: { config?: string; json?: boolean; timeout?: string },
  io: Io,
  deps: DoctorDeps = {},
): Promise<void> {
  let timeoutMs: number | undefined;
  if (opts.timeout !== undefined) {
    timeoutMs = Number(opts.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new CliError(
        `--timeout must be a positive number of milliseconds, not ${JSON.stringify(opts.timeout)}`,
        2,
      );
    }
  }
  const view = await openGatewayView(opts.config, deps.clock ?? Date.now);
  try {
    const { resolveIssuerConfig } = await import("../identity/tokens/issuers.js");
    const { diagnoseIssuer } = await import("../identity/federation/doctor.js");
    let entries: ReturnType<typeof resolveIssuerConfig>[];
    try {
      entries = view.issuers.map((i) => resolveIssuerConfig(i));
    } catch (error) {
      if (error instanceof TypeError) throw new CliError(error.message, 2);
      throw error;
    }
    const chosen = name === undefined ? entries : selectEntries(entries, name);
    if (chosen.length === 0) {
      const names = entries
        .map((e) => `  ${e.name}${e.name !== e.issuer ? `  (${e.issuer})` : ""}`)
        .join("\n");
      throw new CliError(
        entries.length === 0
          ? `no issuer is configured (identity.issuers in ${view.loaded.file ?? "cosmosgate.yaml"}), so there is nothing named ${JSON.stringify(name)}`
          : `no configured issuer is named ${JSON.stringify(name)}; give an entry's name or issuer URL:\n${names}`,
        2,
      );
    }
    const results: IssuerDiagnosis[] = [];
    for (const entry of chosen) {
      results.push(
        await diagnoseIssuer(entry, {
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
        }),
      );
    }
    const ok = results.every((r) => r.ok);
    if (opts.json) {
      io.out(`${JSON.stringify({ ok, issuers: results, notes: view.notes }, null, 2)}\n`);
    } else {
      io.out(results.map(formatIssuerDiagnosis).join("\n"));
      for (const note of view.notes) io.out(`note: ${note}\n`);
    }
    if (!ok) {
      const bad = results.filter((r) => !r.ok).map((r) => JSON.stringify(r.name));
      throw new CliError(
        `issuer ${bad.join(", ")}: its keys cannot be fetched or are unusable (see above)`,
        1,
      );
    }
  } finally {
    await view.close();
  }
}

function selectEntries<T extends { name: string; issuer: string }>(entries: readonly T[], name: string): T[] {
  const exact = entries.filter((e) => e.name === name || e.issuer === name);
  if (exact.length > 0) return exact;
  const loose = (s: string) => s.toLowerCase().replace(/\/+$/, "");
  return entries.filter((e) => loose(e.name) === loose(name) || loose(e.issuer) === loose(name));
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/** Largest stdin read, in bytes: far above any token, small enough to refuse a file piped by mistake. */
const MAX_STDIN = 1 << 20;

async function tokenInput(words: readonly string[], deps: DoctorDeps): Promise<string> {
  const fromStdin = words.length === 0 || (words.length === 1 && words[0] === "-");
  if (!fromStdin) return words.join(" ");
  const isTTY = deps.stdinIsTTY ?? process.stdin.isTTY === true;
  if (words.length === 0 && isTTY) {
    throw new CliError(
      "give the token to check: cosmosgate doctor token JWT, or pipe it: cosmosgate token | cosmosgate doctor token -",
      2,
    );
  }
  const text = await (deps.readStdin ?? readProcessStdin)();
  if (text.trim().length === 0) {
    throw new CliError(
      "no token on stdin: pipe the access token in (e.g. az account get-access-token --query accessToken -o tsv | cosmosgate doctor token -)",
      2,
    );
  }
  return text;
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_STDIN) {
      throw new CliError(`stdin holds more than ${MAX_STDIN} bytes; pipe only the access token`, 2);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The JWT in what a person pasted: a bare token, `Bearer JWT`, the Cosmos DB form
 * `type=aad&ver=1.0&sig=JWT` (raw or URL-encoded), optionally after `Authorization:` and inside quotes.
 * Throws {@link CliError} (exit 1) for forms the gateway refuses outright (account keys, resource tokens).
 *
 * @example extractToken("Authorization: Bearer eyJ…") // "eyJ…"
 */
export function extractToken(input: string): string {
  let text = input.trim();
  if (text.length >= 2 && /^(["']).*\1$/s.test(text)) text = text.slice(1, -1).trim();
  text = text.replace(/^authorization\s*:\s*/i, "");
  if (/^(?:bearer\s|type=|type%3d|ver=|ver%3d|sig=|sig%3d)/i.test(text)) {
    return parseHeader(text);
  }
  return text;
}

function parseHeader(text: string): string {
  try {
    return parseAuthorization(text);
  } catch (error) {
    throw new CliError(`${(error as Error).message} (the gateway refuses this Authorization header)`, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// The gateway's view: issuers, clock skew, policy
// ---------------------------------------------------------------------------------------------

interface GatewayView {
  loaded: LoadedConfig;
  issuers: IssuerConfig[];
  skewSeconds: number;
  roles?: (principal: Principal) => readonly string[];
  /** What could not be included, for the person. */
  notes: string[];
  close(): Promise<void>;
}

/**
 * The issuers the gateway of this configuration trusts, in its order: its own (with the public keys
 * of its state directory; skipped with a note when there is no state yet), then `identity.issuers`
 * expanded; and its policy's roles.
 */
async function openGatewayView(configFlag: string | undefined, clock: () => number): Promise<GatewayView> {
  const notes: string[] = [];
  const { openIdentityState } = await import("./identityState.js");
  let state: IdentityState | undefined;
  try {
    state = await openIdentityState(configFlag);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    notes.push(`the gateway's own issuer is not checked: ${(error as Error).message}`);
  }
  try {
    const loaded = state?.loaded ?? (await loadConfig(configPath(configFlag)));
    const { config } = loaded;
    const issuers: IssuerConfig[] = [];
    if (state !== undefined) {
      const { ownIssuerConfig } = await import("../identity/tokens/ownIssuer.js");
      issuers.push(
        ownIssuerConfig({
          keyring: publicKeyring(state.store.listSigningKeys.bind(state.store), clock),
          issuer: config.controlPlane.publicUrl.replace(/\/$/, ""),
          audience: config.dataPlane.publicUrl,
        }),
      );
    }
    const { expandIssuerEntries } = await import("../identity/federation/presets.js");
    try {
      issuers.push(...expandIssuerEntries(config.identity.issuers, (p) => resolveConfigPath(loaded, p)));
    } catch (error) {
      if (error instanceof TypeError) throw new CliError(error.message, 2);
      throw error;
    }
    const view: GatewayView = {
      loaded,
      issuers,
      skewSeconds: Math.round(config.identity.tokens.clockSkew / 1000),
      notes,
      close: async () => {
        await state?.close();
      },
    };
    const roles = await policyRoles(resolveConfigPath(loaded, config.policy), notes);
    if (roles !== undefined) view.roles = roles;
    return view;
  } catch (error) {
    await state?.close();
    throw error;
  }
}

/**
 * The public half of the gateway's keyring, read from the store: the keys published in its JWKS
 * (as the keyring's `jwks()` lists them), without decrypting any private key — so no KEK is needed.
 * Returns the same object while the keys are unchanged, as the verifier's local key source expects.
 */
function publicKeyring(
  list: () => SigningKeyRecord[],
  clock: () => number,
): Pick<Keyring, "jwks" | "refresh"> {
  let rows = list();
  let state = "";
  let published: JSONWebKeySet = { keys: [] };
  return {
    jwks() {
      const now = clock();
      const keys: JWK[] = [];
      for (const row of rows) {
        if (row.expiresAt <= now) continue;
        const pub = JSON.parse(row.publicJwk) as JWK;
        keys.push({ kty: "EC", crv: "P-256", x: pub.x, y: pub.y, kid: row.kid, alg: "ES256", use: "sig" });
      }
      const next = JSON.stringify(keys);
      if (next !== state) {
        state = next;
        published = { keys };
      }
      return published;
    },
    async refresh() {
      rows = list();
    },
  };
}

async function policyRoles(
  file: string,
  notes: string[],
): Promise<((principal: Principal) => readonly string[]) | undefined> {
  const [{ compilePolicy, parsePolicy }, { resolveGrants }] = await Promise.all([
    import("../policy/index.js"),
    import("../policy/resolveGrants.js"),
  ]);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      notes.push(`the policy file ${file} does not exist: the gateway denies every request`);
      text = "";
    } else {
      notes.push(`the policy file ${file} cannot be read (${(error as Error).message}): roles are not shown`);
      return undefined;
    }
  }
  try {
    const policy = compilePolicy(parsePolicy(text, file));
    return (principal) => resolveGrants(policy, principal).roles.map((r) => r.name);
  } catch (error) {
    notes.push(
      `the policy file ${file} is invalid, so roles are not shown: ${(error as Error).message.split("\n")[0]}`,
    );
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const MARKS: Record<CheckStatus, string> = { pass: "✓", fail: "✗", warn: "!", skip: "-" };

function checkLines(checks: readonly DoctorCheck[]): string {
  const width = Math.min(30, Math.max(...checks.map((c) => c.title.length)));
  return checks.map((c) => `  ${MARKS[c.status]} ${c.title.padEnd(width)}  ${c.detail}\n`).join("");
}

/**
 * The human form of a {@link TokenDiagnosis}: the token (its first 12 characters only), one line per
 * check, the causes with their fixes, the principal, and the verdict.
 *
 * @example io.out(formatTokenDiagnosis(await diagnoseToken(jwt, { issuers }), []))
 */
export function formatTokenDiagnosis(d: TokenDiagnosis, notes: readonly string[] = []): string {
  let out = `Token ${d.token.prefix}… (${d.token.length} characters)${d.issuer !== undefined ? `, issuer ${d.issuer}` : ""}\n\n`;
  out += checkLines(d.checks);
  if (d.findings.length > 0) out += "\n";
  for (const f of d.findings) {
    out += `Cause: ${f.cause} — ${f.summary}\nFix:   ${f.fix}\n`;
  }
  for (const note of notes) out += `\nnote: ${note}`;
  if (notes.length > 0) out += "\n";
  if (d.ok && d.principal !== undefined) {
    const p = d.principal;
    out += `\nSubject  ${p.sub} (${p.kind}${p.name !== undefined ? `, ${p.name}` : ""})\n`;
    out += `Groups   ${p.groups.length > 0 ? p.groups.join(", ") : "(none)"}\n`;
    if (p.roles !== undefined)
      out += `Roles    ${p.roles.length > 0 ? p.roles.join(", ") : "(none: every request is denied)"}\n`;
    out += `Issuer   ${p.issuer}${p.tokenIssuer !== undefined ? ` (token issued by ${p.tokenIssuer})` : ""}\n`;
  }
  out += d.ok
    ? `\nResult: ACCEPTED${d.entry !== undefined ? ` (issuer entry ${JSON.stringify(d.entry)})` : ""}\n`
    : `\nResult: REFUSED — the gateway answers 401 ${d.refusal?.code ?? ""}\n`;
  return out;
}

/**
 * The human form of an {@link IssuerDiagnosis}.
 *
 * @example io.out(formatIssuerDiagnosis(await diagnoseIssuer(entry)))
 */
export function formatIssuerDiagnosis(d: IssuerDiagnosis): string {
  let out = `Issuer ${JSON.stringify(d.name)} (${d.flavor})\n  iss ${d.issuer}\n\n`;
  out += checkLines(d.checks);
  const fixes = d.checks.filter((c) => c.fix !== undefined && (c.status === "fail" || c.status === "warn"));
  if (fixes.length > 0) out += "\n";
  for (const c of fixes) out += `Cause: ${c.cause ?? "problem"} — ${c.title}\nFix:   ${c.fix}\n`;
  out += `\nResult: ${d.ok ? "REACHABLE" : "UNREACHABLE or unusable"} (${d.keys.length} key(s), ${d.durationMs} ms)\n`;
  return out;
}
