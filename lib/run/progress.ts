/**
 * Progress reporting: a one-line bar on a terminal, plain log lines otherwise.
 *
 * @module
 */

/** Format seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** A progress line writer. */
export class Progress {
  readonly tty: boolean;
  #lastLen = 0;
  constructor(
    readonly total: number,
    readonly label: string,
    tty?: boolean,
    readonly silent = false,
  ) {
    this.tty = tty ?? Deno.stderr.isTerminal();
  }

  /** Update with `done` of `total` and a status string (`loss 0.51 · 812 img/s`). */
  update(done: number, status: string, etaSeconds: number): void {
    if (this.silent) return;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    if (this.tty) {
      const width = 24;
      const fill = Math.round(frac * width);
      const bar = "█".repeat(fill) + "░".repeat(width - fill);
      const line = `${this.label} ${bar} ${done}/${this.total} ${status} · ETA ${
        formatDuration(etaSeconds)
      }`;
      const pad = Math.max(0, this.#lastLen - line.length);
      Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}${" ".repeat(pad)}`));
      this.#lastLen = line.length;
    } else {
      console.log(
        `${this.label} ${done}/${this.total} ${status} eta=${formatDuration(etaSeconds)}`,
      );
    }
  }

  /** End the bar line (terminal only). */
  finish(): void {
    if (this.tty && this.#lastLen > 0) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    this.#lastLen = 0;
  }
}
