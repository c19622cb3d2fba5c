/**
 * Reconstructions for figures: predicted pixels of masked patches pasted into
 * the image, next to the original, the mask plan and the encoder's input.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, denormalize, loadBatch } from "../data/mod.ts";
import type { Raster } from "../data/types.ts";
import { makeRng } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import { maskedImage, pasteReconstruction, planForImage, planImage } from "../viz/mod.ts";
import type { MaskPlan, MaskPlanner } from "./plan.ts";
import type { MimModel } from "./types.ts";

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

/** The rows of a reconstruction figure for a fixed set of images. */
export async function reconstructionRows(opts: {
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  imageSize: number;
  count: number;
  seed: number;
  epoch: number;
}): Promise<{ rows: Raster[][]; plan: MaskPlan }> {
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
  const patchData = patchify(batch.images, n, S, ds.channels, p);
  const patches = tf.tensor2d(patchData, [n * L, P]);
  const predT = model.predict(patches, plan);
  const pred = (await predT.data()) as Float32Array;
  tf.dispose([patches, predT]);
  const pixels = denormalize(batch.images, ds.mean, ds.std);
  const rows: Raster[][] = [];
  const Km = plan.numMasked;
  for (let b = 0; b < n; b++) {
    const image: Raster = {
      data: pixels.subarray(b * S * S * ds.channels, (b + 1) * S * S * ds.channels),
      height: S,
      width: S,
      channels: ds.channels,
    };
    const one = planForImage(plan, b);
    const target = new Float32Array(Km * P);
    for (let k = 0; k < Km; k++) {
      const i = one.masked[k];
      target.set(patchData.subarray((b * L + i) * P, (b * L + i + 1) * P), k * P);
    }
    const px = predToPixels(
      pred.subarray(b * Km * P, (b + 1) * Km * P),
      target,
      P,
      model.normPixLoss,
      ds.mean,
      ds.std,
    );
    const input = maskedImage(image, one.visible, p);
    const recon = pasteReconstruction(
      maskedImage(image, Array.from(one.visible).concat(Array.from(one.masked)), p),
      px,
      one.masked,
      p,
    );
    rows.push([image, planImage(image, one, p), input, recon]);
  }
  return { rows, plan };
}
