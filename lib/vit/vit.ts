/**
 * The Vision Transformer encoder: patch embedding, CLS token, position
 * embeddings (the fixed 2-D sin-cos table, or a learned one for `shape.posEmbed:
 * "learned"`), pre-norm blocks, final LayerNorm.
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
  /** Register tokens after CLS (0 = none). */
  registers?: number;
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
  const registers = model.registers ?? 0;
  if (!(Number.isInteger(registers) && registers >= 0)) {
    throw new RangeError(`model.registers ${registers}: expected a whole number >= 0`);
  }
  if (registers > 0) shape.registers = registers; // absent = none: older shapes stay equal
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
  /**
   * The fixed sin-cos table, [L, D] (the CLS position is zero, as in MAE). The forward adds
   * {@linkcode patchPos}: this table, or the learned one when {@linkcode posEmbed} is set.
   */
  readonly pos: tf.Tensor2D;
  /**
   * The learned position table `[1, 1+L, D]` (timm's `pos_embed`: the CLS position first, then
   * the patches row-major), a parameter `<prefix>.pos_embed` without weight decay; null for
   * the fixed sin-cos table.
   */
  readonly posEmbed: tf.Variable | null;
  /**
   * Register tokens `[1, N, D]` (`shape.registers`), a parameter `<prefix>.registers`: inside
   * the blocks after CLS, without a position, dropped from every output; null when N is 0.
   */
  readonly registers: tf.Variable | null;
  /** Number of register tokens N. */
  readonly numRegisters: number;
  /**
   * Tokens before the patches inside the blocks, `1 + N` (CLS, then the registers): attention
   * maps are `[B, H, prefixTokens + K, prefixTokens + K]` and their patch columns start here.
   */
  readonly prefixTokens: number;
  /** Name prefix of the parameters (`encoder`): a copy with the same names mirrors them. */
  readonly prefix: string;
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
    this.prefix = prefix;
    this.numRegisters = shape.registers ?? 0;
    this.prefixTokens = 1 + this.numRegisters;
    this.registers = this.numRegisters > 0
      ? store.create(`${prefix}.registers`, [1, this.numRegisters, dim], {
        kind: "normal",
        std: 0.02,
      }, false)
      : null;
    this.pos = tf.keep(tf.tensor2d(sincosPosEmbed2d(dim, this.gridSize), [this.numPatches, dim]));
    this.posEmbed = (shape.posEmbed ?? "sincos") === "learned"
      ? store.create(`${prefix}.pos_embed`, [1, 1 + this.numPatches, dim], {
        kind: "normal",
        std: 0.02,
      }, false)
      : null;
    this.blocks = [];
    for (let i = 0; i < depth; i++) {
      this.blocks.push(new Block(store, `${prefix}.blocks.${i}`, dim, heads, mlpRatio));
    }
    this.norm = new LayerNorm(store, `${prefix}.norm`, dim);
  }

  /**
   * The position table the forward adds to the patch tokens, [L, D]: the fixed sin-cos table,
   * or rows 1.. of the learned one (a new tensor: call inside a tidy scope).
   */
  patchPos(): tf.Tensor2D {
    if (!this.posEmbed) return this.pos;
    const { dim } = this.shape;
    return this.posEmbed.slice([0, 1, 0], [1, this.numPatches, dim])
      .reshape([this.numPatches, dim]); // [L, D]
  }

  /**
   * Embed a subset of patches and prepend CLS (and the registers, when the shape has them).
   *
   * @param patches [B*L, p*p*C] raw (normalised) patch pixels
   * @param flatIdx [B*K] int32, rows of `patches` to embed (`b*L + i`), or null for all
   * @param posIdx [B*K] int32, patch positions `i` (for the position table), or null for all
   * @returns tokens [B, 1+N+K, D]: `[CLS | registers | patches]` (N = {@linkcode numRegisters})
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
    const pos = this.patchPos(); // [L, D]
    const x = posIdx
      ? tf.add(emb, tf.gather(pos, posIdx)).reshape([batch, K, D])
      : tf.add(emb.reshape([batch, K, D]), pos); // [B, K, D]
    // a learned table has a CLS position too (timm adds pos_embed after the concat)
    const clsToken = this.posEmbed
      ? tf.add(this.cls, this.posEmbed.slice([0, 0, 0], [1, 1, D])) // [1, 1, D]
      : this.cls;
    const cls = repeatToken(clsToken, batch, 1); // [B, 1, D]
    if (!this.registers) return tf.concat([cls, x], 1) as tf.Tensor3D; // [B, 1+K, D]
    const regs = repeatToken(this.registers, batch, this.numRegisters); // [B, N, D]
    return tf.concat([cls, regs, x], 1) as tf.Tensor3D; // [B, 1+N+K, D]
  }

  /**
   * Run the blocks and the final norm, then drop the register tokens.
   *
   * @param x [B, T, D] laid out as {@linkcode embed} makes it, `[CLS | registers | rest]`
   *   (anything may follow: visible tokens, mask tokens)
   * @param train drop-path rate (maximum, reached by the last block) and seed; omit at eval
   * @returns tokens [B, T-N, D], `[CLS | rest]` without the N registers; with `keepAttention`,
   *   the last block's attention over all T tokens [B, H, T, T]
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
    const out = this.norm.apply(h) as tf.Tensor3D; // [B, T, D]
    return { tokens: this.dropRegisters(out), attention };
  }

  /** `[CLS | registers | rest]` → `[CLS | rest]`: [B, T, D] → [B, T-N, D] (as is when N is 0). */
  private dropRegisters(x: tf.Tensor3D): tf.Tensor3D {
    const N = this.numRegisters;
    if (N === 0) return x;
    const [B, T, D] = x.shape;
    const cls = x.slice([0, 0, 0], [B, 1, D]); // [B, 1, D]
    const rest = x.slice([0, 1 + N, 0], [B, T - 1 - N, D]); // [B, T-1-N, D]
    return tf.concat([cls, rest], 1) as tf.Tensor3D; // [B, T-N, D]
  }

  /**
   * Encode all patches of a batch (no masking), e.g. for probing or saliency.
   *
   * @param patches [B, L, p*p*C]
   * @returns tokens [B, 1+L, D] (registers dropped), cls [B, D], and the last attention when
   *   asked, [B, H, 1+N+L, 1+N+L]
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
   * @returns [B, H, T, T], T = 1+N+L (`[CLS | registers | patches]`, see {@linkcode prefixTokens})
   */
  lastAttention(patches: tf.Tensor3D): tf.Tensor4D {
    const B = patches.shape[0];
    let h = this.embed(patches.reshape([B * this.numPatches, this.patchDim]), null, null, B);
    const n = this.blocks.length;
    for (let i = 0; i < n - 1; i++) h = this.blocks[i].apply(h).out;
    return this.blocks[n - 1].attentionWeights(h);
  }

  /**
   * Visit every block's post-softmax attention on all patches of a batch, first block first
   * (eval mode, no drop-path); attention rollout needs them all. Each block runs in its own
   * tidy scope, so memory stays that of one block: `visit` must `tf.keep` what it wants to
   * outlive the call. The last block computes only its q kᵀ (as {@linkcode lastAttention}).
   *
   * @param patches [B, L, p*p*C]
   * @param visit called with block `i`'s attention [B, H, T, T], T = 1+N+L
   */
  forEachAttention(
    patches: tf.Tensor3D,
    visit: (attention: tf.Tensor4D, block: number) => void,
  ): void {
    const B = patches.shape[0];
    const n = this.blocks.length;
    let h: tf.Tensor3D | undefined = tf.tidy(() =>
      this.embed(patches.reshape([B * this.numPatches, this.patchDim]), null, null, B)
    ); // [B, T, D]
    try {
      for (let i = 0; i < n; i++) {
        const x: tf.Tensor3D = h!;
        const next: tf.Tensor3D | undefined = tf.tidy(() => {
          if (i === n - 1) {
            visit(this.blocks[i].attentionWeights(x), i);
            return undefined;
          }
          const r = this.blocks[i].apply(x, { keepAttention: true });
          visit(r.attention!, i);
          return r.out;
        });
        x.dispose();
        h = next;
      }
    } finally {
      h?.dispose();
    }
  }

  dispose(): void {
    this.pos.dispose();
  }
}
