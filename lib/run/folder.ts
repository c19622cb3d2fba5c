/**
 * The run folder as a type: every path of `runs/<exp>/<tag>/` in one place,
 * and the config hash that names the default folder.
 *
 * ```text
 * <run>/
 *   .lock                         the process writing the run (RunLock)
 *   config.json                   the resolved config (lib/config)
 *   run.json                      RunInfo: data, model shape, backend, provenance
 *   metrics.jsonl                 step and epoch records (MetricsLog)
 *   summary.json                  RunSummary; present once the run finished
 *   diagnostic.json               written when a non-finite loss stopped the run
 *   checkpoints/checkpoint.ckpt   newest checkpoint (`.prev`: the one before)
 *   plots/*.png                   figures (lib/pretrain/run_plots.ts)
 *   eval/features_*.bin           CLS features cached per checkpoint step
 *   linprobe/ finetune/ finetune-random/ knn/   evaluation folders (EvalPaths)
 * ```
 *
 * Paths are `dir + "/" + name`, not normalised, so messages quote the folder
 * as it was given.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { CONFIG_FILE, flattenConfig, RESUMABLE_KEYS } from "../config/mod.ts";
import { type Config, defaultConfig } from "../config/schema.ts";

/** Names inside a run folder, relative to it. */
export const RUN_FILES = Object.freeze({
  lock: ".lock",
  config: CONFIG_FILE,
  run: "run.json",
  metrics: "metrics.jsonl",
  summary: "summary.json",
  diagnostic: "diagnostic.json",
  checkpoints: "checkpoints",
  checkpoint: "checkpoints/checkpoint.ckpt",
  plots: "plots",
  eval: "eval",
  linprobe: "linprobe",
  finetune: "finetune",
  finetuneRandom: "finetune-random",
  knn: "knn",
});

/** Every path of one run folder. */
export interface RunPaths {
  /** The folder itself, as given. */
  readonly dir: string;
  /** `.lock`: who is writing the run (see `RunLock`). */
  readonly lock: string;
  /** `config.json`. */
  readonly config: string;
  /** `run.json` ({@linkcode RunInfo}). */
  readonly run: string;
  /** `metrics.jsonl`. */
  readonly metrics: string;
  /** `summary.json` ({@linkcode RunSummary}); exists once the run finished. */
  readonly summary: string;
  /** `diagnostic.json`, written when a non-finite loss stopped the run. */
  readonly diagnostic: string;
  /** `checkpoints/`. */
  readonly checkpoints: string;
  /** `checkpoints/checkpoint.ckpt`. */
  readonly checkpoint: string;
  /** `checkpoints/checkpoint.ckpt.prev`, the previous good checkpoint. */
  readonly checkpointPrev: string;
  /** `plots/`. */
  readonly plots: string;
  /** `eval/`: the feature cache of the evaluations. */
  readonly eval: string;
  /** `linprobe/`, the linear-probe folder. */
  readonly linprobe: string;
  /** `finetune/`, the fine-tuning folder. */
  readonly finetune: string;
  /** `finetune-random/`, the random-init fine-tuning baseline. */
  readonly finetuneRandom: string;
  /** `knn/`, the kNN folder. */
  readonly knn: string;
  /** `plots/<name>`. */
  plot(name: string): string;
}

/**
 * The paths of the run folder `dir`.
 *
 * @example
 * ```ts
 * import { runPaths } from "./folder.ts";
 * const p = runPaths("runs/mae/1a2b3c4d");
 * console.assert(p.checkpoint === "runs/mae/1a2b3c4d/checkpoints/checkpoint.ckpt");
 * console.assert(p.plot("loss.png") === "runs/mae/1a2b3c4d/plots/loss.png");
 * ```
 */
export function runPaths(dir: string): RunPaths {
  const at = (name: string) => `${dir}/${name}`;
  return Object.freeze({
    dir,
    lock: at(RUN_FILES.lock),
    config: at(RUN_FILES.config),
    run: at(RUN_FILES.run),
    metrics: at(RUN_FILES.metrics),
    summary: at(RUN_FILES.summary),
    diagnostic: at(RUN_FILES.diagnostic),
    checkpoints: at(RUN_FILES.checkpoints),
    checkpoint: at(RUN_FILES.checkpoint),
    checkpointPrev: `${at(RUN_FILES.checkpoint)}.prev`,
    plots: at(RUN_FILES.plots),
    eval: at(RUN_FILES.eval),
    linprobe: at(RUN_FILES.linprobe),
    finetune: at(RUN_FILES.finetune),
    finetuneRandom: at(RUN_FILES.finetuneRandom),
    knn: at(RUN_FILES.knn),
    plot: (name: string) => `${at(RUN_FILES.plots)}/${name}`,
  });
}

/** The files of an evaluation folder (`linprobe/`, `finetune/`, `knn/`, or `--out=DIR`). */
export interface EvalPaths {
  readonly dir: string;
  /** `metrics.jsonl`: step / epoch records of the evaluation's training. */
  readonly metrics: string;
  /** `result.json`: the numbers, the checkpoint step and the recipe. */
  readonly result: string;
  /** `<name>` inside the folder (`accuracy.png`, `confusion.png`...). */
  file(name: string): string;
}

/** The paths of the evaluation folder `dir`. */
export function evalPaths(dir: string): EvalPaths {
  return Object.freeze({
    dir,
    metrics: `${dir}/${RUN_FILES.metrics}`,
    result: `${dir}/result.json`,
    file: (name: string) => `${dir}/${name}`,
  });
}

/**
 * Keys added after run folders were first named by {@linkcode configHash}: hashed only when
 * they differ from their default, so a command that sets none of them still lands in (and
 * resumes) the folder it always did.
 */
export const HASHED_WHEN_SET: readonly string[] = Object.freeze([
  "data.normalize",
  "model.registers",
  "amt.saliency",
  "amt.invert",
  "amt.emaMomentum",
  "train.noDecay",
]);

/**
 * The config hash: 8 hex digits of a SHA-256 over every key that changes
 * what the run computes (the keys a resume may change, `RESUMABLE_KEYS`, left
 * out, except `train.epochs`, which shapes the lr schedule; the keys of
 * {@linkcode HASHED_WHEN_SET} only when not at their defaults).
 */
export function configHash(config: Readonly<Config>): string {
  const flat = flattenConfig(config);
  const defaults = flattenConfig(defaultConfig());
  const atDefault = (k: string) => JSON.stringify(flat[k]) === JSON.stringify(defaults[k]);
  // train.epochs shapes the lr schedule, so it names a different run even though an
  // explicit --run.dir may extend a run with it
  const keyed = Object.keys(flat).filter((k) => k === "train.epochs" || !RESUMABLE_KEYS.includes(k))
    .filter((k) => !(HASHED_WHEN_SET.includes(k) && atDefault(k)))
    .sort()
    .map((k) => `${k}=${JSON.stringify(flat[k])}`).join("\n");
  return createHash("sha256").update(keyed).digest("hex").slice(0, 8);
}

/**
 * Default run folder: `runs/<run.name>/<hash>` ({@linkcode configHash}). The
 * same command therefore lands in the same folder (and resumes it);
 * different settings get their own folder.
 */
export function defaultRunDir(config: Readonly<Config>): string {
  return `runs/${config.run.name}/${configHash(config)}`;
}

/** Whether `path` exists (other errors, such as a denied permission, are thrown). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
