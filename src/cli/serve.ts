import type { Command } from "commander";
import { configPath, loadConfig } from "../config/load.js";
import type { Io } from "./io.js";

/** `cosmosgate serve`: runs the gateway until Ctrl-C. */
export function registerServe(program: Command, io: Io): void {
  program
    .command("serve")
    .description("run the gateway (data plane on HTTPS, control plane) with cosmosgate.yaml")
    .option("-c, --config <file>", "configuration file (default: $COSMOSGATE_CONFIG or ./cosmosgate.yaml)")
    .addHelpText(
      "after",
      "\nThe configuration is validated first; an invalid file stops with exit code 2 and names the line and key.\n" +
        "With no configuration file every default applies: the embedded store in stateDir, https://localhost:8081.",
    )
    .action(async (opts: { config?: string }) => {
      await runGateway(io, opts.config, false);
    });
}

/** Starts the gateway, prints where everything is, and waits for a stop signal. */
export async function runGateway(io: Io, configFlag: string | undefined, dev: boolean): Promise<void> {
  const loaded = await loadConfig(configPath(configFlag));
  // Imported here so that `--help` and the small commands start fast.
  const { default: pino } = await import("pino");
  const { startGateway } = await import("../server/gateway.js");
  const log = pino({ level: loaded.config.log.level, base: { service: "cosmosgate" } }, pino.destination(2));
  const gw = await startGateway(loaded, { log, devIssuer: dev });
  const lines = [
    `cosmosgate ${dev ? "(development mode) " : ""}is running`,
    `  data plane     ${loaded.config.dataPlane.publicUrl}  (listening on ${gw.dataPlaneUrl})`,
    `  control plane  ${loaded.config.controlPlane.publicUrl}  (listening on ${gw.controlPlaneUrl})`,
    `  web console    ${loaded.config.controlPlane.publicUrl.replace(/\/$/, "")}/console/`,
    `  upstream       ${gw.upstreamType === "embedded" ? `embedded store, data in ${gw.storeFile}` : gw.upstreamOrigin}`,
    `  policy         ${gw.policyFile}${gw.policyMissing ? "  (missing: everything is denied)" : ""}  (reloads on change)`,
    `  audit          ${gw.auditFile}`,
    `  config         ${loaded.file ?? "(none: defaults)"}`,
  ];
  if (gw.caFile) {
    lines.push(
      "",
      `Clients must trust the local CA ${gw.caFile}:`,
      `  export NODE_EXTRA_CA_CERTS=${gw.caFile}`,
    );
  }
  if (gw.firstAdminUrl) {
    lines.push(
      "",
      "No one is enrolled yet. Enroll the first administrator's passkey or security key (one-time link, 24 h):",
      `  ${gw.firstAdminUrl}`,
      "Then sign in from the command line and use the SDK with GatewayCredential:",
      `  npx cosmosgate login --gateway ${loaded.config.controlPlane.publicUrl}`,
      "  npx tsx examples/quickstart.ts",
    );
  }
  if (dev) {
    lines.push(
      "",
      "Development mode also trusts tokens from `cosmosgate dev-token` (no passkey needed, for scripts and tests):",
      "  export COSMOSGATE_TOKEN=$(npx cosmosgate dev-token --sub you --group cosmos-admins)",
    );
  }
  lines.push("", "Press Ctrl-C to stop.", "");
  io.out(lines.join("\n"));
  const signal = await io.waitForStop();
  io.out(`\nstopping (${signal})...\n`);
  await gw.close();
}
