/**
 * The evaluation tasks (`deno task linprobe | finetune | knn`) as functions of
 * a resolved config: the run's saved config is the base that the command line
 * overrides (so `--run.backend=cpu` or `--data.root=...` work), the task's own
 * section (`probe`, `finetune`, `knn`) holds its recipe, and the evaluation
 * folder gets a `config.json` with the experiment sections plus that section,
 * its defaults resolved (`-1` warm-up, `0` layer decay, `""` folder).
 *
 * @module
 */
import {
  type CliArgs,
  type Config,
  ConfigError,
  deepFreeze,
  EXPERIMENT_SECTIONS,
  type FinetuneInit,
  loadSavedConfig,
  type ProbeOptimizer,
  saveConfig,
  switchOn,
} from "../config/mod.ts";
import { LAYER_DECAY } from "./finetune.ts";
import { type FinetuneRun, runFinetune } from "./finetune_run.ts";
import { type KnnSummary, runKnn } from "./knn_run.ts";
import type { LinearProbeOptions } from "./linear_probe.ts";
import { type LinearProbeRun, runLinearProbe } from "./linprobe_run.ts";

// lib/config sits below lib/eval, so the config's unions are checked against the runners' here
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _optimizers: Same<ProbeOptimizer, NonNullable<LinearProbeOptions["optimizer"]>> = true;
const _inits: Same<FinetuneInit, NonNullable<Parameters<typeof runFinetune>[0]["init"]>> = true;

/** What an evaluation task gets from `parseTask`. */
export interface EvalTaskArgs {
  /** The run's saved config (defaults without `--ckpt`) with the file and command line applied. */
  config: Readonly<Config>;
  /** Task flags: `ckpt`, `force`. */
  extras: Readonly<Record<string, string>>;
  positional: readonly string[];
}

/** The run folder an evaluation reads: `--ckpt`, else the first positional argument; "" when none. */
export function ckptOf(
  cli: { extras: Readonly<Record<string, string>>; positional: readonly string[] },
): string {
  return cli.extras.ckpt ?? cli.positional[0] ?? "";
}

/**
 * `parseTask`'s base for an evaluation: the saved config of the run named by
 * `--ckpt` (undefined without one).
 *
 * @throws {ConfigError} when the folder holds no valid `config.json`.
 */
export async function evalBase(cli: CliArgs): Promise<Readonly<Config> | undefined> {
  const ckpt = ckptOf(cli);
  return ckpt ? await loadSavedConfig(ckpt) : undefined;
}

function requireCkpt(args: EvalTaskArgs, task: string): string {
  const ckpt = ckptOf(args);
  if (!ckpt) {
    throw new ConfigError(
      `--ckpt=RUN_DIR is required: the pre-training run folder to evaluate ` +
        `(deno task ${task} --help lists the flags).`,
      { source: "command line" },
    );
  }
  return ckpt;
}

/** Writes `<outDir>/config.json`: the experiment sections plus `section` with `resolved` set. */
async function saveEvalConfig<S extends "probe" | "finetune" | "knn">(
  outDir: string,
  config: Readonly<Config>,
  section: S,
  resolved: Partial<Config[S]>,
): Promise<void> {
  const tree = structuredClone(config) as Config;
  Object.assign(tree[section], resolved);
  await saveConfig(outDir, deepFreeze(tree), { sections: [...EXPERIMENT_SECTIONS, section] });
}

/** The backend, threads and dataset folder an evaluation takes from its config. */
function runSettings(config: Readonly<Config>) {
  return {
    backend: config.run.backend,
    threads: config.run.threads,
    dataRoot: config.data.root,
    precision: config.train.precision,
  };
}

/**
 * `deno task linprobe`: the linear probe (keys `probe.*`; kNN neighbours
 * `eval.knnK`) of `--ckpt`'s newest checkpoint; `--force` recomputes.
 */
export async function linearProbeTask(args: EvalTaskArgs): Promise<LinearProbeRun> {
  const runDir = requireCkpt(args, "linprobe");
  const p = args.config.probe;
  const warmupEpochs = p.warmupEpochs < 0 ? p.epochs / 10 : p.warmupEpochs;
  const run = await runLinearProbe({
    ...runSettings(args.config),
    runDir,
    out: p.dir || undefined,
    force: switchOn(args.extras, "force"),
    epochs: p.epochs,
    baseLr: p.baseLr,
    batchSize: p.batchSize,
    optimizer: p.optimizer,
    warmupEpochs,
    trainLimit: p.trainLimit,
    testLimit: p.testLimit,
    featureBatchSize: p.featureBatchSize,
    knn: p.knn,
    cache: p.cache,
    seed: p.seed,
    knnK: args.config.eval.knnK,
  });
  if (!run.skipped) {
    await saveEvalConfig(run.outDir, args.config, "probe", { dir: run.outDir, warmupEpochs });
  }
  return run;
}

/**
 * `deno task finetune`: fine-tuning (keys `finetune.*`) from `--ckpt`'s newest
 * checkpoint, or with `finetune.init=random` from scratch: the run's shape, or
 * without `--ckpt` the shape of `--config FILE` into `finetune.dir`.
 */
export async function finetuneTask(args: EvalTaskArgs): Promise<FinetuneRun> {
  const f = args.config.finetune;
  const runDir = ckptOf(args);
  if (!runDir && f.init === "pretrained") requireCkpt(args, "finetune");
  if (!runDir && !f.dir) {
    throw new ConfigError(
      "finetune.init=random without --ckpt needs --finetune.dir=DIR (the evaluation folder)",
      { key: "finetune.dir", source: "command line" },
    );
  }
  const warmupEpochs = f.warmupEpochs < 0 ? Math.min(5, f.epochs / 5) : f.warmupEpochs;
  const layerDecay = f.layerDecay || (LAYER_DECAY[args.config.mim.method] ?? 0.75);
  const run = await runFinetune({
    ...runSettings(args.config),
    runDir: runDir || undefined,
    config: args.config,
    init: f.init,
    out: f.dir || undefined,
    force: switchOn(args.extras, "force"),
    epochs: f.epochs,
    baseLr: f.baseLr,
    batchSize: f.batchSize,
    warmupEpochs,
    layerDecay,
    labelSmoothing: f.labelSmoothing,
    dropPath: f.dropPath,
    weightDecay: f.weightDecay,
    cropScale: [f.cropScale[0], f.cropScale[1]],
    limit: f.trainLimit,
    testLimit: f.testLimit,
    seed: f.seed,
  });
  if (!run.skipped) {
    await saveEvalConfig(run.outDir, args.config, "finetune", {
      dir: run.outDir,
      warmupEpochs,
      layerDecay,
    });
  }
  return run;
}

/**
 * `deno task knn`: weighted kNN (keys `knn.*`, neighbours `eval.knnK`) on the
 * CLS features of `--ckpt`'s newest checkpoint.
 */
export async function knnTask(
  args: EvalTaskArgs,
): Promise<{ outDir: string; skipped: boolean; result: KnnSummary }> {
  const runDir = requireCkpt(args, "knn");
  const k = args.config.knn;
  const run = await runKnn({
    ...runSettings(args.config),
    runDir,
    out: k.dir || undefined,
    force: switchOn(args.extras, "force"),
    k: args.config.eval.knnK,
    T: k.temperature,
    trainLimit: k.trainLimit,
    testLimit: k.testLimit,
    featureBatchSize: k.featureBatchSize,
    cache: k.cache,
  });
  if (!run.skipped) await saveEvalConfig(run.outDir, args.config, "knn", { dir: run.outDir });
  return run;
}
