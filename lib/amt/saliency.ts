/**
 * Saliency (the paper's "semantic information extraction"): one map per
 * training image on the patch grid, values in [0, 1], from the un-augmented
 * image. The paper's map (`cls-last`, the default) is the CLS row of the last
 * block's attention over the patch columns, min-max normalised per head,
 * averaged over heads. `amt.saliency` picks another source
 * ({@linkcode SALIENCY_SOURCES}); every source fills the same `[N, L]` maps:
 *
 * | source        | map                                                              | where           |
 * | ------------- | ---------------------------------------------------------------- | --------------- |
 * | `cls-last`    | last block's CLS attention (per-head min-max, head mean)         | here            |
 * | `rollout`     | attention rollout through all blocks, CLS row, min-max           | `rollout.ts`    |
 * | `registers`   | `cls-last` of an encoder with register tokens (patch columns)    | here            |
 * | `ema-teacher` | `cls-last` of an EMA copy of the encoder (`amt.emaMomentum`)     | `teacher.ts`    |
 * | `loss`        | per-patch reconstruction error under random masks, min-max       | `loss_map.ts`   |
 *
 * `amt.invert` stores `1 - map` instead (an ablation: mask the least salient).
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
import { rolloutSaliency } from "./rollout.ts";

import { minMaxRows } from "./_minmax.ts";

export { minMaxRows };

/** Every `amt.saliency` value: where the per-image maps come from (see the module doc). */
export const SALIENCY_SOURCES: readonly [
  "cls-last",
  "rollout",
  "registers",
  "ema-teacher",
  "loss",
] = Object.freeze(["cls-last", "rollout", "registers", "ema-teacher", "loss"] as const);

/** An `amt.saliency` value. */
export type SaliencySource = (typeof SALIENCY_SOURCES)[number];

/** The sources read from one encoder's attention ({@linkcode computeSaliency}). */
export type AttentionSource = "cls-last" | "rollout" | "registers";

/**
 * The maps any encoder gives from its own attention, with no state besides its weights: what
 * the pre-training attention monitor scores (`registers` is `cls-last` on an encoder with
 * register tokens; `ema-teacher` and `loss` need a teacher or a decoder).
 */
export const ENCODER_MAP_SOURCES: readonly ["cls-last", "rollout"] = Object.freeze(
  ["cls-last", "rollout"] as const,
);

/** An {@linkcode ENCODER_MAP_SOURCES} value. */
export type EncoderMapSource = (typeof ENCODER_MAP_SOURCES)[number];

/**
 * Saliency of each patch from a last-block attention tensor.
 *
 * @param attention [B, H, P+L, P+L] post-softmax, tokens `[CLS | registers | patches]`
 * @param prefix P, the tokens before the patches (1 + registers; the encoder's
 *   `prefixTokens`): the CLS row is read over the patch columns only
 * @returns [B, L] in [0, 1]: per-head min-max of `A[:, :, 0, P:]`, then mean over heads
 */
export function saliencyFromAttention(attention: tf.Tensor4D, prefix = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, H, T] = attention.shape;
    const L = T - prefix;
    const cls = attention.slice([0, 0, 0, prefix], [B, H, 1, L]).reshape([B * H, L]); // [B*H, L]
    // per head; a head whose CLS row is constant carries no ranking: it contributes 0
    const normed = minMaxRows(cls as tf.Tensor2D).reshape([B, H, L]); // [B, H, L] in [0, 1]
    return tf.mean(normed, 1) as tf.Tensor2D; // [B, L]
  });
}

/** Result of a saliency pass over a dataset. */
export interface SaliencyPass {
  /** [N, L] patch-grid maps in [0, 1], row-major grid. */
  maps: Float32Array;
  seconds: number;
}

/** What every saliency pass takes. */
export interface SaliencyPassOptions {
  /** Model input side (images are resized to it, not cropped). */
  imageSize: number;
  /** Images per forward pass. */
  batchSize: number;
  /** Store `1 - map` (`amt.invert`). */
  invert?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The loop every source shares: un-augmented batches in dataset order, patchified, one
 * `[n, L]` map per batch from `mapBatch` (in [0, 1]), inverted when asked.
 *
 * @param mapBatch patches `[n*L, p*p*C]` (host, row-major) and the batch's first index → maps
 *   `[n, L]`: a tensor (the loop reads and disposes it) or host values
 */
export async function saliencyOverDataset(
  dataset: Dataset,
  grid: { numPatches: number; patchSize: number },
  opts: SaliencyPassOptions,
  mapBatch: (
    patches: Float32Array,
    n: number,
    start: number,
  ) => tf.Tensor2D | Promise<Float32Array>,
): Promise<SaliencyPass> {
  const t0 = performance.now();
  const N = dataset.length;
  const L = grid.numPatches;
  const maps = new Float32Array(N * L);
  for (let start = 0; start < N; start += opts.batchSize) {
    const n = Math.min(opts.batchSize, N - start);
    const indices = Int32Array.from({ length: n }, (_, i) => start + i);
    const batch = await loadBatch(dataset, indices, {
      imageSize: opts.imageSize,
      augment: false,
      rng: makeRng(0, "saliency"),
    });
    const patches = patchify(batch.images, n, opts.imageSize, dataset.channels, grid.patchSize);
    const sal = mapBatch(patches, n, start);
    if (sal instanceof tf.Tensor) {
      try {
        maps.set((await sal.data()) as Float32Array, start * L);
      } finally {
        sal.dispose();
      }
    } else {
      maps.set(await sal, start * L);
    }
    opts.onProgress?.(start + n, N);
  }
  if (opts.invert) { for (let i = 0; i < maps.length; i++) maps[i] = 1 - maps[i]; }
  return { maps, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Run the encoder on all tokens of every (un-augmented, resized) training
 * image, without gradients, and collect each image's patch-grid saliency from
 * its attention: `cls-last` (default) and `registers` read the last block's CLS
 * row over the patch columns ({@linkcode saliencyFromAttention}), `rollout`
 * multiplies all blocks' attention ({@linkcode rolloutSaliency}).
 *
 * @throws {RangeError} for `registers` on an encoder without register tokens.
 */
export function computeSaliency(
  encoder: VisionTransformer,
  dataset: Dataset,
  opts: SaliencyPassOptions & { source?: AttentionSource },
): Promise<SaliencyPass> {
  const source = opts.source ?? "cls-last";
  if (source === "registers" && encoder.numRegisters === 0) {
    return Promise.reject(
      new RangeError(
        "amt.saliency = registers needs an encoder with register tokens; set model.registers > 0",
      ),
    );
  }
  const L = encoder.numPatches;
  return saliencyOverDataset(
    dataset,
    {
      numPatches: L,
      patchSize: encoder.shape.patchSize,
    },
    opts,
    (patches, n) =>
      tf.tidy(() =>
        encoderSaliency(encoder, tf.tensor3d(patches, [n, L, encoder.patchDim]), source)
      ),
  );
}

/**
 * One batch's maps from an encoder's own attention: `rollout` multiplies all blocks'
 * attention ({@linkcode rolloutSaliency}); `cls-last` and `registers` read the last block's
 * CLS row over the patch columns ({@linkcode saliencyFromAttention}).
 *
 * @param patches [B, L, p*p*C]
 * @returns [B, L] in [0, 1]
 */
export function encoderSaliency(
  encoder: VisionTransformer,
  patches: tf.Tensor3D,
  source: AttentionSource,
): tf.Tensor2D {
  if (source === "rollout") return rolloutSaliency(encoder, patches);
  return saliencyFromAttention(encoder.lastAttention(patches), encoder.prefixTokens);
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
