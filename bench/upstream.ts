// A child process running @vercel/cosmosdb-server on loopback, so the upstream does not share the
// event loop (or the core) of the proxy under test. Prints its port on stdout.
import type { AddressInfo } from "node:net";
import { createHttpServer } from "@vercel/cosmosdb-server";

const server = createHttpServer({ keepAlive: true } as never);
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
