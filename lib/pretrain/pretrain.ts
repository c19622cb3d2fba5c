/**
 * The pre-training loop: data → mask plan → MIM loss → AdamW, with a run
 * folder, logging, figures, atomic checkpoints and exact resume. The pieces:
 * `setup.ts` (run folder, lock, resume, checkpoints), `epoch.ts` (one epoch
 * and its record), `monitor.ts` (kNN, attention on the object) and
 * `figures.ts` (plots after each epoch).
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import {
  formatDuration,
  type MetricsLog,
  readMetrics,
  StopRequest,
  writeRunSummary,
} from "../run/mod.ts";
import { logEpoch, trainOneEpoch } from "./epoch.ts";
import { writeRunFigures } from "./figures.ts";
import {
  checkpointRun,
  closeRun,
  openStepLog,
  type PretrainOptions,
  type PretrainResult,
  type PretrainRun,
  type PretrainStep,
  setupPretrain,
} from "./setup.ts";

/**
 * Pre-train a MIM model as the config says; resumes when `run.dir` holds an
 * unfinished run of the same config. Holds the run folder's lock throughout:
 * a second process on the same folder fails with `RunLockedError`. Ctrl-C or
 * SIGTERM finishes the step, writes a checkpoint and returns (`interrupted`).
 */
export async function pretrain(
  config: Readonly<Config>,
  options: PretrainOptions = {},
): Promise<PretrainResult> {
  const run = await setupPretrain(config, options);
  try {
    if (run.finished) {
      closeRun(run);
      run.log(`${run.paths.dir} already finished (${run.globalStep} steps); nothing to do`);
      return result(run, run.finished, run.finished.seconds, false);
    }
    const stop = StopRequest.listen({ beforeExit: () => run.lock.releaseSync() });
    const metrics = await openStepLog(run);
    const shouldStop = () =>
      stop.requested ||
      (options.stopAfterSteps !== undefined && metrics.pushed >= options.stopAfterSteps);
    let interrupted = false;
    try {
      const { epochs } = config.train;
      let epoch = Math.floor(run.globalStep / run.stepsPerEpoch);
      for (; epoch < epochs && run.globalStep < run.totalSteps; epoch++) {
        const e = await trainOneEpoch(run, epoch, metrics, shouldStop);
        if (e.interrupted) {
          interrupted = true;
          break;
        }
        await logEpoch(run, epoch, e, metrics);
        await checkpointRun(run, metrics, epoch + 1);
        if (options.figures !== false) {
          await writeRunFigures({ ...run, runDir: run.paths.dir, epoch });
        }
        if (e.stopNow && run.globalStep < run.totalSteps) {
          interrupted = true;
          break;
        }
      }
    } finally {
      stop.close();
      metrics.dispose();
      closeRun(run);
    }
    const seconds = (performance.now() - run.t0) / 1000;
    const at = `${run.globalStep}/${run.totalSteps}`;
    if (interrupted) {
      run.log(`stopped at step ${at}; run the same command again to resume ${run.paths.dir}`);
    } else {
      await writeSummary(run, metrics);
      run.log(
        `done: ${run.paths.dir} (loss ${metrics.first.toFixed(4)} → ${metrics.last.toFixed(4)}, ${
          formatDuration(seconds)
        })`,
      );
    }
    return result(run, { firstLoss: metrics.first, finalLoss: metrics.last }, seconds, interrupted);
  } finally {
    await run.lock.release();
  }
}

function result(
  run: PretrainRun,
  losses: { firstLoss: number; finalLoss: number },
  seconds: number,
  interrupted: boolean,
): PretrainResult {
  return {
    runDir: run.paths.dir,
    epochsDone: Math.floor(run.globalStep / run.stepsPerEpoch),
    steps: run.globalStep,
    finalLoss: losses.finalLoss,
    firstLoss: losses.firstLoss,
    seconds,
    interrupted,
  };
}

/** `summary.json` from the epoch records: steps, losses, and where the time went. */
async function writeSummary(run: PretrainRun, metrics: MetricsLog<PretrainStep>): Promise<void> {
  const epochRecords = (await readMetrics(run.paths.metrics)).filter((r) => r.type === "epoch");
  const pretrainSeconds = epochRecords.reduce((a, r) => a + ((r.seconds as number) ?? 0), 0);
  const saliencySeconds = epochRecords.reduce(
    (a, r) => a + ((r.saliencySeconds as number | undefined) ?? 0),
    0,
  );
  await writeRunSummary(run.paths.dir, {
    steps: run.globalStep,
    epochs: epochRecords.length,
    firstLoss: metrics.first,
    finalLoss: metrics.last,
    pretrainSeconds,
    saliencySeconds,
    saliencyShare: pretrainSeconds > 0 ? saliencySeconds / pretrainSeconds : 0,
    seconds: pretrainSeconds,
  });
}
