/**
 * The paper's tables, reproduced at a budget the machine affords, in parts
 * that merge through record files.
 *
 * @module
 */
export * from "./plan.ts";
export * from "./run.ts";
export * from "./tables.ts";
export * from "./records.ts";
export * from "./rebuild.ts";
export * from "./baseline.ts";
export {
  formatPaired,
  formatSeeds,
  lnGamma,
  type PairedDifference,
  pairedDifference,
  type PairedReading,
  readInterval,
  regularizedIncompleteBeta,
  sampleSd,
  type SeedSummary,
  summarize,
  tCdf,
  tQuantile,
} from "./stats.ts";
