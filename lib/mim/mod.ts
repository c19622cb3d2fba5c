/**
 * Masked image modeling: the mask-plan seam, random masking, MAE.
 *
 * @module
 */
export * from "./plan.ts";
export * from "./random.ts";
export * from "./types.ts";
export * from "./mae.ts";
export * from "./simmim.ts";
export * from "./flops.ts";
export * from "./reconstruct.ts";
