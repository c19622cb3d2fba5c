/**
 * The fast layer ops: the one seam through which model layers (`lib/vit/layers.ts`) reach the
 * backend's fast kernels. Each op picks, per call, what the active backend runs fastest:
 *
 * - a native BLAS behind wasm's matMul (`_blas.ts`): dense layers as one `sgemm` with the bias,
 *   transposed products for free; batched products as one threaded oneDNN call; in bf16
 *   precision (`setMatmulPrecision("bf16")`) every product here, forward and backward, runs
 *   oneDNN's bf16 gemm (fp32 accumulation and output, the bias added in fp32) while LayerNorm,
 *   GELU, softmax and the loss stay fp32;
 * - the fused cpu/wasm kernels (`fused.ts`): LayerNorm, GELU, the qkv heads split and the bias
 *   gradient, each one kernel forward and one backward;
 * - the whole pre-norm transformer block as one kernel forward and one backward (`_block.ts`,
 *   wasm with a native matmul): the ops above called directly, the same numbers bit for bit;
 * - otherwise plain tfjs ops, arranged so that wasm without a BLAS stays on XNNPACK's plain 2-D
 *   matMul (its transposed and batched products are a scalar loop): gradients transpose
 *   explicitly, q/k/v come from column blocks of the small weight instead of a strided copy of
 *   the activations.
 *
 * All paths compute the same function; the tests compare them with each other and with the
 * textbook formulas in `lib/vit/layers.ts`. Imported as the `ops` namespace of
 * `lib/backend/mod.ts`.
 *
 * @example
 * ```ts ignore
 * import { ops } from "./lib/backend/mod.ts";
 * const y = ops.gelu(ops.linear(x, w, b)); // x [N, in], w [in, out], b [out]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasActive, DENSE } from "./_blas.ts";
import {
  fusedAvailable,
  fusedColumnSum,
  fusedGelu,
  fusedLayerNorm,
  fusedSoftmax,
  fusedSplitHeads,
} from "./fused.ts";

export {
  type BlockParams,
  fusedBlock as block,
  fusedBlockAvailable as blockAvailable,
} from "./_block.ts";

/**
 * Whether matMul with `transposeA/B` is as fast as the plain form on the active backend: true
 * everywhere except wasm without a native BLAS, where transposed and batched products fall to a
 * scalar loop (layers then transpose explicitly).
 */
export function fastTransposedMatMul(): boolean {
  return tf.getBackend() !== "wasm" || blasActive();
}

/**
 * y = x W + b for x `[N, in]`, W `[in, out]`, b `[out]`: one native `sgemm` with the bias on
 * wasm + BLAS, else `matMul` + add; the gradient is plain matMuls (explicit transposes where
 * transposed products are slow) and a column sum for the bias.
 */
export const linear: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = tf
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

/**
 * LayerNorm over the last axis, `(x - mean) / sqrt(var + eps) * gamma + beta`: one fused kernel
 * forward and one backward on cpu/wasm, tfjs ops elsewhere.
 *
 * @param x [..., D] @param gamma [D] @param beta [D]
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (fusedAvailable()) return fusedLayerNorm(x, gamma, beta, eps);
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, gamma), beta);
}

/** Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`: one fused kernel on cpu/wasm, tfjs ops elsewhere. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedAvailable()) return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/**
 * Softmax over the last axis: the fused kernel (one launch forward, one backward from the
 * output; oneDNN's primitive for large arrays) where available, else `tf.softmax`.
 */
export function softmax(x: tf.Tensor): tf.Tensor {
  return fusedAvailable() ? fusedSoftmax(x) : tf.softmax(x);
}

/** What {@link selfAttention} returns. */
export interface AttentionWeights {
  /** Post-softmax attention `[B, H, T, T]`. */
  attention: tf.Tensor4D;
  /** Values `[B, H, T, hd]`. */
  v: tf.Tensor4D;
}

/**
 * Multi-head self-attention weights from the fused qkv projection: `softmax(q kᵀ / sqrt(hd))`
 * and v, where `[q | k | v] = rows W + b`. Leaves `attention @ v`, the heads merge and the
 * output projection to the caller (they are the same on every path).
 *
 * - fused kernels with fast transposed products: one `[B*T, 3D]` projection, one heads copy
 *   (the q scale folded in), `q kᵀ` as a transposed matMul;
 * - otherwise q, k and v come from column blocks of the fused weight: splitting the small
 *   weight is cheap, while splitting the `[B*T, 3D]` activations is a slow strided copy on
 *   wasm; without fast transposed products k is transposed explicitly.
 *
 * @param rows [B*T, D] tokens, batch-major
 * @param w [D, 3D] fused q/k/v weight @param b [3D] its bias
 */
export function selfAttention(
  rows: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  batch: number,
  heads: number,
): AttentionWeights {
  const [scores, v] = fusedAvailable() && fastTransposedMatMul()
    ? scoresFused(rows, w, b, batch, heads)
    : scoresComposite(rows, w, b, batch, heads);
  return { attention: softmax(scores) as tf.Tensor4D, v };
}

/** q kᵀ / sqrt(hd) `[B, H, T, T]` and v `[B, H, T, hd]`: one projection, one heads copy. */
function scoresFused(
  rows: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  B: number,
  H: number,
): [tf.Tensor4D, tf.Tensor4D] {
  const hd = w.shape[1] / 3 / H;
  const qkv = linear(rows, w, b); // [B*T, 3D]
  const [q, k, v] = fusedSplitHeads(qkv, B, H, 1 / Math.sqrt(hd)); // 3 x [B, H, T, hd]
  return [tf.matMul(q, k, false, true), v]; // [B, H, T, T]
}

/** The same with tfjs ops, projecting q, k and v from column blocks of the fused weight. */
function scoresComposite(
  rows: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  B: number,
  H: number,
): [tf.Tensor4D, tf.Tensor4D] {
  const T = rows.shape[0] / B, hd = w.shape[1] / 3 / H;
  const ws = tf.split(w, 3, 1) as tf.Tensor2D[]; // 3 x [D, D]
  const bs = tf.split(b, 3) as tf.Tensor1D[]; // 3 x [D]
  const part = (i: number) => linear(rows, ws[i], bs[i]); // [B*T, D]
  const heads = (t: tf.Tensor) => t.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
  const q = heads(tf.mul(part(0), 1 / Math.sqrt(hd)));
  const scores = fastTransposedMatMul()
    ? tf.matMul(q, heads(part(1)), false, true)
    : tf.matMul(q, part(1).reshape([B, T, H, hd]).transpose([0, 2, 3, 1]) as tf.Tensor4D); // k: [B, H, hd, T]
  return [scores as tf.Tensor4D, heads(part(2))]; // [B, H, T, T], [B, H, T, hd]
}
