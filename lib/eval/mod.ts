/**
 * Evaluation of pre-trained encoders: frozen features (cached per
 * checkpoint), linear probing (MAE protocol), weighted kNN and a kNN monitor
 * for pre-training, full fine-tuning with layer-wise lr decay, and how much
 * CLS attention lands on the object.
 *
 * Accuracies and shares are fractions in [0, 1].
 *
 * @module
 */

// Metrics.
export { accuracy, confusionMatrix, crossEntropy, topKAccuracy } from "./metrics.ts";

// Labelled splits and frozen features (cached per checkpoint).
export { type EvalDataConfig, labelledSplits, openEvalSplit } from "./data.ts";
export {
  type CachedFeatureOptions,
  cachedFeatures,
  decodeFeatureFile,
  encodeFeatureFile,
  extractFeatures,
  type ExtractOptions,
  featureCachePath,
  type FeatureSet,
} from "./features.ts";

// Linear probe (MAE protocol), kNN and the pre-training kNN monitor, fine-tuning.
export {
  BatchNormNoAffine,
  batchNormNoAffine,
  larsDirection,
  type LinearProbeOptions,
  type LinearProbeResult,
  trainLinearProbe,
} from "./linear_probe.ts";
export {
  knnAccuracy,
  knnClassify,
  type KnnMonitor,
  type KnnMonitorOptions,
  type KnnOptions,
  type KnnResult,
  l2NormalizeRows,
  makeKnnMonitor,
} from "./knn.ts";
export {
  encoderParams,
  finetune,
  type FinetuneOptions,
  type FinetuneResult,
  LAYER_DECAY,
  layerDecayScale,
  layerDecayScales,
  layerId,
} from "./finetune.ts";

// How much CLS attention lands on the object.
export {
  type AttentionOnObject,
  attentionOnObject,
  attentionOnObjectFigure,
  type AttentionOnObjectOptions,
  objectMaskOf,
  objectShare,
  patchObjectFraction,
} from "./attention.ts";

// The runners: one evaluation of a run folder, written under it.
export {
  closeSplits,
  type LabelledSplits,
  linearProbeRecipe,
  type LinearProbeRun,
  type LinearProbeSummary,
  openLabelledSplits,
  runLinearProbe,
  type RunLinearProbeOptions,
  type SplitFeatures,
  splitFeatures,
} from "./linprobe_run.ts";
export { type KnnSummary, runKnn, type RunKnnOptions } from "./knn_run.ts";
export {
  type FinetuneRun,
  type FinetuneSummary,
  runFinetune,
  type RunFinetuneOptions,
} from "./finetune_run.ts";

// Whether a stored result was made with the same recipe.
export { type Recipe, type RecipeValue, reusableResult } from "./_run.ts";

// The command lines of the eval tasks.
export { evalBase, type EvalTaskArgs, finetuneTask, knnTask, linearProbeTask } from "./cli.ts";
