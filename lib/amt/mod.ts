/**
 * AMT: attention-driven masking and throwing (saliency, sampling, schedule,
 * and the planner that plugs into any MIM method).
 *
 * @module
 */
export * from "./sampler.ts";
export * from "./weights.ts";
export * from "./saliency.ts";
export * from "./schedule.ts";
export * from "./planner.ts";
