/**
 * A one-line progress bar for long command-line runs (audit verify, export), redrawn in place with
 * `\r` on stderr.
 *
 * Hand-written rather than a library (cli-progress, progress): it is one line of output, about
 * fifty lines of code, and needs only what these commands need — silence when stderr is not a
 * terminal (unless forced), throttled redraws, an injected clock for tests — so a dependency would
 * add more than it saves.
 */

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Where the bar goes (stderr). */
  write: (text: string) => void;
  /** Draw at all: stderr is a terminal, or `--progress` forces it. When false every call is a no-op. */
  enabled: boolean;
  /** What is counted, e.g. "records" or "bytes" (bytes are shown in MB). */
  unit: string;
  /** Text before the bar, e.g. "verifying". */
  label?: string;
  /** ms; default Date.now. */
  clock?: () => number;
  /** Bar width in characters. Default 24. */
  width?: number;
  /** Least time between redraws (ms). Default 100. */
  minIntervalMs?: number;
}

/** A progress bar; see {@link createProgress}. */
export interface Progress {
  /** `done` of `total` (total 0: unknown, shows the count only). Redraws at most every `minIntervalMs`. */
  update(done: number, total: number): void;
  /** Draws the final state and ends the line (only if anything was drawn or `done` > 0). */
  finish(): void;
}

/**
 * Creates a progress bar.
 *
 * @example
 * ```ts
 * const bar = createProgress({ write: (t) => process.stderr.write(t), enabled: process.stderr.isTTY === true, unit: "records" });
 * verifyChain(db, { onProgress: (done, total) => bar.update(done, total) });
 * bar.finish();
 * ```
 */
export function createProgress(opts: ProgressOptions): Progress {
  const clock = opts.clock ?? Date.now;
  const width = opts.width ?? 24;
  const minInterval = opts.minIntervalMs ?? 100;
  const started = clock();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  let last = { done: 0, total: 0 };
  let lastLength = 0;

  const draw = () => {
    const { done, total } = last;
    const now = clock();
    const seconds = Math.max(0, (now - started) / 1000);
    const amount =
      opts.unit === "bytes"
        ? `${mb(done)}${total > 0 ? `/${mb(total)}` : ""} MB`
        : `${done}${total > 0 ? `/${total}` : ""} ${opts.unit}`;
    let bar = "";
    if (total > 0) {
      const ratio = Math.min(1, done / total);
      const full = Math.round(ratio * width);
      bar = `[${"#".repeat(full)}${"-".repeat(width - full)}] ${String(Math.floor(ratio * 100)).padStart(3)}% `;
    }
    const rate = seconds > 0 ? `, ${Math.round(done / seconds)}/s` : "";
    const text = `${opts.label ? `${opts.label} ` : ""}${bar}${amount} (${seconds.toFixed(1)}s${opts.unit === "bytes" ? "" : rate})`;
    // Pad over a longer previous line instead of an ANSI erase, so a forced bar stays readable in a file.
    opts.write(`\r${text}${" ".repeat(Math.max(0, lastLength - text.length))}`);
    lastLength = text.length;
    lastDraw = now;
    drawn = true;
  };

  return {
    update(done, total) {
      if (!opts.enabled) return;
      last = { done, total };
      if (clock() - lastDraw >= minInterval) draw();
    },
    finish() {
      if (!opts.enabled || (!drawn && last.done === 0)) return;
      draw();
      opts.write("\n");
    },
  };
}

function mb(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}
