/**
 * Linear probing on frozen features, MAE's protocol (`main_linprobe.py`):
 * BatchNorm without affine parameters (eps 1e-6) then a linear layer (weight
 * ~ N(0, 0.01) truncated, bias 0), cross-entropy, SGD with momentum 0.9 or
 * LARS, no weight decay, linear warm-up then cosine decay per step.
 *
 * The features are constants, so the BatchNorm needs no gradient: only the
 * linear layer is differentiated.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { lrAt } from "../optim/mod.ts";
import { makeRng, permutation } from "../util/rng.ts";
import { denseOp } from "../vit/layers.ts";
import { ParamStore } from "../vit/params.ts";
import { makeVariables } from "./_tidy.ts";
import type { FeatureSet } from "./features.ts";
import {
  accuracy,
  argmaxRows,
  classCount,
  confusionMatrix,
  crossEntropy,
  topKAccuracy,
} from "./metrics.ts";

/**
 * BatchNorm1d with `affine=False` over a batch of feature rows.
 *
 * Training mode normalises with the batch's own mean and biased variance and
 * returns them (and the unbiased variance torch feeds its running estimate);
 * pass `running` to normalise with stored statistics instead (test mode).
 *
 * @param x [N, D]
 * @returns normalised [N, D]; mean [D], variance [D] (biased), unbiased [D] in training mode
 */
export function batchNormNoAffine(
  x: tf.Tensor2D,
  eps = 1e-6,
  running?: { mean: tf.Tensor1D; variance: tf.Tensor1D },
): { out: tf.Tensor2D; mean: tf.Tensor1D; variance: tf.Tensor1D; unbiased: tf.Tensor1D } {
  return tf.tidy(() => {
    const n = x.shape[0];
    let mean: tf.Tensor1D, variance: tf.Tensor1D;
    if (running) {
      mean = running.mean;
      variance = running.variance;
    } else {
      mean = tf.mean(x, 0) as tf.Tensor1D; // [D]
      variance = tf.mean(tf.square(tf.sub(x, mean)), 0) as tf.Tensor1D; // [D]
    }
    const out = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))) as tf.Tensor2D; // [N, D]
    const unbiased = running || n < 2 ? variance : tf.mul(variance, n / (n - 1)) as tf.Tensor1D;
    return {
      out,
      mean: tf.clone(mean),
      variance: tf.clone(variance),
      unbiased: tf.clone(unbiased),
    };
  });
}

/** BatchNorm without affine parameters and with torch's running statistics. */
export class BatchNormNoAffine {
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  constructor(readonly dim: number, readonly eps = 1e-6, readonly momentum = 0.1) {
    this.runningMean = makeVariables(() => tf.variable(tf.zeros([dim]), false));
    this.runningVar = makeVariables(() => tf.variable(tf.ones([dim]), false));
  }

  /**
   * Training mode: normalise with batch statistics and update the running
   * ones, `r = (1 - momentum) r + momentum * batch` (unbiased variance).
   *
   * @param x [N, D] @returns [N, D]
   */
  train(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const r = batchNormNoAffine(x, this.eps);
      const m = this.momentum;
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(r.mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(r.unbiased, m)));
      return r.out;
    });
  }

  /** Test mode: normalise with the running statistics. @param x [N, D] @returns [N, D] */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() =>
      batchNormNoAffine(x, this.eps, {
        mean: this.runningMean as tf.Tensor1D,
        variance: this.runningVar as tf.Tensor1D,
      }).out
    );
  }

  dispose(): void {
    this.runningMean.dispose();
    this.runningVar.dispose();
  }
}

/**
 * LARS's update direction for a weight matrix (MAE `util/lars.py`): `g + wd * w`
 * rescaled to norm `trust * |w|` (left as is when either norm is 0). Vectors
 * (biases) take plain SGD steps in MAE's LARS and do not come here.
 */
export function larsDirection(
  w: tf.Tensor,
  grad: tf.Tensor,
  trust = 0.001,
  weightDecay = 0,
): tf.Tensor {
  return tf.tidy(() => {
    const dp = weightDecay > 0 ? tf.add(grad, tf.mul(w, weightDecay)) : grad;
    const pn = tf.norm(w), un = tf.norm(dp);
    const q = tf.where(
      tf.logicalAnd(tf.greater(pn, 0), tf.greater(un, 0)),
      tf.div(tf.mul(pn, trust), tf.maximum(un, 1e-30)),
      tf.onesLike(pn),
    );
    return tf.mul(dp, q);
  });
}

