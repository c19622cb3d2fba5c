/**
 * Convolution-like layers built from dense matMuls, so that every weight
 * gets a gradient on the wasm backend (it has no `Conv2DBackpropFilter`).
 *
 * Feature maps are NHWC: `[B, H, W, C]`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { LayerNorm, Linear } from "../vit/layers.ts";
import type { ParamStore } from "../vit/params.ts";

/**
 * 3x3 convolution (stride 1, zero padding 1) of `x` [B, H, W, C] with `w` [9*C, O]
 * (rows in (dy, dx, c) order) and bias [O], with every part of the gradient a
 * `conv2d` too (XNNPACK on wasm, whose `Conv2DBackpropInput` is a slow loop and
 * `Conv2DBackpropFilter` is missing):
 * - input gradient: `dy` convolved with the kernel flipped in space, in/out swapped;
 * - weight gradient: a convolution with batch and channels exchanged,
 *   `dW[ky, kx, c, o] = sum_{b,y,x} xpad[b, y+ky, x+kx, c] dy[b, y, x, o]` is
 *   `conv2d(xpad as [C, H+2, W+2, B], dy as [H, W, B, O])`, a `[C, 3, 3, O]` map.
 */
export const conv3x3Op: (x: tf.Tensor4D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor4D = tf
  .customGrad(
    // deno-lint-ignore no-explicit-any
    ((x: tf.Tensor4D, w: tf.Tensor2D, b: tf.Tensor1D, save: any) => {
      const C = x.shape[3];
      const O = w.shape[1];
      save([x, w]);
      return {
        value: tf.add(tf.conv2d(x, w.reshape([3, 3, C, O]) as tf.Tensor4D, 1, "same"), b),
        gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
          const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor2D];
          const flipped = tf.reverse(ws.reshape([3, 3, C, O]), [0, 1]).transpose([0, 1, 3, 2]); // [3, 3, O, C]
          const dx = tf.conv2d(dy, flipped as tf.Tensor4D, 1, "same"); // [B, H, W, C]
          const xt = tf.pad(xs, [[0, 0], [1, 1], [1, 1], [0, 0]]).transpose([3, 1, 2, 0]); // [C, H+2, W+2, B]
          const dyt = dy.transpose([1, 2, 0, 3]); // [H, W, B, O]
          const dw = tf.conv2d(xt as tf.Tensor4D, dyt as tf.Tensor4D, 1, "valid") // [C, 3, 3, O]
            .transpose([1, 2, 0, 3]) // [3, 3, C, O]
            .reshape([9 * C, O]);
          return [dx, dw, tf.sum(dy, [0, 1, 2])];
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as unknown as (x: tf.Tensor4D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor4D;

/** 3x3 convolution, stride 1, zero padding 1 (see {@link conv3x3Op}). */
export class Conv3x3 {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(store: ParamStore, name: string, readonly inC: number, readonly outC: number) {
    // He-style init for a ReLU tower
    this.w = store.create(`${name}.weight`, [9 * inC, outC], {
      kind: "normal",
      std: Math.sqrt(2 / (9 * inC)),
    }, true);
    this.b = store.create(`${name}.bias`, [outC], { kind: "zeros" }, false);
  }

  /** @param x [B, H, W, inC] @returns [B, H, W, outC] */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return conv3x3Op(x, this.w as tf.Tensor2D, this.b as tf.Tensor1D);
  }
}

/** 1x1 convolution (a dense layer over channels). */
export class Conv1x1 {
  readonly linear: Linear;
  constructor(store: ParamStore, name: string, readonly inC: number, readonly outC: number) {
    this.linear = new Linear(store, name, inC, outC);
  }

  /** @param x [B, H, W, inC] @returns [B, H, W, outC] */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return this.linear.apply(x) as tf.Tensor4D;
  }
}

/**
 * 2x2 transposed convolution with stride 2 (non-overlapping, so a dense layer
 * to `4 * outC` channels followed by a pixel shuffle).
 */
export class Deconv2x2 {
  readonly linear: Linear;
  constructor(store: ParamStore, name: string, readonly inC: number, readonly outC: number) {
    this.linear = new Linear(store, name, inC, 4 * outC);
  }

  /** @param x [B, H, W, inC] @returns [B, 2H, 2W, outC] */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    const [B, H, W] = x.shape;
    const C = this.outC;
    const y = this.linear.apply(x).reshape([B * H, W, 2, 2, C]); // [(B H), W, dy, dx, C]
    return y.transpose([0, 2, 1, 3, 4]) // [(B H), dy, W, dx, C]
      .reshape([B, 2 * H, 2 * W, C]) as tf.Tensor4D;
  }
}

/** LayerNorm over channels of an NHWC map (ViTDet's norm in the feature pyramid). */
export class ChannelNorm {
  readonly ln: LayerNorm;
  constructor(store: ParamStore, name: string, dim: number) {
    this.ln = new LayerNorm(store, name, dim);
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return this.ln.apply(x) as tf.Tensor4D;
  }
}

/** Fill a (zero-initialised) bias with a constant, e.g. the focal-loss prior. */
export function fillBias(v: tf.Variable, value: number): void {
  tf.tidy(() => v.assign(tf.fill(v.shape, value)));
}
