/**
 * The paper's tables, reproduced at a budget the machine affords.
 *
 * @module
 */
export * from "./plan.ts";
export * from "./run.ts";
export * from "./tables.ts";
