/**
 * The experiment config tree: every key, its type and its default.
 *
 * Precedence: these defaults → a YAML file in `configs/` → `--section.key=value`
 * overrides. The resolved config is validated, frozen and saved into the run
 * folder as `config.json`.
 *
 * @module
 */

/** Dataset selection and preprocessing. */
export interface DataConfig {
  /** fashion-mnist | cifar10 | cifar100 | stl10 | tiny-imagenet | imagenet | image-folder | synthetic */
  name: string;
  /** Folder holding the dataset files; "" means the embedded default (Fashion-MNIST only). */
  root: string;
  /** Split used for pre-training: train | test | unlabeled | train+unlabeled. */
  split: string;
  /** Use only the first N training images (0 = all). */
  limit: number;
  /** Side of the square model input in pixels (0 = the dataset's native size). */
  imageSize: number;
  /** RandomResizedCrop scale range (area fraction). */
  cropScale: [number, number];
  /** RandomResizedCrop aspect-ratio range. */
  cropRatio: [number, number];
  /** Random horizontal flips. */
  flip: boolean;
  /** Image folders: what to do with an unreadable file: "skip" (warn) or "fail". */
  onBadImage: string;
}

/** The ViT encoder/decoder shape. */
export interface ModelConfig {
  /** Named preset (vit-tiny-28, vit-tiny-32, vit-small-224, ...); keys below override it when non-zero. */
  preset: string;
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  decoderDim: number;
  decoderDepth: number;
  decoderHeads: number;
  /**
   * Stochastic depth of the encoder during pre-training (the rate of the last block; timm's
   * linear rule below it). 0 for MAE; SimMIM's release trains with 0.1.
   */
  dropPath: number;
}

/** The masked-image-modeling method. */
export interface MimConfig {
  /** mae | simmim */
  method: string;
  /** Random-masking ratio (MAE 0.75, SimMIM 0.6). */
  maskRatio: number;
  /** Per-patch normalised pixel targets (MAE). */
  normPixLoss: boolean;
  /** SimMIM mask unit in pixels (0 = patch size). */
  maskUnit: number;
}

/** Attention-driven masking and throwing. */
export interface AmtConfig {
  /** Off when "none": plain random masking with mim.maskRatio. */
  strategy: string; // none | amt | attn-mask | random | random-throw | attn-throw-low
  maskRatio: number;
  throwRatio: number;
  /** Epochs of plain random masking before the first saliency pass. */
  warmup: number;
  /** Epochs between saliency passes. */
  interval: number;
  /**
   * How ratios become patch counts, for every strategy (random included): auto (the method's:
   * floor for MAE, ceil for SimMIM) | floor | ceil. `config.json` holds the resolved rule.
   */
  counting: string;
  /** Batch size of the saliency pass. */
  batchSize: number;
}

/** Optimisation. */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  /** lr = baseLr * batchSize / lrBatch */
  baseLr: number;
  /** The batch size baseLr is given for: 256 (MAE, the default) or 512 (SimMIM). */
  lrBatch: number;
  minLr: number;
  warmupEpochs: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Gradient-norm clipping (0 = off). */
  clipGrad: number;
  /** Log loss every N steps. */
  logEvery: number;
  /** Write a checkpoint every N steps (0 = at epoch ends only). */
  ckptEvery: number;
  /** Stop after this many optimiser steps in total (0 = run all epochs). */
  maxSteps: number;
}

/** Evaluation during/after pre-training. */
export interface EvalConfig {
  /** kNN monitor every N epochs (0 = off). */
  knnEvery: number;
  knnK: number;
}

/** Run bookkeeping. */
export interface RunConfig {
  /** Run folder; "" = runs/<experiment>/<timestamp>. */
  dir: string;
  seed: number;
  /** auto | wasm | cpu | webgpu | tensorflow */
  backend: string;
  /** wasm threads (0 = as many as work). */
  threads: number;
  /** Images in the reconstruction figure. */
  vizImages: number;
  /** Experiment name used in the default run folder. */
  name: string;
}

/** The whole experiment. */
export interface Config {
  data: DataConfig;
  model: ModelConfig;
  mim: MimConfig;
  amt: AmtConfig;
  train: TrainConfig;
  eval: EvalConfig;
  run: RunConfig;
}

/** Defaults for every key (a short MAE run on embedded Fashion-MNIST). */
export function defaultConfig(): Config {
  return {
    data: {
      name: "fashion-mnist",
      root: "",
      split: "train",
      limit: 0,
      imageSize: 0,
      cropScale: [0.2, 1.0],
      cropRatio: [3 / 4, 4 / 3],
      flip: true,
      onBadImage: "skip",
    },
    model: {
      preset: "vit-tiny-28",
      patchSize: 0,
      dim: 0,
      depth: 0,
      heads: 0,
      mlpRatio: 0,
      decoderDim: 0,
      decoderDepth: 0,
      decoderHeads: 0,
      dropPath: 0,
    },
    mim: { method: "mae", maskRatio: 0.75, normPixLoss: true, maskUnit: 0 },
    amt: {
      strategy: "none",
      maskRatio: 0.45,
      throwRatio: 0.40,
      warmup: 40,
      interval: 40,
      counting: "auto",
      batchSize: 256,
    },
    train: {
      epochs: 10,
      batchSize: 64,
      baseLr: 1.5e-4,
      lrBatch: 256,
      minLr: 0,
      warmupEpochs: 1,
      weightDecay: 0.05,
      beta1: 0.9,
      beta2: 0.95,
      clipGrad: 0,
      logEvery: 10,
      ckptEvery: 200,
      maxSteps: 0,
    },
    eval: { knnEvery: 0, knnK: 20 },
    run: { dir: "", seed: 0, backend: "auto", threads: 0, vizImages: 8, name: "mae" },
  };
}
