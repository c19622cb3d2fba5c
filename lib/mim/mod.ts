/**
 * Masked image modeling: the mask-plan seam, the count rule, random masking,
 * MAE, SimMIM, and the method registry (`methods.ts`).
 *
 * @module
 */
export * from "./plan.ts";
export * from "./counts.ts";
export * from "./random.ts";
export * from "./types.ts";
export * from "./mae.ts";
export * from "./simmim.ts";
export * from "./methods.ts";
export * from "./flops.ts";
export * from "./reconstruct.ts";
