/**
 * The linear-probe experiment on a pre-training run folder: cached features
 * of the labelled train and test splits, the probe, a kNN score on the same
 * features, and an evaluation folder with `metrics.jsonl`, `result.json`,
 * `accuracy.png`, `loss.png` and `confusion.png`.
 *
 * @module
 */
import { loadSavedConfig } from "../config/mod.ts";
import {
  appendMetrics,
  evalPaths,
  formatDuration,
  loadRun,
  Progress,
  runPaths,
} from "../run/mod.ts";
import {
  initEvalBackend,
  pct,
  resetMetrics,
  reusableResult,
  withPrecision,
  writeJson,
  writeTrainingFigures,
} from "./_run.ts";
import type { Dataset } from "../data/mod.ts";
import type { VisionTransformer } from "../vit/vit.ts";
import { type EvalDataConfig, labelledSplits, openEvalSplit } from "./data.ts";
import { cachedFeatures, extractFeatures, type FeatureSet } from "./features.ts";
import { knnClassify } from "./knn.ts";
import { type LinearProbeOptions, trainLinearProbe } from "./linear_probe.ts";

/** Options of {@link runLinearProbe}. */
export interface RunLinearProbeOptions extends Omit<LinearProbeOptions, "onEpoch" | "numClasses"> {
  /** The pre-training run folder (its newest checkpoint is probed). */
  runDir: string;
  /** Matmul precision (`auto` | `fp32` | `bf16`; default: the run's `train.precision`). */
  precision?: string;
  /** Evaluation folder (default `<runDir>/linprobe`). */
  out?: string;
  /** Recompute even when `result.json` exists for the same checkpoint step and recipe. */
  force?: boolean;
  /** First N labelled training images (default 0 = all). */
  trainLimit?: number;
  /** First N test images (default 0 = all). */
  testLimit?: number;
  /** Images per feature-extraction pass (default 128). */
  featureBatchSize?: number;
  /** Keep features in `<runDir>/eval/` keyed by checkpoint step (default true). */
  cache?: boolean;
  /** Also score weighted kNN (k `knnK`, T 0.07) on the same features (default true). */
  knn?: boolean;
  /** kNN neighbours (default: the run's eval.knnK). */
  knnK?: number;
  /** Dataset folder instead of the run's `data.root` (the data moved). */
  dataRoot?: string;
  /** Backend (default: the run's run.backend) and wasm threads (default: the run's). */
  backend?: string;
  threads?: number;
  /** Print nothing. */
  quiet?: boolean;
  /** Write the PNG figures (default true). */
  figures?: boolean;
}

/** What {@link runLinearProbe} returns (accuracies in [0, 1]). */
export interface LinearProbeRun {
  outDir: string;
  /** True when an existing `result.json` for the same checkpoint and recipe was returned as is. */
  skipped: boolean;
  /** The content of `result.json`. */
  result: LinearProbeSummary;
}

/** `result.json` of a linear probe. */
export interface LinearProbeSummary {
  top1: number;
  top5: number | null;
  trainTop1: number;
  knnTop1: number | null;
  runDir: string;
  ckptStep: number;
  method: string;
  strategy: string;
  dataset: string;
  trainImages: number;
  testImages: number;
  featureDim: number;
  numClasses: number;
  epochs: number;
  batchSize: number;
  optimizer: string;
  lr: number;
  confusion: number[][];
  seconds: { features: number; probe: number; knn: number; total: number };
  featuresCached: boolean;
  /** The settings the result depends on (see {@link linearProbeRecipe}); reuse needs an equal one. */
  recipe: LinearProbeRecipe;
  [key: string]: unknown;
}

/**
 * The recipe of a linear probe, as stored in its `result.json`; the kNN keys are
 * null without the kNN score.
 */
export type LinearProbeRecipe = {
  trainImages: number;
  testImages: number;
  featureBatchSize: number;
  epochs: number;
  batchSize: number;
  optimizer: string;
  baseLr: number;
  momentum: number;
  weightDecay: number;
  /** Null with SGD, which does not read it. */
  trustCoefficient: number | null;
  warmupEpochs: number;
  minLr: number;
  seed: number;
  knnK: number | null;
  knnT: number | null;
};

/** kNN vote temperature of the linear probe's kNN score. */
const PROBE_KNN_T = 0.07;

/**
 * The recipe of a linear probe (every setting its numbers depend on, with the
 * defaults of {@link trainLinearProbe} resolved) for `trainImages` and
 * `testImages` labelled images and the run's default kNN neighbours.
 */
