/**
 * Every figure of a run folder, from the folder alone.
 *
 * | file                          | from                                                   |
 * |-------------------------------|--------------------------------------------------------|
 * | `plots/loss.png`              | `metrics.jsonl` step + epoch records                    |
 * | `plots/lr.png`                | `metrics.jsonl` step records                            |
 * | `plots/knn.png`               | `metrics.jsonl` epoch records with `knnTop1`            |
 * | `plots/accuracy.png`          | `linprobe/metrics.jsonl`, `finetune/metrics.jsonl` (`testTop1`, `trainTop1`) |
 * | `plots/attention_on_object.png` | `metrics.jsonl` epoch records with `attnOnObject`     |
 * | `plots/reconstruction.png`    | the checkpoint: image, saliency, mask plan, reconstruction (MaskFeat: predicted and target HOG) |
 * | `plots/saliency_epochNN.png`  | the live AMT planner's maps after epoch NN (trainer only) |
 *
 * The trainer calls {@linkcode writeCurveFigures} and
 * {@linkcode writeImageFigures} with its live model after each epoch, and
 * {@linkcode writeSaliencyFigure} after each epoch whose saliency pass
 * updated the AMT planner's maps (see `figures.ts`);
 * {@linkcode writeAllRunFigures} (`deno task plots --run.dir=DIR`) rebuilds
 * the same files from the saved config, metrics and checkpoint.
 *
 * @module
 */

