/**
 * `deno task finetune --ckpt=RUN_DIR [--finetune.key=value ...]`
 * `deno task finetune --finetune.init=random --config FILE --finetune.dir=DIR [...]`
 *
 * Fine-tunes a pre-training run's encoder (CLS token → linear head, layer-wise
 * lr decay 0.75 MAE / 0.65 SimMIM, label smoothing 0.1, drop-path 0.1, AdamW,
 * RandomResizedCrop + flip) and scores top-1 on the test split.
 * `finetune.init=random` trains the same architecture from scratch (the
 * baseline); without `--ckpt` it takes the architecture from `--config FILE`
 * and needs `finetune.dir`. Writes `<RUN_DIR>/finetune/` (`finetune-random/`,
 * or `finetune.dir`) with `config.json`, `metrics.jsonl`, `result.json`,
 * `accuracy.png`, `loss.png`, `confusion.png`. Skips when `result.json`
 * exists for the same checkpoint and recipe unless `--force`.
 */
import { EXPERIMENT_SECTIONS } from "../mod.ts";
import { evalBase, finetuneTask, parseTask, runTask, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "finetune",
  usage: [
    "--ckpt=RUN_DIR [--finetune.key=value ...] [--run.backend=...] [--data.root=...]",
    "--finetune.init=random --config FILE --finetune.dir=DIR [--section.key=value ...]",
  ],
  keys: ["finetune", ...EXPERIMENT_SECTIONS],
  aliases: {
    out: "finetune.dir",
    init: "finetune.init",
    epochs: "finetune.epochs",
    lr: "finetune.baseLr",
    batchSize: "finetune.batchSize",
    warmupEpochs: "finetune.warmupEpochs",
    layerDecay: "finetune.layerDecay",
    labelSmoothing: "finetune.labelSmoothing",
    dropPath: "finetune.dropPath",
    weightDecay: "finetune.weightDecay",
    cropScale: "finetune.cropScale",
    limit: "finetune.trainLimit",
    testLimit: "finetune.testLimit",
    seed: "finetune.seed",
  },
  positional: "RUN_DIR (the same as --ckpt)",
  flags: {
    "ckpt=RUN_DIR": "pre-training run folder (its config.json is the base)",
    "force": "recompute even when result.json exists for this checkpoint and recipe",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args, { base: evalBase });
    if (args.help) return console.log(taskHelp(TASK));
    await finetuneTask(args);
  });
}
