/**
 * The paper's tables, reproduced at a budget the machine affords, in parts
 * that merge through record files.
 *
 * @module
 */

// Budgets, the paper's runs and numbers, and what is left to do.
export {
  budgetOf,
  BUDGETS,
  PAPER,
  parseSeeds,
  planTodo,
  type ReproBudget,
  type ReproRun,
  reproRuns,
  type ReproTodo,
  runArgs,
  type TodoSelection,
} from "./plan.ts";

// Running it all.
export { type ReproOptions, type ReproResults, runRepro, type RunResult } from "./run.ts";

// Per-run records, merged across machines and seeds.
export {
  checkRecord,
  type MergedRecords,
  mergeRecords,
  readRecords,
  recordFromRunFolder,
  type ReproRecord,
  writeRecord,
} from "./records.ts";

// Tables and figures, and rebuilding them from the records alone.
export {
  missingRuns,
  renderCsv,
  renderTables,
  type TablesInput,
  writeReproFigures,
  writeTables,
} from "./tables.ts";
export {
  rebuildResults,
  type RebuildSummary,
  rebuildTables,
  type RebuildTablesOptions,
  type ResultsFile,
} from "./rebuild.ts";

// The random-init baseline.
export { probeRandomInit, type RandomInitOptions } from "./baseline.ts";

// Seed statistics: means, spreads, paired t intervals, and a one-way ANOVA across settings.
export {
  formatPaired,
  formatSeeds,
  type OneWayAnova,
  oneWayAnova,
  type PairedDifference,
  pairedDifference,
  type SeedSummary,
  summarize,
  tCdf,
  tQuantile,
} from "./stats.ts";
