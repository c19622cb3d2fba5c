/**
 * `deno task features`: a run's CLS features after the final norm for the first N images of a
 * split, as a float32 `[N, D]` `.npy` file (C order, format 1.0) for NumPy, PyTorch and the
 * like. The images are resized (no crop, no flip) and normalised as the run's are.
 *
 * @module
 */
import {
  type EvalDataConfig,
  extractFeatures,
  labelledSplits,
  openEvalSplit,
} from "../eval/mod.ts";
import { loadRun } from "../run/mod.ts";
import { encodeNpy } from "../run/npy.ts";
import { writeFileAtomic } from "../util/fs.ts";

/** Options of {@linkcode writeFeatures}. */
export interface WriteFeaturesOptions {
  /** The run folder (trained or imported). */
  runDir: string;
  /** The `.npy` file to write. */
  out: string;
  /**
   * `train` or `test` (the dataset's labelled splits: `val` for image folders), or any other
   * split name of the dataset as it is; default `test`.
   */
  split?: string;
  /** First N images (0 = all). */
  limit?: number;
  /** The data settings (default the run's `config.data`); the run's normalisation applies. */
  data?: EvalDataConfig;
  /** Images per forward pass (default 64). */
  batchSize?: number;
  log?: (s: string) => void;
}

/** What {@linkcode writeFeatures} wrote. */
export interface WrittenFeatures {
  out: string;
  /** The split read (after `train` / `test` were resolved). */
  split: string;
  count: number;
  dim: number;
  /** Checkpoint step of the encoder. */
  step: number;
  seconds: number;
}

/** The dataset split that `split` names for dataset `name` (`train` / `test` resolved). */
export function featureSplit(name: string, split: string): string {
  const labelled = labelledSplits(name);
  return split === "train" ? labelled.train : split === "test" ? labelled.test : split;
}

/**
 * Encode the first `limit` images of a split with the run's newest checkpoint and write
 * their CLS features to `out` as `.npy`. Needs a started tfjs backend.
 */
export async function writeFeatures(opts: WriteFeaturesOptions): Promise<WrittenFeatures> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const run = await loadRun(opts.runDir);
  let dataset;
  try {
    const data = { ...(opts.data ?? run.config.data), ...run.normalization };
    const split = featureSplit(data.name, opts.split ?? "test");
    dataset = await openEvalSplit(data, split, opts.limit ?? 0);
    const set = await extractFeatures(run.model.encoder, dataset, {
      imageSize: run.info.imageSize,
      batchSize: opts.batchSize ?? 64,
    });
    await writeFileAtomic(opts.out, encodeNpy(set.features, [set.count, set.dim]));
    log(
      `wrote ${opts.out}: ${set.count} x ${set.dim} float32 CLS features of ${dataset.name} ` +
        `(checkpoint step ${run.step}, ${set.seconds.toFixed(1)} s)`,
    );
    return {
      out: opts.out,
      split,
      count: set.count,
      dim: set.dim,
      step: run.step,
      seconds: set.seconds,
    };
  } finally {
    dataset?.close?.();
    run.model.dispose();
  }
}
