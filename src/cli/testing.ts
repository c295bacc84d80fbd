import type { Io } from "./io.js";

/** An Io that records what a command prints, for tests. */
export function captureIo() {
  const io = {
    stdout: "",
    stderr: "",
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
    waitForStop: () => new Promise<string>(() => {}),
  } satisfies Io & { stdout: string; stderr: string };
  return io;
}
