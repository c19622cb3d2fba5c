/**
 * The paper's Table 3 on the embedded detection scenes (`deno task detect`):
 * fine-tunes a ViTDet-style detector (box + mask) from random init and from
 * MAE, MAE + attention-driven masking and MAE + AMT encoders, evaluates COCO
 * box and mask AP on held-out scenes, and writes `config.json`, `tables.md`,
 * `tables.csv`, `results.json` and `figures/` into the detect folder
 * (`run.dir`, default `runs/detect-<budget>`).
 *
 * Backbones come from `detect.maeRun` / `maeAttnRun` / `maeAmtRun`, else from
 * `deno task repro`'s runs (`<detect.reproDir>/runs/<id>-s0`) when they are
 * finished, else they are pre-trained here with `configs/mae*.yaml` and the
 * budget's sizes. Everything finished is skipped on re-invocation.
 *
 * @module
 */
import { initBackend, usePrecision } from "../backend/mod.ts";
import {
  type Config,
  deepFreeze,
  loadSavedConfig,
  resolveConfig,
  saveConfig,
  validateConfig,
} from "../config/mod.ts";
import { pretrain } from "../pretrain/mod.ts";
import { formatDuration, readRunInfo, RUN_FILES, runPaths } from "../run/mod.ts";
import { PRESETS } from "../vit/presets.ts";
import { resolveShape } from "../vit/vit.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { type DetectBudget, detectBudget, parseBackbones, TABLE3_BACKBONES } from "./budgets.ts";
import { openCocoDataset, readCocoJson } from "./coco.ts";
import { SCENE_DEFAULTS, writeCocoScenes } from "./scenes.ts";
import {
  renderTable3Csv,
  renderTable3Markdown,
  type Table3Row,
  writeApFigure,
  writePredictionFigure,
} from "./table3.ts";
import { type BackboneSource, fineTuneDetector } from "./train.ts";

/** Scenes and detectors are seeded with 0 (the backbones' pre-training too). */
const SEED = 0;

/** Options of {@linkcode runDetectExperiment}. */
export interface DetectExperimentOptions {
  /** Print nothing. */
  quiet?: boolean;
}

/** What {@linkcode runDetectExperiment} returns (also in `results.json`). */
export interface DetectExperimentResult {
  /** The detect folder. */
  dir: string;
  /** The budget with the config's overrides applied. */
  budget: DetectBudget;
  rows: Table3Row[];
  /** `tables.md`. */
  tables: string;
  seconds: number;
}

/**
 * The budget of `config.detect.budget` with the non-zero `detect.*` sizes
 * applied.
 *
 * @throws {ConfigError} for an unknown budget.
 */
export function effectiveBudget(config: Readonly<Config>): DetectBudget {
  const base = detectBudget(config.detect.budget);
  const d = config.detect;
  return {
    ...base,
    scenes: {
      ...base.scenes,
      train: d.trainScenes || base.scenes.train,
      val: d.valScenes || base.scenes.val,
    },
    train: {
      ...base.train,
      steps: d.steps || base.train.steps,
      batchSize: d.batchSize || base.train.batchSize,
      lr: d.lr || base.train.lr,
    },
  };
}

/**
 * The config as the experiment uses it, saved as the detect folder's
 * `config.json`: the budget's sizes in place of zeros, and the detect and repro
 * folders in place of `""`. Validated and frozen.
 *
 * @throws {ConfigError} for an unknown budget or backbone.
 */
export function resolveDetectConfig(config: Readonly<Config>): Readonly<Config> {
  const b = effectiveBudget(config);
  parseBackbones(config.detect.backbones);
  const out = structuredClone(config) as Config;
  out.run.dir = config.run.dir || `runs/detect-${b.name}`;
  Object.assign(out.detect, {
    steps: b.train.steps,
    batchSize: b.train.batchSize,
    lr: b.train.lr,
    trainScenes: b.scenes.train,
    valScenes: b.scenes.val,
    reproDir: config.detect.reproDir || `runs/repro-${b.name}`,
  });
  validateConfig(out);
  return deepFreeze(out);
}

