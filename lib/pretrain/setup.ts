/**
 * Setting up, resuming and checkpointing a pre-training run: the run
 * folder's lock, backend and data, `config.json` (checked against a resumed
 * run's), model, optimiser and planner, the checkpoint to resume from,
 * `run.json`, and the loss log that continues the run's `metrics.jsonl`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, usePrecision } from "../backend/mod.ts";
import { checkResumable, loadSavedConfig, saveConfig } from "../config/mod.ts";
import type { Config } from "../config/schema.ts";
import { type Dataset, normalizedDataset, openDataset } from "../data/mod.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { AdamW } from "../optim/adamw.ts";
import { peakLr } from "../optim/schedule.ts";
import { parseNoDecay } from "../vit/params.ts";
import {
  buildModel,
  defaultRunDir,
  gatherState,
  gitCommit,
  loadCheckpoint,
  MetricsLog,
  modelImageSize,
  pathExists,
  Progress,
  readMetrics,
  readRunInfo,
  readRunSummary,
  restoreState,
  RunLock,
  runNormalization,
  type RunPaths,
  runPaths,
  type RunSummary,
  saveCheckpoint,
  type StepInfo,
  truncateMetrics,
  writeRunInfo,
} from "../run/mod.ts";
import { buildPlanner } from "./factory.ts";
import { makePretrainMonitor, type PretrainMonitor } from "./monitor.ts";

/** Options of `pretrain` besides the config. */
export interface PretrainOptions {
  /** Print nothing but errors. */
  quiet?: boolean;
  /** Called with each step's loss when `train.logEvery` is 1 (tests). */
  onStep?: (step: number, loss: number) => void;
  /** Stop cleanly after this many steps in this invocation (tests of resume). */
  stopAfterSteps?: number;
  /** Skip figures (tests). */
  figures?: boolean;
  /** Already-open dataset (tests, notebooks). */
  dataset?: Dataset;
}

/** What a finished (or stopped) run reports. */
export interface PretrainResult {
  runDir: string;
  epochsDone: number;
  steps: number;
  finalLoss: number;
  firstLoss: number;
  seconds: number;
  /** True when the run stopped before its last epoch (signal or stopAfterSteps). */
  interrupted: boolean;
}

/** Patches of the newest mask plan: masked / thrown / visible. */
export interface StepPlanCounts {
  masked: number;
  thrown: number;
  visible: number;
}

/** The fields of a pre-training step in the loss log (and its `metrics.jsonl` record). */
export interface PretrainStep extends StepInfo, StepPlanCounts {
  /** 0-based epoch. */
  epoch: number;
  lr: number;
  /** The planner's phase (`warmup`, `amt`, `random`...). */
  phase: string;
}

/** Everything a pre-training run holds while it trains; from {@linkcode setupPretrain}. */
export interface PretrainRun {
  readonly config: Readonly<Config>;
  readonly options: PretrainOptions;
  readonly paths: RunPaths;
  readonly log: (s: string) => void;
  /** `performance.now()` when `pretrain` started. */
  readonly t0: number;
  readonly dataset: Dataset;
  /** Model input side in pixels. */
  readonly imageSize: number;
  readonly model: MimModel;
  readonly opt: AdamW;
  readonly planner: MaskPlanner;
  /** kNN and attention-on-object monitor, when `eval.knnEvery` or `eval.attnEvery` > 0. */
  readonly monitor: PretrainMonitor | null;
  /** The run folder's lock, held until `pretrain` returns. */
  readonly lock: RunLock;
  /** The lr schedule (`lrAt`): peak lr from `train.baseLr`, warm-up, cosine to `minLr`. */
  readonly schedule: { lr: number; minLr: number; warmupEpochs: number; epochs: number };
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Optimiser steps done over all invocations; the epoch loop advances it. */
  globalStep: number;
  /** `summary.json` of a run that had already finished: nothing left to do. */
  readonly finished: RunSummary | null;
}

/**
 * Take the run folder (`run.dir`, else {@linkcode defaultRunDir}) and set the
 * run up, resuming from its checkpoint when it has one. A second process on
 * the same folder fails here with `RunLockedError`. On any error the lock is
 * released (and a folder this call created is removed while still empty).
 * The caller releases `run.lock` and disposes the model, optimiser and
 * monitor ({@linkcode closeRun}).
 */
export async function setupPretrain(
  config: Readonly<Config>,
  options: PretrainOptions,
): Promise<PretrainRun> {
  const t0 = performance.now();
  const paths = runPaths(config.run.dir || defaultRunDir(config));
  const created = !(await pathExists(paths.dir));
  const lock = await RunLock.acquire(paths.dir);
  try {
    return await openRun(config, options, paths, lock, t0);
  } catch (e) {
    await lock.release();
    if (created) await Deno.remove(paths.dir).catch(() => {}); // fails unless empty
    throw e;
  }
}

