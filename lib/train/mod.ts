/**
 * Training: AdamW, lr schedule, checkpoints, metrics, progress, the
 * pre-training loop and its figures.
 *
 * @module
 */
export * from "./adamw.ts";
export * from "./schedule.ts";
export * from "./checkpoint.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
export * from "./factory.ts";
export * from "./figures.ts";
export * from "./pretrain.ts";
export * from "./load_run.ts";
export * from "./run_plots.ts";
