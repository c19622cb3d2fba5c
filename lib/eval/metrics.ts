/**
 * Classification losses and scores shared by the linear probe, fine-tuning
 * and kNN: log-softmax, cross-entropy with label smoothing, top-k accuracy
 * and confusion matrices.
 *
 * Accuracies are fractions in [0, 1] throughout `lib/eval`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Numerically stable log-softmax over the last axis, built from ops that have
 * gradients on every backend.
 *
 * @param logits [N, K]
 * @returns [N, K]
 */
export function logSoftmax(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    // the shift cancels in the result, so its gradient does too
    const shifted = tf.sub(logits, tf.max(logits, -1, true)); // [N, K]
    return tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), -1, true))) as tf.Tensor2D;
  });
}

/**
 * Mean cross-entropy against smoothed targets `q = (1 - s) * onehot + s / K`
 * (timm's `LabelSmoothingCrossEntropy`: `(1 - s) * nll + s * mean_k(-log p_k)`).
 *
 * @param logits [N, K]
 * @param labels [N] int32 class indices
 * @param smoothing s in [0, 1); 0 = plain cross-entropy
 */
export function crossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  smoothing = 0,
): tf.Scalar {
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new RangeError(`crossEntropy: label smoothing ${smoothing}: expected 0 <= s < 1`);
  }
  return tf.tidy(() => {
    const K = logits.shape[1];
    const logp = logSoftmax(logits); // [N, K]
    const onehot = tf.oneHot(labels, K).toFloat(); // [N, K]
    const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / K) : onehot;
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), -1))) as tf.Scalar;
  });
}

/** Index of the largest value in each row of a row-major [N, K] array. */
export function argmaxRows(scores: ArrayLike<number>, K: number): Int32Array {
  const N = scores.length / K;
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    let best = 0, bestV = -Infinity;
    for (let k = 0; k < K; k++) {
      const v = scores[n * K + k];
      if (v > bestV) {
        bestV = v;
        best = k;
      }
    }
    out[n] = best;
  }
  return out;
}

/**
 * Top-k accuracy from row-major scores [N, K]: a row counts when its label's
 * score is among the k largest (ties broken against the label).
 */
export function topKAccuracy(scores: ArrayLike<number>, labels: Int32Array, k: number): number {
  const N = labels.length;
  if (N === 0) return NaN;
  const K = scores.length / N;
  let hits = 0;
  for (let n = 0; n < N; n++) {
    const own = scores[n * K + labels[n]];
    let above = 0;
    for (let j = 0; j < K; j++) if (j !== labels[n] && scores[n * K + j] >= own) above++;
    if (above < k) hits++;
  }
  return hits / N;
}

/** Fraction of `predictions` equal to `labels`. */
export function accuracy(predictions: Int32Array, labels: Int32Array): number {
  if (predictions.length !== labels.length) {
    throw new RangeError(
      `accuracy: ${predictions.length} predictions for ${labels.length} labels`,
    );
  }
  if (labels.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Counts `[true][predicted]`, `numClasses x numClasses`. */
export function confusionMatrix(
  predictions: Int32Array,
  labels: Int32Array,
  numClasses: number,
): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i], p = predictions[i];
    if (t >= 0 && t < numClasses && p >= 0 && p < numClasses) m[t][p]++;
  }
  return m;
}

/** Largest label + 1, or `given` when positive; throws on a negative (unlabeled) label. */
export function classCount(labels: Int32Array, given = 0, what = "labels"): number {
  let max = -1;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0) {
      throw new RangeError(
        `${what}: item ${i} has label ${labels[i]} (unlabeled); evaluation needs a labelled split`,
      );
    }
    if (labels[i] > max) max = labels[i];
  }
  if (given > 0) {
    if (max >= given) {
      throw new RangeError(`${what}: label ${max} is out of range for ${given} classes`);
    }
    return given;
  }
  return max + 1;
}
