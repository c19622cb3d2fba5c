/**
 * The kNN experiment on a pre-training run folder: weighted kNN on the cached
 * CLS features of the labelled train and test splits, into `<runDir>/knn/`
 * (`result.json`, `confusion.png`).
 *
 * @module
 */
import { loadSavedConfig } from "../config/mod.ts";
import { evalPaths, formatDuration, loadRun, runPaths } from "../run/mod.ts";
import {
  initEvalBackend,
  pct,
  reusableResult,
  withPrecision,
  writeConfusionFigure,
  writeJson,
} from "./_run.ts";
import { knnClassify } from "./knn.ts";
import {
  closeSplits,
  type LabelledSplits,
  openLabelledSplits,
  splitFeatures,
} from "./linprobe_run.ts";
import { confusionMatrix } from "./metrics.ts";

/** Options of {@link runKnn}. */
export interface RunKnnOptions {
  runDir: string;
  /** Matmul precision (`auto` | `fp32` | `bf16`; default: the run's `train.precision`). */
  precision?: string;
  /** Default `<runDir>/knn`. */
  out?: string;
  /** Recompute even when `result.json` exists for the same checkpoint step and recipe. */
  force?: boolean;
  /** Neighbours (default: the run's eval.knnK) and temperature (default 0.07). */
  k?: number;
  T?: number;
  /** First N labelled training / test images (default 0 = all). */
  trainLimit?: number;
  testLimit?: number;
  /** Images per feature-extraction pass (default 128). */
  featureBatchSize?: number;
  /** Keep features in `<runDir>/eval/` keyed by checkpoint step (default true). */
  cache?: boolean;
  /** Dataset folder instead of the run's `data.root`. */
  dataRoot?: string;
  backend?: string;
  threads?: number;
  quiet?: boolean;
  figures?: boolean;
}

/** `result.json` of a kNN evaluation (accuracies in [0, 1]). */
export interface KnnSummary {
  top1: number;
  top5: number | null;
  k: number;
  T: number;
  runDir: string;
  ckptStep: number;
  method: string;
  strategy: string;
  dataset: string;
  trainImages: number;
  testImages: number;
  confusion: number[][];
  seconds: { features: number; knn: number; total: number };
  /** The settings the result depends on (see {@link knnRecipe}); reuse needs an equal one. */
  recipe: KnnRecipe;
  [key: string]: unknown;
}

/** The recipe of a kNN evaluation, as stored in its `result.json`. */
export type KnnRecipe = {
  trainImages: number;
  testImages: number;
  featureBatchSize: number;
  k: number;
  T: number;
};

/**
 * The recipe of a kNN evaluation (every setting its numbers depend on, with
 * defaults resolved) for `trainImages` and `testImages` labelled images and
 * the run's default neighbours.
 */
export function knnRecipe(
  opts: Omit<RunKnnOptions, "runDir">,
  trainImages: number,
  testImages: number,
  defaultK: number,
): KnnRecipe {
  return {
    trainImages,
    testImages,
    featureBatchSize: opts.featureBatchSize ?? 128,
    k: opts.k ?? defaultK,
    T: opts.T ?? 0.07,
  };
}

/**
 * Weighted kNN (cosine, `exp(sim / T)` votes) of a run's newest checkpoint.
 * Idempotent: an existing `result.json` for the same checkpoint step and an
 * equal recipe ({@link knnRecipe}: k, T, image counts...) is returned unless `force`.
 */
export async function runKnn(
  opts: RunKnnOptions,
): Promise<{ outDir: string; skipped: boolean; result: KnnSummary }> {
  const t0 = performance.now();
  const log = opts.quiet ? () => {} : (s: string) => console.log(s);
  const outDir = opts.out || runPaths(opts.runDir).knn;
  const saved = await loadSavedConfig(opts.runDir);
  const precision = await initEvalBackend(opts, saved);
  const { config, model, step, normalization } = await loadRun(opts.runDir);
  let splits: LabelledSplits | null = null;
  try {
    // an imported run's own normalisation replaces the dataset's
    const data = { ...config.data, root: opts.dataRoot ?? config.data.root, ...normalization };
    splits = await openLabelledSplits(data, opts.trainLimit, opts.testLimit);
    const recipe = withPrecision(
      knnRecipe(opts, splits.train.length, splits.test.length, config.eval.knnK),
      precision,
    );
    const existing = await reusableResult(outDir, step, opts.force, log, recipe);
    if (existing) return { outDir, skipped: true, result: existing as unknown as KnnSummary };
    const f = await splitFeatures({
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
    const { k, T } = recipe;
    const r = await knnClassify(f.train.features, f.train.labels, f.test.features, f.test.labels, {
      k,
      T,
      numClasses: f.numClasses || undefined,
    });
    const K = r.votes.length / f.test.count;
    const confusion = confusionMatrix(r.predictions, f.test.labels, K);
    const result: KnnSummary = {
      top1: r.top1,
      top5: r.top5,
      k,
      T,
      runDir: opts.runDir,
      ckptStep: step,
      method: config.mim.method,
      strategy: config.amt.strategy,
      dataset: config.data.name,
      trainImages: f.train.count,
      testImages: f.test.count,
      confusion,
      seconds: { features: f.seconds, knn: r.seconds, total: (performance.now() - t0) / 1000 },
      recipe,
    };
    if (opts.figures !== false) {
      await writeConfusionFigure(
        evalPaths(outDir).file("confusion.png"),
        `kNN (k ${k}), top-1 ${pct(r.top1)}`,
        confusion,
        f.classNames,
      );
    }
    await writeJson(evalPaths(outDir).result, result);
    log(
      `kNN ${opts.runDir} (step ${step}, k ${k}, T ${T}): top-1 ${pct(r.top1)}` +
        (r.top5 !== null ? `, top-5 ${pct(r.top5)}` : "") +
        ` (${formatDuration(result.seconds.total)}) → ${outDir}`,
    );
    return { outDir, skipped: false, result };
  } finally {
    if (splits) closeSplits(splits);
    model.dispose();
  }
}
