/**
 * The experiment config tree: every key, its type and its default.
 *
 * Precedence: these defaults → a YAML file in `configs/` → `--section.key=value`
 * overrides. The resolved config is validated, frozen and saved into the run
 * folder as `config.json`.
 *
 * The tree has two parts. The experiment sections (`data` ... `run`,
 * {@linkcode EXPERIMENT_SECTIONS}) say what a pre-training run computes and
 * are what its `config.json` holds. The task sections (`probe`, `finetune`,
 * `knn`, `detect`, {@linkcode TASK_SECTIONS}) are the settings of the
 * evaluation and transfer tasks that read a run; they never change what
 * pre-training computes, and each task saves the experiment sections plus its
 * own into its output folder.
 *
 * @module
 */

import type {
  BackendName,
  BadImagePolicy,
  CountingName,
  DatasetName,
  FinetuneInit,
  HogNormName,
  MethodName,
  NormalizeName,
  PrecisionName,
  ProbeOptimizer,
  SaliencyName,
  StrategyName,
} from "./choices.ts";

/** Dataset selection and preprocessing. */
export interface DataConfig {
  /** fashion-mnist | cifar10 | cifar100 | stl10 | tiny-imagenet | imagenet | image-folder | synthetic */
  name: DatasetName;
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
  onBadImage: BadImagePolicy;
  /**
   * Pixels to model inputs, for every pass of the run (training batches, saliency, features,
   * evaluation): standard ((x / 255 - mean[c]) / std[c], the dataset's statistics, MAE's) |
   * unit (x / 255, no centring).
   */
  normalize: NormalizeName;
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
  /**
   * Register tokens (Darcet et al. 2024): learned tokens after CLS inside the encoder, dropped
   * from its outputs and from the saliency maps (0 = none).
   */
  registers: number;
}

/** The masked-image-modeling method. */
export interface MimConfig {
  /** mae | simmim | maskfeat */
  method: MethodName;
  /** Random-masking ratio (MAE 0.75, SimMIM 0.6, MaskFeat 0.4). */
  maskRatio: number;
  /** Per-patch normalised pixel targets (MAE). */
  normPixLoss: boolean;
  /** SimMIM / MaskFeat mask unit in pixels (0 = the method's). */
  maskUnit: number;
  /** MaskFeat: HOG cell side in px, a divisor of the patch (MaskFeat 8 px in 16 px patches). */
  hogCell: number;
  /** MaskFeat: HOG orientation bins over 180 degrees (MaskFeat 9). */
  hogBins: number;
  /** MaskFeat: Gaussian window side in px over the gradient magnitudes, tiled (0 = off). */
  hogWindow: number;
  /** MaskFeat: L2 normalisation of a patch's HOG: patch (whole vector) | cell (per cell). */
  hogNorm: HogNormName;
}

/** Attention-driven masking and throwing. */
export interface AmtConfig {
  /** Off when "none": plain random masking with mim.maskRatio. */
  strategy: StrategyName; // none | amt | attn-mask | random | random-throw | attn-throw-low
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
  counting: CountingName;
  /** Batch size of the saliency pass. */
  batchSize: number;
  /**
   * Where the maps come from: cls-last (the paper's: last block's CLS attention) | rollout
   * (attention rollout through all blocks) | registers (cls-last with model.registers > 0) |
   * ema-teacher (cls-last of an EMA copy of the encoder) | loss (per-patch reconstruction
   * error under random masks: mask what is hard).
   */
  saliency: SaliencyName;
  /** Use 1 - map (an ablation: the least salient patches become the most likely masked). */
  invert: boolean;
  /** Momentum m of the ema-teacher source: teacher = m * teacher + (1 - m) * encoder per step. */
  emaMomentum: number;
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
  /**
   * Parameter groups without weight decay: auto (the method's: MAE decays its CLS, mask and
   * register tokens, never biases and norms; SimMIM skips tokens too) | none (decay every
   * group) | a comma-separated subset of bias, norm, tokens. Matrices always decay.
   */
  noDecay: string;
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
  /**
   * Matmul precision of every pass of the process (training steps, saliency, features,
   * evaluation): auto (bf16 where the CPU has AVX512_BF16/AMX and oneDNN loads, else fp32) |
   * fp32 | bf16. Master weights, AdamW state, norms, softmax and the loss stay fp32.
   */
  precision: PrecisionName;
}

