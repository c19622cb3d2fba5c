/**
 * Convolution-like layers built from dense matMuls, so that every weight
 * gets a gradient on the wasm backend (it has no `Conv2DBackpropFilter`).
 *
 * Feature maps are NHWC: `[B, H, W, C]`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { denseOp, LayerNorm, Linear } from "../vit/layers.ts";
import type { ParamStore } from "../vit/params.ts";

/** 3x3 convolution, stride 1, zero padding 1, as im2col (9 shifted slices) + one dense matMul. */
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
    const [B, H, W, C] = x.shape;
    const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]); // [B, H+2, W+2, C]
    const cols: tf.Tensor[] = [];
    for (let dy = 0; dy < 3; dy++) {
      for (let dx = 0; dx < 3; dx++) cols.push(tf.slice(padded, [0, dy, dx, 0], [B, H, W, C]));
    }
    const im2col = tf.concat(cols, 3).reshape([B * H * W, 9 * C]); // [BHW, 9C], (dy, dx, c) order
    const y = denseOp(im2col as tf.Tensor2D, this.w as tf.Tensor2D, this.b as tf.Tensor1D); // [BHW, outC]
    return y.reshape([B, H, W, this.outC]);
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
