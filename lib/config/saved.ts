/**
 * The config saved in a run folder (`config.json`), and the check that a
 * resumed run still uses it.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../util/fs.ts";
import { type Config, defaultConfig, EXPERIMENT_SECTIONS, TASK_SECTIONS } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { applyTree } from "./_tree.ts";
import { configKeys, deepFreeze, flattenConfig, formatValue } from "./keys.ts";
import { validateConfig } from "./validate.ts";

/** File name of the saved config inside a run folder. */
export const CONFIG_FILE = "config.json";

/** The experiment keys a resume may change: how long or where a run goes, not what it computes. */
const RESUMABLE_EXPERIMENT_KEYS: readonly string[] = Object.freeze([
  "train.epochs",
  "train.maxSteps",
  "train.logEvery",
  "train.ckptEvery",
  "train.precision", // checkpoints hold fp32 master weights: a bf16 run resumes in fp32 and back
  "eval.knnEvery",
  "eval.attnEvery",
  "eval.attnImages",
  "eval.attnSources",
  "run.backend",
  "run.threads",
  "run.vizImages",
  "run.dir",
]);

/**
 * Keys that may differ between a run folder's saved config and the config a
 * resume is started with: they change how long or where a run goes, not
 * what it computes; and every key of the task sections (`probe`, `finetune`,
 * `knn`, `detect`), which pre-training does not read.
 */
export const RESUMABLE_KEYS: readonly string[] = Object.freeze([
  ...RESUMABLE_EXPERIMENT_KEYS,
  ...configKeys().filter((k) => (TASK_SECTIONS as readonly string[]).includes(k.split(".")[0])),
]);

/** Options of {@linkcode saveConfig}. */
export interface SaveConfigOptions {
  /**
   * The sections to write (default {@linkcode EXPERIMENT_SECTIONS}: what a
   * pre-training run computes). A task adds its own (`[...EXPERIMENT_SECTIONS,
   * "probe"]`); sections left out read as their defaults.
   */
  sections?: readonly (keyof Config)[];
}

/**
 * Writes `config.json` into `dir` (created if needed), atomically: the JSON
 * goes to `config.json.tmp`, then is renamed over `config.json`.
 *
 * @returns the path written.
 */
export async function saveConfig(
  dir: string,
  config: Readonly<Config>,
  opts: SaveConfigOptions = {},
): Promise<string> {
  const path = join(dir, CONFIG_FILE);
  const tree: Record<string, unknown> = {};
  for (const section of opts.sections ?? EXPERIMENT_SECTIONS) tree[section] = config[section];
  await writeFileAtomic(path, JSON.stringify(tree, null, 2) + "\n");
  return path;
}

/**
 * Reads `config.json` from a run folder: keys are checked as in a YAML file
 * (keys missing from an older file take their defaults), then validated and
 * deep-frozen.
 *
 * @throws {ConfigError} when the file is missing, not JSON, or not a valid config.
 */
export async function loadSavedConfig(dir: string): Promise<Readonly<Config>> {
  const path = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        `no saved config at "${path}": is "${dir}" a run folder? A run writes ${CONFIG_FILE} when it starts.`,
        { source: path },
      );
    }
    throw err;
  }
  let tree: unknown;
  try {
    tree = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `saved config "${path}" is not valid JSON (${(err as Error).message}); ` +
        `restore it or start a new run folder.`,
      { source: path },
    );
  }
  const config = defaultConfig();
  const sources: Record<string, string> = {};
  applyTree(config, tree, path, () => path, sources);
  validateConfig(config, sources);
  return deepFreeze(config);
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
  }
  return Object.is(a, b);
}

/**
 * The dotted keys whose values differ between two configs, in schema order.
 *
 * @param ignore keys not to report (e.g. {@linkcode RESUMABLE_KEYS}).
 */
export function diffConfigs(
  a: Readonly<Config>,
  b: Readonly<Config>,
  ignore: readonly string[] = [],
): string[] {
  const fa = flattenConfig(a);
  const fb = flattenConfig(b);
  return configKeys().filter((key) => !ignore.includes(key) && !same(fa[key], fb[key]));
}

/**
 * Throws unless `current` matches the config saved in run folder `dir` on
 * every key outside `allowed`.
 *
 * @throws {ConfigError} listing each differing key with both values.
 */
export function checkResumable(
  saved: Readonly<Config>,
  current: Readonly<Config>,
  dir: string,
  allowed: readonly string[] = RESUMABLE_KEYS,
): void {
  const keys = diffConfigs(saved, current, allowed);
  if (keys.length === 0) return;
  const fs = flattenConfig(saved);
  const fc = flattenConfig(current);
  const lines = keys.map((k) => `  - ${k}: saved ${formatValue(fs[k])}, now ${formatValue(fc[k])}`);
  const taskKeys = allowed.filter((k) =>
    (TASK_SECTIONS as readonly string[]).includes(k.split(".")[0])
  );
  const shown = taskKeys.length === RESUMABLE_KEYS.length - RESUMABLE_EXPERIMENT_KEYS.length
    ? [...allowed.filter((k) => !taskKeys.includes(k)), `every ${TASK_SECTIONS.join(".*, ")}.* key`]
    : allowed;
  throw new ConfigError(
    `cannot resume run folder "${dir}": its config differs on ${keys.length} key(s):\n` +
      lines.join("\n") +
      `\nResume with the saved config (--config ${join(dir, CONFIG_FILE)}; JSON is YAML) ` +
      `or start a new run folder. Keys allowed to change: ${shown.join(", ")}.`,
    { key: keys[0], source: dir, problems: lines.map((l) => l.slice(4)) },
  );
}
