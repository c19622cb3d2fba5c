/**
 * Saliency (the paper's "semantic information extraction"): the CLS row of the
 * last block's attention, without its CLS column, min-max normalised per head,
 * averaged over heads; one map per training image on the patch grid.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, loadBatch } from "../data/mod.ts";
import { FULL_BOX, type Raster } from "../data/types.ts";
import { applyCrop } from "../data/augment.ts";
import { makeRng } from "../util/rng.ts";
import { patchify } from "../vit/patch.ts";
import type { VisionTransformer } from "../vit/vit.ts";

/**
 * Saliency of each patch from a last-block attention tensor.
 *
 * @param attention [B, H, 1+L, 1+L] post-softmax
 * @returns [B, L] in [0, 1]: per-head min-max of `A[:, :, 0, 1:]`, then mean over heads
 */
export function saliencyFromAttention(attention: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, H, T] = attention.shape;
    const L = T - 1;
    const cls = attention.slice([0, 0, 0, 1], [B, H, 1, L]).reshape([B, H, L]); // [B, H, L]
    const lo = tf.min(cls, -1, true); // [B, H, 1]
    const hi = tf.max(cls, -1, true);
    // a head whose CLS row is constant carries no ranking: it contributes 0
    const range = tf.maximum(tf.sub(hi, lo), 1e-12);
    const normed = tf.div(tf.sub(cls, lo), range); // [B, H, L] in [0, 1]
    return tf.mean(normed, 1) as tf.Tensor2D; // [B, L]
  });
}

/** Result of a saliency pass over a dataset. */
export interface SaliencyPass {
  /** [N, L] patch-grid maps in [0, 1], row-major grid. */
  maps: Float32Array;
  seconds: number;
}

/**
 * Run the encoder on all tokens of every (un-augmented, resized) training
 * image, without gradients, and collect each image's patch-grid saliency.
 */
export async function computeSaliency(
  encoder: VisionTransformer,
  dataset: Dataset,
  opts: {
    imageSize: number;
    batchSize: number;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<SaliencyPass> {
  const t0 = performance.now();
  const N = dataset.length;
  const L = encoder.numPatches;
  const p = encoder.shape.patchSize;
  const maps = new Float32Array(N * L);
  for (let start = 0; start < N; start += opts.batchSize) {
    const n = Math.min(opts.batchSize, N - start);
    const indices = Int32Array.from({ length: n }, (_, i) => start + i);
    const batch = await loadBatch(dataset, indices, {
      imageSize: opts.imageSize,
      augment: false,
      rng: makeRng(0, "saliency"),
    });
    const patches = patchify(batch.images, n, opts.imageSize, dataset.channels, p);
    const sal = tf.tidy(() => {
      const x = tf.tensor3d(patches, [n, L, encoder.patchDim]);
      return saliencyFromAttention(encoder.lastAttention(x));
    });
    maps.set((await sal.data()) as Float32Array, start * L);
    sal.dispose();
    opts.onProgress?.(start + n, N);
  }
  return { maps, seconds: (performance.now() - t0) / 1000 };
}

/**
 * One saliency map per training image, kept on the patch grid (compact) and
 * upsampled on use. Starts uniform.
 */
export class SaliencyStore {
  readonly maps: Float32Array;
  /** Epoch (1-based count of finished epochs) of the last update; 0 = never (uniform). */
  updatedAfterEpoch = 0;

  constructor(readonly size: number, readonly grid: number) {
    this.maps = new Float32Array(size * grid * grid).fill(1);
  }

  /** Replace all maps (from {@link computeSaliency}). */
  update(maps: Float32Array, afterEpoch: number): void {
    if (maps.length !== this.maps.length) {
      throw new RangeError(
        `saliency maps have ${maps.length} values, expected ${this.maps.length}`,
      );
    }
    this.maps.set(maps);
    this.updatedAfterEpoch = afterEpoch;
  }

  /** Image `index`'s map on the patch grid, [g, g, 1]. */
  gridMap(index: number): Raster {
    const L = this.grid * this.grid;
    return {
      data: this.maps.subarray(index * L, (index + 1) * L),
      height: this.grid,
      width: this.grid,
      channels: 1,
    };
  }

  /** Image `index`'s map upsampled (bilinear) to `size x size`, values in [0, 1]. */
  imageMap(index: number, size: number): Raster {
    return applyCrop(this.gridMap(index), FULL_BOX, size, size);
  }
}
