import { spawn } from "node:child_process";

const WORKER = new URL("./loadWorker.cjs", import.meta.url).pathname;

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/**
 * Drives `url` with autocannon in a separate process (so the load generator does not share the
 * proxy's event loop) and returns requests per second and latency percentiles in ms.
 */
export function load(
  url: string,
  headers: Record<string, string>,
  opts: { seconds: number; connections: number; ca?: string },
): Promise<LoadResult> {
  const args = [
    WORKER,
    JSON.stringify({ url, headers, connections: opts.connections, seconds: opts.seconds }),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...(opts.ca ? { NODE_EXTRA_CA_CERTS: opts.ca } : {}) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("close", (code) => {
      if (code !== 0 || !out.trim())
        return reject(new Error(`autocannon failed (${code}) on ${url}: ${err}`));
      const r = JSON.parse(out);
      resolve({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
      });
    });
  });
}
