/**
 * Pre-training: `pretrain()` and its named pieces (setup and resume, one
 * epoch, the kNN / attention monitor, the per-epoch figures), the planner
 * factory, and every figure of a run folder rebuilt from the folder alone.
 *
 * @module
 */
export * from "./pretrain.ts";
export * from "./setup.ts";
export * from "./epoch.ts";
export * from "./monitor.ts";
export * from "./factory.ts";
export * from "./figures.ts";
export * from "./run_plots.ts";
