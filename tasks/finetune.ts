/**
 * `deno task finetune --ckpt=RUN_DIR [--epochs=3] [--limit=2048] ...`
 *
 * Fine-tunes a pre-training run's encoder (CLS token → linear head, layer-wise
 * lr decay 0.75 MAE / 0.65 SimMIM, label smoothing 0.1, drop-path 0.1, AdamW,
 * RandomResizedCrop + flip) and scores top-1 on the test split. `--init=random`
 * trains the same architecture from scratch (the baseline); without `--ckpt`
 * it takes the architecture from `--config FILE` and needs `--out=DIR`.
 * Writes `<RUN_DIR>/finetune/` (`finetune-random/`, or `--out=DIR`) with
 * `metrics.jsonl`, `result.json`, `accuracy.png`, `loss.png`, `confusion.png`.
 * Skips when `result.json` exists for the same checkpoint unless `--force`.
 */
import { ConfigError } from "../mod.ts";
import {
  boolFlag,
  choiceFlag,
  intFlag,
  numFlag,
  pairFlag,
  parseEvalArgs,
  runFinetune,
} from "../lib/eval/mod.ts";

const FLAGS = [
  "ckpt",
  "out",
  "force",
  "init",
  "epochs",
  "lr",
  "batchSize",
  "warmupEpochs",
  "layerDecay",
  "labelSmoothing",
  "dropPath",
  "weightDecay",
  "cropScale",
  "limit",
  "testLimit",
  "seed",
] as const;

const USAGE =
  `usage: deno task finetune --ckpt=RUN_DIR [flags] [--run.backend=...] [--data.root=...]
       deno task finetune --init=random --config FILE --out=DIR [flags] [--section.key=value]

  --ckpt=DIR             pre-training run folder
  --init=pretrained|random  start from the checkpoint (default) or from scratch
  --out=DIR              evaluation folder (default RUN_DIR/finetune or RUN_DIR/finetune-random)
  --force                recompute even when result.json exists for this checkpoint
  --epochs=N             default 3
  --lr=X                 base lr; peak lr = X * batchSize / 256 (default 2e-2)
  --batchSize=N          default 32
  --warmupEpochs=X       default epochs / 5 (at most 5)
  --layerDecay=X         default 0.75 (MAE) / 0.65 (SimMIM); 1 = off
  --labelSmoothing=X     default 0.1
  --dropPath=X           default 0.1
  --weightDecay=X        default 0.05
  --cropScale=a,b        RandomResizedCrop area range (default 0.2,1)
  --limit=N              first N labelled training images (default 2048; 0 = all)
  --testLimit=N          first N test images (default 1000; 0 = all)
  --seed=N               data order, crops, drop-path, head init (default 0)`;

if (import.meta.main) {
  try {
    const args = await parseEvalArgs(Deno.args, FLAGS);
    if (args.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    const x = args.extras;
    const init = choiceFlag(x, "init", ["pretrained", "random"] as const, "pretrained");
    if (!args.ckpt && init === "pretrained") {
      throw new ConfigError(`--ckpt=RUN_DIR is required (or --init=random).\n${USAGE}`);
    }
    if (!args.ckpt && !x.out) {
      throw new ConfigError("--init=random without --ckpt needs --out=DIR");
    }
    await runFinetune({
      runDir: args.ckpt || undefined,
      config: args.config,
      init,
      out: x.out,
      force: boolFlag(x, "force", false),
      epochs: intFlag(x, "epochs", 3, 1),
      baseLr: numFlag(x, "lr", undefined),
      batchSize: intFlag(x, "batchSize", 32, 1),
      warmupEpochs: numFlag(x, "warmupEpochs", undefined, 0, true),
      layerDecay: numFlag(x, "layerDecay", undefined),
      labelSmoothing: numFlag(x, "labelSmoothing", undefined, 0, true),
      dropPath: numFlag(x, "dropPath", undefined, 0, true),
      weightDecay: numFlag(x, "weightDecay", undefined, 0, true),
      cropScale: x.cropScale ? pairFlag(x, "cropScale", [0.2, 1]) : undefined,
      limit: intFlag(x, "limit", 2048),
      testLimit: intFlag(x, "testLimit", 1000),
      seed: intFlag(x, "seed", 0),
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