/** The pre-training run folder of a backbone: given, found in the repro folder, or trained here. */
async function backboneRun(
  name: string,
  config: Readonly<Config>,
  b: DetectBudget,
  quiet: boolean,
): Promise<string> {
  const spec = TABLE3_BACKBONES[name];
  const given = config.detect[spec.runKey!];
  if (given) {
    if (!(await exists(runPaths(given).checkpoint))) {
      throw new RangeError(
        `detect.${spec.runKey}=${given}: no ${RUN_FILES.checkpoint} there; ` +
          "pass a pre-training run folder",
      );
    }
    return given;
  }
  const repro = `${config.detect.reproDir}/runs/${spec.reproId}-s0`;
  if (await exists(runPaths(repro).summary)) return repro;
  const dir = `${config.run.dir}/pretrain/${name}`;
  const p = b.pretrain;
  const { config: run } = resolveConfig({
    file: spec.config!,
    set: {
      "data.limit": p.limit,
      "model.preset": p.preset,
      "train.epochs": p.epochs,
      "train.batchSize": p.batchSize,
      "train.warmupEpochs": Math.min(1, p.epochs / 4),
      "train.logEvery": 20,
      "run.seed": SEED,
      "run.dir": dir,
      "run.backend": config.run.backend,
      "run.threads": config.run.threads,
      "train.precision": config.train.precision,
      "run.name": name,
      ...(name !== "mae" ? { "amt.warmup": p.warmup, "amt.interval": p.interval } : {}),
    },
    setSource: `detect budget "${b.name}"`,
  });
  if (!quiet) console.log(`\npre-training ${name} → ${dir}`);
  await pretrain(run, { quiet });
  return dir;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

/** The ViT shape all pre-trained backbones share (the random-init detector gets it too). */
async function backboneShape(runDirs: Record<string, string | null>, b: DetectBudget) {
  let model = { preset: b.pretrain.preset, patchSize: 0, dim: 0, depth: 0, heads: 0, mlpRatio: 0 };
  let imageSize = PRESETS[b.pretrain.preset].imageSize;
  let patchSize = PRESETS[b.pretrain.preset].patchSize;
  const pretrained = Object.keys(runDirs).filter((n) => runDirs[n]);
  for (const [i, n] of pretrained.entries()) {
    // run.json and config.json say the shape: no checkpoint to read, no model to build
    const config = await loadSavedConfig(runDirs[n]!);
    const info = await readRunInfo(runDirs[n]!);
    const s = info.shape ?? resolveShape(config.model, info.channels, info.imageSize);
    if (i === 0) {
      const { patchSize: ps, dim, depth, heads, mlpRatio } = s;
      model = { preset: config.model.preset, patchSize: ps, dim, depth, heads, mlpRatio };
      imageSize = s.imageSize;
      patchSize = s.patchSize;
    } else if (
      s.imageSize !== imageSize || s.patchSize !== patchSize || s.dim !== model.dim ||
      s.depth !== model.depth
    ) {
      throw new RangeError(
        `${runDirs[n]}: encoder ${s.dim}x${s.depth} patch ${s.patchSize} at ${s.imageSize}px ` +
          `differs from ${runDirs[pretrained[0]]} (${model.dim}x${model.depth} patch ` +
          `${patchSize} at ${imageSize}px); Table 3 compares backbones of one shape`,
      );
    }
  }
  return { model, imageSize, patchSize };
}

/**
 * Runs (or finishes) the detection experiment of `config` (`detect.*`,
 * `run.dir`, `run.backend`, `run.threads`) and writes its folder.
 *
 * @throws {ConfigError} for an unknown budget or backbone; {@linkcode RangeError}
 *   for a given backbone folder without a checkpoint or backbones of different shapes.
 */
export async function runDetectExperiment(
  input: Readonly<Config>,
  opts: DetectExperimentOptions = {},
): Promise<DetectExperimentResult> {
  const t0 = performance.now();
  const quiet = opts.quiet ?? false;
  const log = quiet ? () => {} : (s: string) => console.log(s);
  const config = resolveDetectConfig(input);
  const b = effectiveBudget(config);
  const names = parseBackbones(config.detect.backbones);
  const dir = config.run.dir;
  const info = await initBackend({
    backend: config.run.backend,
    threads: config.run.threads,
    quiet,
  });
  // backbone pre-training sets its own; the detector's steps run at train.precision too
  const precision = usePrecision(config.train.precision);
  log(`precision: ${precision.precision} (${precision.reason})`);
  await saveConfig(dir, config, { sections: ["run", "detect"] });

  // ---- backbones ----------------------------------------------------------------------------
  const runDirs: Record<string, string | null> = {};
  for (const n of names) {
    runDirs[n] = n === "random" ? null : await backboneRun(n, config, b, quiet);
  }
  const { model, imageSize, patchSize } = await backboneShape(runDirs, b);

  // ---- scenes -------------------------------------------------------------------------------
  const size = imageSize * b.scenes.multiple;
  const sceneDir = `${dir}/data/scenes-${size}`;
  const scenes = (split: "train" | "val", count: number) =>
    writeCocoScenes(sceneDir, { count, seed: SEED, split, size });
  const trainData = await scenes("train", b.scenes.train);
  const valData = await scenes("val", b.scenes.val);
  const S = SCENE_DEFAULTS;
  const dataNote =
    `${b.scenes.train} train / ${b.scenes.val} held-out Fashion-MNIST scenes of ${size}x${size} px ` +
    `(${S.minObjects}-${S.maxObjects} items at ${S.minScale}-${S.maxScale}x, ` +
    "10 classes; val items from the Fashion-MNIST test split)";
  log(
    `scenes: ${trainData.annotations}${
      trainData.reused ? " (reused)" : ""
    }, ${valData.annotations}`,
  );
  const open = (d: { annotations: string; images: string }) =>
    openCocoDataset({ annotations: d.annotations, images: d.images, inputSize: size, channels: 1 });
  const trainSet = await open(trainData), valSet = await open(valData);

  // ---- detectors ----------------------------------------------------------------------------
  const rows: Table3Row[] = [];
  for (const [i, n] of names.entries()) {
    const backbone = TABLE3_BACKBONES[n];
    log(`\n[${i + 1}/${names.length}] detector from ${backbone.label}`);
    const source: BackboneSource = runDirs[n]
      ? { kind: "run", runDir: runDirs[n]!, label: backbone.label }
      : { kind: "random", model, label: backbone.label };
    const result = await fineTuneDetector({
      runDir: `${dir}/detectors/${n}`,
      backbone: source,
      trainSet,
      valSet,
      train: { ...b.train, seed: SEED },
      dataNote,
      quiet,
    });
    rows.push({ name: n, backbone, backboneRun: runDirs[n], result });
  }

  // ---- tables and figures -------------------------------------------------------------------
  const seconds = (performance.now() - t0) / 1000;
  const shape = `ViT ${model.dim}x${model.depth}, patch ${patchSize}, ${imageSize}px pre-training`;
  const threads = `${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  const caption =
    `Box / mask AP (COCO metrics, %) of a ViTDet-style detector (simple feature pyramid, ` +
    `CenterNet-style head with prototype masks) fine-tuned from each backbone (${shape}) on ${dataNote}; ` +
    `evaluated on the ${b.scenes.val} held-out scenes. Budget "${b.name}": ${b.note}. ` +
    `Paper: Mask R-CNN with ViT-B/16 pre-trained on ImageNet-1K, COCO and LVIS (Table 3). ` +
    `Backend ${info.backend} (${threads}); this invocation took ${formatDuration(seconds)}.`;
  const md = renderTable3Markdown(dir, rows, caption);
  await writeFileAtomic(`${dir}/tables.md`, md);
  await writeFileAtomic(`${dir}/tables.csv`, renderTable3Csv(rows));
  const results = {
    budget: b,
    data: { note: dataNote, train: trainData.annotations, val: valData.annotations, size },
    backend: info,
    seconds,
    rows: rows.map(({ name, backbone, backboneRun, result }) => ({
      name,
      label: backbone.label,
      backboneRun,
      paper: backbone.paper,
      ...result,
    })),
  };
  await writeFileAtomic(`${dir}/results.json`, JSON.stringify(results, null, 2) + "\n");
  await Deno.mkdir(`${dir}/figures`, { recursive: true });
  await writeApFigure(`${dir}/figures/ap.png`, rows, b.name);
  await writePredictionFigure(`${dir}/figures/predictions.png`, { ...valData, size }, rows, 6);
  const val = await readCocoJson(valData.annotations);
  log(`\n${md}`);
  log(
    `detect done in ${formatDuration((performance.now() - t0) / 1000)}: ${dir}/tables.md ` +
      `(${val.images.length} held-out scenes, ${val.annotations.length} objects)`,
  );
  return { dir, budget: b, rows, tables: md, seconds };
}
