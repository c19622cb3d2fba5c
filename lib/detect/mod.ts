/**
 * Object detection and instance segmentation on top of the ViT encoders:
 * COCO-format data and evaluation, an embedded scene generator, and a
 * ViTDet-style detector.
 *
 * @module
 */
export * from "./types.ts";
export * from "./rle.ts";
export * from "./coco_eval.ts";
export * from "./coco.ts";
export * from "./scenes.ts";
export * from "./targets.ts";
export * from "./backbone.ts";
export * from "./model.ts";
export * from "./decode.ts";
export * from "./draw.ts";
export * from "./train.ts";
