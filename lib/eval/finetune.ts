/**
 * End-to-end fine-tuning of a pre-trained encoder for classification, MAE's
 * recipe (`main_finetune.py`) minus RandAugment, mixup and cutmix:
 * CLS token after the final norm → a new linear head (weight ~ N(0, 2e-5)),
 * layer-wise lr decay (0.75 for MAE, 0.65 for SimMIM), label smoothing 0.1,
 * drop-path 0.1, AdamW (beta2 0.999, wd 0.05), linear warm-up then cosine,
 * RandomResizedCrop + flip.
 *
 * Layer ids follow MAE's `get_layer_id_for_vit`: patch embedding and CLS are
 * layer 0, block `i` is layer `i + 1`, the final norm and the head are layer
 * `depth + 1`; a parameter in layer `l` gets `lr * decay^(depth + 1 - l)`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, loadBatch } from "../data/mod.ts";
import { AdamW, lrAt } from "../optim/mod.ts";
import { MetricsLog, type StepInfo } from "../run/mod.ts";
import { hashKeys, makeRng, permutation } from "../util/rng.ts";
import { denseOp } from "../vit/layers.ts";
import { type Param, ParamStore } from "../vit/params.ts";
import { patchify } from "../vit/patch.ts";
import type { VisionTransformer } from "../vit/vit.ts";
import { makeVariables } from "./_tidy.ts";
import {
  accuracy,
  argmaxRows,
  classCount,
  confusionMatrix,
  crossEntropy,
  topKAccuracy,
} from "./metrics.ts";

/** Layer-wise lr decay by pre-training method (the AMT paper's fine-tuning recipes). */
export const LAYER_DECAY: Readonly<Record<string, number>> = Object.freeze({
  mae: 0.75,
  simmim: 0.65,
  maskfeat: 0.65, // MaskFeat's SOLVER.LAYER_DECAY (SlowFast in1k_VIT_B_MaskFeat_FT.yaml)
});

/**
 * MAE's layer id of a ViT parameter name: 0 for `cls_token`, `pos_embed`,
 * `mask_token`, `registers` and `patch_embed.*`; `i + 1` for `blocks.i.*`; `depth + 1`
 * otherwise (final norm, head).
 */
export function layerId(name: string, depth: number): number {
  if (
    /(^|\.)(cls_token|pos_embed|mask_token|registers)$/.test(name) ||
    /(^|\.)patch_embed\./.test(name)
  ) {
    return 0;
  }
  const m = /(^|\.)blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[2]) + 1;
  return depth + 1;
}

/** lr multiplier of layer `layer`: `decay^(depth + 1 - layer)`. */
export function layerDecayScale(layer: number, depth: number, decay: number): number {
  return Math.pow(decay, depth + 1 - layer);
}

/**
 * The encoder's own parameters (patch embedding, CLS, register tokens, a learned position
 * table, blocks, final norm), in store order, found by identity so decoder and mask-token weights are left out.
 */
export function encoderParams(encoder: VisionTransformer): Param[] {
  const mine = new Set<tf.Variable>([
    encoder.patchEmbed.w,
    encoder.patchEmbed.b,
    encoder.cls,
    encoder.norm.gamma,
    encoder.norm.beta,
  ]);
  if (encoder.posEmbed) mine.add(encoder.posEmbed); // a learned table (imported weights)
  if (encoder.registers) mine.add(encoder.registers); // register tokens (model.registers)
  for (const blk of encoder.blocks) {
    for (
      const v of [
        blk.norm1.gamma,
        blk.norm1.beta,
        blk.attn.qkv.w,
        blk.attn.qkv.b,
        blk.attn.proj.w,
        blk.attn.proj.b,
        blk.norm2.gamma,
        blk.norm2.beta,
        blk.mlp.fc1.w,
        blk.mlp.fc1.b,
        blk.mlp.fc2.w,
        blk.mlp.fc2.b,
      ]
    ) mine.add(v);
  }
  const params = [...encoder.store.params.values()].filter((p) => mine.has(p.variable));
  if (params.length !== mine.size) {
    throw new Error(
      `encoderParams: found ${params.length} of the encoder's ${mine.size} variables in its store`,
    );
  }
  return params;
}

