/**
 * Reconstructions for figures, as arrays: a fixed set of images, the plan a
 * planner gives them, and the model's predicted pixels of their masked
 * patches. Drawing them (the plan in colour, the predictions pasted into the
 * image) is `lib/viz`'s `reconstructionRow`. A feature-target model
 * (MaskFeat) predicts HOG instead: then each image carries its masked
 * patches' predicted and target HOG, drawn by `lib/viz`'s `hogRow`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, denormalize, loadBatch } from "../data/mod.ts";
import type { Raster } from "../data/types.ts";
import { makeRng } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import { type ImagePlan, type MaskPlan, type MaskPlanner, planForImage } from "./plan.ts";
import type { FeatureLayout, MimModel } from "./types.ts";

/**
 * Undo per-patch target normalisation using the true patches' statistics, then
 * the dataset normalisation, giving [0, 1] pixels in patch layout.
 *
 * @param pred [K, P] predictions (normalised-target space)
 * @param target [K, P] the true patches (dataset-normalised)
 */
export function predToPixels(
  pred: Float32Array,
  target: Float32Array,
  P: number,
  normPix: boolean,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const out = new Float32Array(pred.length);
  const C = mean.length;
  for (let k = 0; k < pred.length / P; k++) {
    let mu = 0, sd = 1;
    if (normPix) {
      let s = 0, s2 = 0;
      for (let q = 0; q < P; q++) s += target[k * P + q];
      mu = s / P;
      for (let q = 0; q < P; q++) s2 += (target[k * P + q] - mu) ** 2;
      sd = Math.sqrt(s2 / (P - 1) + 1e-6);
    }
    for (let q = 0; q < P; q++) {
      const c = q % C;
      const v = pred[k * P + q] * sd + mu; // dataset-normalised
      out[k * P + q] = Math.min(1, Math.max(0, v * std[c] + mean[c]));
    }
  }
  return out;
}

/** One image of a reconstruction: its pixels, its plan and the predicted pixels of its masked patches. */
export interface Reconstruction {
  /** [S, S, C] the image in [0, 1] (dataset normalisation undone). */
  image: Raster;
  /** The image's patch groups (views into the batch plan). */
  plan: ImagePlan;
  /**
   * [Km, P] predicted pixels in [0, 1] of `plan.masked`, in its order (P = p * p * C); for a
   * feature-target model, its predicted features [Km, F] as they are.
   */
  predicted: Float32Array;
  /** Feature-target models only: [Km, F] the target features of `plan.masked`, in its order. */
  target?: Float32Array;
}

/** What {@linkcode reconstructImages} computed. */
export interface Reconstructions {
  /** One entry per image, dataset indices 0..n-1. */
  images: Reconstruction[];
  /** The batch plan the planner gave those images. */
  plan: MaskPlan;
  /** Model patch size in pixels. */
  patchSize: number;
  /** The feature layout when the model predicts features (MaskFeat's HOG); absent for pixels. */
  features?: FeatureLayout;
}

/**
 * Reconstructs dataset images 0..count-1 (no augmentation) under the plan
 * `planner` gives them at `epoch` (rng `viz-mask` of `seed`): the images, the
 * plan and the predicted pixels of each masked patch, per-patch target
 * normalisation and dataset normalisation undone ({@linkcode predToPixels});
 * for a feature-target model (`model.features`, MaskFeat) the predicted and
 * target features of each masked patch instead, with their layout.
 */
export async function reconstructImages(opts: {
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  imageSize: number;
  count: number;
  seed: number;
  epoch: number;
}): Promise<Reconstructions> {
  const { model, dataset: ds, planner, imageSize: S } = opts;
  const n = Math.min(opts.count, ds.length);
  const indices = Int32Array.from({ length: n }, (_, i) => i);
  const batch = await loadBatch(ds, indices, {
    imageSize: S,
    augment: false,
    rng: makeRng(opts.seed, "viz"),
  });
  const p = model.encoder.shape.patchSize;
  const L = model.encoder.numPatches;
  const P = model.encoder.patchDim;
  const plan = planner.plan(n, L, {
    epoch: opts.epoch,
    step: 0,
    rng: makeRng(opts.seed, "viz-mask"),
    indices: batch.indices,
    boxes: batch.boxes,
    imageSize: S,
    patchSize: p,
  });
  const patchData = patchify(batch.images, n, S, ds.channels, p); // [n * L, P]
  const patches = tf.tensor2d(patchData, [n * L, P]);
  const predT = model.predict(patches, plan); // [n * Km, P], or [n * Km, F] for features
  const pred = (await predT.data()) as Float32Array;
  const feats = model.features;
  const targetT = feats ? tf.tidy(() => feats.compute(patches)) : undefined; // [n * L, F]
  const targets = targetT ? (await targetT.data()) as Float32Array : undefined;
  tf.dispose([patches, predT, targetT]);
  const pixels = denormalize(batch.images, ds.mean, ds.std);
  const images: Reconstruction[] = [];
  const Km = plan.numMasked;
  for (let b = 0; b < n; b++) {
    const image: Raster = {
      data: pixels.subarray(b * S * S * ds.channels, (b + 1) * S * S * ds.channels),
      height: S,
      width: S,
      channels: ds.channels,
    };
    const one = planForImage(plan, b);
    if (feats && targets) {
      const F = feats.dim;
      const target = new Float32Array(Km * F); // [Km, F] the masked patches' target features
      for (let k = 0; k < Km; k++) {
        const i = one.masked[k];
        target.set(targets.subarray((b * L + i) * F, (b * L + i + 1) * F), k * F);
      }
      images.push({
        image,
        plan: one,
        predicted: pred.slice(b * Km * F, (b + 1) * Km * F),
        target,
      });
      continue;
    }
    const target = new Float32Array(Km * P); // [Km, P] the true masked patches
    for (let k = 0; k < Km; k++) {
      const i = one.masked[k];
      target.set(patchData.subarray((b * L + i) * P, (b * L + i + 1) * P), k * P);
    }
    const predicted = predToPixels(
      pred.subarray(b * Km * P, (b + 1) * Km * P),
      target,
      P,
      model.normPixLoss,
      ds.mean,
      ds.std,
    );
    images.push({ image, plan: one, predicted });
  }
  if (!feats) return { images, plan, patchSize: p };
  const { kind, dim, cellsPerSide, cellSize, channels, bins } = feats;
  return {
    images,
    plan,
    patchSize: p,
    features: { kind, dim, cellsPerSide, cellSize, channels, bins },
  };
}
