/** Where commands print; injected so tests can capture output. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the process is asked to stop (Ctrl-C, SIGTERM). */
  waitForStop(): Promise<string>;
}

/** The real process's streams and signals. */
export function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    waitForStop: () =>
      new Promise((resolve) => {
        process.once("SIGINT", () => resolve("SIGINT"));
        process.once("SIGTERM", () => resolve("SIGTERM"));
      }),
  };
}

/** A command failure with a message for the person and an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}
