/**
 * `deno task linprobe --ckpt=RUN_DIR [--epochs=30] [--lr=0.1] [--optimizer=sgd|lars] ...`
 *
 * Linear probe (MAE protocol: BatchNorm without affine + Linear, frozen CLS
 * features) of a pre-training run's newest checkpoint, plus weighted kNN on
 * the same features. Writes `<RUN_DIR>/linprobe/` (or `--out=DIR`) with
 * `metrics.jsonl`, `result.json`, `accuracy.png`, `loss.png`, `confusion.png`;
 * features are cached in `<RUN_DIR>/eval/`. Skips when `result.json` exists
 * for the same checkpoint unless `--force`.
 */
import { ConfigError } from "../mod.ts";
import {
  boolFlag,
  choiceFlag,
  intFlag,
  numFlag,
  parseEvalArgs,
  runLinearProbe,
} from "../lib/eval/mod.ts";

const FLAGS = [
  "ckpt",
  "out",
  "force",
  "epochs",
  "lr",
  "batchSize",
  "optimizer",
  "warmupEpochs",
  "trainLimit",
  "testLimit",
  "featureBatchSize",
  "knn",
  "cache",
  "seed",
] as const;

const USAGE =
  `usage: deno task linprobe --ckpt=RUN_DIR [flags] [--run.backend=...] [--data.root=...]

  --ckpt=DIR            pre-training run folder (required)
  --out=DIR             evaluation folder (default RUN_DIR/linprobe)
  --force               recompute even when result.json exists for this checkpoint
  --epochs=N            probe epochs (default 30)
  --lr=X                base lr; peak lr = X * batchSize / 256 (default 0.1)
  --batchSize=N         default 256
  --optimizer=sgd|lars  SGD with momentum 0.9 (default) or LARS (MAE)
  --warmupEpochs=X      default epochs / 10
  --trainLimit=N        first N labelled training images (default 0 = all, as MAE probes)
  --testLimit=N         first N test images (default 0 = all)
  --featureBatchSize=N  images per feature pass (default 128)
  --no-knn              skip the kNN score (k = eval.knnK, T = 0.07)
  --no-cache            do not read or write RUN_DIR/eval/features_*.bin
  --seed=N              probe init and data order (default 0)`;

if (import.meta.main) {
  try {
    const args = await parseEvalArgs(Deno.args, FLAGS);
    if (args.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!args.ckpt) throw new ConfigError(`--ckpt=RUN_DIR is required.\n${USAGE}`);
    const x = args.extras;
    await runLinearProbe({
      runDir: args.ckpt,
      out: x.out,
      force: boolFlag(x, "force", false),
      epochs: intFlag(x, "epochs", 30, 1),
      baseLr: numFlag(x, "lr", undefined),
      batchSize: intFlag(x, "batchSize", 256, 2),
      optimizer: choiceFlag(x, "optimizer", ["sgd", "lars"] as const, "sgd"),
      warmupEpochs: numFlag(x, "warmupEpochs", undefined, 0, true),
      trainLimit: intFlag(x, "trainLimit", 0),
      testLimit: intFlag(x, "testLimit", 0),
      featureBatchSize: intFlag(x, "featureBatchSize", 128, 1),
      knn: boolFlag(x, "knn", true),
      cache: boolFlag(x, "cache", true),
      seed: intFlag(x, "seed", 0),
      knnK: args.config.eval.knnK,
      backend: args.config.run.backend,
      threads: args.config.run.threads,
      dataRoot: args.overridden.includes("data.root") ? args.config.data.root : undefined,
    });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RangeError || (e as Error).name === "DataError") {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