/** lr scales of `params` for a ViT of `depth` blocks (head: layer depth + 1, scale 1). */
export function layerDecayScales(params: Param[], depth: number, decay: number): number[] {
  return params.map((p) => layerDecayScale(layerId(p.name, depth), depth, decay));
}

/** A linear classification head on the CLS feature, in its own store. */
export class ClassifierHead {
  readonly store: ParamStore;
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(dim: number, readonly numClasses: number, initStd = 2e-5, seed = 0) {
    this.store = new ParamStore(seed);
    this.w = this.store.create("head.weight", [dim, numClasses], {
      kind: "normal",
      std: initStd,
    }, true);
    this.b = this.store.create("head.bias", [numClasses], { kind: "zeros" }, false);
  }

  /** @param cls [B, D] @returns logits [B, K] */
  apply(cls: tf.Tensor2D): tf.Tensor2D {
    return denseOp(cls, this.w as tf.Tensor2D, this.b as tf.Tensor1D);
  }

  dispose(): void {
    this.store.dispose();
  }
}

/**
 * Class scores of every (un-augmented, resized) image of `ds`, no drop-path,
 * no gradient.
 *
 * @returns scores [N, K] row-major and labels [N]
 */
export async function classifierScores(
  encoder: VisionTransformer,
  head: ClassifierHead,
  ds: Dataset,
  opts: { imageSize: number; batchSize: number },
): Promise<{ scores: Float32Array; labels: Int32Array }> {
  const N = ds.length, K = head.numClasses, L = encoder.numPatches;
  const scores = new Float32Array(N * K);
  const labels = new Int32Array(N);
  const rng = makeRng(0, "eval");
  for (let s = 0; s < N; s += opts.batchSize) {
    const n = Math.min(opts.batchSize, N - s);
    const idx = Int32Array.from({ length: n }, (_, i) => s + i);
    const batch = await loadBatch(ds, idx, { imageSize: opts.imageSize, augment: false, rng });
    const p = patchify(batch.images, n, opts.imageSize, ds.channels, encoder.shape.patchSize);
    const logits = tf.tidy(() =>
      head.apply(encoder.forwardFeatures(tf.tensor3d(p, [n, L, encoder.patchDim])).cls)
    ); // [n, K]
    scores.set((await logits.data()) as Float32Array, s * K);
    logits.dispose();
    labels.set(batch.labels, s);
  }
  return { scores, labels };
}

/** Options of {@link finetune}. */
export interface FinetuneOptions {
  /** Model input side (the encoder's). */
  imageSize: number;
  /** Classes (default: the training set's `numClasses`). */
  numClasses?: number;
  /** Default 3. */
  epochs?: number;
  /** Default 32 (more steps per image on a small budget). */
  batchSize?: number;
  /**
   * Peak lr = baseLr * batchSize / 256 (default 2e-2: 2.5e-3 at batch 32, near MAE's ViT-B
   * peak of 5e-4 * 1024 / 256; short CPU runs need the steps to count).
   */
  baseLr?: number;
  /** Default 1e-6 (MAE). */
  minLr?: number;
  /** Default: a fifth of the epochs, at most 5 (MAE: 5 of 100). */
  warmupEpochs?: number;
  /** Default 0.05. */
  weightDecay?: number;
  /** Default 0.9 / 0.999. */
  beta1?: number;
  beta2?: number;
  /** Gradient-norm clipping (default 0 = off, as MAE's fine-tuning). */
  clipGrad?: number;
  /** Layer-wise lr decay (default 0.75; use {@link LAYER_DECAY} by method; 1 = off). */
  layerDecay?: number;
  /** Default 0.1. */
  labelSmoothing?: number;
  /** Stochastic-depth rate of the last block (default 0.1). */
  dropPath?: number;
  /** Std of the head's initial weights (default 2e-5, MAE's). */
  headInitStd?: number;
  /**
   * RandomResizedCrop area range (default [0.2, 1], as MAE's pre-training: timm's 0.08
   * leaves too little of a 28 px image) and aspect ratios.
   */
  cropScale?: [number, number];
  cropRatio?: [number, number];
  /** Random horizontal flips (default true). */
  flip?: boolean;
  /** Test every N epochs and after the last (default 1). */
  evalEvery?: number;
  /** Images per evaluation pass (default 128). */
  evalBatchSize?: number;
  /** Read losses every N steps (default 10). */
  logEvery?: number;
  /** Data order, crops, drop-path and head init (default 0). */
  seed?: number;
  onStep?: (record: FinetuneStep) => void | Promise<void>;
  onEpoch?: (record: FinetuneEpoch) => void | Promise<void>;
}