export function linearProbeRecipe(
  opts: Omit<RunLinearProbeOptions, "runDir">,
  trainImages: number,
  testImages: number,
  defaultKnnK: number,
): LinearProbeRecipe {
  const epochs = opts.epochs ?? 30;
  const optimizer = opts.optimizer ?? "sgd";
  const knn = opts.knn !== false;
  return {
    trainImages,
    testImages,
    featureBatchSize: opts.featureBatchSize ?? 128,
    epochs,
    batchSize: Math.min(opts.batchSize ?? 256, trainImages),
    optimizer,
    baseLr: opts.baseLr ?? 0.1,
    momentum: opts.momentum ?? 0.9,
    weightDecay: opts.weightDecay ?? 0,
    // only LARS reads the trust coefficient
    trustCoefficient: optimizer === "lars" ? opts.trustCoefficient ?? 0.001 : null,
    warmupEpochs: opts.warmupEpochs ?? epochs / 10,
    minLr: opts.minLr ?? 0,
    seed: opts.seed ?? 0,
    knnK: knn ? opts.knnK ?? defaultKnnK : null,
    knnT: knn ? PROBE_KNN_T : null,
  };
}

/** The labelled train and test splits of a run's dataset. */
export interface LabelledSplits {
  train: Dataset;
  test: Dataset;
}

/**
 * Open the labelled train and test splits of `data` (first `trainLimit` /
 * `testLimit` items, 0 = all). The caller closes them with {@link closeSplits}.
 */
export async function openLabelledSplits(
  data: EvalDataConfig,
  trainLimit = 0,
  testLimit = 0,
): Promise<LabelledSplits> {
  const names = labelledSplits(data.name);
  const train = await openEvalSplit(data, names.train, trainLimit);
  try {
    return { train, test: await openEvalSplit(data, names.test, testLimit) };
  } catch (e) {
    train.close?.();
    throw e;
  }
}

/** Close what {@link openLabelledSplits} opened. */
export function closeSplits(splits: LabelledSplits): void {
  splits.train.close?.();
  splits.test.close?.();
}

/** Options of {@link splitFeatures}. */
export interface SplitFeatureOptions {
  runDir: string;
  /** Checkpoint step of the encoder (the cache key). */
  step: number;
  encoder: VisionTransformer;
  data: EvalDataConfig;
  /** First N labelled training / test images (default 0 = all). */
  trainLimit?: number;
  testLimit?: number;
  /** Images per pass (default 128). */
  featureBatchSize?: number;
  /** Use `<runDir>/eval/` (default true). */
  cache?: boolean;
  quiet?: boolean;
  /**
   * The splits, already opened with the same limits by {@link openLabelledSplits}
   * (left open); by default they are opened and closed here.
   */
  splits?: LabelledSplits;
}

/** Train and test features of a run's dataset. */
export interface SplitFeatures {
  train: FeatureSet;
  test: FeatureSet;
  /** Both came from the cache. */
  cached: boolean;
  numClasses: number;
  classNames?: readonly string[];
  seconds: number;
}

/**
 * CLS features of the labelled train and test splits of `data`, through the
 * per-checkpoint cache, with a progress line.
 */
