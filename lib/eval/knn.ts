/**
 * Weighted k-nearest-neighbour classification on frozen features, as in
 * InstDisc / DINO (`eval_knn.py`): cosine similarity of L2-normalised
 * features, the k most similar training rows vote for their class with weight
 * `exp(sim / T)`.
 *
 * Similarities are plain 2-D matMuls of test chunks against the training
 * matrix transposed once (fast on wasm), followed by `topk` on the device.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DataConfig } from "../config/schema.ts";
import type { Dataset } from "../data/mod.ts";
import type { VisionTransformer } from "../vit/vit.ts";
import { type EvalDataConfig, labelledSplits, openEvalSplit } from "./data.ts";
import { extractFeatures } from "./features.ts";
import { accuracy, classCount } from "./metrics.ts";

/** Options of {@link knnClassify} / {@link knnAccuracy}. */
export interface KnnOptions {
  /** Neighbours (default 20). */
  k?: number;
  /** Temperature of the vote weights `exp(sim / T)` (default 0.07). */
  T?: number;
  /** Classes (default: largest training label + 1). */
  numClasses?: number;
  /** Similarity values computed per chunk (default 8M: about 32 MB). */
  chunkValues?: number;
}

/** kNN predictions and scores. */
export interface KnnResult {
  /** [N_test] predicted classes. */
  predictions: Int32Array;
  /** [N_test, K] summed vote weights, row-major. */
  votes: Float32Array;
  top1: number;
  /** Null when there are 5 classes or fewer. */
  top5: number | null;
  seconds: number;
}

/** Rows scaled to unit L2 norm (zero rows stay zero). @param x [N, D] */
export function l2NormalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[r * dim + j] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) out[r * dim + j] = x[r * dim + j] * inv;
  }
  return out;
}

/**
 * Classify each test row by a weighted vote of its `k` most cosine-similar
 * training rows.
 *
 * @param trainFeats [N, D] row-major
 * @param testFeats [M, D] row-major
 */
