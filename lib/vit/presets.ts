/**
 * Named ViT shapes, from tiny models for 28-32 px inputs to ViT-S/B at 224.
 *
 * @module
 */

/** Encoder + MIM decoder shape. */
export interface VitShape {
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  decoderDim: number;
  decoderDepth: number;
  decoderHeads: number;
  /**
   * The encoder's position table: `"sincos"` (absent: the fixed 2-D sin-cos table, MAE's) or
   * `"learned"` (a trained `[1, 1+L, D]` parameter, timm's `pos_embed`, e.g. imported weights).
   */
  posEmbed?: PosEmbedKind;
  /**
   * Register tokens (Darcet et al. 2024, "Vision Transformers Need Registers"): learned tokens
   * placed after CLS inside the encoder and dropped from its outputs (absent or 0: none).
   */
  registers?: number;
}

/** How the encoder holds its position table (see {@linkcode VitShape.posEmbed}). */
export type PosEmbedKind = "sincos" | "learned";

/** Presets by name. `channels` is taken from the dataset at build time. */
export const PRESETS: Readonly<Record<string, Omit<VitShape, "channels">>> = Object.freeze({
  // Fashion-MNIST / MNIST-sized inputs: 7x7 = 49 patches.
  "vit-tiny-28": {
    imageSize: 28,
    patchSize: 4,
    dim: 192,
    depth: 6,
    heads: 3,
    mlpRatio: 4,
    decoderDim: 128,
    decoderDepth: 2,
    decoderHeads: 4,
  },
  // A smaller model for quick checks on 28 px inputs.
  "vit-micro-28": {
    imageSize: 28,
    patchSize: 4,
    dim: 96,
    depth: 4,
    heads: 3,
    mlpRatio: 4,
    decoderDim: 64,
    decoderDepth: 1,
    decoderHeads: 2,
  },
  // CIFAR-sized inputs: 8x8 = 64 patches (the benchmark preset).
  "vit-tiny-32": {
    imageSize: 32,
    patchSize: 4,
    dim: 192,
    depth: 6,
    heads: 3,
    mlpRatio: 4,
    decoderDim: 128,
    decoderDepth: 2,
    decoderHeads: 4,
  },
  // STL-10 / Tiny ImageNet at 64 px: 8x8 patches of 8 px.
  "vit-tiny-64": {
    imageSize: 64,
    patchSize: 8,
    dim: 192,
    depth: 12,
    heads: 3,
    mlpRatio: 4,
    decoderDim: 128,
    decoderDepth: 4,
    decoderHeads: 4,
  },
  "vit-small-224": {
    imageSize: 224,
    patchSize: 16,
    dim: 384,
    depth: 12,
    heads: 6,
    mlpRatio: 4,
    decoderDim: 512,
    decoderDepth: 8,
    decoderHeads: 16,
  },
  "vit-base-224": {
    imageSize: 224,
    patchSize: 16,
    dim: 768,
    depth: 12,
    heads: 12,
    mlpRatio: 4,
    decoderDim: 512,
    decoderDepth: 8,
    decoderHeads: 16,
  },
});

/** Valid preset names. */
export const PRESET_NAMES: readonly string[] = Object.freeze(Object.keys(PRESETS));