/** Options of {@link trainLinearProbe}. */
export interface LinearProbeOptions {
  /** Classes (default: largest label + 1). */
  numClasses?: number;
  /** Epochs over the training features (default 30). */
  epochs?: number;
  /** Default 256. */
  batchSize?: number;
  /** Peak lr = baseLr * batchSize / 256 (default 0.1, MAE's blr). */
  baseLr?: number;
  /** "sgd" (default) or "lars" (MAE's; layer-wise trust ratio on the weight matrix). */
  optimizer?: "sgd" | "lars";
  /** Default 0.9. */
  momentum?: number;
  /** Default 0 (MAE's linear probe). */
  weightDecay?: number;
  /** LARS trust coefficient (default 0.001). */
  trustCoefficient?: number;
  /** Linear warm-up epochs (default: a tenth of the epochs, as MAE's 10 of 90). */
  warmupEpochs?: number;
  /** Floor of the cosine schedule (default 0). */
  minLr?: number;
  /** Test accuracy every N epochs and after the last (default 1). */
  evalEvery?: number;
  /** Seeds the initial weights and the data order (default 0). */
  seed?: number;
  /** Called after each epoch (after its test pass, when there is one). */
  onEpoch?: (record: ProbeEpoch) => void | Promise<void>;
}

/** One epoch of probe training. */
export interface ProbeEpoch {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch's steps. */
  loss: number;
  /** Learning rate at the end of the epoch. */
  lr: number;
  /** Test top-1 in [0, 1], or null when not evaluated this epoch. */
  testTop1: number | null;
  seconds: number;
}

/** What a linear probe measured (accuracies in [0, 1]). */
export interface LinearProbeResult {
  top1: number;
  /** Null when there are 5 classes or fewer. */
  top5: number | null;
  /** Accuracy on the training features in test mode (running statistics). */
  trainTop1: number;
  history: ProbeEpoch[];
  /** Test counts `[true][predicted]`. */
  confusion: number[][];
  /** [N_test] predicted classes. */
  predictions: Int32Array;
  numClasses: number;
  /** Peak learning rate used. */
  lr: number;
  seconds: number;
}

function checkSet(set: FeatureSet, what: string): void {
  if (set.features.length !== set.count * set.dim || set.labels.length !== set.count) {
    throw new RangeError(
      `${what}: ${set.features.length} feature values and ${set.labels.length} labels for ` +
        `count ${set.count} x dim ${set.dim}`,
    );
  }
}

/** Test-mode class scores of every row, in chunks. @returns [N, K] row-major */
async function probeScores(
  x: tf.Tensor2D,
  bn: BatchNormNoAffine,
  w: tf.Variable,
  b: tf.Variable,
  chunk = 8192,
): Promise<Float32Array> {
  const [N] = x.shape;
  const K = b.shape[0];
  const out = new Float32Array(N * K);
  for (let s = 0; s < N; s += chunk) {
    const n = Math.min(chunk, N - s);
    const logits = tf.tidy(() => {
      const rows = x.slice([s, 0], [n, x.shape[1]]); // [n, D]
      return denseOp(bn.apply(rows), w as tf.Tensor2D, b as tf.Tensor1D); // [n, K]
    });
    out.set((await logits.data()) as Float32Array, s * K);
    logits.dispose();
  }
  return out;
}

/**
 * Train BatchNorm(no affine) + Linear on `train` features and score it on
 * `test` features.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend/mod.ts";
 * import { trainLinearProbe } from "./linear_probe.ts";
 * await initBackend({ backend: "cpu", quiet: true });
 * // 2-d features, class = which axis is larger; 32 training points, 8 test points
 * const set = (count: number, seed: number) => {
 *   const features = new Float32Array(count * 2), labels = new Int32Array(count);
 *   for (let i = 0; i < count; i++) {
 *     const a = ((i * 7 + seed) % 10) / 10, label = i % 2;
 *     features.set(label === 0 ? [1 + a, a] : [a, 1 + a], 2 * i);
 *     labels[i] = label;
 *   }
 *   return { features, labels, count, dim: 2, seconds: 0 };
 * };
 * const r = await trainLinearProbe(set(32, 0), set(8, 3), { epochs: 30, batchSize: 8 });
 * if (r.top1 < 0.99) throw new Error(`top-1 ${(100 * r.top1).toFixed(1)}% on separable data`);
 * ```
 */
