/**
 * Counted FLOPs (a multiply-add = 2 FLOPs) of MIM training steps and saliency
 * passes, from the model shape and the plan's group sizes. Used for the
 * paper's cost column (Table 2) next to measured wall-clock. The pieces are here
 * (blocks, patch embedding, HOG, the saliency pass); each method composes its step in its
 * registry entry (`methods.ts`: `stepFlops`, `mimForwardFlops`, `mimTrainFlops`).
 *
 * Norms, softmax, GELU and the optimiser are left out: they are linear in the
 * token count and small next to the matrix products.
 *
 * @module
 */
import type { VitShape } from "../vit/presets.ts";

/** Forward FLOPs of one pre-norm block on `T` tokens. */
export function blockFlops(T: number, dim: number, mlpRatio: number): number {
  const D = dim;
  const qkv = 2 * T * D * 3 * D;
  const attention = 2 * 2 * T * T * D; // scores and weighted sum, summed over heads
  const proj = 2 * T * D * D;
  const mlp = 2 * 2 * T * D * Math.round(D * mlpRatio);
  return qkv + attention + proj + mlp;
}

/** Group sizes of a plan (per image). */
export interface PlanSizes {
  masked: number;
  thrown: number;
  visible: number;
}

/** MaskFeat's HOG target settings that change its counted FLOPs (default 2 px cells, 9 bins). */
export interface HogFlopsOptions {
  cellSize?: number;
  bins?: number;
}

/**
 * FLOPs per image of MaskFeat's HOG targets on an `S` px, `C` channel image:
 * per pixel and channel the separable Sobel pair (2 x (3 + 3) multiply-adds),
 * the magnitude (3) and the vote into its cell (1); atan2, the binning and the
 * L2 normalisation are left out like the other element-wise ops.
 */
export function hogFlops(s: VitShape): number {
  return s.imageSize * s.imageSize * s.channels * (2 * 2 * 6 + 3 + 1);
}

/** The parts of one MIM step's forward FLOPs per image (see `MimMethod.stepFlops`). */
export interface StepFlops {
  /** Patch embedding, encoder, decoder and head: what the backward pass runs again (twice). */
  network: number;
  /** Targets computed from the image without gradients (MaskFeat's HOG), else 0. */
  targets: number;
}

/** The patch embedding of the `visible` patches: each a `p*p*C -> D` product. */
export function embedFlops(s: VitShape, visible: number): number {
  return 2 * visible * s.patchSize * s.patchSize * s.channels * s.dim;
}

/** Forward FLOPs per image of a saliency pass (encoder on all L + 1 tokens). */
export function saliencyFlops(s: VitShape): number {
  const L = (s.imageSize / s.patchSize) ** 2;
  return embedFlops(s, L) + s.depth * blockFlops(1 + L, s.dim, s.mlpRatio);
}
