import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { CliError, type Io } from "./io.js";

interface DevstoreOptions {
  port: string;
  host: string;
  file: string;
  stateDir: string;
  key?: string;
  udfs: boolean;
}

/** `cosmosgate devstore`: the embedded Cosmos DB-compatible store on its own, like the emulator. */
export function registerDevstore(program: Command, io: Io): void {
  program
    .command("devstore")
    .description("run the embedded Cosmos DB-compatible store alone (HTTPS, master key), like the emulator")
    .option("-p, --port <port>", "port to listen on", "8082")
    .option("--host <host>", "address to listen on (keep it loopback unless you mean it)", "127.0.0.1")
    .option("--state-dir <dir>", "directory for the dev CA (tls/)", "./.cosmosgate")
    .option("--file <file>", "SQLite file that holds the data (default: <state-dir>/devstore.db)")
    .option(
      "--key <base64>",
      "master key clients must sign with (default: the Cosmos DB emulator's well-known key)",
    )
    .option(
      "--no-udfs",
      "refuse queries that call user-defined functions instead of running their JavaScript",
    )
    .addHelpText(
      "after",
      "\nPoint any Cosmos DB SDK at it with the printed endpoint and key, e.g.\n" +
        '  new CosmosClient({ endpoint: "https://localhost:8082", key: "<printed key>" })\n' +
        "after trusting the dev CA (export NODE_EXTRA_CA_CERTS=<state-dir>/tls/ca.pem).\n" +
        "Data is kept in the SQLite file and survives restarts. For identity, policy and audit, run the\n" +
        "gateway instead (`cosmosgate dev`), which starts this store in-process.",
    )
    .action(async (opts: DevstoreOptions) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new CliError(`--port ${opts.port}: expected a port number between 0 and 65535`, 2);
      }
      const { EMULATOR_KEY, startDevStore } = await import("../devstore/server.js");
      const key = opts.key ?? EMULATOR_KEY;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, "base64").length < 16) {
        throw new CliError("--key: expected a base64 master key of at least 16 bytes", 2);
      }
      const stateDir = resolve(opts.stateDir);
      const file = resolve(opts.file ?? `${stateDir}/devstore.db`);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const { ensureDevTls } = await import("../server/devCa.js");
      const tls = await ensureDevTls(stateDir);
      const { default: pino } = await import("pino");
      const logger = pino({ level: "info", base: { service: "cosmosgate-devstore" } }, pino.destination(2));
      const store = await startDevStore({
        file,
        host: opts.host,
        port,
        tls: { cert: tls.cert, key: tls.key },
        masterKey: key,
        udfs: opts.udfs,
        logger,
      });
      io.out(
        [
          "cosmosgate devstore is running",
          `  endpoint  ${store.origin}`,
          `  key       ${opts.key ? "(the key given with --key)" : `${key}  (the emulator's well-known key)`}`,
          `  data      ${file}`,
          "",
          `Clients must trust the local CA: export NODE_EXTRA_CA_CERTS=${tls.files.caCert}`,
          "",
          "Press Ctrl-C to stop.",
          "",
        ].join("\n"),
      );
      const signal = await io.waitForStop();
      io.out(`\nstopping (${signal})...\n`);
      await store.close();
    });
}
