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
 * (rows in (dy, dx, c) order) and bias [O]. Forward and input gradient are
 * `conv2d` (XNNPACK on wasm; the input gradient is a convolution with the
 * flipped kernel, since wasm's `Conv2DBackpropInput` is a slow loop); the
 * weight gradient is nine plain matMuls of row-shifted views of the padded
 * input: on the flattened padded grid, tap (dy, dx) is a shift by
 * `dy * (W + 2) + dx` rows.
 */
export const conv3x3Op: (x: tf.Tensor4D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor4D = tf
  .customGrad(
    // deno-lint-ignore no-explicit-any
    ((x: tf.Tensor4D, w: tf.Tensor2D, b: tf.Tensor1D, save: any) => {
      const [, , , C] = x.shape;
      const O = w.shape[1];
      save([x, w]);
      return {
        value: tf.add(tf.conv2d(x, w.reshape([3, 3, C, O]) as tf.Tensor4D, 1, "same"), b),
        gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
          const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor2D];
          const [B, H, W] = xs.shape;
          // dx = conv(dy, kernel flipped in space with in/out swapped)
          const flipped = tf.reverse(ws.reshape([3, 3, C, O]), [0, 1]).transpose([0, 1, 3, 2]); // [3, 3, O, C]
          const dx = tf.conv2d(dy, flipped as tf.Tensor4D, 1, "same");
          const Wp = W + 2, R = B * (H + 2) * Wp;
          const padded = tf.pad(xs, [[0, 0], [1, 1], [1, 1], [0, 0]]).reshape([R, C]); // [R, C]
          const ext = tf.pad(padded, [[0, 2 * Wp + 2], [0, 0]]); // room for the largest shift
          // dy placed on the padded grid: output (y, x) sits at padded row y, column x
          const dyp = tf.pad(dy, [[0, 0], [0, 2], [0, 2], [0, 0]]).reshape([R, O]); // [R, O]
          const taps: tf.Tensor[] = [];
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const xsTap = tf.slice(ext, [ky * Wp + kx, 0], [R, C]); // [R, C]
              taps.push(tf.matMul(tf.transpose(xsTap), dyp)); // [C, O]
            }
          }
          return [dx, tf.concat(taps, 0), tf.sum(dy, [0, 1, 2])];
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
