/**
 * "Attention on the object": the share of an image's CLS-attention saliency
 * that falls on the object, for datasets with object masks (synthetic:
 * `objectMask(i)`; others: pixels brighter than a threshold, which suits
 * Fashion-MNIST's dark background).
 *
 * The saliency is AMT's (`saliencyFromAttention`: last block, CLS row, per-head
 * min-max, mean over heads) on the un-augmented image, or another map an encoder gives from
 * its own attention (`source: "rollout"`). Per patch `i` with
 * saliency `s_i` and object fraction `f_i` (share of its pixels on the
 * object), the share is `sum_i s_i f_i / sum_i s_i`: the saliency mass on
 * object pixels when the map is spread evenly over each patch (a
 * nearest-neighbour upsampling). A uniform map scores the object's area
 * fraction, which is the chance level to compare against.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttentionSource, encoderSaliency } from "../amt/saliency.ts";
import { applyCrop } from "../data/augment.ts";
import { type Dataset, FULL_BOX, loadBatch, type Raster } from "../data/mod.ts";
import { makeRng } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import type { VisionTransformer } from "../vit/vit.ts";
import { barChart, lineChart, svgToPng } from "../viz/mod.ts";

/**
 * Fraction of each patch's pixels on the object.
 *
 * @param mask [H, W, 1] object mask, 1 (or any value > 0.5 after resizing) on the object
 * @returns [L] row-major over the `(S/p) x (S/p)` grid, values in [0, 1]
 */
export function patchObjectFraction(
  mask: Raster,
  imageSize: number,
  patchSize: number,
): Float32Array {
  if (imageSize % patchSize !== 0) {
    throw new RangeError(`patchObjectFraction: patch ${patchSize} does not divide ${imageSize}`);
  }
  const m = mask.height === imageSize && mask.width === imageSize
    ? mask.data
    : applyCrop(mask, FULL_BOX, imageSize, imageSize).data; // bilinear
  const C = mask.channels;
  const g = imageSize / patchSize;
  const out = new Float32Array(g * g);
  for (let y = 0; y < imageSize; y++) {
    for (let x = 0; x < imageSize; x++) {
      if (m[(y * imageSize + x) * C] > 0.5) {
        out[Math.floor(y / patchSize) * g + Math.floor(x / patchSize)]++;
      }
    }
  }
  for (let i = 0; i < out.length; i++) out[i] /= patchSize * patchSize;
  return out;
}

/**
 * Share of saliency mass on the object: `sum s_i f_i / sum s_i`. An all-zero
 * map counts as uniform (the object's area fraction).
 *
 * @param saliency [L] non-negative
 * @param objectFraction [L] in [0, 1]
 */
export function objectShare(
  saliency: ArrayLike<number>,
  objectFraction: ArrayLike<number>,
): number {
  if (saliency.length !== objectFraction.length) {
    throw new RangeError(
      `objectShare: ${saliency.length} saliency values for ${objectFraction.length} patches`,
    );
  }
  let on = 0, all = 0, area = 0;
  for (let i = 0; i < saliency.length; i++) {
    on += saliency[i] * objectFraction[i];
    all += saliency[i];
    area += objectFraction[i];
  }
  return all > 0 ? on / all : area / saliency.length;
}

/** A dataset that knows its object masks (e.g. `SyntheticDataset`). */
interface WithMasks {
  objectMask(i: number): Raster;
}

function hasMasks(ds: Dataset): ds is Dataset & WithMasks {
  return typeof (ds as Partial<WithMasks>).objectMask === "function";
}

/**
 * The object mask of item `i`: the dataset's own when it has `objectMask`,
 * else pixels whose mean over channels exceeds `threshold` (in [0, 1] units).
 */
export async function objectMaskOf(ds: Dataset, i: number, threshold = 0.1): Promise<Raster> {
  if (hasMasks(ds)) return ds.objectMask(i);
  const { image } = await ds.get(i);
  const { height, width, channels: C, data } = image;
  const scale = data instanceof Uint8Array ? 1 / 255 : 1;
  const out = new Uint8Array(height * width);
  for (let p = 0; p < height * width; p++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += data[p * C + c];
    out[p] = (s / C) * scale > threshold ? 1 : 0;
  }
  return { data: out, height, width, channels: 1 };
}

/** Options of {@link attentionOnObject}. */
export interface AttentionOnObjectOptions {
  /** Model input side. */
  imageSize: number;
  /** Default 128. */
  batchSize?: number;
  /** First N items (default 0 = all). */
  limit?: number;
  /** Background threshold for datasets without masks (default 0.1). */
  threshold?: number;
  /** Custom mask source (overrides the dataset's). */
  maskOf?: (i: number) => Raster | Promise<Raster>;
  /** Which map is scored (default `cls-last`, AMT's). */
  source?: AttentionSource;
  /** Return the maps of the first K images as well (default 0). */
  keepMaps?: number;
}

