/**
 * The run folder (`runs/<exp>/<tag>/`) and the machinery every training loop
 * shares: its paths and config hash, typed `run.json` / `summary.json`, the
 * `metrics.jsonl` records and the loss log that writes them, checkpoints and
 * what they hold, the progress line, stop signals, the one-writer lock, the
 * model a run's config asks for, and loading a run back.
 *
 * @module
 */
export * from "./folder.ts";
export * from "./info.ts";
export * from "./metrics.ts";
export * from "./metrics_log.ts";
export * from "./checkpoint.ts";
export * from "./state.ts";
export * from "./model.ts";
export * from "./progress.ts";
export * from "./signals.ts";
export * from "./lock.ts";
export * from "./load_run.ts";
