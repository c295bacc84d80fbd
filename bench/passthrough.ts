import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

/**
 * The baseline: a bare HTTPS pass-through proxy with the same TLS, the same undici pool and the
 * same buffering as cosmosgate, but no authentication, policy or audit.
 */
export async function startPassthrough(
  tls: { cert: string; key: string },
  upstream: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: 64, keepAliveTimeout: 30_000 });
  const server: Server = createServer(
    { cert: tls.cert, key: tls.key, keepAliveTimeout: 65_000 },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        try {
          const headers = { ...req.headers };
          delete headers.host;
          delete headers.connection;
          delete headers["content-length"];
          const up = await pool.request({
            method: req.method as "GET",
            path: req.url ?? "/",
            headers: headers as Record<string, string>,
            body: chunks.length ? Buffer.concat(chunks) : undefined,
          });
          const body = Buffer.from(await up.body.arrayBuffer());
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(up.headers)) {
            if (v !== undefined && k !== "connection" && k !== "transfer-encoding" && k !== "keep-alive")
              out[k] = v;
          }
          out["content-length"] = String(body.length);
          res.writeHead(up.statusCode, out);
          res.end(body);
        } catch {
          res.writeHead(503);
          res.end();
        }
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await pool.close();
    },
  };
}
