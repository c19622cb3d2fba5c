/**
 * Pre-training: `pretrain()` and its named pieces (setup and resume, one
 * epoch, the kNN / attention monitor, the per-epoch figures), the planner
 * factory, and every figure of a run folder rebuilt from the folder alone.
 *
 * @module
 */

// `pretrain()` and its named pieces.
export { pretrain } from "./pretrain.ts";
export {
  type PretrainOptions,
  type PretrainResult,
  type PretrainRun,
  setupPretrain,
} from "./setup.ts";
export { type EpochResult, trainOneEpoch } from "./epoch.ts";
export {
  makePretrainMonitor,
  MONITOR_MAP_IMAGES,
  monitorKey,
  type MonitorMapsEntry,
  type MonitorMapsFile,
  monitorSources,
  type PretrainMonitor,
  readMonitorMaps,
} from "./monitor.ts";

// The planner a config asks for.
export { buildPlanner, type PlannerContext, PLANNERS } from "./factory.ts";

// Figures: per epoch, and every figure of a run folder from the folder alone.
export { writeRunFigures } from "./figures.ts";
export {
  type AllRunFiguresOptions,
  type RunFiguresResult,
  writeAllRunFigures,
  writeCurveFigures,
  writeImageFigures,
  writeSaliencyFigure,
} from "./run_plots.ts";