/** A logged window of steps. */
export interface FinetuneStep {
  epoch: number;
  step: number;
  /** Mean loss over the window. */
  loss: number;
  lr: number;
  imagesPerSec: number;
}

/** One fine-tuning epoch. */
export interface FinetuneEpoch {
  /** 1-based. */
  epoch: number;
  loss: number;
  lr: number;
  /** Null when not evaluated this epoch. */
  testTop1: number | null;
  seconds: number;
  imagesPerSec: number;
}

/** What fine-tuning measured (accuracies in [0, 1]). */
export interface FinetuneResult {
  top1: number;
  top5: number | null;
  history: FinetuneEpoch[];
  confusion: number[][];
  predictions: Int32Array;
  numClasses: number;
  /** Peak learning rate (before layer scales). */
  lr: number;
  layerDecay: number;
  steps: number;
  seconds: number;
}

/**
 * Fine-tune `encoder` (in place) plus a new head on `train`, scoring top-1 on
 * `test`. The head and optimiser state are created and disposed here; the
 * encoder stays the caller's.
 */
export async function finetune(
  encoder: VisionTransformer,
  train: Dataset,
  test: Dataset,
  opts: FinetuneOptions,
): Promise<FinetuneResult> {
  const t0 = performance.now();
  const { imageSize } = opts;
  const K = opts.numClasses ?? train.numClasses;
  if (!(K >= 2)) {
    throw new RangeError(
      `finetune: ${train.name} reports ${K} classes; pass numClasses (a labelled split is needed)`,
    );
  }
  const epochs = opts.epochs ?? 3;
  const batchSize = opts.batchSize ?? 32;
  if (train.length < batchSize) {
    throw new RangeError(
      `finetune: batchSize ${batchSize} is larger than the ${train.length} training images; ` +
        `lower batchSize or raise the limit`,
    );
  }
  const lr = (opts.baseLr ?? 2e-2) * batchSize / 256;
  const schedule = {
    lr,
    minLr: opts.minLr ?? 1e-6,
    warmupEpochs: opts.warmupEpochs ?? Math.min(5, epochs / 5),
    epochs,
  };
  const layerDecay = opts.layerDecay ?? 0.75;
  const smoothing = opts.labelSmoothing ?? 0.1;
  const dropPath = opts.dropPath ?? 0.1;
  const seed = opts.seed ?? 0;
  const logEvery = Math.max(1, opts.logEvery ?? 10);
  const evalEvery = Math.max(1, opts.evalEvery ?? 1);
  const evalOpts = { imageSize, batchSize: opts.evalBatchSize ?? 128 };
  const L = encoder.numPatches, ppc = encoder.patchDim;
  const depth = encoder.blocks.length;
  const stepsPerEpoch = Math.floor(train.length / batchSize);

  const head = makeVariables(() =>
    new ClassifierHead(encoder.shape.dim, K, opts.headInitStd ?? 2e-5, seed)
  );
  const params = [...encoderParams(encoder), ...head.store.params.values()];
  const opt = makeVariables(() =>
    new AdamW(params, {
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.999,
      eps: 1e-8,
      weightDecay: opts.weightDecay ?? 0.05,
      clipGrad: opts.clipGrad ?? 0,
      lrScales: layerDecayScales(params, depth, layerDecay),
    })
  );
  const history: FinetuneEpoch[] = [];
  let lossSum = 0, lossCount = 0;
  const metrics = new MetricsLog<StepInfo & { epoch: number; lr: number }>({
    every: logEvery,
    nonFinite: (bad) => ({
      message: `finetune: loss is ${bad.windowMean} at step ${bad.windowLast.step}; ` +
        `lower the learning rate (peak ${lr.toPrecision(3)}) or set clipGrad`,
    }),
    onWindow: async (w) => {
      lossSum += w.sum;
      lossCount += w.steps.length;
      await opts.onStep?.({
        epoch: w.last.info.epoch,
        step: w.last.info.step,
        loss: w.mean,
        lr: w.last.info.lr,
        imagesPerSec: w.imagesPerSec,
      });
    },
  });
  let last: { scores: Float32Array; labels: Int32Array } | null = null;
  let step = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const e0 = performance.now();
      metrics.startWindow();
      const order = permutation(train.length, makeRng(seed, "finetune-order", epoch));
      lossSum = 0;
      lossCount = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.subarray(s * batchSize, (s + 1) * batchSize);
        const batch = await loadBatch(train, idx, {
          imageSize,
          augment: true,
          rng: makeRng(seed, "finetune-augment", epoch, s),
          scale: opts.cropScale ?? [0.2, 1],
          ratio: opts.cropRatio ?? [3 / 4, 4 / 3],
          flip: opts.flip ?? true,
        });
        classCount(batch.labels, K, `${train.name} labels`);
        const p = patchify(
          batch.images,
          batchSize,
          imageSize,
          train.channels,
          encoder.shape.patchSize,
        );
        const x = tf.tensor3d(p, [batchSize, L, ppc]); // [B, L, ppc]
        const y = tf.tensor1d(batch.labels, "int32"); // [B]
        const stepLr = lrAt(epoch + s / stepsPerEpoch, schedule);
        const dp = { dropPath, seed: hashKeys(seed, "droppath", epoch, s) };
        const { loss, gradNorm } = opt.minimize(
          () => crossEntropy(head.apply(encoder.forwardFeatures(x, false, dp).cls), y, smoothing),
          stepLr,
        );
        tf.dispose([x, y, gradNorm]);
        step++;
        await metrics.push(loss, { step, images: batchSize, epoch: epoch + 1, lr: stepLr });
      }
      await metrics.flush();
      const trainSeconds = (performance.now() - e0) / 1000;
      let testTop1: number | null = null;
      if ((epoch + 1) % evalEvery === 0 || epoch === epochs - 1) {
        last = await classifierScores(encoder, head, test, evalOpts);
        testTop1 = accuracy(argmaxRows(last.scores, K), last.labels);
      }
      const rec: FinetuneEpoch = {
        epoch: epoch + 1,
        loss: lossSum / Math.max(1, lossCount),
        lr: lrAt(epoch + 1, schedule),
        testTop1,
        seconds: (performance.now() - e0) / 1000,
        imagesPerSec: stepsPerEpoch * batchSize / Math.max(trainSeconds, 1e-9),
      };
      history.push(rec);
      await opts.onEpoch?.(rec);
    }
    last ??= await classifierScores(encoder, head, test, evalOpts);
    const predictions = argmaxRows(last.scores, K);
    return {
      top1: accuracy(predictions, last.labels),
      top5: K > 5 ? topKAccuracy(last.scores, last.labels, 5) : null,
      history,
      confusion: confusionMatrix(predictions, last.labels, K),
      predictions,
      numClasses: K,
      lr,
      layerDecay,
      steps: step,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    metrics.dispose();
    opt.dispose();
    head.dispose();
  }
}
