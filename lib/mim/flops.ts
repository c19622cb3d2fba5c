/**
 * Counted FLOPs (a multiply-add = 2 FLOPs) of MIM training steps and saliency
 * passes, from the model shape and the plan's group sizes. Used for the
 * paper's cost column (Table 2) next to measured wall-clock.
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

/**
 * Forward FLOPs per image of one MIM step.
 *
 * MAE: encoder on CLS + visible; decoder on CLS + visible + masked.
 * SimMIM: encoder on CLS + visible + masked (mask tokens); linear head on masked.
 * MaskFeat: as SimMIM, its linear head predicting F = (p / cell)^2 * C * bins HOG values per
 * masked patch, plus the HOG targets ({@linkcode hogFlops}).
 */
export function mimForwardFlops(
  method: string,
  s: VitShape,
  plan: PlanSizes,
  hog: HogFlopsOptions = {},
): number {
  const ppc = s.patchSize * s.patchSize * s.channels;
  const { masked: Km, visible: Kv } = plan;
  const embed = 2 * Kv * ppc * s.dim;
  if (method === "mae") {
    const enc = s.depth * blockFlops(1 + Kv, s.dim, s.mlpRatio);
    const decEmbed = 2 * (1 + Kv) * s.dim * s.decoderDim;
    const dec = s.decoderDepth * blockFlops(1 + Kv + Km, s.decoderDim, s.mlpRatio);
    const pred = 2 * Km * s.decoderDim * ppc;
    return embed + enc + decEmbed + dec + pred;
  }
  if (method === "simmim") {
    const enc = s.depth * blockFlops(1 + Kv + Km, s.dim, s.mlpRatio);
    return embed + enc + 2 * Km * s.dim * ppc;
  }
  if (method === "maskfeat") {
    const cells = s.patchSize / (hog.cellSize ?? 2);
    const F = cells * cells * s.channels * (hog.bins ?? 9);
    const enc = s.depth * blockFlops(1 + Kv + Km, s.dim, s.mlpRatio);
    return embed + enc + 2 * Km * s.dim * F + hogFlops(s);
  }
  throw new RangeError(`mimForwardFlops: unknown method "${method}"`);
}

/**
 * Training FLOPs per image (forward + backward ~ 3x forward; MaskFeat's HOG
 * targets, which need no backward pass, once).
 */
export function mimTrainFlops(
  method: string,
  s: VitShape,
  plan: PlanSizes,
  hog: HogFlopsOptions = {},
): number {
  const targets = method === "maskfeat" ? hogFlops(s) : 0;
  return 3 * (mimForwardFlops(method, s, plan, hog) - targets) + targets;
}

/** Forward FLOPs per image of a saliency pass (encoder on all L + 1 tokens). */
export function saliencyFlops(s: VitShape): number {
  const L = (s.imageSize / s.patchSize) ** 2;
  const ppc = s.patchSize * s.patchSize * s.channels;
  return 2 * L * ppc * s.dim + s.depth * blockFlops(1 + L, s.dim, s.mlpRatio);
}
