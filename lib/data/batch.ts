/**
 * Batch assembly: fetch items, crop/flip/resize them, normalise into one
 * [B, S, S, C] Float32Array ready to upload as a tensor.
 *
 * @module
 */

import { applyCrop, randomResizedCrop } from "./augment.ts";
import { type CropBox, type Dataset, FULL_BOX } from "./types.ts";
import type { Rng } from "../util/rng.ts";

/** A normalised batch and how it was made. */
export interface Batch {
  /** [B, S, S, C] pixels normalised as (x / 255 - mean[c]) / std[c]. */
  images: Float32Array;
  /** Side of every image (S). */
  size: number;
  /** Channels (C). */
  channels: number;
  /** [B] crop boxes applied (normalised source coordinates), to crop saliency maps alike. */
  boxes: CropBox[];
  /** [B] class labels (-1 for unlabeled items). */
  labels: Int32Array;
  /** [B] dataset indices. */
  indices: Int32Array;
}

/** Options of `loadBatch`. */
export interface BatchOptions {
  /** Output side S in pixels. */
  imageSize: number;
  /** RandomResizedCrop (+ flip) when true; a plain resize of the full image when false. */
  augment: boolean;
  /** Draws the crop boxes, in batch order. */
  rng: Rng;
  /** Crop area fraction range (default [0.2, 1], MAE's). */
  scale?: [number, number];
  /** Crop aspect-ratio range (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Random horizontal flips when augmenting (default true). */
  flip?: boolean;
}

/**
 * Loads `indices` from `ds` into one normalised [B, S, S, C] batch. Items are
 * fetched concurrently; crop boxes are drawn afterwards in batch order, so the
 * same rng state gives the same boxes whatever order the reads finish in.
 *
 * @example
 * ```ts
 * import { loadBatch } from "./batch.ts";
 * import { makeSynthetic } from "./synthetic.ts";
 * import { makeRng } from "../util/rng.ts";
 * const ds = makeSynthetic({ count: 8, size: 16 });
 * const b = await loadBatch(ds, [0, 1, 2], { imageSize: 16, augment: true, rng: makeRng(0) });
 * if (b.images.length !== 3 * 16 * 16 * 3) throw new Error("shape");
 * ```
 */
export async function loadBatch(
  ds: Dataset,
  indices: ArrayLike<number>,
  opts: BatchOptions,
): Promise<Batch> {
  const S = opts.imageSize;
  if (!Number.isInteger(S) || S < 1) {
    throw new RangeError(
      `loadBatch: imageSize ${S}: expected a positive integer (resolve 0 to the dataset's native size first)`,
    );
  }
  const C = ds.channels;
  if (ds.mean.length !== C || ds.std.length !== C) {
    throw new Error(
      `${ds.name}: mean/std have ${ds.mean.length}/${ds.std.length} entries, expected ${C} (one per channel)`,
    );
  }
  const B = indices.length;
  const items = await Promise.all(Array.from({ length: B }, (_, b) => ds.get(indices[b])));
  // (x / 255 - mean) / std == x * gain + bias
  const gain = new Float32Array(C);
  const bias = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    gain[c] = 1 / (255 * ds.std[c]);
    bias[c] = -ds.mean[c] / ds.std[c];
  }
  const images = new Float32Array(B * S * S * C);
  const boxes: CropBox[] = [];
  const labels = new Int32Array(B);
  const idx = new Int32Array(B);
  const scale = opts.scale ?? [0.2, 1];
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  const flip = opts.flip ?? true;
  const per = S * S * C;
  for (let b = 0; b < B; b++) {
    const { image, label, index } = items[b];
    if (image.channels !== C) {
      throw new Error(
        `${ds.name}: item ${index} has ${image.channels} channels, expected ${C} (dataset.channels)`,
      );
    }
    const box = opts.augment
      ? randomResizedCrop(opts.rng, image.height, image.width, { scale, ratio, flip })
      : { ...FULL_BOX };
    const crop = applyCrop(image, box, S, S).data; // [S, S, C] in 0..255
    const off = b * per;
    for (let p = 0; p < per; p += C) {
      for (let c = 0; c < C; c++) images[off + p + c] = crop[p + c] * gain[c] + bias[c];
    }
    boxes.push(box);
    labels[b] = label;
    idx[b] = index;
  }
  return { images, size: S, channels: C, boxes, labels, indices: idx };
}

/**
 * Undoes the normalisation: pixels in [0, 1] (clamped) for figures.
 *
 * @param images [..., C] normalised values, C = mean.length
 * @returns same shape, x * std[c] + mean[c] clamped to [0, 1]
 */
export function denormalize(
  images: Float32Array,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const C = mean.length;
  if (std.length !== C || images.length % C !== 0) {
    throw new RangeError(
      `denormalize: ${images.length} values with ${C} means and ${std.length} stds; ` +
        "expected one mean and std per channel and a length divisible by the channel count",
    );
  }
  const out = new Float32Array(images.length);
  for (let p = 0; p < images.length; p += C) {
    for (let c = 0; c < C; c++) {
      const v = images[p + c] * std[c] + mean[c];
      out[p + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}
