/**
 * What pre-training measures besides the loss, every `eval.knnEvery` epochs
 * (and after the last): weighted kNN top-1 on the CLS features of labelled
 * subsets of the dataset, and the share of last-block CLS attention that
 * lands on the object.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/mod.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { makeKnnMonitor } from "../eval/knn.ts";
import type { MimModel } from "../mim/types.ts";

/** The epoch-end monitor of a pre-training run; see {@linkcode makePretrainMonitor}. */
export interface PretrainMonitor {
  /** Whether to measure after `epochsDone` finished epochs (1-based count). */
  due(epochsDone: number, totalEpochs: number): boolean;
  /**
   * Measure the model now: `knnTop1`, `knnSeconds`, `attnOnObject`,
   * `objectArea` (fractions in [0, 1]), for the epoch record; logs one line.
   */
  measure(model: MimModel): Promise<Record<string, number>>;
  /** Close the datasets it opened. */
  close(): void;
}

/**
 * The monitor of a run, or null when `eval.knnEvery` is 0. The kNN subsets
 * are opened lazily from `config.data` (normalised with `normalization` when the
 * run's replaces the dataset's); attention on the object is measured on the
 * first 256 training images of `dataset`.
 */
export function makePretrainMonitor(
  config: Readonly<Config>,
  dataset: Dataset,
  imageSize: number,
  log: (s: string) => void,
  normalization?: { mean: readonly number[]; std: readonly number[] },
): PretrainMonitor | null {
  if (!(config.eval.knnEvery > 0)) return null;
  const knn = makeKnnMonitor({ ...config.data, ...normalization }, {
    every: config.eval.knnEvery,
    k: config.eval.knnK,
    imageSize,
  });
  return {
    due: (epochsDone, totalEpochs) => knn.due(epochsDone, totalEpochs),
    async measure(model) {
      const extra: Record<string, number> = { ...await knn.measure(model.encoder) };
      const object = await attentionOnObject(model.encoder, dataset, { imageSize, limit: 256 });
      extra.attnOnObject = object.mean;
      extra.objectArea = object.areaFraction;
      log(
        `  kNN top-1 ${(100 * extra.knnTop1).toFixed(1)}%, attention on object ${
          (100 * object.mean).toFixed(1)
        }% (object area ${(100 * object.areaFraction).toFixed(1)}%)`,
      );
      return extra;
    },
    close: () => knn.close(),
  };
}
