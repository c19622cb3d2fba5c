/**
 * The fine-tuning experiment: from a pre-training run folder's newest
 * checkpoint, or from random initialisation (the baseline), into an
 * evaluation folder with `metrics.jsonl`, `result.json`, `accuracy.png`,
 * `loss.png` and `confusion.png`.
 *
 * @module
 */
import { type Config, loadSavedConfig } from "../config/mod.ts";
import type { MimModel } from "../mim/types.ts";
import {
  appendMetrics,
  buildModel,
  evalPaths,
  formatDuration,
  loadRun,
  modelImageSize,
  Progress,
  readRunInfo,
  runNormalization,
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
import { labelledSplits, openEvalSplit } from "./data.ts";
import { finetune, type FinetuneOptions, LAYER_DECAY } from "./finetune.ts";

/** Options of {@link runFinetune}. */
export interface RunFinetuneOptions
  extends Omit<FinetuneOptions, "imageSize" | "numClasses" | "onStep" | "onEpoch"> {
  /** Pre-training run folder: its config, and its weights unless `init` is "random". */
  runDir?: string;
  /** Matmul precision (`auto` | `fp32` | `bf16`; default: the run's `train.precision`). */
  precision?: string;
  /** Experiment config for a random-init baseline without a run folder. */
  config?: Readonly<Config>;
  /** "pretrained" (default with a runDir) or "random". */
  init?: "pretrained" | "random";
  /** Evaluation folder (default `<runDir>/finetune`, `<runDir>/finetune-random` for random init). */
  out?: string;
  /** Recompute even when `result.json` exists for the same checkpoint step and recipe. */
  force?: boolean;
  /** First N labelled training images (default 0 = all). */
  limit?: number;
  /** First N test images (default 0 = all). */
  testLimit?: number;
  /** Dataset folder instead of the config's `data.root`. */
  dataRoot?: string;
  /** Backend and wasm threads (default: the config's). */
  backend?: string;
  threads?: number;
  quiet?: boolean;
  /** Write the PNG figures (default true). */
  figures?: boolean;
}

/** `result.json` of a fine-tuning run. */
export interface FinetuneSummary {
  top1: number;
  top5: number | null;
  init: "pretrained" | "random";
  runDir: string | null;
  ckptStep: number;
  method: string;
  strategy: string;
  dataset: string;
  trainImages: number;
  testImages: number;
  epochs: number;
  batchSize: number;
  /** The base lr asked for (lr = baseLr * batch / 256), or null for the default. */
  baseLr: number | null;
  lr: number;
  layerDecay: number;
  labelSmoothing: number;
  dropPath: number;
  history: { epoch: number; loss: number; testTop1: number | null }[];
  confusion: number[][];
  seconds: number;
  /** The settings the result depends on (see {@link finetuneRecipe}); reuse needs an equal one. */
  recipe: FinetuneRecipe;
  [key: string]: unknown;
}

/** The recipe of a fine-tuning run, as stored in its `result.json`. */
export type FinetuneRecipe = {
  init: "pretrained" | "random";
  trainImages: number;
  testImages: number;
  epochs: number;
  batchSize: number;
  baseLr: number;
  minLr: number;
  warmupEpochs: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  clipGrad: number;
  layerDecay: number;
  labelSmoothing: number;
  dropPath: number;
  headInitStd: number;
  cropScale: [number, number];
  cropRatio: [number, number];
  flip: boolean;
  seed: number;
};

/**
 * The recipe of a fine-tuning run (every setting its numbers depend on, with
 * the defaults of {@link finetune} resolved; `layerDecay` by pre-training
 * method) for `trainImages` and `testImages` labelled images.
 */
export function finetuneRecipe(
  opts: Omit<RunFinetuneOptions, "runDir" | "config">,
  init: "pretrained" | "random",
  method: string,
  trainImages: number,
  testImages: number,
): FinetuneRecipe {
  const epochs = opts.epochs ?? 3;
  return {
    init,
    trainImages,
    testImages,
    epochs,
    batchSize: opts.batchSize ?? 32,
    baseLr: opts.baseLr ?? 2e-2,
    minLr: opts.minLr ?? 1e-6,
    warmupEpochs: opts.warmupEpochs ?? Math.min(5, epochs / 5),
    weightDecay: opts.weightDecay ?? 0.05,
    beta1: opts.beta1 ?? 0.9,
    beta2: opts.beta2 ?? 0.999,
    clipGrad: opts.clipGrad ?? 0,
    layerDecay: opts.layerDecay ?? LAYER_DECAY[method] ?? 0.75,
    labelSmoothing: opts.labelSmoothing ?? 0.1,
    dropPath: opts.dropPath ?? 0.1,
    headInitStd: opts.headInitStd ?? 2e-5,
    cropScale: opts.cropScale ?? [0.2, 1],
    cropRatio: opts.cropRatio ?? [3 / 4, 4 / 3],
    flip: opts.flip ?? true,
    seed: opts.seed ?? 0,
  };
}

/** What {@link runFinetune} returns. */
export interface FinetuneRun {
  outDir: string;
  skipped: boolean;
  result: FinetuneSummary;
}

/**
 * Fine-tune a run's encoder (or a randomly initialised one of the same shape)
 * and write an evaluation folder. Idempotent: an existing `result.json` for
 * the same checkpoint step and an equal recipe ({@link finetuneRecipe}: init,
 * image counts, epochs, lr...) is returned unless `force`.
 *
 * @example
 * ```ts ignore
 * const { result } = await runFinetune({ runDir: "runs/mae/x", epochs: 3, limit: 2048 });
 * ```
 */
export async function runFinetune(opts: RunFinetuneOptions): Promise<FinetuneRun> {
  const t0 = performance.now();
  const log = opts.quiet ? () => {} : (s: string) => console.log(s);
  const init = opts.init ?? (opts.runDir ? "pretrained" : "random");
  if (init === "pretrained" && !opts.runDir) {
    throw new RangeError('runFinetune: init "pretrained" needs runDir (a pre-training run folder)');
  }
  const saved = opts.runDir ? await loadSavedConfig(opts.runDir) : opts.config;
  if (!saved) throw new RangeError("runFinetune: give runDir or config");
  const paths = opts.runDir ? runPaths(opts.runDir) : null;
  const outDir = opts.out ||
    (paths ? (init === "random" ? paths.finetuneRandom : paths.finetune) : "");
  if (!outDir) throw new RangeError("runFinetune: a random-init run without runDir needs `out`");
  const precision = await initEvalBackend(opts, saved);

  // an imported run's own normalisation replaces the dataset's
  const normalization = opts.runDir ? runNormalization(await readRunInfo(opts.runDir)) : undefined;
  const data = { ...saved.data, root: opts.dataRoot ?? saved.data.root, ...normalization };
  const splits = labelledSplits(data.name);
  const train = await openEvalSplit(data, splits.train, opts.limit ?? 0);
  const test = await openEvalSplit(data, splits.test, opts.testLimit ?? 0);
  let model: MimModel;
  let step = 0;
  let config = saved;
  if (init === "pretrained") {
    const run = await loadRun(opts.runDir!);
    model = run.model;
    step = run.step;
    config = run.config;
  } else {
    model = buildModel(saved, train.channels, modelImageSize(saved));
  }
  try {
    const base = finetuneRecipe(opts, init, config.mim.method, train.length, test.length);
    const { epochs, batchSize, layerDecay } = base;
    const recipe = withPrecision(base, precision);
    const existing = await reusableResult(outDir, step, opts.force, log, recipe);
    if (existing) {
      return { outDir, skipped: true, result: existing as unknown as FinetuneSummary };
    }
    const metricsPath = await resetMetrics(outDir);
    const total = epochs * Math.floor(train.length / batchSize);
    log(
      `finetune (${init}) ${
        opts.runDir ?? ""
      } step ${step}: ${train.name} ${train.length} train, ` +
        `${test.name} ${test.length} test, ${epochs} epochs, layer decay ${layerDecay}`,
    );
    const progress = new Progress(total, "finetune", undefined, opts.quiet);
    const r = await finetune(model.encoder, train, test, {
      ...opts,
      imageSize: model.encoder.shape.imageSize,
      numClasses: train.numClasses || undefined,
      layerDecay,
      onStep: async (s) => {
        await appendMetrics(metricsPath, [{ type: "step", ...s }]);
        const rate = s.step / ((performance.now() - t0) / 1000);
        progress.update(
          s.step,
          `epoch ${s.epoch}/${epochs} loss ${s.loss.toFixed(4)} · ${
            s.imagesPerSec.toFixed(0)
          } img/s`,
          (total - s.step) / Math.max(rate, 1e-9),
        );
      },
      onEpoch: async (e) => {
        await appendMetrics(metricsPath, [{ type: "epoch", ...e }]);
        progress.finish();
        log(
          `epoch ${e.epoch}/${epochs} loss ${e.loss.toFixed(4)} test top-1 ${pct(e.testTop1)} ` +
            `(${formatDuration(e.seconds)})`,
        );
      },
    });
    progress.finish();
    const result: FinetuneSummary = {
      top1: r.top1,
      top5: r.top5,
      init,
      runDir: opts.runDir ?? null,
      ckptStep: step,
      method: config.mim.method,
      strategy: config.amt.strategy,
      dataset: data.name,
      trainImages: train.length,
      testImages: test.length,
      epochs,
      batchSize,
      baseLr: opts.baseLr ?? null,
      lr: r.lr,
      layerDecay: r.layerDecay,
      labelSmoothing: opts.labelSmoothing ?? 0.1,
      dropPath: opts.dropPath ?? 0.1,
      history: r.history.map((h) => ({ epoch: h.epoch, loss: h.loss, testTop1: h.testTop1 })),
      confusion: r.confusion,
      seconds: (performance.now() - t0) / 1000,
      recipe,
    };
    if (opts.figures !== false) {
      await writeTrainingFigures(
        outDir,
        `fine-tune (${init}): ${config.mim.method} ${config.amt.strategy} (${data.name})`,
        r.history,
        {
          title: `fine-tune, top-1 ${pct(r.top1)}`,
          matrix: r.confusion,
          classNames: train.classNames,
        },
      );
    }
    await writeJson(evalPaths(outDir).result, result);
    log(
      `fine-tune (${init}): top-1 ${pct(r.top1)}` +
        (r.top5 !== null ? `, top-5 ${pct(r.top5)}` : "") +
        ` (${formatDuration(result.seconds)}) → ${outDir}`,
    );
    return { outDir, skipped: false, result };
  } finally {
    model.dispose();
    train.close?.();
    test.close?.();
  }
}