import { AmtPlanner } from "../amt/planner.ts";
import { computeSaliency } from "../amt/saliency.ts";
import type { Config } from "../config/schema.ts";
import { type Dataset, limitDataset, openDataset } from "../data/mod.ts";
import type { Raster } from "../data/types.ts";
import type { MaskPlan, MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { reconstructImages } from "../mim/reconstruct.ts";
import {
  evalPaths,
  loadCheckpoint,
  loadRun,
  pathExists,
  plannerState,
  readMetrics,
  RUN_FILES,
  runPaths,
} from "../run/mod.ts";
import { buildPlanner } from "./factory.ts";
import { overlay } from "../viz/colormap.ts";
import { imageGridPng, PLAN_LEGEND, reconstructionRow } from "../viz/grid.ts";
import { hogRow, hogUpscale } from "../viz/hog.ts";
import { svgToPng } from "../viz/png.ts";
import {
  type AccuracyCurve,
  accuracyCurveChart,
  attentionOnObjectChart,
  epochSeries,
  type LogRecord,
  lossCurveChart,
  lrCurveChart,
} from "../viz/run_charts.ts";

/** Evaluation sub-folders of a run whose `metrics.jsonl` hold accuracy per epoch. */
export const EVAL_FOLDERS: readonly { dir: string; name: string }[] = Object.freeze([
  { dir: RUN_FILES.linprobe, name: "linear probe" },
  { dir: RUN_FILES.finetune, name: "fine-tune" },
]);

/** Keys of the attention-on-object fraction in epoch records. */
const ATTENTION_KEYS = ["attnOnObject", "attentionOnObject"];

async function writeChart(
  chart: Promise<string> | null,
  path: string,
  written: string[],
): Promise<void> {
  if (chart === null) return;
  await svgToPng(chart, path);
  written.push(path);
}

/**
 * Writes the curves of a run folder that its records allow: loss, lr, kNN,
 * probe / fine-tune accuracy and attention on the object. Missing files or
 * fields just mean fewer figures. Returns the paths written.
 */
export async function writeCurveFigures(runDir: string): Promise<string[]> {
  const written: string[] = [];
  const paths = runPaths(runDir);
  await Deno.mkdir(paths.plots, { recursive: true });
  const records = (await readMetrics(paths.metrics)) as LogRecord[];
  await writeChart(lossCurveChart(records), paths.plot("loss.png"), written);
  await writeChart(lrCurveChart(records), paths.plot("lr.png"), written);

  const epochs = records.filter((r) => r.type === "epoch");
  const knn = epochSeries(epochs, "knnTop1");
  await writeChart(
    accuracyCurveChart([{ name: "kNN", epochs: knn.epochs, top1: knn.values }], {
      title: "kNN accuracy during pre-training",
      xLabel: "pre-training epoch",
    }),
    paths.plot("knn.png"),
    written,
  );

  const curves: AccuracyCurve[] = [];
  for (const { dir, name } of EVAL_FOLDERS) {
    const evalRecords = (await readMetrics(evalPaths(`${runDir}/${dir}`).metrics)) as LogRecord[];
    const test = epochSeries(evalRecords, "testTop1");
    const train = epochSeries(evalRecords, "trainTop1");
    if (test.epochs.length > 0) curves.push({ name, epochs: test.epochs, top1: test.values });
    if (train.epochs.length > 0) {
      curves.push({
        name: `${name} (train)`,
        epochs: train.epochs,
        top1: train.values,
        dashed: true,
      });
    }
  }
  await writeChart(
    accuracyCurveChart(curves, { title: "linear probe and fine-tune accuracy (test)" }),
    paths.plot("accuracy.png"),
    written,
  );

  for (const key of ATTENTION_KEYS) {
    const att = epochSeries(epochs, key);
    if (att.epochs.length === 0) continue;
    await writeChart(
      attentionOnObjectChart([{ name: "this run", epochs: att.epochs, values: att.values }]),
      paths.plot("attention_on_object.png"),
      written,
    );
    break;
  }
  return written;
}

/**
 * The rows of a reconstruction figure for dataset images 0..count-1: per
 * image `[image, mask plan, encoder input, ...outputs]` (the arrays of
 * `reconstructImages` in `lib/mim`, drawn by `lib/viz`): for a pixel method
 * one output, the reconstruction (`reconstructionRow`); for MaskFeat two,
 * the masked patches' predicted and target HOG as oriented-bin glyphs
 * (`hogRow`, every cell upscaled by `upscale` so the glyphs have room).
 * Returns the rows, the output columns' labels, that upscale (1 for pixels)
 * and the batch plan.
 */
export async function reconstructionRows(opts: {
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  imageSize: number;
  count: number;
  seed: number;
  epoch: number;
}): Promise<{ rows: Raster[][]; outputs: string[]; upscale: number; plan: MaskPlan }> {
  const r = await reconstructImages(opts);
  const f = r.features;
  if (f) {
    const rows = r.images.map((one) =>
      hogRow(one.image, one.plan, one.predicted, one.target!, f, r.patchSize)
    );
    return {
      rows,
      outputs: ["predicted HOG", "target HOG"],
      upscale: hogUpscale(f.cellSize),
      plan: r.plan,
    };
  }
  const rows = r.images.map((one) =>
    reconstructionRow(one.image, one.plan, one.predicted, r.patchSize)
  );
  return { rows, outputs: ["reconstruction"], upscale: 1, plan: r.plan };
}

/** What {@linkcode writeImageFigures} needs: a model (live or loaded) and its run's setup. */
export interface ImageFigureOptions {
  runDir: string;
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  config: Readonly<Config>;
  imageSize: number;
  /** 0-based epoch whose masking the plan shows (the planner's phase depends on it). */
  epoch: number;
  /** Images (rows); default `config.run.vizImages`, 0 = none. */
  images?: number;
  /** Also keep `reconstruction_epochNN.png` (the trainer keeps one per epoch). */
  epochCopy?: boolean;
}

/**
 * Saliency of images 0..n-1: the AMT planner's stored maps (what its plans
 * were drawn from) once it has computed any, else the model's current
 * last-block CLS attention.
 */
async function saliencyMaps(
  o: ImageFigureOptions,
  n: number,
): Promise<{ maps: Raster[]; column: string; source: string }> {
  const S = o.imageSize;
  const p = o.planner;
  if (p instanceof AmtPlanner && p.store.updatedAfterEpoch > 0) {
    return {
      maps: p.imageMaps(n, S),
      column: "saliency",
      source: `${saliencyLabel(p)} saliency of epoch ${p.store.updatedAfterEpoch}`,
    };
  }
  const g = o.model.encoder.gridSize;
  const pass = await computeSaliency(o.model.encoder, limitDataset(o.dataset, n), {
    imageSize: S,
    batchSize: n,
  });
  const maps = Array.from({ length: n }, (_, i) => ({
    data: pass.maps.subarray(i * g * g, (i + 1) * g * g),
    height: g,
    width: g,
    channels: 1,
  }));
  return { maps, column: "attention", source: "current CLS attention" };
}

/**
 * Writes `plots/reconstruction.png`: per image, the image | its saliency
 * overlay | the mask plan (masked / thrown / visible in three colours) | the
 * reconstruction (visible patches kept, masked patches predicted, thrown
 * patches grey); for MaskFeat the last column is the predicted HOG of the
 * masked patches and one more column their target HOG. Returns the paths
 * written (none when `images` is 0).
 */
export async function writeImageFigures(o: ImageFigureOptions): Promise<string[]> {
  const count = Math.min(o.images ?? o.config.run.vizImages, o.dataset.length);
  if (count <= 0) return [];
  const { rows, outputs, upscale, plan } = await reconstructionRows({
    model: o.model,
    dataset: o.dataset,
    planner: o.planner,
    imageSize: o.imageSize,
    count,
    seed: o.config.run.seed,
    epoch: o.epoch,
  });
  const sal = await saliencyMaps(o, rows.length);
  // reconstructionRows gives [image, plan, encoder input, ...outputs].
  const grid = rows.map(([image, plan, _input, ...outs], b) => [
    image,
    overlay(image, sal.maps[b], 0.6),
    plan,
    ...outs,
  ]);
  const paths = runPaths(o.runDir);
  await Deno.mkdir(paths.plots, { recursive: true });
  const path = paths.plot("reconstruction.png");
  const phase = o.planner.phase(o.epoch);
  const planner = o.planner.name === phase ? "" : ` (${o.planner.name})`;
  await imageGridPng(path, grid, {
    colLabels: ["image", sal.column, "mask plan", ...outputs],
    title: `epoch ${o.epoch + 1}: ${phase} masking${planner}, ${sal.source}`,
    // Random masking throws nothing: no "thrown" swatch then.
    legend: PLAN_LEGEND.filter((e) => e.label !== "thrown" || plan.numThrown > 0),
    scale: Math.max(1, Math.floor(96 / (o.imageSize * upscale))),
  });
  const written = [path];
  if (o.epochCopy) {
    const copy = paths.plot(`reconstruction_epoch${String(o.epoch + 1).padStart(2, "0")}.png`);
    await Deno.copyFile(path, copy);
    written.push(copy);
  }
  return written;
}

/** What {@linkcode writeSaliencyFigure} needs: the live model and its AMT planner. */
export interface SaliencyFigureOptions {
  runDir: string;
  model: MimModel;
  dataset: Dataset;
  planner: AmtPlanner;
  config: Readonly<Config>;
  imageSize: number;
  /** Images (rows); default `config.run.vizImages`, 0 = none. */
  images?: number;
}

/**
 * Writes `plots/saliency_epochNN.png`, NN the epoch after which the AMT
 * planner's maps were computed (`store.updatedAfterEpoch`), for the first
 * `images` images: image | saliency overlay | the mask plan it yields for
 * the next epoch (masked / thrown / visible) | the model's reconstruction
 * under that plan. Returns the paths written (none when `images` is 0 or the
 * planner has no maps yet).
 */
export async function writeSaliencyFigure(o: SaliencyFigureOptions): Promise<string[]> {
  const p = o.planner;
  const done = p.store.updatedAfterEpoch;
  const count = o.images ?? o.config.run.vizImages;
  if (count <= 0 || done <= 0) return [];
  const S = o.imageSize;
  const { rows, outputs, upscale } = await reconstructionRows({
    model: o.model,
    dataset: o.dataset,
    planner: p,
    imageSize: S,
    count,
    seed: o.config.run.seed,
    epoch: done, // 0-based: the plan of the next (AMT) epoch
  });
  const maps = p.imageMaps(rows.length, S);
  // reconstructionRows gives [image, plan, encoder input, ...outputs]
  const grid = rows.map((r, i) => [r[0], overlay(r[0], maps[i], 0.6), r[1], ...r.slice(3)]);
  const paths = runPaths(o.runDir);
  await Deno.mkdir(paths.plots, { recursive: true });
  const path = paths.plot(`saliency_epoch${String(done).padStart(2, "0")}.png`);
  await imageGridPng(path, grid, {
    colLabels: ["image", "saliency", "plan", ...outputs],
    legend: PLAN_LEGEND,
    title: `${saliencyLabel(p)} saliency after epoch ${done} ` +
      `(${p.options.strategy} ${p.options.maskRatio}/${p.options.throwRatio})`,
    scale: Math.max(1, Math.floor(96 / (S * upscale))),
  });
  return [path];
}

/** `amt.saliency` as figures name it: `rollout`, `1 - loss` (inverted)... */
function saliencyLabel(p: AmtPlanner): string {
  return `${p.options.invert ? "1 - " : ""}${p.source}`;
}

/** Options of {@linkcode writeAllRunFigures}. */
export interface AllRunFiguresOptions {
  /** Images in the reconstruction grid (default: the run's `run.vizImages`, or 8 when 0). */
  images?: number;
  /** Progress and skip messages (default `console.log`). */
  log?: (line: string) => void;
}

/** What {@linkcode writeAllRunFigures} did. */
export interface RunFiguresResult {
  /** Paths of the PNGs written. */
  written: string[];
  /** One line per figure that could not be made, saying why. */
  skipped: string[];
}

/**
 * Regenerates every figure of a run folder from its files: the curves from
 * the metrics files, and the reconstruction grid from `config.json`,
 * `run.json` and the newest good checkpoint (the planner's saliency state
 * included), on the run's own dataset. Leaves the tfjs backend as it finds it
 * (initialise one first for speed). Throws only when `runDir` has no
 * `metrics.jsonl` and no `config.json`, i.e. is not a run folder.
 *
 * @example
 * ```ts ignore
 * import { writeAllRunFigures } from "../../mod.ts";
 * const { written } = await writeAllRunFigures("runs/mae/20250101-120000");
 * ```
 */
export async function writeAllRunFigures(
  runDir: string,
  opts: AllRunFiguresOptions = {},
): Promise<RunFiguresResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const paths = runPaths(runDir);
  const isRun = await Promise.all(
    [paths.metrics, paths.config].map((f) => pathExists(f).catch(() => false)),
  );
  if (!isRun.some(Boolean)) {
    throw new Error(
      `${runDir}: no metrics.jsonl or config.json; is it a run folder (runs/<exp>/<tag>)?`,
    );
  }
  const written = await writeCurveFigures(runDir);
  const skipped: string[] = [];
  const skip = (what: string, why: string) => {
    skipped.push(`${what}: ${why}`);
    log(`skipped ${what}: ${why}`);
  };

  let run;
  try {
    run = await loadRun(runDir);
  } catch (e) {
    skip("reconstruction.png", (e as Error).message);
    return { written, skipped };
  }
  const { config, info, model } = run;
  let dataset: Dataset | undefined;
  let planner: MaskPlanner | undefined;
  try {
    dataset = await openDataset({
      name: config.data.name,
      root: config.data.root,
      split: config.data.split,
      limit: config.data.limit,
      imageSize: config.data.imageSize,
      onBadImage: config.data.onBadImage,
      normalize: config.data.normalize, // the run's data.normalize, as in training
      ...run.normalization, // an imported run's own normalisation replaces the dataset's
    });
    planner = buildPlanner(config, {
      model,
      dataset,
      imageSize: info.imageSize,
      log: () => {},
    });
    const loaded = await loadCheckpoint(paths.checkpoint);
    if (loaded && planner.loadState) planner.loadState(plannerState(loaded.ckpt));
    // The epoch the checkpoint ends (finished runs: the last one).
    const perEpoch = Math.max(1, info.stepsPerEpoch);
    const epoch = Math.max(
      0,
      Math.min(config.train.epochs - 1, Math.ceil(run.step / perEpoch) - 1),
    );
    const images = opts.images ?? (config.run.vizImages > 0 ? config.run.vizImages : 8);
    written.push(
      ...await writeImageFigures({
        runDir,
        model,
        dataset,
        planner,
        config,
        imageSize: info.imageSize,
        epoch,
        images,
      }),
    );
  } catch (e) {
    skip("reconstruction.png", (e as Error).message);
  } finally {
    planner?.dispose?.(); // AMT's EMA teacher
    model.dispose();
    dataset?.close?.();
  }
  return { written, skipped };
}