async function openRun(
  config: Readonly<Config>,
  options: PretrainOptions,
  paths: RunPaths,
  lock: RunLock,
  t0: number,
): Promise<PretrainRun> {
  const log = options.quiet ? () => {} : (s: string) => console.log(s);
  const backend = await initBackend({
    backend: config.run.backend as "auto",
    threads: config.run.threads,
    quiet: options.quiet,
  });
  const precision = usePrecision(config.train.precision);
  log(`precision: ${precision.precision} (${precision.reason})`);
  // what an existing folder's run.json recorded carries over (a resume, or imported weights:
  // their normalisation replaces the dataset's, their position table may be learned)
  const prior = await pathExists(paths.run)
    ? await readRunInfo(paths.dir).catch(() => null) // unreadable: rewritten below, as before
    : null;
  const normalization = prior ? runNormalization(prior) : undefined;
  // data.normalize travels with the dataset (its mean / std): the training batches, the
  // saliency pass, the figures and run.json all use the one rule
  const ds = options.dataset
    ? normalizedDataset(options.dataset, config.data.normalize)
    : await openDataset({
      name: config.data.name,
      root: config.data.root,
      split: config.data.split,
      limit: config.data.limit,
      imageSize: config.data.imageSize,
      onBadImage: config.data.onBadImage,
      normalize: config.data.normalize,
      ...normalization,
    });
  const imageSize = modelImageSize(config);
  const { train } = config;
  const N = ds.length;
  if (N < train.batchSize) {
    throw new RangeError(
      `train.batchSize ${train.batchSize} is larger than the ${N} training images of ${ds.name}; lower train.batchSize or raise data.limit`,
    );
  }
  const stepsPerEpoch = Math.floor(N / train.batchSize);
  const totalSteps = train.maxSteps > 0
    ? Math.min(train.maxSteps, stepsPerEpoch * train.epochs)
    : stepsPerEpoch * train.epochs;

  // ---- run folder ------------------------------------------------------------------------
  const runDir = paths.dir;
  await Deno.mkdir(paths.checkpoints, { recursive: true });
  await Deno.mkdir(paths.plots, { recursive: true });
  if (await pathExists(paths.config)) {
    checkResumable(await loadSavedConfig(runDir), config, runDir);
  }
  await saveConfig(runDir, config);

  // ---- model, optimiser, planner ------------------------------------------------------
  const model = buildModel(config, ds.channels, imageSize, prior?.shape?.posEmbed);
  let opt: AdamW | null = null;
  let monitor: PretrainMonitor | null = null;
  let built: MaskPlanner | null = null; // disposed here when setting up fails after it
  try {
    const shape = model.encoder.shape;
    // train.noDecay: "auto" keeps the method's parameter groups
    const noDecay = parseNoDecay(train.noDecay);
    if (noDecay) model.store.setNoDecay(noDecay);
    opt = new AdamW([...model.store.params.values()], {
      beta1: train.beta1,
      beta2: train.beta2,
      eps: 1e-8,
      weightDecay: train.weightDecay,
      clipGrad: train.clipGrad,
    });
    const planner = buildPlanner(config, { model, dataset: ds, imageSize, log });
    built = planner;
    // kNN accuracy and attention on the object over pre-training (eval.knnEvery /
    // eval.attnEvery epochs); a dataset given in code has no labelled splits for the kNN
    monitor = makePretrainMonitor(
      options.dataset ? { ...config, eval: { ...config.eval, knnEvery: 0 } } : config,
      ds,
      imageSize,
      log,
      normalization,
      `${paths.eval}/attention_monitor.json`,
    );
    const schedule = {
      lr: peakLr(train.baseLr, train.batchSize, train.lrBatch),
      minLr: train.minLr,
      warmupEpochs: train.warmupEpochs,
      epochs: train.epochs,
    };

    // ---- resume ---------------------------------------------------------------------------
    let globalStep = 0;
    const loaded = await loadCheckpoint(paths.checkpoint);
    if (loaded) {
      restoreState(loaded.ckpt, model, opt, planner, loaded.file);
      globalStep = loaded.ckpt.meta.globalStep as number;
      opt.step = loaded.ckpt.meta.optimizerStep as number;
      if (loaded.warning) console.warn(`warning: ${loaded.warning}`);
      await truncateMetrics(paths.metrics, globalStep);
      log(`resuming ${runDir} at step ${globalStep}/${totalSteps}`);
    } else {
      await truncateMetrics(paths.metrics, 0);
    }
    const run: PretrainRun = {
      config,
      options,
      paths,
      log,
      t0,
      dataset: ds,
      imageSize,
      model,
      opt,
      planner,
      monitor,
      lock,
      schedule,
      stepsPerEpoch,
      totalSteps,
      globalStep,
      finished: globalStep >= totalSteps ? await readRunSummary(runDir) : null,
    };
    if (run.finished) return run;

    await writeRunInfo(runDir, {
      backend: backend.backend,
      threads: backend.threads,
      simd: backend.simd,
      backendNote: backend.note,
      // the native BLAS behind wasm's matmul, or why there is none (wasm only)
      matmul: backend.matmul ?? null,
      precision: precision.precision,
      precisionReason: precision.reason,
      dataset: ds.name,
      images: N,
      channels: ds.channels,
      mean: ds.mean,
      std: ds.std,
      normalization: prior?.normalization,
      imported: prior?.imported,
      imageSize,
      shape,
      parameters: model.store.count(),
      stepsPerEpoch,
      totalSteps,
      deno: Deno.version.deno,
      tfjs: tf.version.tfjs,
      gitCommit: await gitCommit(),
      command: ["deno", ...Deno.args].join(" "),
    });
    log(
      `run ${runDir}: ${ds.name} (${N} images, ${imageSize}px), ${config.mim.method} ` +
        `${shape.dim}x${shape.depth} patch ${shape.patchSize}, planner ${planner.name}, ` +
        `${model.store.count().toLocaleString()} params, ${stepsPerEpoch} steps/epoch, ${totalSteps} steps`,
    );
    return run;
  } catch (e) {
    built?.dispose?.();
    monitor?.close();
    opt?.dispose();
    model.dispose();
    throw e;
  }
}

