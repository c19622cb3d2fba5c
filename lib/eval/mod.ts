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
export * from "./metrics.ts";
export * from "./data.ts";
export * from "./features.ts";
export * from "./linear_probe.ts";
export * from "./knn.ts";
export * from "./finetune.ts";
export * from "./attention.ts";
export * from "./linprobe_run.ts";
export * from "./finetune_run.ts";
export * from "./cli.ts";
export * from "./knn_run.ts";
// whether an evaluation folder already holds this result (the repro baseline reuses it too)
export { type Recipe, type RecipeValue, reusableResult } from "./_run.ts";
