/**
 * Datasets, augmentation and batching for masked image modeling.
 *
 * Items are native-resolution HWC rasters; `loadBatch` crops, flips, resizes
 * and normalises them into [B, S, S, C] Float32Arrays, and returns the crop
 * boxes so saliency maps can be cropped the same way with `applyCrop`.
 *
 * @module
 */

export * from "./types.ts";
export * from "./names.ts";
export * from "./errors.ts";
export * from "./idx.ts";
export * from "./cifar.ts";
export * from "./stl10.ts";
export * from "./image_folder.ts";
export * from "./synthetic.ts";
export * from "./registry.ts";
export * from "./augment.ts";
export * from "./batch.ts";
