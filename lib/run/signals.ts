/**
 * Ctrl-C and SIGTERM during a run: the first asks the loop to stop after the
 * current step (the trainer then writes a checkpoint and returns, so the
 * process exits 0 and the same command resumes); a second exits at once
 * with status 130, after `beforeExit` (the run lock is released there).
 *
 * @module
 */

/** Options of {@linkcode StopRequest.listen}. */
export interface StopRequestOptions {
  /** Runs (synchronously) before a second signal exits the process. */
  beforeExit?: () => void;
}

/** A stop request from a signal; poll {@linkcode StopRequest.requested} between steps. */
export class StopRequest {
  #requested = false;
  readonly #signals: Deno.Signal[];
  readonly #onSignal: () => void;

  private constructor(opts: StopRequestOptions) {
    this.#signals = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    this.#onSignal = () => {
      if (this.#requested) {
        opts.beforeExit?.();
        Deno.exit(130);
      }
      this.#requested = true;
      console.error("\nstop requested: finishing the current step and writing a checkpoint...");
    };
  }

  /** Start listening for SIGINT (and SIGTERM off Windows). Call {@linkcode close} when done. */
  static listen(opts: StopRequestOptions = {}): StopRequest {
    const stop = new StopRequest(opts);
    for (const s of stop.#signals) Deno.addSignalListener(s, stop.#onSignal);
    return stop;
  }

  /** Whether a signal asked the run to stop. */
  get requested(): boolean {
    return this.#requested;
  }

  /** Stop listening. */
  close(): void {
    for (const s of this.#signals) Deno.removeSignalListener(s, this.#onSignal);
  }
}
