/**
 * What pre-training measures besides the loss, at epoch ends: weighted kNN top-1 on the CLS
 * features of labelled subsets of the dataset (every `eval.knnEvery` epochs), and the share of
 * the encoder's attention maps that lands on the object (every `eval.attnEvery` epochs, else
 * with the kNN monitor), both also after the last epoch.
 *
 * The attention monitor scores the first `eval.attnImages` training images, un-augmented, for
 * each map of `eval.attnSources` (`cls-last`, AMT's map, and `rollout`), and keeps the maps of
 * the first {@linkcode MONITOR_MAP_IMAGES} images per epoch in
 * `eval/attention_monitor.json` (rewritten atomically; a resumed epoch replaces its entry), so
 * maps of several runs can be drawn side by side on the same images.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { EncoderMapSource } from "../amt/saliency.ts";
import type { Dataset } from "../data/mod.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { makeKnnMonitor } from "../eval/knn.ts";
import type { MimModel } from "../mim/types.ts";
import { readJsonOrNull, writeFileAtomic } from "../util/fs.ts";

/** Images whose maps the attention monitor keeps per epoch. */
export const MONITOR_MAP_IMAGES = 8;

/** The epoch-end monitor of a pre-training run; see {@linkcode makePretrainMonitor}. */
export interface PretrainMonitor {
  /** Whether to measure after `epochsDone` finished epochs (1-based count). */
  due(epochsDone: number, totalEpochs: number): boolean;
  /**
   * Measure the model after `epochsDone` epochs: `knnTop1`, `knnSeconds` when the kNN monitor
   * is due; `attnOnObject` (the `cls-last` map), `attnOnObjectRollout` (when scored),
   * `objectArea` (fractions in [0, 1]) and `attnSeconds` when the attention monitor is; for
   * the epoch record. Logs one line.
   */
  measure(
    model: MimModel,
    epochsDone: number,
    totalEpochs: number,
  ): Promise<Record<string, number>>;
  /** Close the datasets it opened. */
  close(): void;
}

/** One epoch and map of `eval/attention_monitor.json`. */
export interface MonitorMapsEntry {
  /** Finished epochs (1-based). */
  epoch: number;
  source: EncoderMapSource;
  attnOnObject: number;
  objectArea: number;
  /** [MONITOR_MAP_IMAGES][L] maps of training images 0, 1, ... (row-major patch grid). */
  maps: number[][];
}

/** `eval/attention_monitor.json`. */
export interface MonitorMapsFile {
  /** Patches per side. */
  grid: number;
  /** Images whose maps are kept per epoch (the first ones scored). */
  images: number;
  entries: MonitorMapsEntry[];
}

/** The epoch-record key of a map's score: `attnOnObject` for `cls-last`, else suffixed. */
export function monitorKey(source: EncoderMapSource): string {
  return source === "cls-last" ? "attnOnObject" : "attnOnObjectRollout";
}

/** `eval.attnSources` as a list (validated by the config checks). */
export function monitorSources(list: string): EncoderMapSource[] {
  return [
    ...new Set(list.split(",").map((s) => s.trim()).filter((s) => s !== "")),
  ] as EncoderMapSource[];
}

/** Reads `eval/attention_monitor.json`, or null when the run has none (or it does not parse). */
export async function readMonitorMaps(path: string): Promise<MonitorMapsFile | null> {
  const x = await readJsonOrNull(path) as MonitorMapsFile | null;
  return Array.isArray(x?.entries) ? x : null;
}

/**
 * The monitor of a run, or null when both `eval.knnEvery` and `eval.attnEvery` are 0. The kNN
 * subsets are opened lazily from `config.data` (normalised with `normalization` when the
 * run's replaces the dataset's); attention on the object is measured on `dataset`'s first
 * `eval.attnImages` images. `mapsPath` (when given) receives the kept maps.
 */
export function makePretrainMonitor(
  config: Readonly<Config>,
  dataset: Dataset,
  imageSize: number,
  log: (s: string) => void,
  normalization?: { mean: readonly number[]; std: readonly number[] },
  mapsPath?: string,
): PretrainMonitor | null {
  const ev = config.eval;
  if (!(ev.knnEvery > 0) && !(ev.attnEvery > 0)) return null;
  const knn = makeKnnMonitor({ ...config.data, ...normalization }, {
    every: ev.knnEvery,
    k: ev.knnK,
    imageSize,
  });
  const attnDue = (done: number, total: number) =>
    ev.attnEvery > 0
      ? done >= 1 && (done % ev.attnEvery === 0 || done === total)
      : knn.due(done, total);
  const sources = monitorSources(ev.attnSources);
  return {
    due: (done, total) => knn.due(done, total) || attnDue(done, total),
    async measure(model, done, total) {
      const extra: Record<string, number> = {};
      const said: string[] = [];
      if (knn.due(done, total)) {
        Object.assign(extra, await knn.measure(model.encoder));
        said.push(`kNN top-1 ${(100 * extra.knnTop1).toFixed(1)}%`);
      }
      if (attnDue(done, total)) {
        const t0 = performance.now();
        const entries: MonitorMapsEntry[] = [];
        const L = model.encoder.numPatches;
        for (const source of sources) {
          const a = await attentionOnObject(model.encoder, dataset, {
            imageSize,
            limit: ev.attnImages,
            source,
            keepMaps: MONITOR_MAP_IMAGES,
          });
          extra[monitorKey(source)] = a.mean;
          extra.objectArea = a.areaFraction;
          said.push(`attention on object (${source}) ${(100 * a.mean).toFixed(1)}%`);
          const maps = Array.from(
            { length: a.maps.length / L },
            (_, i) => Array.from(a.maps.subarray(i * L, (i + 1) * L), (v) => Number(v.toFixed(4))),
          );
          entries.push({
            epoch: done,
            source,
            attnOnObject: a.mean,
            objectArea: a.areaFraction,
            maps,
          });
        }
        extra.attnSeconds = (performance.now() - t0) / 1000;
        said.push(`object area ${(100 * extra.objectArea).toFixed(1)}%`);
        if (mapsPath) await saveMaps(mapsPath, Math.round(Math.sqrt(L)), entries);
      }
      log(`  ${said.join(", ")}`);
      return extra;
    },
    close: () => knn.close(),
  };
}

async function saveMaps(path: string, grid: number, add: MonitorMapsEntry[]): Promise<void> {
  const prior = await readMonitorMaps(path);
  const key = (e: MonitorMapsEntry) => `${e.epoch}/${e.source}`;
  const replaced = new Set(add.map(key));
  const entries = [...(prior?.entries ?? []).filter((e) => !replaced.has(key(e))), ...add]
    .sort((a, b) => a.epoch - b.epoch || a.source.localeCompare(b.source));
  const file: MonitorMapsFile = { grid, images: MONITOR_MAP_IMAGES, entries };
  await writeFileAtomic(path, JSON.stringify(file) + "\n");
}
