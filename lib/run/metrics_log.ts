/**
 * The loss log of a training loop (MAE's `MetricLogger`): losses stay on the
 * device as tensors until `every` steps are pending, then one `await data()`
 * reads them all, a non-finite loss stops the run (writing `diagnostic.json`
 * when asked), the window's records are appended to `metrics.jsonl`, and the
 * progress line moves. Pre-training, fine-tuning and detection share it.
 *
 * @example
 * ```ts ignore
 * const log = new MetricsLog<StepInfo & { lr: number }>({
 *   every: 10,
 *   path: runPaths(dir).metrics,
 *   records: (w) => [{ type: "step", step: w.last.info.step, loss: w.mean, lr: w.last.info.lr }],
 * });
 * for (...) {
 *   const { loss, gradNorm } = opt.minimize(lossFn, lr);
 *   gradNorm.dispose();
 *   await log.push(loss, { step: ++step, lr, images: batchSize }); // takes `loss`
 * }
 * await log.flush();
 * log.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../util/fs.ts";
import { appendMetrics, type MetricRecord } from "./metrics.ts";
import type { Progress } from "./progress.ts";

/** What every logged step carries besides its loss. */
export interface StepInfo {
  /** 1-based global step (the one records and messages name). */
  step: number;
  /** Images the step trained on (for `imagesPerSec`; default 0). */
  images?: number;
}

/** A step whose loss has been read. */
export interface LoggedStep<I extends StepInfo> {
  info: I;
  /** The loss: the tensor's only value, or its first when it has parts. */
  loss: number;
  /** Every value of the step's loss tensor (`[total]` or `[total, part1, ...]`). */
  values: number[];
}

/** One flush: the steps it read, their loss sum and mean, and the throughput since the last one. */
export interface LogWindow<I extends StepInfo> {
  steps: LoggedStep<I>[];
  /** The newest step of the window. */
  last: LoggedStep<I>;
  /** Sum of the window's losses, left to right from 0. */
  sum: number;
  /** `sum / steps.length`. */
  mean: number;
  /** Images of the window's steps per second since the previous flush. */
  imagesPerSec: number;
}

/** A non-finite loss found by a flush, with the window it was read in. */
export interface NonFiniteLoss<I extends StepInfo> {
  /** The first non-finite loss of the window. */
  loss: number;
  info: I;
  /** Mean loss of the whole window (non-finite too). */
  windowMean: number;
  /** Info of the window's newest step. */
  windowLast: I;
}

/** What to say about a non-finite loss: the error message, and the `diagnostic.json` content. */
export interface NonFiniteReport {
  message: string;
  /** Written (pretty JSON) to `diagnosticPath` before the error is thrown. */
  diagnostic?: Record<string, unknown>;
}

/** Options of {@linkcode MetricsLog}. */
export interface MetricsLogOptions<I extends StepInfo> {
  /** Read the pending losses once this many steps are pending (`train.logEvery`). */
  every: number;
  /** `metrics.jsonl` to append the window's records to; none when omitted. */
  path?: string;
  /** The records of a window (default: one `{type: "step", ...info, loss: mean}`). */
  records?: (w: LogWindow<I>) => MetricRecord[];
  /** Called for each step read, oldest first, before the records are written. */
  onStep?: (s: LoggedStep<I>) => void;
  /** Called after the records and the progress line of each window. */
  onWindow?: (w: LogWindow<I>) => void | Promise<void>;
  /** The progress line to move after each window. */
  progress?: {
    bar: Progress;
    /** Steps of the whole run (the ETA counts down to it). */
    total: number;
    /** Status text of a window (`loss 0.512 · 812 img/s`). */
    status: (w: LogWindow<I>) => string;
    /** `performance.now()` the step rate is measured from (default: the log's creation). */
    since?: number;
  };
  /**
   * Message (and diagnostic) for a non-finite loss; the default message is
   * `loss is NaN at step 12; stopping`.
   */
  nonFinite?: (bad: NonFiniteLoss<I>) => NonFiniteReport | Promise<NonFiniteReport>;
  /** Where the report's `diagnostic` goes (`runPaths(dir).diagnostic`). */
  diagnosticPath?: string;
  /** First and last loss of earlier invocations of the run (resume); default NaN. */
  first?: number;
  last?: number;
}

/** Thrown by {@linkcode MetricsLog.flush} when a loss is NaN or infinite. */
export class NonFiniteLossError extends Error {
  constructor(message: string, readonly step: number, readonly loss: number) {
    super(message);
    this.name = "NonFiniteLossError";
  }
}

function defaultRecords<I extends StepInfo>(w: LogWindow<I>): MetricRecord[] {
  const { images: _images, ...info } = w.last.info;
  return [{ type: "step", ...(info as Record<string, number | string>), loss: w.mean }];
}

/** A training loop's loss log; see the module doc. Owns the loss tensors pushed into it. */
export class MetricsLog<I extends StepInfo = StepInfo> {
  readonly every: number;
  #pending: { loss: tf.Tensor; info: I }[] = [];
  #pushed = 0;
  #windowStart = performance.now();
  #windowImages = 0;
  #first: number;
  #last: number;
  #meanSum = 0;
  #meanCount = 0;
  readonly #since: number;