export async function knnClassify(
  trainFeats: Float32Array,
  trainLabels: Int32Array,
  testFeats: Float32Array,
  testLabels: Int32Array,
  opts: KnnOptions = {},
): Promise<KnnResult> {
  const t0 = performance.now();
  const N = trainLabels.length, M = testLabels.length;
  if (N === 0 || trainFeats.length % N !== 0) {
    throw new RangeError(`knn: ${trainFeats.length} train values for ${N} labels`);
  }
  const D = trainFeats.length / N;
  if (testFeats.length !== M * D) {
    throw new RangeError(`knn: ${testFeats.length} test values for ${M} labels of dim ${D}`);
  }
  const K = classCount(trainLabels, opts.numClasses ?? 0, "knn train labels");
  const k = Math.min(opts.k ?? 20, N);
  const T = opts.T ?? 0.07;
  if (!(k >= 1 && T > 0)) throw new RangeError(`knn: k ${k} and T ${T}: expected k >= 1, T > 0`);
  const chunk = Math.max(1, Math.floor((opts.chunkValues ?? 8_000_000) / N));
  const bank = tf.tidy(() =>
    tf.transpose(tf.tensor2d(l2NormalizeRows(trainFeats, D), [N, D])) as tf.Tensor2D
  ); // [D, N], transposed once
  const test = l2NormalizeRows(testFeats, D);
  const votes = new Float32Array(M * K);
  try {
    for (let s = 0; s < M; s += chunk) {
      const n = Math.min(chunk, M - s);
      const { values, indices } = tf.tidy(() => {
        const q = tf.tensor2d(test.subarray(s * D, (s + n) * D), [n, D]); // [n, D]
        return tf.topk(tf.matMul(q, bank), k); // [n, k] each
      });
      const [sims, idx] = await Promise.all([values.data(), indices.data()]);
      tf.dispose([values, indices]);
      for (let r = 0; r < n; r++) {
        const row = (s + r) * K;
        for (let j = 0; j < k; j++) {
          votes[row + trainLabels[idx[r * k + j]]] += Math.exp(sims[r * k + j] / T);
        }
      }
    }
  } finally {
    bank.dispose();
  }
  const predictions = new Int32Array(M);
  let top5Hits = 0;
  for (let r = 0; r < M; r++) {
    let best = 0;
    for (let c = 1; c < K; c++) if (votes[r * K + c] > votes[r * K + best]) best = c;
    predictions[r] = best;
    const lab = testLabels[r];
    if (lab >= 0 && lab < K) {
      let above = 0;
      for (let c = 0; c < K; c++) if (c !== lab && votes[r * K + c] >= votes[r * K + lab]) above++;
      if (above < 5) top5Hits++;
    }
  }
  return {
    predictions,
    votes,
    top1: accuracy(predictions, testLabels),
    top5: K > 5 ? top5Hits / M : null,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Weighted kNN top-1 accuracy (fraction in [0, 1]).
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend/mod.ts";
 * import { knnAccuracy } from "./knn.ts";
 * await initBackend({ backend: "cpu", quiet: true });
 * // two classes along two axes, [4, 2] training features; each test point leans to its class
 * const train = Float32Array.of(1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9);
 * const test = Float32Array.of(0.8, 0.2, 0.3, 0.7);
 * const top1 = await knnAccuracy(train, Int32Array.of(0, 0, 1, 1), test, Int32Array.of(0, 1), {
 *   k: 2,
 *   T: 0.07,
 * });
 * if (top1 !== 1) throw new Error(`kNN top-1 ${top1}, expected 1`);
 * ```
 */
export async function knnAccuracy(
  trainFeats: Float32Array,
  trainLabels: Int32Array,
  testFeats: Float32Array,
  testLabels: Int32Array,
  opts: KnnOptions = {},
): Promise<number> {
  return (await knnClassify(trainFeats, trainLabels, testFeats, testLabels, opts)).top1;
}

/** Options of {@link makeKnnMonitor}. */
export interface KnnMonitorOptions {
  /** Run every N epochs (`eval.knnEvery`; 0 = never). */
  every: number;
  /** Neighbours (`eval.knnK`, default 20). */
  k?: number;
  /** Temperature (default 0.07). */
  T?: number;
  /** First N labelled training images (default 2000; 0 = all). */
  trainLimit?: number;
  /** First N test images (default 500; 0 = all). */
  testLimit?: number;
  /** Model input side (the run's model image size). */
  imageSize: number;
  /** Images per forward pass (default 128). */
  batchSize?: number;
}

/** A kNN monitor for pre-training; see {@link makeKnnMonitor}. */
export interface KnnMonitor {
  readonly every: number;
  /** Whether to measure after `epochsDone` finished epochs (1-based count). */
  due(epochsDone: number, totalEpochs?: number): boolean;
  /** Encode the train and test subsets with `encoder` and return kNN top-1 (in [0, 1]). */
  measure(encoder: VisionTransformer): Promise<{ knnTop1: number; knnSeconds: number }>;
  /** Close the datasets it opened. */
  close(): void;
}

/**
 * A self-contained kNN monitor: opens the labelled train and test splits of
 * the pre-training dataset lazily (first `trainLimit` / `testLimit` items),
 * and on `measure(encoder)` extracts CLS features (no gradient) and scores
 * weighted kNN. Nothing is cached between calls: the encoder changes.
 *
 * @example
 * ```ts ignore
 * const monitor = makeKnnMonitor(config.data, { every: config.eval.knnEvery, k: config.eval.knnK, imageSize });
 * if (monitor.due(epoch + 1, config.train.epochs)) extra = { ...extra, ...await monitor.measure(model.encoder) };
 * ```
 */
export function makeKnnMonitor(
  data: EvalDataConfig | Readonly<DataConfig>,
  opts: KnnMonitorOptions,
): KnnMonitor {
  const splits = labelledSplits(data.name);
  let sets: Promise<{ train: Dataset; test: Dataset }> | null = null;
  const open = () =>
    sets ??= (async () => ({
      train: await openEvalSplit(data, splits.train, opts.trainLimit ?? 2000),
      test: await openEvalSplit(data, splits.test, opts.testLimit ?? 500),
    }))();
  return {
    every: opts.every,
    due(epochsDone: number, totalEpochs?: number): boolean {
      if (!(opts.every > 0) || epochsDone < 1) return false;
      return epochsDone % opts.every === 0 || epochsDone === totalEpochs;
    },
    async measure(encoder: VisionTransformer) {
      const t0 = performance.now();
      const { train, test } = await open();
      const fo = { imageSize: opts.imageSize, batchSize: opts.batchSize ?? 128 };
      const a = await extractFeatures(encoder, train, fo);
      const b = await extractFeatures(encoder, test, fo);
      const knnTop1 = await knnAccuracy(a.features, a.labels, b.features, b.labels, {
        k: opts.k ?? 20,
        T: opts.T ?? 0.07,
        numClasses: train.numClasses || undefined,
      });
      return { knnTop1, knnSeconds: (performance.now() - t0) / 1000 };
    },
    close(): void {
      if (!sets) return;
      sets.then(({ train, test }) => {
        train.close?.();
        test.close?.();
      }).catch(() => {});
    },
  };
}