/** Attention-on-object scores of a dataset (shares in [0, 1]). */
export interface AttentionOnObject {
  /** Mean share of saliency on the object. */
  mean: number;
  /** [N] per image. */
  perImage: Float32Array;
  /** Mean object area fraction: what a uniform map scores. */
  areaFraction: number;
  /** [N] object area fraction per image. */
  perImageArea: Float32Array;
  /** [K, L] the maps of the first `keepMaps` images (row-major patch grid, in [0, 1]). */
  maps: Float32Array;
  seconds: number;
}

/**
 * Share of CLS-attention saliency on the object for the first `limit` images
 * of `ds` (un-augmented, resized), with `encoder` in eval mode.
 */
export async function attentionOnObject(
  encoder: VisionTransformer,
  ds: Dataset,
  opts: AttentionOnObjectOptions,
): Promise<AttentionOnObject> {
  const t0 = performance.now();
  const { imageSize } = opts;
  const bs = opts.batchSize ?? 128;
  const N = opts.limit && opts.limit > 0 ? Math.min(opts.limit, ds.length) : ds.length;
  const L = encoder.numPatches, p = encoder.shape.patchSize;
  const perImage = new Float32Array(N);
  const perImageArea = new Float32Array(N);
  const source = opts.source ?? "cls-last";
  const K = Math.min(N, Math.max(0, opts.keepMaps ?? 0));
  const kept = new Float32Array(K * L);
  const rng = makeRng(0, "attention");
  for (let s = 0; s < N; s += bs) {
    const n = Math.min(bs, N - s);
    const idx = Int32Array.from({ length: n }, (_, i) => s + i);
    const batch = await loadBatch(ds, idx, { imageSize, augment: false, rng });
    const patches = patchify(batch.images, n, imageSize, ds.channels, p);
    // the CLS row over the patch columns (register tokens, if any, are left out)
    const sal = tf.tidy(() =>
      encoderSaliency(encoder, tf.tensor3d(patches, [n, L, encoder.patchDim]), source)
    ); // [n, L]
    const maps = (await sal.data()) as Float32Array;
    sal.dispose();
    const keep = Math.max(0, Math.min(n, K - s));
    if (keep > 0) kept.set(maps.subarray(0, keep * L), s * L);
    for (let b = 0; b < n; b++) {
      const mask = opts.maskOf
        ? await opts.maskOf(s + b)
        : await objectMaskOf(ds, s + b, opts.threshold);
      const frac = patchObjectFraction(mask, imageSize, p);
      perImage[s + b] = objectShare(maps.subarray(b * L, (b + 1) * L), frac);
      perImageArea[s + b] = frac.reduce((a, v) => a + v, 0) / L;
    }
  }
  const mean = (a: Float32Array) => (a.length ? a.reduce((x, v) => x + v, 0) / a.length : NaN);
  return {
    mean: mean(perImage),
    perImage,
    areaFraction: mean(perImageArea),
    perImageArea,
    maps: kept,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** One method's attention-on-object score, optionally over pre-training epochs. */
export interface AttentionOnObjectEntry {
  name: string;
  /** Mean share in [0, 1]. */
  mean: number;
  /** Object area fraction (the uniform-map level). */
  areaFraction?: number;
  /** Shares over pre-training, for a line chart. */
  curve?: { epoch: number; mean: number }[];
}

/**
 * Write the attention-on-object figure (PNG): a line chart of share (%) over
 * epochs when every entry has a curve, else a bar chart per method with the
 * uniform-map level beside it.
 */
export async function attentionOnObjectFigure(
  entries: readonly AttentionOnObjectEntry[],
  path: string,
  opts: { title?: string } = {},
): Promise<void> {
  if (entries.length === 0) throw new RangeError("attentionOnObjectFigure: no entries");
  const title = opts.title ?? "CLS attention on the object";
  let svg: string;
  if (entries.every((e) => e.curve && e.curve.length > 0)) {
    svg = await lineChart({
      title,
      xLabel: "pre-training epoch",
      yLabel: "saliency on object (%)",
      series: entries.map((e) => ({
        name: e.name,
        x: e.curve!.map((c) => c.epoch),
        y: e.curve!.map((c) => 100 * c.mean),
      })),
    });
  } else {
    const series = [{ name: "attention on object", values: entries.map((e) => 100 * e.mean) }];
    if (entries.some((e) => e.areaFraction !== undefined)) {
      series.push({
        name: "uniform map (object area)",
        values: entries.map((e) => (e.areaFraction === undefined ? NaN : 100 * e.areaFraction)),
      });
    }
    svg = await barChart({
      title,
      yLabel: "saliency on object (%)",
      groups: entries.map((e) => e.name),
      series: series.map((s) => ({
        name: s.name,
        values: s.values.map((v) => (Number.isFinite(v) ? v : null)),
      })),
    });
  }
  await svgToPng(svg, path);
}
