/**
 * The random-init baseline of the repro tables: a freshly initialised encoder
 * of the pre-trained runs' shape (the MAE random run's config and seed, no
 * training), probed exactly as they are (linear probe, kNN on the same
 * features, attention on the object), into a run folder
 * `<run.dir>/runs/random-init-s<seed>/` with `linprobe/result.json`,
 * `eval/attention_on_object.json` and, last, `random_init.json`.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { type BackendChoice, initBackend } from "../backend/mod.ts";
import { reusableResult } from "../eval/mod.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { labelledSplits, openEvalSplit } from "../eval/data.ts";
import { knnClassify } from "../eval/knn.ts";
import { trainLinearProbe } from "../eval/linear_probe.ts";
import {
  closeSplits,
  linearProbeRecipe,
  openLabelledSplits,
  splitFeatures,
} from "../eval/linprobe_run.ts";
import { buildModel, modelImageSize } from "../run/model.ts";
import { readJsonOrNull, writeFileAtomic } from "../util/fs.ts";
import { gitCommit } from "../run/mod.ts";
import type { ReproBudget } from "./plan.ts";

/** Options of {@link probeRandomInit}. */
export interface RandomInitOptions {
  runDir: string;
  /** The config of the encoder to initialise (its `run.seed` seeds the weights). */
  config: Readonly<Config>;
  budget: ReproBudget;
  backend: string;
  threads: number;
  command: string;
  quiet?: boolean;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

/** The linear-probe settings of a budget, as `runLinearProbe` takes them. */
export function probeOptions(b: ReproBudget): {
  epochs: number;
  trainLimit: number;
  testLimit: number;
  baseLr?: number;
  batchSize?: number;
  warmupEpochs?: number;
} {
  return {
    epochs: b.probeEpochs,
    trainLimit: b.probeTrain,
    testLimit: b.probeTest,
    baseLr: b.probeBaseLr,
    batchSize: b.probeBatchSize,
    warmupEpochs: b.probeWarmup,
  };
}

/**
 * Probe an untrained encoder. Reuses `linprobe/result.json` for the same recipe and
 * `eval/attention_on_object.json` for the same image count.
 */
export async function probeRandomInit(o: RandomInitOptions): Promise<void> {
  const log = o.quiet ? () => {} : (s: string) => console.log(s);
  const { config, budget: b, runDir } = o;
  const backend = await initBackend({
    backend: o.backend as BackendChoice,
    threads: o.threads,
    quiet: o.quiet,
  });
  const probe = probeOptions(b);
  const splits = await openLabelledSplits(config.data, b.probeTrain, b.probeTest);
  const imageSize = modelImageSize(config);
  const model = buildModel(config, splits.test.channels, imageSize);
  try {
    const lpDir = `${runDir}/linprobe`;
    const recipe = linearProbeRecipe(
      probe,
      splits.train.length,
      splits.test.length,
      config.eval.knnK,
    );
    let changed = false;
    if (!(await reusableResult(lpDir, 0, false, log, recipe))) {
      changed = true;
      const f = await splitFeatures({
        runDir,
        step: 0,
        encoder: model.encoder,
        data: config.data,
        trainLimit: b.probeTrain,
        testLimit: b.probeTest,
        cache: false,
        quiet: o.quiet,
        splits,
      });
      const p = await trainLinearProbe(f.train, f.test, {
        ...probe,
        numClasses: f.numClasses || undefined,
      });
      const knn = await knnClassify(
        f.train.features,
        f.train.labels,
        f.test.features,
        f.test.labels,
        { k: config.eval.knnK, numClasses: p.numClasses },
      );
      await writeFileAtomic(
        `${lpDir}/result.json`,
        json({
          top1: p.top1,
          top5: p.top5,
          trainTop1: p.trainTop1,
          knnTop1: knn.top1,
          init: "random",
          ckptStep: 0,
          dataset: config.data.name,
          trainImages: f.train.count,
          testImages: f.test.count,
          featureDim: f.train.dim,
          epochs: b.probeEpochs,
          lr: p.lr,
          history: p.history,
          confusion: p.confusion,
          recipe,
        }),
      );
      log(
        `random-init linear probe: top-1 ${(100 * p.top1).toFixed(1)}%, kNN ${
          (100 * knn.top1).toFixed(1)
        }% → ${lpDir}`,
      );
    }
    const objPath = `${runDir}/eval/attention_on_object.json`;
    const images = b.objectImages > 0
      ? Math.min(
        b.objectImages,
        (await readJsonOrNull(`${lpDir}/result.json`))?.testImages as number,
      )
      : null;
    const savedObj = await readJsonOrNull(objPath);
    // the first objectImages test images (all when 0), as for the pre-trained runs
    if (!savedObj || (images !== null && savedObj.images !== images)) {
      changed = true;
      const ds = await openEvalSplit(
        config.data,
        labelledSplits(config.data.name).test,
        b.objectImages,
      );
      try {
        const a = await attentionOnObject(model.encoder, ds, { imageSize, limit: b.objectImages });
        await writeFileAtomic(
          objPath,
          json({ mean: a.mean, areaFraction: a.areaFraction, images: a.perImage.length }),
        );
      } finally {
        ds.close?.();
      }
    }
    if (changed || !(await readJsonOrNull(`${runDir}/random_init.json`))) {
      await writeFileAtomic(
        `${runDir}/random_init.json`,
        json({
          dataset: config.data.name,
          backend: backend.backend,
          threads: backend.threads,
          gitCommit: await gitCommit(),
          command: o.command,
          config,
        }),
      );
    } else log(`${runDir} already finished; nothing to do`);
  } finally {
    model.dispose();
    closeSplits(splits);
  }
}
