/**
 * Transformer building blocks: dense, LayerNorm, GELU MLP, multi-head
 * self-attention and the pre-norm block.
 *
 * Dense layers run as plain 2-D matMuls with a hand-written gradient that
 * transposes explicitly: on wasm, matMul with `transposeA/B` falls back to a
 * scalar loop while the plain 2-D form uses XNNPACK. With a native BLAS behind
 * wasm's matMul (`lib/backend/_blas.ts`) transposes are free and used directly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastTransposedMatMul } from "../backend/mod.ts";
import { blasActive, DENSE } from "../backend/_blas.ts";
import {
  fusedAvailable,
  fusedColumnSum,
  fusedGelu,
  fusedLayerNorm,
  fusedSplitHeads,
} from "../backend/fused.ts";
import type { ParamStore } from "./params.ts";

/** y = x W + b for x [N, in], W [in, out], b [out]; gradients via plain matMuls. */
export const denseOp: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = tf
  .customGrad(
    // deno-lint-ignore no-explicit-any
    ((x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, save: any) => {
      save([x, w]);
      return {
        value: blasActive()
          ? tf.engine().runKernel(DENSE, { x, w, b }) as tf.Tensor2D
          : tf.add(tf.matMul(x, w), b),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
          if (fastTransposedMatMul()) {
            // bias gradient: a ones-row product on the native matmul beats the JS column sum
            const db = blasActive()
              ? tf.matMul(tf.ones([1, dy.shape[0]]), dy).reshape([dy.shape[1]])
              : fusedAvailable()
              ? fusedColumnSum(dy)
              : tf.sum(dy, 0);
            return [tf.matMul(dy, ws, false, true), tf.matMul(xs, dy, true, false), db];
          }
          return [
            tf.matMul(dy, tf.transpose(ws)), // [N, in]
            tf.matMul(tf.transpose(xs), dy), // [in, out]
            tf.sum(dy, 0), // [out]
          ];
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** A fully connected layer (xavier-uniform weight, zero bias). */
export class Linear {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(store: ParamStore, name: string, readonly inDim: number, readonly outDim: number) {
    this.w = store.create(`${name}.weight`, [inDim, outDim], {
      kind: "xavier",
      fanIn: inDim,
      fanOut: outDim,
    }, true);
    this.b = store.create(`${name}.bias`, [outDim], { kind: "zeros" }, false);
  }

  /** @param x [..., in] @returns [..., out] */
  apply(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const rows = x.size / this.inDim;
    const y = denseOp(
      x.reshape([rows, this.inDim]) as tf.Tensor2D,
      this.w as tf.Tensor2D,
      this.b as tf.Tensor1D,
    ); // [N, out]
    return y.reshape([...shape.slice(0, -1), this.outDim]);
  }
}

/** LayerNorm over the last axis (eps 1e-6, as in MAE's ViT). */
export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(store: ParamStore, name: string, readonly dim: number, readonly eps = 1e-6) {
    this.gamma = store.create(`${name}.weight`, [dim], { kind: "ones" }, false);
    this.beta = store.create(`${name}.bias`, [dim], { kind: "zeros" }, false);
  }

  /** @param x [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    if (fusedAvailable()) return fusedLayerNorm(x, this.gamma, this.beta, this.eps);
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, this.eps)));
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
  if (fusedAvailable()) return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
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

  /** q kᵀ / sqrt(hd) `[B, H, T, T]` and v `[B, H, T, hd]`: one projection, one heads copy. */
  private scoresFused(rows: tf.Tensor2D, B: number): [tf.Tensor4D, tf.Tensor4D] {
    const qkv = this.qkv.apply(rows) as tf.Tensor2D; // [B*T, 3D]
    const [q, k, v] = fusedSplitHeads(qkv, B, this.heads, 1 / Math.sqrt(this.headDim));
    return [tf.matMul(q, k, false, true), v];
  }

  /**
   * The same with tfjs ops. q, k and v come from column blocks of the fused weight: splitting
   * the small weight is cheap, while splitting the `[B*T, 3D]` activations is a slow strided
   * copy on wasm.
   */
  private scoresComposite(rows: tf.Tensor2D, B: number, T: number): [tf.Tensor4D, tf.Tensor4D] {
    const H = this.heads, hd = this.headDim;
    const ws = tf.split(this.qkv.w, 3, 1) as tf.Tensor2D[];
    const bs = tf.split(this.qkv.b, 3) as tf.Tensor1D[];
    const part = (i: number) => denseOp(rows, ws[i], bs[i]);
    const heads = (t: tf.Tensor) => t.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
    const q = heads(tf.mul(part(0), 1 / Math.sqrt(hd)));
    const scores = fastTransposedMatMul()
      ? tf.matMul(q, heads(part(1)), false, true)
      : tf.matMul(q, part(1).reshape([B, T, H, hd]).transpose([0, 2, 3, 1]) as tf.Tensor4D);
    return [scores as tf.Tensor4D, heads(part(2))];
  }

  /** Post-softmax attention `[B, H, T, T]` and values `[B, H, T, hd]` of `x [B, T, D]`. */
  private attend(x: tf.Tensor3D): { attention: tf.Tensor4D; v: tf.Tensor4D } {
    const [B, T, D] = x.shape;
    const rows = x.reshape([B * T, D]) as tf.Tensor2D;
    const [scores, v] = fusedAvailable() && fastTransposedMatMul()
      ? this.scoresFused(rows, B)
      : this.scoresComposite(rows, B, T);
    return { attention: tf.softmax(scores) as tf.Tensor4D, v };
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
      .reshape([B, T, D]);
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
  const B = x.shape[0];
  const keep = tf.floor(tf.add(tf.randomUniform([B], 0, 1, "float32", seed), 1 - rate)); // [B] of 0/1
  const shape = [B, ...x.shape.slice(1).map(() => 1)];
  return tf.mul(x, tf.div(keep, 1 - rate).reshape(shape));
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
  constructor(store: ParamStore, name: string, dim: number, heads: number, mlpRatio: number) {
    this.norm1 = new LayerNorm(store, `${name}.norm1`, dim);
    this.attn = new Attention(store, `${name}.attn`, dim, heads);
    this.norm2 = new LayerNorm(store, `${name}.norm2`, dim);
    this.mlp = new Mlp(store, `${name}.mlp`, dim, mlpRatio);
  }

  /** The attention weights this block would compute on `x [B, T, D]`: `[B, H, T, T]`. */
  attentionWeights(x: tf.Tensor3D): tf.Tensor4D {
    return this.attn.weights(this.norm1.apply(x) as tf.Tensor3D);
  }

  /** @param x [B, T, D] */
  apply(x: tf.Tensor3D, call: BlockCall = {}): { out: tf.Tensor3D; attention?: tf.Tensor4D } {
    const rate = call.dropPath ?? 0, seed = call.seed ?? 0;
    const a = this.attn.apply(this.norm1.apply(x) as tf.Tensor3D, call.keepAttention ?? false);
    const h = tf.add(x, dropPath(a.out, rate, seed)) as tf.Tensor3D;
    const m = dropPath(this.mlp.apply(this.norm2.apply(h)), rate, seed + 1);
    return { out: tf.add(h, m) as tf.Tensor3D, attention: a.attention };
  }
}
