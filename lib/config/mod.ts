/**
 * The experiment config: the typed tree and its defaults, CLI and YAML
 * resolution (defaults → YAML → `--section.key=value`), validation, help
 * text, the copy saved in each run folder, and the command line of every
 * task (`parseTask`, `taskHelp`, `runTask`).
 *
 * @example
 * ```ts
 * import { formatHelp, resolveConfig } from "./mod.ts";
 * const { config, help } = resolveConfig({ argv: ["--train.epochs=2"] });
 * if (help) console.log(formatHelp({ values: config }));
 * ```
 *
 * @module
 */

export type {
  AmtConfig,
  Config,
  DataConfig,
  DetectConfig,
  EvalConfig,
  FinetuneConfig,
  KnnConfig,
  MimConfig,
  ModelConfig,
  ProbeConfig,
  RunConfig,
  TrainConfig,
} from "./schema.ts";
export { defaultConfig, EXPERIMENT_SECTIONS, TASK_SECTIONS } from "./schema.ts";
export type {
  BackendName,
  BadImagePolicy,
  CountingName,
  DatasetName,
  FinetuneInit,
  MethodName,
  ProbeOptimizer,
  StrategyName,
} from "./choices.ts";
export {
  BACKEND_NAMES,
  CHOICES,
  COUNTING_CHOICES,
  DATASET_CHOICES,
  FINETUNE_INITS,
  METHOD_CHOICES,
  PROBE_OPTIMIZERS,
  STRATEGY_CHOICES,
} from "./choices.ts";
export { ConfigError } from "./errors.ts";
export type { ConfigValue, ValueKind } from "./keys.ts";
export {
  checkFileValue,
  configKeys,
  configSections,
  deepFreeze,
  describeKey,
  flattenConfig,
  getConfigValue,
  INTEGER_KEYS,
  keyKind,
  parseCliValue,
  selectKeys,
} from "./keys.ts";
export type {
  CliArgs,
  ConfigSources,
  ParseCliOptions,
  ResolvedConfig,
  ResolveOptions,
} from "./load.ts";
export { parseCli, resolveConfig } from "./load.ts";
export { checkPatchDividesImage, validateConfig } from "./validate.ts";
export type { HelpOptions } from "./help.ts";
export { formatHelp } from "./help.ts";
export {
  checkResumable,
  CONFIG_FILE,
  diffConfigs,
  loadSavedConfig,
  RESUMABLE_KEYS,
  saveConfig,
  type SaveConfigOptions,
} from "./saved.ts";
export type { ParseTaskOptions, RunTaskOptions, TaskSpec } from "./cli.ts";
export { isTaskError, parseTask, runTask, switchOn, taskHelp } from "./cli.ts";
