import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { createServer as createNetServer } from "node:net";
import { createHttpServer } from "@vercel/cosmosdb-server";

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** `@vercel/cosmosdb-server` on loopback, recording every request it receives. */
export async function startRecordingUpstream(): Promise<{
  origin: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}> {
  const server: Server = createHttpServer({ keepAlive: true } as never);
  const original = server.listeners("request") as ((...a: unknown[]) => void)[];
  server.removeAllListeners("request");
  const seen: SeenRequest[] = [];
  server.on("request", (req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    for (const l of original) l(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP server that accepts connections and never answers: an upstream that hangs. */
export async function startHangingUpstream(): Promise<{ origin: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A free loopback port (bound then released). */
export async function freePort(): Promise<number> {
  // Not listen(0): the OS hands out ports from its ephemeral range (32768-60999 on Linux), where
  // every other listen(0) and outgoing connection of the parallel test workers takes ports too, so
  // a port found free here could be gone before the gateway binds it. Each worker instead walks its
  // own slice of 20000-29999 (below that range) and returns the next port it can bind.
  for (let tries = 0; tries < PORTS_PER_WORKER; tries++) {
    const port = PORT_BASE + (nextPort++ % PORTS_PER_WORKER);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE}-${PORT_BASE + PORTS_PER_WORKER - 1}`);
}

const PORTS_PER_WORKER = 200;
const WORKER = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? process.pid);
const PORT_BASE = 20_000 + (WORKER % 50) * PORTS_PER_WORKER;
let nextPort = process.pid % PORTS_PER_WORKER; // a restarted worker does not reuse the same ports at once

function canListen(port: number): Promise<boolean> {
  const s = createNetServer();
  return new Promise((resolve) => {
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}
