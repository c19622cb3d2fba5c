/**
 * The run folder (`runs/<exp>/<tag>/`) and the machinery every training loop
 * shares: its paths and config hash, typed `run.json` / `summary.json`, the
 * `metrics.jsonl` records and the loss log that writes them, checkpoints and
 * what they hold, the progress line, stop signals, the one-writer lock, the
 * model a run's config asks for, and loading a run back.
 *
 * @module
 */

// Paths and the config hash.
export {
  configHash,
  defaultRunDir,
  type EvalPaths,
  evalPaths,
  pathExists,
  RUN_FILES,
  type RunPaths,
  runPaths,
} from "./folder.ts";

// `run.json` and `summary.json`.
export {
  gitCommit,
  type ImportedFrom,
  isFinished,
  readRunInfo,
  readRunSummary,
  type RunInfo,
  type RunNormalization,
  runNormalization,
  type RunSummary,
  writeRunInfo,
  writeRunSummary,
} from "./info.ts";

// `metrics.jsonl` and the loss log that writes it.
export { appendMetrics, type MetricRecord, readMetrics, truncateMetrics } from "./metrics.ts";
export {
  MetricsLog,
  type MetricsLogOptions,
  NonFiniteLossError,
  type StepInfo,
} from "./metrics_log.ts";

// Checkpoints and the training state they hold.
export {
  type CheckpointData,
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
export { gatherState, plannerState, restoreState } from "./state.ts";

// Array files of other tools: safetensors (weights in and out) and NumPy's `.npy`.
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  SAFETENSORS_DTYPES,
  type SafetensorsEntry,
  SafetensorsError,
  type SafetensorsFile,
  tensorFloat32,
  type TensorToWrite,
  type WritableDtype,
} from "./safetensors.ts";
export { decodeNpy, encodeNpy, type NpyArray } from "./npy.ts";

// The model a run's config asks for, and loading a run back.
export { buildModel, modelImageSize } from "./model.ts";
export { type LoadedRun, loadRun } from "./load_run.ts";

// The progress line, stop signals, the one-writer lock.
export { formatDuration, Progress } from "./progress.ts";
export { StopRequest, type StopRequestOptions } from "./signals.ts";
export {
  type LockOwner,
  processAlive,
  RunLock,
  RunLockedError,
  type RunLockOptions,
} from "./lock.ts";
