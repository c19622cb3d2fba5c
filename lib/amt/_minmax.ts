/**
 * Per-row min-max normalisation, shared by the saliency sources.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Min-max normalise each row to [0, 1]; a constant row becomes 0 (it ranks nothing).
 *
 * @param x [B, L]
 * @returns [B, L]
 */
export function minMaxRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const lo = tf.min(x, -1, true); // [B, 1]
    const range = tf.maximum(tf.sub(tf.max(x, -1, true), lo), 1e-12); // [B, 1]
    return tf.div(tf.sub(x, lo), range) as tf.Tensor2D; // [B, L]
  });
}