/** Evaluation during/after pre-training. */
export interface EvalConfig {
  /** kNN monitor every N epochs (0 = off). */
  knnEvery: number;
  knnK: number;
  /**
   * Attention-on-object monitor every N epochs (and after the last; 0 = only with the kNN
   * monitor), on the first `attnImages` training images.
   */
  attnEvery: number;
  /** Training images the attention monitor scores (the first N, un-augmented). */
  attnImages: number;
  /** Comma-separated maps the attention monitor scores: cls-last, rollout. */
  attnSources: string;
}

/** Run bookkeeping. */
export interface RunConfig {
  /** Run folder; "" = runs/<experiment>/<timestamp>. */
  dir: string;
  seed: number;
  /** auto | wasm | cpu | webgpu | tensorflow */
  backend: BackendName;
  /** wasm threads (0 = as many as work). */
  threads: number;
  /** Images in the reconstruction figure. */
  vizImages: number;
  /** Experiment name used in the default run folder. */
  name: string;
}

/** `deno task linprobe`: the linear probe (MAE protocol) on a run's frozen CLS features. */
export interface ProbeConfig {
  /** Evaluation folder; "" = `<RUN_DIR>/linprobe`. */
  dir: string;
  epochs: number;
  /** Peak lr = baseLr * batchSize / 256. */
  baseLr: number;
  batchSize: number;
  /** sgd (momentum 0.9) | lars (MAE's). */
  optimizer: ProbeOptimizer;
  /** Linear lr warm-up in epochs; -1 = epochs / 10. */
  warmupEpochs: number;
  /** First N labelled training / test images (0 = all). */
  trainLimit: number;
  testLimit: number;
  /** Images per feature-extraction pass. */
  featureBatchSize: number;
  /** Also score weighted kNN (k = eval.knnK, T = 0.07) on the same features. */
  knn: boolean;
  /** Read and write the per-checkpoint feature cache `<RUN_DIR>/eval/`. */
  cache: boolean;
  /** Probe init and data order. */
  seed: number;
}

/** `deno task finetune`: fine-tuning the whole encoder with layer-wise lr decay. */
export interface FinetuneConfig {
  /** Evaluation folder; "" = `<RUN_DIR>/finetune` (`finetune-random` for random init). */
  dir: string;
  /** pretrained (the run's checkpoint) | random (the same shape from scratch). */
  init: FinetuneInit;
  epochs: number;
  /** Peak lr = baseLr * batchSize / 256. */
  baseLr: number;
  batchSize: number;
  /** Linear lr warm-up in epochs; -1 = min(5, epochs / 5). */
  warmupEpochs: number;
  /** Layer-wise lr decay; 0 = the method's (MAE 0.75, SimMIM and MaskFeat 0.65); 1 = off. */
  layerDecay: number;
  labelSmoothing: number;
  dropPath: number;
  weightDecay: number;
  /** RandomResizedCrop area range. */
  cropScale: [number, number];
  /** First N labelled training / test images (0 = all). */
  trainLimit: number;
  testLimit: number;
  /** Data order, crops, drop-path and head init. */
  seed: number;
}

/** `deno task knn`: weighted kNN on a run's frozen CLS features (k is `eval.knnK`). */
export interface KnnConfig {
  /** Evaluation folder; "" = `<RUN_DIR>/knn`. */
  dir: string;
  /** Vote temperature: votes are exp(similarity / T). */
  temperature: number;
  /** First N labelled training / test images (0 = all). */
  trainLimit: number;
  testLimit: number;
  featureBatchSize: number;
  cache: boolean;
}

/**
 * `deno task detect`: the paper's Table 3 on generated scenes. A budget
 * (lib/detect/budgets.ts) sets every size; the number keys override it when
 * non-zero, and the detect folder's `config.json` holds the values used.
 */
