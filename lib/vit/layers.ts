/**
 * Transformer building blocks: dense, LayerNorm, GELU MLP, multi-head
 * self-attention and the pre-norm block.
 *
 * Every layer keeps two paths side by side behind one switch, the way nanoGPT's
 * `CausalSelfAttention` keeps `flash` next to the manual attention:
 * - the fast path (default) calls {@link ops} from `lib/backend`, which picks per
 *   call the fused cpu/wasm kernels, wasm's native BLAS matmul, or tfjs ops
 *   arranged for wasm's fast plain 2-D matMul;
 * - the textbook path ({@link setTextbookLayers}) is the formula in plain tf ops,
 *   the one to read and the reference the fast path is tested against
 *   (`tests/vit_textbook_test.ts`: same forward to 1e-5, same gradients to 1e-4).
 *   It is slower, much slower on wasm without a BLAS.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ops } from "../backend/mod.ts";
import type { ParamStore } from "./params.ts";

let textbook = false;

/**
 * Run every layer here (Linear, LayerNorm, GELU, Attention, and so Mlp, Block and
 * the models built from them) on its textbook path, plain tf ops, instead of the
 * fast {@link ops}; `false` (the default) goes back. A process-wide switch, read
 * on each forward call.
 */
export function setTextbookLayers(on: boolean): void {
  textbook = on;
}

/** Whether layers run their textbook path (see {@link setTextbookLayers}). */
export function textbookLayers(): boolean {
  return textbook;
}

/**
 * y = x W + b for x [N, in], W [in, out], b [out], always on the fast path
 * ({@link ops.linear}: a native BLAS on wasm when loaded, gradients via plain
 * matMuls). For heads and probes that hold their own weights.
 */
export const denseOp: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = ops.linear;

/** A fully connected layer (xavier-uniform weight, zero bias). */
export class Linear {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(store: ParamStore, name: string, readonly inDim: number, readonly outDim: number) {
    const init = { kind: "xavier" as const, fanIn: inDim, fanOut: outDim };
    this.w = store.create(`${name}.weight`, [inDim, outDim], init, true, "weight");
    this.b = store.create(`${name}.bias`, [outDim], { kind: "zeros" }, false, "bias");
  }

  /** @param x [..., in] @returns [..., out] */
  apply(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const rows = x.reshape([x.size / this.inDim, this.inDim]) as tf.Tensor2D; // [N, in]
    const y = textbook
      ? tf.add(tf.matMul(rows, this.w), this.b) // x W + b: [N, out]
      : ops.linear(rows, this.w as tf.Tensor2D, this.b as tf.Tensor1D); // [N, out]
    return y.reshape([...shape.slice(0, -1), this.outDim]); // [..., out]
  }
}

/** LayerNorm over the last axis (eps 1e-6, as in MAE's ViT). */
export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(store: ParamStore, name: string, readonly dim: number, readonly eps = 1e-6) {
    this.gamma = store.create(`${name}.weight`, [dim], { kind: "ones" }, false, "norm");
    this.beta = store.create(`${name}.bias`, [dim], { kind: "zeros" }, false, "norm");
  }

  /** @param x [..., D] @returns [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    if (!textbook) return ops.layerNorm(x, this.gamma, this.beta, this.eps);
    // textbook: (x - mean) / sqrt(var + eps) * gamma + beta, biased variance
    const mean = tf.mean(x, -1, true); // [..., 1]
    const variance = tf.mean(tf.square(tf.sub(x, mean)), -1, true); // [..., 1]
    const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.eps))); // [..., D]
    return tf.add(tf.mul(normed, this.gamma), this.beta);
  }
}

/**
 * Repeat a learned token `[1, 1, D]` to `[B, K, D]`.
 *
 * `tf.broadcastTo` runs the Tile kernel, whose gradient loops over every
 * repeat with a slice and an add (thousands of tiny kernels per step); a
 * broadcasting add has a single-reduction gradient.
 */
export function repeatToken(token: tf.Tensor, batch: number, count: number): tf.Tensor3D {
  const D = token.shape[token.shape.length - 1];
  return tf.add(tf.zeros([batch, count, D]), token) as tf.Tensor3D;
}

/** Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (!textbook) return ops.gelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
}

/** Two-layer GELU MLP with hidden size `dim * ratio`. */
export class Mlp {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(store: ParamStore, name: string, dim: number, ratio: number) {
    const hidden = Math.round(dim * ratio);
    this.fc1 = new Linear(store, `${name}.fc1`, dim, hidden);
    this.fc2 = new Linear(store, `${name}.fc2`, hidden, dim);
  }

  /** @param x [..., D] @returns [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return this.fc2.apply(gelu(this.fc1.apply(x)));
  }
}

/** Multi-head self-attention (fused qkv projection). */
export class Attention {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  constructor(store: ParamStore, name: string, readonly dim: number, readonly heads: number) {
    if (dim % heads !== 0) {
      throw new RangeError(`attention: dim ${dim} is not divisible by heads ${heads}`);
    }
    this.headDim = dim / heads;
    this.qkv = new Linear(store, `${name}.qkv`, dim, 3 * dim);
    this.proj = new Linear(store, `${name}.proj`, dim, dim);
  }

