/**
 * Which labelled splits an evaluation uses for a pre-training dataset, and
 * opening them with the run's data settings.
 *
 * @module
 */
import type { DataConfig } from "../config/schema.ts";
import { type Dataset, openDataset } from "../data/mod.ts";

/**
 * The data keys an evaluation needs (a pre-training run's `config.data`), and the run's
 * normalisation when it replaces the dataset's (`LoadedRun.normalization`).
 */
export type EvalDataConfig = Pick<DataConfig, "name" | "root" | "split" | "imageSize"> & {
  onBadImage?: string;
  /** `data.normalize` of the run (default `standard`): evaluations see what training saw. */
  normalize?: string;
  mean?: readonly number[];
  std?: readonly number[];
};

/**
 * The labelled train and test splits of a dataset: STL-10's labelled `train`
 * whatever split pre-training used (`unlabeled`, `train+unlabeled`), and
 * `val` as the test split of ImageNet-style folders.
 */
export function labelledSplits(name: string): { train: string; test: string } {
  switch (name) {
    case "tiny-imagenet":
    case "imagenet":
    case "image-folder":
      return { train: "train", test: "val" };
    default:
      return { train: "train", test: "test" };
  }
}

/**
 * Open split `split` of the run's dataset with the run's decode settings (and its
 * normalisation when `data` carries one), limited to its first `limit` items (0 = all).
 */
export function openEvalSplit(
  data: EvalDataConfig,
  split: string,
  limit = 0,
): Promise<Dataset> {
  return openDataset({
    name: data.name,
    root: data.root,
    split,
    limit,
    imageSize: data.imageSize,
    onBadImage: data.onBadImage ?? "skip",
    normalize: data.normalize ?? "standard",
    mean: data.mean,
    std: data.std,
  });
}
