/**
 * `deno task linprobe --ckpt=RUN_DIR [--probe.key=value ...]`
 *
 * Linear probe (MAE protocol: BatchNorm without affine + Linear, frozen CLS
 * features) of a pre-training run's newest checkpoint, plus weighted kNN on
 * the same features. Writes `<RUN_DIR>/linprobe/` (or `probe.dir`) with
 * `config.json`, `metrics.jsonl`, `result.json`, `accuracy.png`, `loss.png`,
 * `confusion.png`; features are cached in `<RUN_DIR>/eval/`. Skips when
 * `result.json` exists for the same checkpoint and recipe unless `--force`.
 */
import { evalBase, linearProbeTask, parseTask, runTask, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "linprobe",
  usage: "--ckpt=RUN_DIR [--probe.key=value ...] [--run.backend=...] [--data.root=...]",
  keys: ["probe", "eval.knnK", "data.root", "run.backend", "run.threads", "train.precision"],
  aliases: {
    out: "probe.dir",
    epochs: "probe.epochs",
    lr: "probe.baseLr",
    batchSize: "probe.batchSize",
    optimizer: "probe.optimizer",
    warmupEpochs: "probe.warmupEpochs",
    trainLimit: "probe.trainLimit",
    testLimit: "probe.testLimit",
    featureBatchSize: "probe.featureBatchSize",
    knn: "probe.knn",
    cache: "probe.cache",
    seed: "probe.seed",
  },
  positional: "RUN_DIR (the same as --ckpt)",
  flags: {
    "ckpt=RUN_DIR": "pre-training run folder (required; its config.json is the base)",
    "force": "recompute even when result.json exists for this checkpoint and recipe",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args, { base: evalBase });
    if (args.help) return console.log(taskHelp(TASK));
    await linearProbeTask(args);
  });
}
