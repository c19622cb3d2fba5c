/**
 * The experiment config: the typed tree and its defaults, CLI and YAML
 * resolution (defaults → YAML → `--section.key=value`), validation, help
 * text, and the copy saved in each run folder.
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
  EvalConfig,
  MimConfig,
  ModelConfig,
  RunConfig,
  TrainConfig,
} from "./schema.ts";
export { defaultConfig } from "./schema.ts";
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
} from "./keys.ts";
export type {
  CliArgs,
  ConfigSources,
  ParseCliOptions,
  ResolvedConfig,
  ResolveOptions,
} from "./load.ts";
export { parseCli, resolveConfig } from "./load.ts";
export { checkPatchDividesImage, CHOICES, validateConfig } from "./validate.ts";
export type { HelpOptions } from "./help.ts";
export { formatHelp } from "./help.ts";
export {
  checkResumable,
  CONFIG_FILE,
  diffConfigs,
  loadSavedConfig,
  RESUMABLE_KEYS,
  saveConfig,
} from "./saved.ts";