/**
 * The run's loss log: flushes every `train.logEvery` steps into
 * `metrics.jsonl` (one step record per window, its mean loss), stops on a
 * non-finite loss with `diagnostic.json`, and continues the first / last loss
 * of earlier invocations.
 */
export async function openStepLog(run: PretrainRun): Promise<MetricsLog<PretrainStep>> {
  const { config, options, paths, model } = run;
  const { train } = config;
  const history = (await readMetrics(paths.metrics)).filter((r) => r.type === "step");
  return new MetricsLog<PretrainStep>({
    every: train.logEvery,
    path: paths.metrics,
    records: (w) => [{
      type: "step",
      epoch: w.last.info.epoch,
      step: w.last.info.step,
      loss: w.mean, // logEvery 1: the step's own loss
      lr: w.last.info.lr,
      imagesPerSec: w.imagesPerSec,
      phase: w.last.info.phase,
      masked: w.last.info.masked,
      thrown: w.last.info.thrown,
      visible: w.last.info.visible,
    }],
    onStep: (s) => options.onStep?.(s.info.step, s.loss),
    progress: {
      bar: new Progress(run.totalSteps, "pretrain", undefined, options.quiet),
      total: run.totalSteps,
      since: run.t0,
      status: (w) =>
        `epoch ${w.last.info.epoch + 1}/${train.epochs} loss ${w.last.loss.toFixed(4)} · ${
          w.imagesPerSec.toFixed(0)
        } img/s`,
    },
    diagnosticPath: paths.diagnostic,
    nonFinite: async ({ loss, info }) => {
      const nonFinite = await nonFiniteParams(model);
      const some = nonFinite.length
        ? ` (${nonFinite.slice(0, 3).join(", ")}${nonFinite.length > 3 ? ", ..." : ""})`
        : "";
      return {
        diagnostic: {
          loss: String(loss),
          step: info.step,
          epoch: info.epoch,
          lr: info.lr,
          nonFiniteParams: nonFinite,
        },
        message:
          `loss is ${loss} at step ${info.step} (epoch ${info.epoch + 1}, lr ${
            info.lr.toExponential(2)
          }); stopping. ${nonFinite.length} parameter tensor(s) are non-finite now${some}; ` +
          `details in ${paths.diagnostic}. The last good checkpoint is kept in ${paths.checkpoint}. ` +
          `Lower train.baseLr or set train.clipGrad (e.g. 1.0) and resume.`,
      };
    },
    first: history.length > 0 ? history[0].loss as number : NaN,
    last: history.length > 0 ? history[history.length - 1].loss as number : NaN,
  });
}

/** Names of parameters holding NaN or infinite values. */
async function nonFiniteParams(model: MimModel): Promise<string[]> {
  const out: string[] = [];
  for (const p of model.store.params.values()) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(p.variable))));
    if ((await bad.data())[0]) out.push(p.name);
    bad.dispose();
  }
  return out;
}

/**
 * Write the checkpoint (model, AdamW moments, planner state) after reading
 * the pending losses, so a checkpoint never follows a non-finite loss.
 * `epoch` is the 0-based epoch a resume continues in.
 */
export async function checkpointRun(
  run: PretrainRun,
  metrics: MetricsLog<PretrainStep>,
  epoch: number,
): Promise<void> {
  await metrics.flush();
  const { config, paths, model, opt, planner } = run;
  try {
    await saveCheckpoint(
      paths.checkpoint,
      gatherState(model, opt, planner, {
        globalStep: run.globalStep,
        optimizerStep: opt.step,
        epoch,
        stepsPerEpoch: run.stepsPerEpoch,
        seed: config.run.seed,
        method: config.mim.method,
        planner: planner.name,
      }),
    );
  } catch (e) {
    throw new Error(
      `cannot write checkpoint ${paths.checkpoint}: ${
        (e as Error).message
      }. Free disk space or fix ` +
        `the folder's permissions, then run the same command again: the previous checkpoint is kept.`,
    );
  }
}

/** Dispose what {@linkcode setupPretrain} built (the lock is released separately, last). */
export function closeRun(run: PretrainRun): void {
  run.planner.dispose?.();
  run.monitor?.close();
  run.opt.dispose();
  run.model.dispose();
}