export interface DetectConfig {
  /** smoke | small (lib/detect/budgets.ts). */
  budget: string;
  /** Comma-separated backbones of Table 3: random, mae, mae-attn, mae-amt. */
  backbones: string;
  /** Detector optimiser steps, batch size and peak lr (0 = the budget's). */
  steps: number;
  batchSize: number;
  lr: number;
  /** Generated training / held-out scenes (0 = the budget's). */
  trainScenes: number;
  valScenes: number;
  /** Where finished `deno task repro` runs are looked for; "" = `runs/repro-<budget>`. */
  reproDir: string;
  /** Pre-training run folders of the backbones ("" = from reproDir, else trained here). */
  maeRun: string;
  maeAttnRun: string;
  maeAmtRun: string;
}

/** The whole tree: the experiment sections, then the task sections. */
export interface Config {
  data: DataConfig;
  model: ModelConfig;
  mim: MimConfig;
  amt: AmtConfig;
  train: TrainConfig;
  eval: EvalConfig;
  run: RunConfig;
  probe: ProbeConfig;
  finetune: FinetuneConfig;
  knn: KnnConfig;
  detect: DetectConfig;
}

/** The sections that say what a pre-training run computes (its `config.json`). */
export const EXPERIMENT_SECTIONS: readonly (keyof Config)[] = Object.freeze<(keyof Config)[]>([
  "data",
  "model",
  "mim",
  "amt",
  "train",
  "eval",
  "run",
]);

/** The sections of the tasks that read a run; a pre-training resume may change any of them. */
export const TASK_SECTIONS: readonly (keyof Config)[] = Object.freeze<(keyof Config)[]>([
  "probe",
  "finetune",
  "knn",
  "detect",
]);

/** Defaults for every key (a short MAE run on embedded Fashion-MNIST, and the tasks' recipes). */
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
      normalize: "standard",
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
      registers: 0,
    },
    mim: {
      method: "mae",
      maskRatio: 0.75,
      normPixLoss: true,
      maskUnit: 0,
      hogCell: 2,
      hogBins: 9,
      hogWindow: 0,
      hogNorm: "patch",
    },
    amt: {
      strategy: "none",
      maskRatio: 0.45,
      throwRatio: 0.40,
      warmup: 40,
      interval: 40,
      counting: "auto",
      batchSize: 256,
      saliency: "cls-last",
      invert: false,
      emaMomentum: 0.996,
    },
    train: {
      epochs: 10,
      batchSize: 64,
      baseLr: 1.5e-4,
      lrBatch: 256,
      minLr: 0,
      warmupEpochs: 1,
      weightDecay: 0.05,
      noDecay: "auto",
      beta1: 0.9,
      beta2: 0.95,
      clipGrad: 0,
      logEvery: 10,
      ckptEvery: 200,
      maxSteps: 0,
      precision: "auto",
    },
    eval: { knnEvery: 0, knnK: 20, attnEvery: 0, attnImages: 256, attnSources: "cls-last" },
    run: { dir: "", seed: 0, backend: "auto", threads: 0, vizImages: 8, name: "mae" },
    probe: {
      dir: "",
      epochs: 30,
      baseLr: 0.1,
      batchSize: 256,
      optimizer: "sgd",
      warmupEpochs: -1,
      trainLimit: 0,
      testLimit: 0,
      featureBatchSize: 128,
      knn: true,
      cache: true,
      seed: 0,
    },
    finetune: {
      dir: "",
      init: "pretrained",
      epochs: 3,
      baseLr: 2e-2,
      batchSize: 32,
      warmupEpochs: -1,
      layerDecay: 0,
      labelSmoothing: 0.1,
      dropPath: 0.1,
      weightDecay: 0.05,
      cropScale: [0.2, 1.0],
      trainLimit: 2048,
      testLimit: 1000,
      seed: 0,
    },
    knn: {
      dir: "",
      temperature: 0.07,
      trainLimit: 10000,
      testLimit: 0,
      featureBatchSize: 128,
      cache: true,
    },
    detect: {
      budget: "smoke",
      backbones: "random,mae,mae-attn,mae-amt",
      steps: 0,
      batchSize: 0,
      lr: 0,
      trainScenes: 0,
      valScenes: 0,
      reproDir: "",
      maeRun: "",
      maeAttnRun: "",
      maeAmtRun: "",
    },
  };
}