export async function splitFeatures(opts: SplitFeatureOptions): Promise<SplitFeatures> {
  const t0 = performance.now();
  const { encoder, data } = opts;
  const splits = labelledSplits(data.name);
  const trainLimit = opts.trainLimit ?? 0, testLimit = opts.testLimit ?? 0;
  const opened = opts.splits ?? await openLabelledSplits(data, trainLimit, testLimit);
  const { train: trainDs, test: testDs } = opened;
  try {
    const get = async (split: string, ds: Dataset, limit: number) => {
      const progress = new Progress(ds.length, `features ${split}`, undefined, opts.quiet);
      const s0 = performance.now();
      let last = s0;
      const onProgress = (done: number, total: number) => {
        const now = performance.now();
        if (done < total && now - last < 2000) return;
        last = now;
        const rate = done / ((now - s0) / 1000);
        progress.update(done, `${ds.name} · ${rate.toFixed(0)} img/s`, (total - done) / rate);
      };
      const fo = {
        imageSize: encoder.shape.imageSize,
        batchSize: opts.featureBatchSize ?? 128,
        onProgress,
      };
      const set = opts.cache === false
        ? { ...await extractFeatures(encoder, ds, fo), cached: false }
        : await cachedFeatures(opts.runDir, split, {
          ...fo,
          step: opts.step,
          encoder,
          dataset: ds,
          limit,
        });
      progress.finish();
      return set;
    };
    const train = await get(splits.train, trainDs, trainLimit);
    const test = await get(splits.test, testDs, testLimit);
    return {
      train,
      test,
      cached: train.cached && test.cached,
      numClasses: trainDs.numClasses,
      classNames: trainDs.classNames,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (!opts.splits) closeSplits(opened);
  }
}

/**
 * Linear-probe the newest checkpoint of a pre-training run folder.
 * Idempotent: returns the stored result when `result.json` exists for the same
 * checkpoint step and an equal recipe ({@link linearProbeRecipe}: probe
 * settings, image counts, kNN neighbours...), unless `force`.
 *
 * @example
 * ```ts ignore
 * const { result } = await runLinearProbe({ runDir: "runs/mae/20250101-120000", epochs: 30 });
 * console.log(result.top1);
 * ```
 */
export async function runLinearProbe(opts: RunLinearProbeOptions): Promise<LinearProbeRun> {
  const t0 = performance.now();
  const log = opts.quiet ? () => {} : (s: string) => console.log(s);
  const outDir = opts.out || runPaths(opts.runDir).linprobe;
  const saved = await loadSavedConfig(opts.runDir);
  const precision = await initEvalBackend(opts, saved);
  const { config, model, step, normalization } = await loadRun(opts.runDir);
  let splits: LabelledSplits | null = null;
  try {
    // an imported run's own normalisation replaces the dataset's
    const data = { ...config.data, root: opts.dataRoot ?? config.data.root, ...normalization };
    splits = await openLabelledSplits(data, opts.trainLimit, opts.testLimit);
    const knnK = opts.knnK ?? config.eval.knnK;
    const recipe = withPrecision(
      linearProbeRecipe(opts, splits.train.length, splits.test.length, knnK),
      precision,
    );
    const existing = await reusableResult(outDir, step, opts.force, log, recipe);
    if (existing) {
      return { outDir, skipped: true, result: existing as unknown as LinearProbeSummary };
    }
    const metricsPath = await resetMetrics(outDir);
    const features = await splitFeatures({
      runDir: opts.runDir,
      step,
      encoder: model.encoder,
      data,
      trainLimit: opts.trainLimit,
      testLimit: opts.testLimit,
      featureBatchSize: opts.featureBatchSize,
      cache: opts.cache,
      quiet: opts.quiet,
      splits,
    });
    const featureSeconds = features.seconds;
    log(
      `features: ${features.train.count} train, ${features.test.count} test, dim ${features.train.dim} ` +
        `(${features.cached ? "cached" : formatDuration(featureSeconds)})`,
    );

    const epochs = opts.epochs ?? 30;
    const progress = new Progress(epochs, "linprobe", undefined, opts.quiet);
    const p0 = performance.now();
    const probe = await trainLinearProbe(features.train, features.test, {
      ...opts,
      numClasses: features.numClasses || undefined,
      onEpoch: async (r) => {
        await appendMetrics(metricsPath, [{ type: "epoch", ...r }]);
        const rate = r.epoch / ((performance.now() - p0) / 1000);
        progress.update(
          r.epoch,
          `loss ${r.loss.toFixed(4)} test top-1 ${pct(r.testTop1)}`,
          (epochs - r.epoch) / Math.max(rate, 1e-9),
        );
      },
    });
    progress.finish();

    let knnTop1: number | null = null, knnSeconds = 0;
    if (opts.knn !== false) {
      const r = await knnClassify(
        features.train.features,
        features.train.labels,
        features.test.features,
        features.test.labels,
        { k: knnK, T: PROBE_KNN_T, numClasses: probe.numClasses },
      );
      knnTop1 = r.top1;
      knnSeconds = r.seconds;
    }
    const result: LinearProbeSummary = {
      top1: probe.top1,
      top5: probe.top5,
      trainTop1: probe.trainTop1,
      knnTop1,
      runDir: opts.runDir,
      ckptStep: step,
      method: config.mim.method,
      strategy: config.amt.strategy,
      dataset: config.data.name,
      trainImages: features.train.count,
      testImages: features.test.count,
      featureDim: features.train.dim,
      numClasses: probe.numClasses,
      epochs,
      batchSize: Math.min(opts.batchSize ?? 256, features.train.count),
      optimizer: opts.optimizer ?? "sgd",
      lr: probe.lr,
      confusion: probe.confusion,
      seconds: {
        features: featureSeconds,
        probe: probe.seconds,
        knn: knnSeconds,
        total: (performance.now() - t0) / 1000,
      },
      featuresCached: features.cached,
      recipe,
    };
    if (opts.figures !== false) {
      await writeTrainingFigures(
        outDir,
        `linear probe: ${config.mim.method} ${config.amt.strategy} (${config.data.name})`,
        probe.history,
        {
          title: `linear probe, top-1 ${pct(probe.top1)}`,
          matrix: probe.confusion,
          classNames: features.classNames,
        },
      );
    }
    await writeJson(evalPaths(outDir).result, result);
    log(
      `linear probe ${opts.runDir} (step ${step}): top-1 ${pct(result.top1)}` +
        (result.top5 !== null ? `, top-5 ${pct(result.top5)}` : "") +
        `, train ${pct(result.trainTop1)}` + (knnTop1 !== null ? `, kNN ${pct(knnTop1)}` : "") +
        ` (${formatDuration(result.seconds.total)}) → ${outDir}`,
    );
    return { outDir, skipped: false, result };
  } finally {
    if (splits) closeSplits(splits);
    model.dispose();
  }
}
