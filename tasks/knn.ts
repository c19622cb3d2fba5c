/**
 * `deno task knn --ckpt=RUN_DIR [--k=20] [--T=0.07] [--trainLimit=10000] ...`
 *
 * Weighted kNN (cosine similarity, `exp(sim / T)` votes, as DINO) on the CLS
 * features of a pre-training run's newest checkpoint. Features are shared with
 * the linear probe through `<RUN_DIR>/eval/`. Writes `<RUN_DIR>/knn/`
 * (`result.json`, `confusion.png`), skipping when it exists for the same
 * checkpoint unless `--force`.
 */
import { ConfigError } from "../mod.ts";
import { boolFlag, intFlag, numFlag, parseEvalArgs, runKnn } from "../lib/eval/mod.ts";

const FLAGS = [
  "ckpt",
  "out",
  "force",
  "k",
  "T",
  "trainLimit",
  "testLimit",
  "featureBatchSize",
  "cache",
] as const;

const USAGE = `usage: deno task knn --ckpt=RUN_DIR [flags] [--run.backend=...] [--data.root=...]

  --ckpt=DIR            pre-training run folder (required)
  --out=DIR             default RUN_DIR/knn
  --force               recompute even when result.json exists for this checkpoint
  --k=N                 neighbours (default eval.knnK of the run, 20)
  --T=X                 vote temperature (default 0.07)
  --trainLimit=N        first N labelled training images (default 10000; 0 = all)
  --testLimit=N         first N test images (default 0 = all)
  --featureBatchSize=N  images per feature pass (default 128)
  --no-cache            do not read or write RUN_DIR/eval/features_*.bin`;

if (import.meta.main) {
  try {
    const args = await parseEvalArgs(Deno.args, FLAGS);
    if (args.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!args.ckpt) throw new ConfigError(`--ckpt=RUN_DIR is required.\n${USAGE}`);
    const x = args.extras;
    await runKnn({
      runDir: args.ckpt,
      out: x.out,
      force: boolFlag(x, "force", false),
      k: intFlag(x, "k", args.config.eval.knnK, 1),
      T: numFlag(x, "T", 0.07),
      trainLimit: intFlag(x, "trainLimit", 10000),
      testLimit: intFlag(x, "testLimit", 0),
      featureBatchSize: intFlag(x, "featureBatchSize", 128, 1),
      cache: boolFlag(x, "cache", true),
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
