import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHttpServer } from "@vercel/cosmosdb-server";

/** A running in-process Cosmos DB-compatible server on loopback. */
export interface EmbeddedUpstream {
  /** Plain-HTTP origin on loopback, e.g. http://127.0.0.1:53211 */
  origin: string;
  close(): Promise<void>;
}

/**
 * Starts `@vercel/cosmosdb-server` in-process on an ephemeral loopback port. It keeps every
 * database in memory only: data is gone when the process stops. It checks no credentials, so it
 * listens on 127.0.0.1 and is reached only through the gateway.
 *
 * @example const up = await startVercelUpstream(); // forward to up.origin
 */
export async function startVercelUpstream(): Promise<EmbeddedUpstream> {
  const server: Server = createHttpServer({ keepAlive: true } as never);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
