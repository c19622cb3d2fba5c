/**
 * The Vision Transformer encoder: patch embedding, CLS token, fixed 2-D sin-cos
 * position embeddings, pre-norm blocks, final LayerNorm.
 *
 * Tokens are embedded from raw patch pixels gathered on the device from a flat
 * `[B*L, p*p*C]` table, so the gather needs no gradient (wasm has none).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Block, LayerNorm, Linear, repeatToken } from "./layers.ts";
import { ParamStore } from "./params.ts";
import { sincosPosEmbed2d } from "./pos_embed.ts";
import { PRESET_NAMES, PRESETS, type VitShape } from "./presets.ts";

/** Shape keys a config may override (0 = keep the preset's value). */
export interface ShapeOverrides {
  preset: string;
  patchSize?: number;
  dim?: number;
  depth?: number;
  heads?: number;
  mlpRatio?: number;
  decoderDim?: number;
  decoderDepth?: number;
  decoderHeads?: number;
}

/**
 * Resolve a preset plus overrides for a dataset's channels and image size.
 * Throws with the offending values when the patch does not divide the image.
 */
export function resolveShape(
  model: ShapeOverrides,
  channels: number,
  imageSize = 0,
): VitShape {
  const preset = PRESETS[model.preset];
  if (!preset) {
    throw new RangeError(
      `model.preset: unknown preset "${model.preset}". Valid presets: ${PRESET_NAMES.join(", ")}`,
    );
  }
  const pick = (v: number | undefined, d: number) => (v && v > 0 ? v : d);
  const shape: VitShape = {
    imageSize: pick(imageSize, preset.imageSize),
    patchSize: pick(model.patchSize, preset.patchSize),
    channels,
    dim: pick(model.dim, preset.dim),
    depth: pick(model.depth, preset.depth),
    heads: pick(model.heads, preset.heads),
    mlpRatio: pick(model.mlpRatio, preset.mlpRatio),
    decoderDim: pick(model.decoderDim, preset.decoderDim),
    decoderDepth: pick(model.decoderDepth, preset.decoderDepth),
    decoderHeads: pick(model.decoderHeads, preset.decoderHeads),
  };
  if (shape.imageSize % shape.patchSize !== 0) {
    const divisors = [];
    for (let p = 2; p <= shape.imageSize / 2; p++) if (shape.imageSize % p === 0) divisors.push(p);
    throw new RangeError(
      `model.patchSize ${shape.patchSize} does not divide data.imageSize ${shape.imageSize}; ` +
        `use one of ${divisors.join(", ")} or change data.imageSize`,
    );
  }
  if (shape.dim % shape.heads !== 0) {
    throw new RangeError(`model.dim ${shape.dim} is not divisible by model.heads ${shape.heads}`);
  }
  if (shape.decoderDim % shape.decoderHeads !== 0) {
    throw new RangeError(
      `model.decoderDim ${shape.decoderDim} is not divisible by model.decoderHeads ${shape.decoderHeads}`,
    );
  }
  return shape;
}

/** Flat row indices `b*L + idx[b, k]` for gathering from a `[B*L, ...]` table. */
export function flatIndices(idx: Int32Array, batch: number, perRow: number, L: number): Int32Array {
  const out = new Int32Array(batch * perRow);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < perRow; k++) out[b * perRow + k] = b * L + idx[b * perRow + k];
  }
  return out;
}

/** A ViT encoder whose weights live in a {@link ParamStore}. */
export class VisionTransformer {
  readonly gridSize: number;
  readonly numPatches: number;
  readonly patchDim: number;
  readonly patchEmbed: Linear;
  readonly cls: tf.Variable;
  /** Fixed sin-cos table, [L, D] (the CLS position is zero, as in MAE). */
  readonly pos: tf.Tensor2D;
  readonly blocks: Block[];
  readonly norm: LayerNorm;

  constructor(readonly store: ParamStore, readonly shape: VitShape, prefix = "encoder") {
    const { imageSize, patchSize, channels, dim, depth, heads, mlpRatio } = shape;
    this.gridSize = imageSize / patchSize;
    this.numPatches = this.gridSize * this.gridSize;
    this.patchDim = patchSize * patchSize * channels;
    this.patchEmbed = new Linear(store, `${prefix}.patch_embed`, this.patchDim, dim);
    this.cls = store.create(
      `${prefix}.cls_token`,
      [1, 1, dim],
      { kind: "normal", std: 0.02 },
      false,
    );
    this.pos = tf.keep(tf.tensor2d(sincosPosEmbed2d(dim, this.gridSize), [this.numPatches, dim]));
    this.blocks = [];
    for (let i = 0; i < depth; i++) {
      this.blocks.push(new Block(store, `${prefix}.blocks.${i}`, dim, heads, mlpRatio));
    }
    this.norm = new LayerNorm(store, `${prefix}.norm`, dim);
  }

