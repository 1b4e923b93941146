/**
 * Progress of a training epoch: a one-line bar redrawn in place (with rate and ETA) when the
 * output is a terminal, and plain lines at a fixed time interval otherwise (logs, CI, pipes),
 * so that a redirected run leaves a readable file instead of thousands of carriage returns.
 * @module
 */
import { checkOptionKeys, numberOption } from "../options.ts";

/** Where progress goes: `write` prints text as is (no newline added). */
export interface ProgressSink {
  /** Writes `text` (may contain "\r" and ANSI erase codes in terminal mode). */
  write(text: string): void;
  /** Whether the sink is an interactive terminal (bar redrawn in place). */
  isTerminal: boolean;
  /**
   * The terminal's width in columns, when known: a redrawn line is cut to fit, since a line
   * that wraps leaves its first rows behind at every redraw.
   */
  columns?: () => number | undefined;
}

/** Options of `ProgressBar`. */
export interface ProgressOptions {
  /** Where to write (default: standard output, terminal detected with `isTerminal()`). */
  sink?: ProgressSink;
  /** Terminal mode: least milliseconds between two redraws (default 100). */
  redrawMs?: number;
  /** Plain mode: least seconds between two lines (default 10; 0 prints every update). */
  lineEverySeconds?: number;
  /** Width of the bar in characters (default 24). */
  barWidth?: number;
  /** Clock in milliseconds (default `performance.now`; tests pass a fake one). */
  now?: () => number;
}

const encoder = new TextEncoder();

/** Standard output as a progress sink. */
export function stdoutSink(): ProgressSink {
  return {
    write: (text) => {
      Deno.stdout.writeSync(encoder.encode(text));
    },
    isTerminal: Deno.stdout.isTerminal(),
    columns: () => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return undefined; // not a console after all
      }
    },
  };
}

/** Formats seconds as `12.3s`, `4m05s` or `1h02m`. */
export function formatDuration(seconds: number): string {
  numberOption(seconds, "formatDuration() seconds");
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 59.95) return `${seconds.toFixed(1)}s`; // 59.95 would print as 60.0s
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * The progress of one pass over `total` steps. Call `update(done, status)` after each step (it
 * decides itself whether to draw) and `finish()` at the end (clears the bar in terminal mode).
 * @example
 * ```ts
 * import { ProgressBar } from "@sparselinear/sparselinear";
 * const lines: string[] = [];
 * const bar = new ProgressBar("epoch 1", 100, {
 *   sink: { write: (t) => lines.push(t), isTerminal: false },
 *   lineEverySeconds: 0,
 * });
 * bar.update(50, "loss 0.3");
 * bar.finish();
 * console.log(lines[0].includes("50/100")); // true
 * ```
 */
export class ProgressBar {
  readonly #label: string;
  readonly #total: number;
  readonly #sink: ProgressSink;
  readonly #redrawMs: number;
  readonly #lineMs: number;
  readonly #barWidth: number;
  readonly #now: () => number;
  readonly #start: number;
  #lastDraw: number;
  #drawn = false;

  /** Starts the clock of a pass over `total` steps, labelled `label` (e.g. "epoch 3/20"). */
  constructor(label: string, total: number, options: ProgressOptions = {}) {
    checkOptionKeys(
      options,
      ["sink", "redrawMs", "lineEverySeconds", "barWidth", "now"],
      "ProgressBar",
    );
    this.#label = label;
    this.#total = Math.max(0, numberOption(total, "ProgressBar total"));
    this.#sink = options.sink ?? stdoutSink();
    this.#redrawMs = numberOption(options.redrawMs, "ProgressBar redrawMs", 100);
    this.#lineMs = 1000 *
      numberOption(options.lineEverySeconds, "ProgressBar lineEverySeconds", 10);
    this.#barWidth = numberOption(options.barWidth, "ProgressBar barWidth", 24);
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#lastDraw = this.#start;
  }

  /** Reports `done` steps finished, with a short status (e.g. the running loss). */
  update(done: number, status = ""): void {
    numberOption(done, "ProgressBar.update() done");
    const now = this.#now();
    const interval = this.#sink.isTerminal ? this.#redrawMs : this.#lineMs;
    if (now - this.#lastDraw < interval && done < this.#total) return;
    if (!this.#sink.isTerminal && done >= this.#total) return; // the caller prints a summary
    this.#lastDraw = now;
    const elapsed = (now - this.#start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.#total - done) / rate : NaN;
    const count = `${String(done).padStart(String(this.#total).length)}/${this.#total}`;
    // Under a step per second, the time per step (below 0.05 steps/s the rate read 0.0).
    const speed = rate > 0 && rate < 1
      ? `${formatDuration(1 / rate)}/step`
      : `${rate.toFixed(rate < 10 ? 1 : 0)} steps/s`;
    const timing = `${speed}, ETA ${formatDuration(eta)}`;
    const tail = status === "" ? "" : `  ${status}`;
    if (this.#sink.isTerminal) {
      const filled = this.#total === 0
        ? this.#barWidth
        : Math.min(this.#barWidth, Math.max(0, Math.round((this.#barWidth * done) / this.#total)));
      const bar = "█".repeat(filled) + "·".repeat(this.#barWidth - filled);
      // \r + erase line: redraw in place without leftovers from a longer previous line; cut
      // to one column less than the terminal so that the line never wraps.
      const line = `${this.#label} ${bar} ${count}  ${timing}${tail}`;
      const columns = this.#sink.columns?.();
      const fits = columns !== undefined && columns > 1 && line.length > columns - 1
        ? line.slice(0, columns - 2) + "…"
        : line;
      this.#sink.write(`\r\x1b[2K${fits}`);
      this.#drawn = true;
    } else {
      this.#sink.write(`${this.#label} ${count}  ${timing}${tail}\n`);
    }
  }

  /** Seconds since the bar was created. */
  get elapsedSeconds(): number {
    return (this.#now() - this.#start) / 1000;
  }

  /** Ends the pass: erases the bar in terminal mode so the caller's summary line replaces it. */
  finish(): void {
    if (this.#sink.isTerminal && this.#drawn) this.#sink.write("\r\x1b[2K");
    this.#drawn = false;
  }
}
