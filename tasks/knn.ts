/**
 * `deno task knn --ckpt=RUN_DIR [--knn.key=value ...] [--eval.knnK=20]`
 *
 * Weighted kNN (cosine similarity, `exp(sim / T)` votes, as DINO) on the CLS
 * features of a pre-training run's newest checkpoint; k is the run's
 * `eval.knnK`. Features are shared with the linear probe through
 * `<RUN_DIR>/eval/`. Writes `<RUN_DIR>/knn/` (or `knn.dir`: `config.json`,
 * `result.json`, `confusion.png`), skipping when it exists for the same
 * checkpoint and recipe unless `--force`.
 */
import { evalBase, knnTask, parseTask, runTask, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "knn",
  usage: "--ckpt=RUN_DIR [--knn.key=value ...] [--eval.knnK=N] [--run.backend=...]",
  keys: ["knn", "eval.knnK", "data.root", "run.backend", "run.threads", "train.precision"],
  aliases: {
    out: "knn.dir",
    k: "eval.knnK",
    T: "knn.temperature",
    trainLimit: "knn.trainLimit",
    testLimit: "knn.testLimit",
    featureBatchSize: "knn.featureBatchSize",
    cache: "knn.cache",
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
    await knnTask(args);
  });
}