  /** Post-softmax attention `[B, H, T, T]` and values `[B, H, T, hd]` of `x [B, T, D]`. */
  private attend(x: tf.Tensor3D): { attention: tf.Tensor4D; v: tf.Tensor4D } {
    const [B, T, D] = x.shape;
    const H = this.heads, hd = this.headDim;
    if (!textbook) {
      // fast: one fused projection and heads copy, or wasm-friendly matMuls (ops.ts)
      const rows = x.reshape([B * T, D]) as tf.Tensor2D; // [B*T, D]
      return ops.selfAttention(rows, this.qkv.w as tf.Tensor2D, this.qkv.b as tf.Tensor1D, B, H);
    }
    // textbook: softmax(q kᵀ / sqrt(hd)) and v; apply() multiplies them
    const qkv = this.qkv.apply(x); // [B, T, 3D]
    const [q, k, v] = tf.split(qkv, 3, 2).map((t) =>
      t.reshape([B, T, H, hd]) // [B, T, H, hd]
        .transpose([0, 2, 1, 3]) as tf.Tensor4D // [B, H, T, hd]
    );
    const kT = tf.transpose(k, [0, 1, 3, 2]); // [B, H, hd, T]
    const scores = tf.div(tf.matMul(q, kT), Math.sqrt(hd)); // [B, H, T, T]
    return { attention: tf.softmax(scores) as tf.Tensor4D, v }; // softmax over the keys
  }

  /** Only the post-softmax attention `[B, H, T, T]` of `x [B, T, D]` (no output projection). */
  weights(x: tf.Tensor3D): tf.Tensor4D {
    return this.attend(x).attention;
  }

  /**
   * @param x [B, T, D]
   * @returns out [B, T, D] and, when asked, the post-softmax attention [B, H, T, T]
   */
  apply(x: tf.Tensor3D, keepAttention = false): { out: tf.Tensor3D; attention?: tf.Tensor4D } {
    const [B, T, D] = x.shape;
    const { attention, v: vh } = this.attend(x);
    const ctx = tf.matMul(attention, vh) // [B, H, T, hd]
      .transpose([0, 2, 1, 3]) // [B, T, H, hd]
      .reshape([B, T, D]); // [B, T, D]: heads side by side
    const out = this.proj.apply(ctx) as tf.Tensor3D;
    return keepAttention ? { out, attention } : { out };
  }
}

/**
 * Stochastic depth: drop the residual branch of whole samples with probability
 * `rate`, scaling kept ones by `1 / (1 - rate)`.
 *
 * @param x [B, ...]
 */
export function dropPath(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate <= 0) return x;
  return tf.mul(x, dropPathScale(x.shape[0], x.rank, rate, seed));
}

/**
 * What {@link dropPath} multiplies by: per sample `keep / (1 - rate)` with `keep` 0 or 1 drawn
 * with probability `1 - rate`, shaped `[B, 1, ...]` to broadcast over a rank-`rank` tensor.
 */
export function dropPathScale(B: number, rank: number, rate: number, seed: number): tf.Tensor {
  const keep = tf.floor(tf.add(tf.randomUniform([B], 0, 1, "float32", seed), 1 - rate)); // [B] of 0/1
  return tf.div(keep, 1 - rate).reshape([B, ...Array.from({ length: rank - 1 }, () => 1)]);
}

/** Per-call block options. */
export interface BlockCall {
  /** Return the post-softmax attention. */
  keepAttention?: boolean;
  /** Drop-path rate for this block (training only). */
  dropPath?: number;
  /** Seed of this call's drop-path draws. */
  seed?: number;
}

/** Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)). */
export class Block {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  /** The parameters in the one-kernel block's order (`ops.block`). */
  private readonly params: ops.BlockParams;
  constructor(store: ParamStore, name: string, dim: number, heads: number, mlpRatio: number) {
    this.norm1 = new LayerNorm(store, `${name}.norm1`, dim);
    this.attn = new Attention(store, `${name}.attn`, dim, heads);
    this.norm2 = new LayerNorm(store, `${name}.norm2`, dim);
    this.mlp = new Mlp(store, `${name}.mlp`, dim, mlpRatio);
    this.params = {
      norm1Gamma: this.norm1.gamma,
      norm1Beta: this.norm1.beta,
      qkvW: this.attn.qkv.w,
      qkvB: this.attn.qkv.b,
      projW: this.attn.proj.w,
      projB: this.attn.proj.b,
      norm2Gamma: this.norm2.gamma,
      norm2Beta: this.norm2.beta,
      fc1W: this.mlp.fc1.w,
      fc1B: this.mlp.fc1.b,
      fc2W: this.mlp.fc2.w,
      fc2B: this.mlp.fc2.b,
    };
  }

  /** The attention weights this block would compute on `x [B, T, D]`: `[B, H, T, T]`. */
  attentionWeights(x: tf.Tensor3D): tf.Tensor4D {
    return this.attn.weights(this.norm1.apply(x) as tf.Tensor3D);
  }

  /** @param x [B, T, D] */
  apply(x: tf.Tensor3D, call: BlockCall = {}): { out: tf.Tensor3D; attention?: tf.Tensor4D } {
    const rate = call.dropPath ?? 0, seed = call.seed ?? 0;
    if (!textbook && !call.keepAttention && ops.blockAvailable()) {
      // one kernel forward and one backward, the same function bit for bit (`_block.ts`); the
      // drop-path scales are drawn here, as dropPath draws them
      const B = x.shape[0];
      const scales = rate > 0
        ? [dropPathScale(B, 3, rate, seed), dropPathScale(B, 3, rate, seed + 1)] as const
        : undefined;
      const out = ops.block(
        x,
        this.params,
        this.attn.heads,
        this.norm1.eps,
        this.norm2.eps,
        scales,
      );
      return { out };
    }
    const a = this.attn.apply(this.norm1.apply(x) as tf.Tensor3D, call.keepAttention ?? false);
    const h = tf.add(x, dropPath(a.out, rate, seed)) as tf.Tensor3D;
    const m = dropPath(this.mlp.apply(this.norm2.apply(h)), rate, seed + 1);
    return { out: tf.add(h, m) as tf.Tensor3D, attention: a.attention };
  }
}
