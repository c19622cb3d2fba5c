/**
 * One pre-training epoch (MAE's `engine_pretrain.py::train_one_epoch`): for
 * each batch, load and augment it, plan the masks, patchify, take an AdamW
 * step on the MIM loss, and log the loss; then the epoch's record.
 *
 * Randomness is counter-based (`makeRng(seed, kind, epoch, step)`), so a
 * resumed run draws the same data order, crops, masks and drop-path as an
 * uninterrupted one.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { loadBatch } from "../data/mod.ts";
import { lrAt } from "../optim/schedule.ts";
import { appendMetrics, formatDuration, type MetricsLog } from "../run/mod.ts";
import { hashKeys, makeRng, permutation } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import {
  checkpointRun,
  type PretrainRun,
  type PretrainStep,
  type StepPlanCounts,
} from "./setup.ts";

/** How an epoch ended. */
export interface EpochResult {
  /** `performance.now()` at its start. */
  started: number;
  phase: string;
  /** Counts of its last plan. */
  counts: StepPlanCounts;
  /** A stop was asked for (signal or `stopAfterSteps`). */
  stopNow: boolean;
  /** It stopped before its last step (checkpoint written); the run ends here. */
  interrupted: boolean;
}

/**
 * Train epoch `epoch` from step `run.globalStep` to its end (or
 * `run.totalSteps`), checkpointing every `train.ckptEvery` steps and when
 * `shouldStop()` turns true; the last step of an epoch is checkpointed by the
 * caller after the epoch-end work.
 */
export async function trainOneEpoch(
  run: PretrainRun,
  epoch: number,
  metrics: MetricsLog<PretrainStep>,
  shouldStop: () => boolean,
): Promise<EpochResult> {
  const { config, dataset: ds, model, opt, planner, imageSize, stepsPerEpoch } = run;
  const { train } = config;
  const { patchSize } = model.encoder.shape;
  const L = model.encoder.numPatches;
  const started = performance.now();
  const order = permutation(ds.length, makeRng(config.run.seed, "order", epoch));
  const phase = planner.phase(epoch);
  metrics.resetMean();
  let counts: StepPlanCounts = { masked: 0, thrown: 0, visible: 0 };
  let stopNow = false;
  for (
    let s = run.globalStep - epoch * stepsPerEpoch;
    s < stepsPerEpoch && run.globalStep < run.totalSteps;
    s++
  ) {
    const batch = await loadBatch(
      ds,
      order.subarray(s * train.batchSize, (s + 1) * train.batchSize),
      {
        imageSize,
        augment: true,
        rng: makeRng(config.run.seed, "augment", epoch, s),
        scale: config.data.cropScale,
        ratio: config.data.cropRatio,
        flip: config.data.flip,
      },
    );
    const plan = planner.plan(train.batchSize, L, {
      epoch,
      step: run.globalStep,
      rng: makeRng(config.run.seed, "mask", epoch, s),
      indices: batch.indices,
      boxes: batch.boxes,
      imageSize,
      patchSize,
    });
    counts = { masked: plan.numMasked, thrown: plan.numThrown, visible: plan.numVisible };
    const patches = tf.tensor2d(
      patchify(batch.images, train.batchSize, imageSize, ds.channels, patchSize),
      [train.batchSize * L, model.encoder.patchDim],
    ); // [B * L, p * p * C]
    const lr = lrAt(epoch + s / stepsPerEpoch, run.schedule);
    // stochastic depth (model.dropPath), its draws keyed by (seed, step) so a resume repeats them
    const dp = config.model.dropPath > 0
      ? {
        dropPath: config.model.dropPath,
        seed: hashKeys(config.run.seed, "droppath", run.globalStep),
      }
      : undefined;
    const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan, dp), lr);
    planner.afterStep?.(); // after AdamW: e.g. AMT's EMA teacher follows the new weights
    patches.dispose();
    gradNorm.dispose();
    run.globalStep++;
    const step = run.globalStep;
    await metrics.push(loss, { step, images: train.batchSize, epoch, lr, phase, ...counts });
    stopNow = shouldStop();
    // The last step of an epoch is checkpointed after the epoch-end work (saliency
    // updates), so a resume never skips it.
    const lastOfEpoch = s === stepsPerEpoch - 1;
    const due = train.ckptEvery > 0 && step % train.ckptEvery === 0;
    if (!lastOfEpoch && (due || stopNow)) await checkpointRun(run, metrics, epoch);
    if (stopNow && !lastOfEpoch) return { started, phase, counts, stopNow, interrupted: true };
  }
  await metrics.flush();
  metrics.finishLine();
  return { started, phase, counts, stopNow, interrupted: false };
}

/**
 * The epoch's end before its checkpoint: the planner's epoch-end work
 * (AMT's saliency pass) and the monitor when the epoch is complete, then the
 * epoch record in `metrics.jsonl` and its log line. The record's `seconds` include the
 * planner's work but not the monitor's (a measurement, not part of training).
 */
export async function logEpoch(
  run: PretrainRun,
  epoch: number,
  e: EpochResult,
  metrics: MetricsLog<PretrainStep>,
): Promise<void> {
  const { train } = run.config;
  const epochDone = run.globalStep % run.stepsPerEpoch === 0;
  const extra: Record<string, number | string> = epochDone
    ? { ...(await run.planner.afterEpoch?.(epoch)) }
    : {};
  // the epoch's wall-clock: its steps and the planner's epoch-end work, not the monitor
  const seconds = (performance.now() - e.started) / 1000;
  if (epochDone && run.monitor?.due(epoch + 1, train.epochs)) {
    Object.assign(extra, await run.monitor.measure(run.model, epoch + 1, train.epochs));
  }
  await appendMetrics(run.paths.metrics, [{
    type: "epoch",
    epoch,
    step: run.globalStep,
    loss: metrics.count > 0 ? metrics.mean : null,
    lr: lrAt(epoch + 1, run.schedule),
    seconds,
    imagesPerSec: metrics.count * train.batchSize / seconds,
    phase: e.phase,
    ...e.counts,
    ...extra,
  }]);
  const { masked, thrown, visible } = e.counts;
  run.log(
    `epoch ${epoch + 1}/${train.epochs} loss ${
      (metrics.count > 0 ? metrics.mean : 0).toFixed(4)
    } ` +
      `(${
        formatDuration(seconds)
      }, phase ${e.phase}, masked/thrown/visible ${masked}/${thrown}/${visible})`,
  );
}