  /**
   * Embed a subset of patches and prepend CLS.
   *
   * @param patches [B*L, p*p*C] raw (normalised) patch pixels
   * @param flatIdx [B*K] int32, rows of `patches` to embed (`b*L + i`), or null for all
   * @param posIdx [B*K] int32, patch positions `i` (for the position table), or null for all
   * @returns tokens [B, 1+K, D]
   */
  embed(
    patches: tf.Tensor2D,
    flatIdx: tf.Tensor1D | null,
    posIdx: tf.Tensor1D | null,
    batch: number,
  ): tf.Tensor3D {
    const D = this.shape.dim;
    const picked = flatIdx ? tf.gather(patches, flatIdx) : patches; // [B*K, ppc]
    const K = picked.shape[0] / batch;
    const emb = this.patchEmbed.apply(picked); // [B*K, D]
    // all patches: the [L, D] table broadcasts over the batch (a tile is slow on wasm)
    const x = posIdx
      ? tf.add(emb, tf.gather(this.pos, posIdx)).reshape([batch, K, D])
      : tf.add(emb.reshape([batch, K, D]), this.pos); // [B, K, D]
    const cls = repeatToken(this.cls, batch, 1); // [B, 1, D]
    return tf.concat([cls, x], 1) as tf.Tensor3D; // [B, 1+K, D]
  }

  /**
   * Run the blocks and the final norm.
   *
   * @param x [B, T, D]
   * @param train drop-path rate (maximum, reached by the last block) and seed; omit at eval
   * @returns tokens [B, T, D]; with `keepAttention`, the last block's attention [B, H, T, T]
   */
  forwardTokens(
    x: tf.Tensor3D,
    keepAttention = false,
    train?: { dropPath: number; seed: number },
  ): {
    tokens: tf.Tensor3D;
    attention?: tf.Tensor4D;
  } {
    let h = x;
    let attention: tf.Tensor4D | undefined;
    const depth = this.blocks.length;
    this.blocks.forEach((block, i) => {
      const last = i === depth - 1;
      // drop-path rate grows linearly with depth (timm's stochastic depth decay rule)
      const rate = train && depth > 1 ? train.dropPath * i / (depth - 1) : (train?.dropPath ?? 0);
      const r = block.apply(h, {
        keepAttention: keepAttention && last,
        dropPath: rate,
        seed: (train?.seed ?? 0) * 1000 + 2 * i,
      });
      h = r.out;
      if (r.attention) attention = r.attention;
    });
    return { tokens: this.norm.apply(h) as tf.Tensor3D, attention };
  }

  /**
   * Encode all patches of a batch (no masking), e.g. for probing or saliency.
   *
   * @param patches [B, L, p*p*C]
   * @returns tokens [B, 1+L, D], cls [B, D], and the last attention when asked
   */
  forwardFeatures(
    patches: tf.Tensor3D,
    keepAttention = false,
    train?: { dropPath: number; seed: number },
  ): {
    tokens: tf.Tensor3D;
    cls: tf.Tensor2D;
    attention?: tf.Tensor4D;
  } {
    const B = patches.shape[0];
    const x = this.embed(patches.reshape([B * this.numPatches, this.patchDim]), null, null, B);
    const r = this.forwardTokens(x, keepAttention, train);
    const cls = r.tokens.slice([0, 0, 0], [B, 1, this.shape.dim]).reshape([B, this.shape.dim]);
    return { tokens: r.tokens, cls: cls as tf.Tensor2D, attention: r.attention };
  }

  /**
   * The last block's attention on all patches of a batch, computing only what it needs: the
   * blocks before it, then its norm and q kᵀ (not its values, MLP or the final norm). Equal to
   * `forwardFeatures(patches, true).attention` for about 5/6 of the work at depth 6.
   *
   * @param patches [B, L, p*p*C]
   * @returns [B, H, 1+L, 1+L]
   */
  lastAttention(patches: tf.Tensor3D): tf.Tensor4D {
    const B = patches.shape[0];
    let h = this.embed(patches.reshape([B * this.numPatches, this.patchDim]), null, null, B);
    const n = this.blocks.length;
    for (let i = 0; i < n - 1; i++) h = this.blocks[i].apply(h).out;
    return this.blocks[n - 1].attentionWeights(h);
  }

  dispose(): void {
    this.pos.dispose();
  }
}