  constructor(readonly options: MetricsLogOptions<I>) {
    this.every = Math.max(1, options.every);
    this.#first = options.first ?? NaN;
    this.#last = options.last ?? NaN;
    this.#since = options.progress?.since ?? performance.now();
  }

  /** First loss of the run (NaN before any was read). */
  get first(): number {
    return this.#first;
  }

  /** Newest loss read (NaN before any). */
  get last(): number {
    return this.#last;
  }

  /** Losses read since {@linkcode resetMean} (an epoch's). */
  get count(): number {
    return this.#meanCount;
  }

  /** Their mean, step by step (NaN when none). */
  get mean(): number {
    return this.#meanSum / this.#meanCount;
  }

  /** Steps pushed by this log (this invocation). */
  get pushed(): number {
    return this.#pushed;
  }

  /** Start a new mean (call at the start of an epoch). */
  resetMean(): void {
    this.#meanSum = 0;
    this.#meanCount = 0;
  }

  /** Restart the throughput window (e.g. after an evaluation between epochs). */
  startWindow(): void {
    this.#windowStart = performance.now();
    this.#windowImages = 0;
  }

  /**
   * Add a step's loss (a scalar, or a 1-D tensor with the total first; the log
   * takes it and disposes it), then flush when `every` steps are pending.
   * No host sync happens unless it flushes.
   */
  async push(loss: tf.Tensor, info: I): Promise<LogWindow<I> | null> {
    this.#windowImages += info.images ?? 0;
    this.#pushed++;
    this.#pending.push({ loss, info });
    return this.#pending.length >= this.every ? await this.flush() : null;
  }

  /**
   * Read the pending losses with one `await data()`, check them, write their
   * records and move the progress line. Returns the window, or null when
   * nothing was pending.
   *
   * @throws {NonFiniteLossError} at the first NaN or infinite loss, after
   *   writing the diagnostic; the window's records are not written.
   */
  async flush(): Promise<LogWindow<I> | null> {
    if (this.#pending.length === 0) return null;
    const pending = this.#pending;
    this.#pending = [];
    let values: Float32Array;
    try {
      const stacked = tf.tidy(() => tf.stack(pending.map((p) => p.loss))); // [n] or [n, parts]
      try {
        values = (await stacked.data()) as Float32Array;
      } finally {
        stacked.dispose();
      }
    } finally {
      tf.dispose(pending.map((p) => p.loss));
    }
    const elapsed = (performance.now() - this.#windowStart) / 1000;
    const imagesPerSec = this.#windowImages / Math.max(elapsed, 1e-9);
    const width = values.length / pending.length;
    const steps = pending.map((p, i): LoggedStep<I> => {
      const row = Array.from(values.subarray(i * width, (i + 1) * width));
      return { info: p.info, loss: row[0], values: row };
    });
    let sum = 0;
    for (const s of steps) sum += s.loss;
    const last = steps[steps.length - 1];
    const window: LogWindow<I> = { steps, last, sum, mean: sum / steps.length, imagesPerSec };
    for (const s of steps) {
      if (!Number.isFinite(s.loss)) await this.#stop(s, window);
      if (Number.isNaN(this.#first)) this.#first = s.loss;
      this.#last = s.loss;
      this.#meanSum += s.loss; // the epoch mean comes from the losses read here
      this.#meanCount++;
      this.options.onStep?.(s);
    }
    if (this.options.path) {
      await appendMetrics(this.options.path, (this.options.records ?? defaultRecords)(window));
    }
    const p = this.options.progress;
    if (p) {
      const done = last.info.step;
      const rate = this.#pushed / ((performance.now() - this.#since) / 1000);
      p.bar.update(done, p.status(window), (p.total - done) / Math.max(rate, 1e-9));
    }
    await this.options.onWindow?.(window);
    this.startWindow();
    return window;
  }

  async #stop(s: LoggedStep<I>, w: LogWindow<I>): Promise<never> {
    const bad: NonFiniteLoss<I> = {
      loss: s.loss,
      info: s.info,
      windowMean: w.mean,
      windowLast: w.last.info,
    };
    const report = this.options.nonFinite
      ? await this.options.nonFinite(bad)
      : { message: `loss is ${s.loss} at step ${s.info.step}; stopping` };
    if (report.diagnostic && this.options.diagnosticPath) {
      await writeFileAtomic(
        this.options.diagnosticPath,
        JSON.stringify(report.diagnostic, null, 2) + "\n",
      );
    }
    throw new NonFiniteLossError(report.message, s.info.step, s.loss);
  }

  /** End the progress line (terminal only). */
  finishLine(): void {
    this.options.progress?.bar.finish();
  }

  /** Drop (dispose) the pending losses and end the progress line. */
  dispose(): void {
    tf.dispose(this.#pending.map((p) => p.loss));
    this.#pending = [];
    this.finishLine();
  }
}