export async function trainLinearProbe(
  train: FeatureSet,
  test: FeatureSet,
  opts: LinearProbeOptions = {},
): Promise<LinearProbeResult> {
  const t0 = performance.now();
  checkSet(train, "linear probe train features");
  checkSet(test, "linear probe test features");
  if (train.dim !== test.dim) {
    throw new RangeError(`linear probe: train features have dim ${train.dim}, test ${test.dim}`);
  }
  if (train.count === 0 || test.count === 0) {
    throw new RangeError(
      `linear probe: ${train.count} train and ${test.count} test rows; both must be non-empty`,
    );
  }
  const K = classCount(train.labels, opts.numClasses ?? 0, "linear probe train labels");
  classCount(test.labels, K, "linear probe test labels");
  const epochs = opts.epochs ?? 30;
  const batchSize = Math.min(opts.batchSize ?? 256, train.count);
  const optimizer = opts.optimizer ?? "sgd";
  if (optimizer !== "sgd" && optimizer !== "lars") {
    throw new RangeError(`linear probe: optimizer "${optimizer}": expected "sgd" or "lars"`);
  }
  const momentum = opts.momentum ?? 0.9;
  const wd = opts.weightDecay ?? 0;
  const trust = opts.trustCoefficient ?? 0.001;
  const lr = (opts.baseLr ?? 0.1) * batchSize / 256;
  const warmupEpochs = opts.warmupEpochs ?? epochs / 10;
  const minLr = opts.minLr ?? 0;
  const evalEvery = Math.max(1, opts.evalEvery ?? 1);
  const seed = opts.seed ?? 0;
  const N = train.count, D = train.dim;
  const stepsPerEpoch = Math.floor(N / batchSize); // drop_last, as MAE's loader
  const schedule = { lr, minLr, warmupEpochs, epochs };

  // tidy: a variable leaves its initial tensor behind otherwise
  const { store, w, b, bn, bufW, bufB } = makeVariables(() => {
    const store = new ParamStore(seed);
    const w = store.create("probe.weight", [D, K], { kind: "normal", std: 0.01 }, true);
    const b = store.create("probe.bias", [K], { kind: "zeros" }, false);
    return {
      store,
      w,
      b,
      bn: new BatchNormNoAffine(D),
      bufW: tf.variable(tf.zerosLike(w), false),
      bufB: tf.variable(tf.zerosLike(b), false),
    };
  });
  const xTrain = tf.tensor2d(train.features, [N, D]);
  const xTest = tf.tensor2d(test.features, [test.count, D]);
  const history: ProbeEpoch[] = [];
  let testScores: Float32Array | null = null;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const e0 = performance.now();
      const order = permutation(N, makeRng(seed, "linprobe", epoch));
      const losses: tf.Scalar[] = [];
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.subarray(s * batchSize, (s + 1) * batchSize);
        const y = Int32Array.from(idx, (i) => train.labels[i]);
        const stepLr = lrAt(epoch + s / stepsPerEpoch, schedule);
        const loss = tf.tidy(() => {
          const rows = tf.tensor1d(idx, "int32");
          const labels = tf.tensor1d(y, "int32");
          const x = bn.train(tf.gather(xTrain, rows)); // [B, D], a constant
          const { value, grads } = tf.variableGrads(
            () => crossEntropy(denseOp(x, w as tf.Tensor2D, b as tf.Tensor1D), labels),
            [w, b],
          );
          const gw = optimizer === "lars"
            ? larsDirection(w, grads[w.name], trust, wd)
            : wd > 0
            ? tf.add(grads[w.name], tf.mul(w, wd))
            : grads[w.name];
          bufW.assign(tf.add(tf.mul(bufW, momentum), gw));
          bufB.assign(tf.add(tf.mul(bufB, momentum), grads[b.name]));
          w.assign(tf.sub(w, tf.mul(bufW, stepLr)));
          b.assign(tf.sub(b, tf.mul(bufB, stepLr)));
          return value;
        });
        losses.push(loss);
      }
      let lossSum = NaN;
      if (losses.length > 0) {
        const sum = tf.addN(losses);
        lossSum = (await sum.data())[0];
        tf.dispose([sum, ...losses]);
      }
      const meanLoss = lossSum / Math.max(1, losses.length);
      if (!Number.isFinite(meanLoss)) {
        throw new Error(
          `linear probe: loss is ${meanLoss} in epoch ${epoch + 1}; lower the learning rate ` +
            `(now ${lr.toPrecision(3)})`,
        );
      }
      let testTop1: number | null = null;
      if ((epoch + 1) % evalEvery === 0 || epoch === epochs - 1) {
        testScores = await probeScores(xTest, bn, w, b);
        testTop1 = accuracy(argmaxRows(testScores, K), test.labels);
      }
      const record: ProbeEpoch = {
        epoch: epoch + 1,
        loss: meanLoss,
        lr: lrAt(epoch + 1, schedule),
        testTop1,
        seconds: (performance.now() - e0) / 1000,
      };
      history.push(record);
      await opts.onEpoch?.(record);
    }
    testScores ??= await probeScores(xTest, bn, w, b);
    const predictions = argmaxRows(testScores, K);
    const trainPred = argmaxRows(await probeScores(xTrain, bn, w, b), K);
    return {
      top1: accuracy(predictions, test.labels),
      top5: K > 5 ? topKAccuracy(testScores, test.labels, 5) : null,
      trainTop1: accuracy(trainPred, train.labels),
      history,
      confusion: confusionMatrix(predictions, test.labels, K),
      predictions,
      numClasses: K,
      lr,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    tf.dispose([xTrain, xTest, bufW, bufB]);
    bn.dispose();
    store.dispose();
  }
}
