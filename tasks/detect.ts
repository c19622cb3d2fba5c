/**
 * `deno task detect --budget=smoke|small [--run.dir=DIR] [--backbones=random,mae,mae-attn,mae-amt]
 *  [--ckpt.mae=DIR] [--ckpt.mae-attn=DIR] [--ckpt.mae-amt=DIR] [--repro.dir=DIR]
 *  [--run.backend=auto] [--run.threads=0] [--train.steps=N] [--train.batchSize=N]
 *  [--scenes.train=N] [--scenes.val=N] [--quiet]`
 *
 * The paper's Table 3 on the embedded detection scenes: fine-tunes a
 * ViTDet-style detector (box + mask) from random init and from MAE,
 * MAE + attention-driven masking and MAE + AMT encoders, evaluates COCO box
 * and mask AP on held-out scenes, and writes `tables.md`, `tables.csv`,
 * `results.json` and `figures/` under `--run.dir` (default `runs/detect-<budget>`).
 *
 * Backbones come from `--ckpt.<name>=DIR`, else from `deno task repro`'s runs
 * (`<repro.dir>/runs/<id>-s0`, default repro dir `runs/repro-<budget>`) when
 * they are finished, else they are pre-trained here with `configs/mae*.yaml`
 * and the budget's overrides. Everything finished is skipped on re-invocation.
 */
import { parseArgs } from "node:util";
import {
  barChart,
  ConfigError,
  formatDuration,
  imageGridPng,
  initBackend,
  loadRun,
  pretrain,
  resolveConfig,
  RUN_FILES,
  runPaths,
  svgToPng,
} from "../mod.ts";
import {
  type BackboneSource,
  type CocoSample,
  decodeMask,
  type DetectRunResult,
  drawDetections,
  fineTuneDetector,
  formatAp,
  openCocoDataset,
  readCocoJson,
  SCENE_DEFAULTS,
  writeCocoScenes,
} from "../lib/detect/mod.ts";

/** One budget of the detection experiment. */
interface DetectBudget {
  name: string;
  /** Pre-training when no run folder is given or found (as `deno task repro`'s budget). */
  pretrain: {
    preset: string;
    limit: number;
    epochs: number;
    batchSize: number;
    warmup: number;
    interval: number;
  };
  scenes: { train: number; val: number; multiple: number };
  train: {
    steps: number;
    batchSize: number;
    lr: number;
    minLr: number;
    warmupSteps: number;
    logEvery: number;
  };
  note: string;
}

const BUDGETS: Record<string, DetectBudget> = {
  smoke: {
    name: "smoke",
    pretrain: {
      preset: "vit-micro-28",
      limit: 256,
      epochs: 2,
      batchSize: 64,
      warmup: 1,
      interval: 1,
    },
    scenes: { train: 64, val: 32, multiple: 2 },
    train: { steps: 8, batchSize: 8, lr: 2e-3, minLr: 1e-4, warmupSteps: 2, logEvery: 4 },
    note: "plumbing check only: the numbers mean nothing",
  },
  small: {
    name: "small",
    pretrain: {
      preset: "vit-micro-28",
      limit: 4096,
      epochs: 8,
      batchSize: 64,
      warmup: 3,
      interval: 2,
    },
    scenes: { train: 1200, val: 300, multiple: 2 },
    train: { steps: 800, batchSize: 8, lr: 2e-3, minLr: 1e-4, warmupSteps: 40, logEvery: 50 },
    note: "ViT-Micro encoders (dim 96, depth 4) pre-trained on 4,096 Fashion-MNIST images for 8 " +
      "epochs, detectors fine-tuned for 800 steps of 8 scenes (5.3 passes over the 1,200 training " +
      "scenes): a first look, far from converged",
  },
};

/** The backbones of Table 3, how to pre-train them, and the paper's numbers (box / mask AP). */
const BACKBONES: Record<
  string,
  {
    label: string;
    config: string | null;
    reproId: string | null;
    paper: { coco: [number, number]; lvis: [number, number] };
  }
> = {
  random: {
    label: "random init",
    config: null,
    reproId: null,
    paper: { coco: [28.1, 26.2], lvis: [14.6, 14.3] },
  },
  mae: {
    label: "MAE",
    config: "configs/mae.yaml",
    reproId: "mae-random-75",
    paper: { coco: [40.1, 36.6], lvis: [25.0, 24.2] },
  },
  "mae-attn": {
    label: "MAE + attn-mask",
    config: "configs/mae_attn.yaml",
    reproId: "mae-attn-75",
    paper: { coco: [42.2, 38.3], lvis: [26.2, 25.4] },
  },
  "mae-amt": {
    label: "MAE + AMT",
    config: "configs/mae_amt.yaml",
    reproId: "mae-amt-45-40",
    paper: { coco: [42.8, 36.6], lvis: [26.9, 26.0] },
  },
};

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The pre-training run folder of a backbone: given, found in the repro folder, or trained here. */
async function backboneRun(
  name: string,
  given: string | undefined,
  reproDir: string,
  b: DetectBudget,
  runDir: string,
  backend: string,
  threads: number,
  quiet: boolean,
): Promise<string> {
  const spec = BACKBONES[name];
  if (given) {
    if (!(await exists(runPaths(given).checkpoint))) {
      throw new RangeError(
        `--ckpt.${name}=${given}: no ${RUN_FILES.checkpoint} there; pass a pre-training run folder`,
      );
    }
    return given;
  }
  const repro = `${reproDir}/runs/${spec.reproId}-s0`;
  if (await exists(runPaths(repro).summary)) return repro;
  const dir = `${runDir}/pretrain/${name}`;
  const p = b.pretrain;
  const argv = [
    "--config",
    spec.config!,
    `--data.limit=${p.limit}`,
    `--model.preset=${p.preset}`,
    `--train.epochs=${p.epochs}`,
    `--train.batchSize=${p.batchSize}`,
    `--train.warmupEpochs=${Math.min(1, p.epochs / 4)}`,
    "--train.logEvery=20",
    "--run.seed=0",
    `--run.dir=${dir}`,
    `--run.backend=${backend}`,
    `--run.threads=${threads}`,
    `--run.name=${name}`,
  ];
  if (name !== "mae") argv.push(`--amt.warmup=${p.warmup}`, `--amt.interval=${p.interval}`);
  const { config } = resolveConfig({ argv });
  if (!quiet) console.log(`\npre-training ${name} → ${dir}`);
  await pretrain(config, { quiet });
  return dir;
}

/** Panels of the first `n` val scenes: ground truth, then each backbone's detections. */
async function predictionFigure(
  path: string,
  valJson: string,
  valImages: string,
  size: number,
  results: DetectRunResult[],
  names: string[],
  n: number,
): Promise<void> {
  const ds = await openCocoDataset({
    annotations: valJson,
    images: valImages,
    inputSize: size,
    channels: 1,
  });
  const samples: CocoSample[] = [];
  for (let i = 0; i < Math.min(n, ds.length); i++) samples.push(await ds.get(i));
  const perRun = await Promise.all(
    results.map(async (r) =>
      JSON.parse(await Deno.readTextFile(`${r.runDir}/detections_val.json`)) as {
        image_id: number;
        category_id: number;
        bbox: number[];
        score: number;
        segmentation?: { size: [number, number]; counts: string };
      }[]
    ),
  );
  const rows = samples.map((s) => {
    const gt = s.instances.map((i) => ({ label: i.label, bbox: i.bbox, mask: i.mask }));
    return [
      drawDetections(s.image, gt),
      ...perRun.map((dets) =>
        drawDetections(
          s.image,
          dets.filter((d) => d.image_id === s.imageId).map((d) => ({
            label: ds.labelOf.get(d.category_id)!,
            bbox: d.bbox,
            score: d.score,
            mask: d.segmentation ? decodeMask(d.segmentation) : null,
          })),
        )
      ),
    ];
  });
  await imageGridPng(path, rows, {
    colLabels: ["ground truth", ...names.map((nm) => BACKBONES[nm].label)],
    title: "held-out scenes: best 8 detections with score >= 0.2 (masks tinted by class)",
  });
}

function relative(from: string, to: string): string {
  const a = from.replace(/\/+$/, "") + "/";
  return to.startsWith(a) ? to.slice(a.length) : to;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      budget: { type: "string", default: "smoke" },
      "run.dir": { type: "string" },
      backbones: { type: "string", default: "random,mae,mae-attn,mae-amt" },
      "ckpt.mae": { type: "string" },
      "ckpt.mae-attn": { type: "string" },
      "ckpt.mae-amt": { type: "string" },
      "repro.dir": { type: "string" },
      "run.backend": { type: "string", default: "auto" },
      "run.threads": { type: "string", default: "0" },
      "train.steps": { type: "string" },
      "train.batchSize": { type: "string" },
      "scenes.train": { type: "string" },
      "scenes.val": { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      "usage: deno task detect --budget=smoke|small [--run.dir=DIR] [--backbones=random,mae,mae-attn,mae-amt]\n" +
        "  [--ckpt.mae=DIR] [--ckpt.mae-attn=DIR] [--ckpt.mae-amt=DIR] [--repro.dir=DIR]\n" +
        "  [--run.backend=auto|wasm|cpu|webgpu|tensorflow] [--run.threads=N]\n" +
        "  [--train.steps=N] [--train.batchSize=N] [--scenes.train=N] [--scenes.val=N] [--quiet]",
    );
    return;
  }
  const t0 = performance.now();
  const base = BUDGETS[values.budget!];
  if (!base) {
    throw new RangeError(
      `--budget=${values.budget}: unknown; valid: ${Object.keys(BUDGETS).join(", ")}`,
    );
  }
  const int = (v: string | undefined, d: number, key: string) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`--${key}=${v}: expected a positive integer`);
    }
    return n;
  };
  const b: DetectBudget = {
    ...base,
    scenes: {
      ...base.scenes,
      train: int(values["scenes.train"], base.scenes.train, "scenes.train"),
      val: int(values["scenes.val"], base.scenes.val, "scenes.val"),
    },
    train: {
      ...base.train,
      steps: int(values["train.steps"], base.train.steps, "train.steps"),
      batchSize: int(values["train.batchSize"], base.train.batchSize, "train.batchSize"),
    },
  };
  const names = values.backbones!.split(",").map((s) => s.trim()).filter((s) => s);
  for (const n of names) {
    if (!BACKBONES[n]) {
      throw new RangeError(
        `--backbones: unknown "${n}"; valid: ${Object.keys(BACKBONES).join(", ")}`,
      );
    }
  }
  const dir = values["run.dir"] ?? `runs/detect-${b.name}`;
  const reproDir = values["repro.dir"] ?? `runs/repro-${b.name}`;
  const quiet = values.quiet!;
  const log = quiet ? () => {} : (s: string) => console.log(s);
  const backend = values["run.backend"]!, threads = Number(values["run.threads"]);
  const info = await initBackend({ backend: backend as "auto", threads, quiet });
  await Deno.mkdir(dir, { recursive: true });

  // ---- backbones --------------------------------------------------------------------------
  const runDirs: Record<string, string | null> = {};
  for (const n of names) {
    runDirs[n] = n === "random" ? null : await backboneRun(
      n,
      values[`ckpt.${n}` as "ckpt.mae"],
      reproDir,
      b,
      dir,
      backend,
      threads,
      quiet,
    );
  }
  // the random-init detector gets the same ViT shape as the pre-trained ones
  let model = { preset: b.pretrain.preset, patchSize: 0, dim: 0, depth: 0, heads: 0, mlpRatio: 0 };
  let imageSize = 28, patchSize = 4;
  const pretrained = names.filter((n) => runDirs[n]);
  for (const [i, n] of pretrained.entries()) {
    const run = await loadRun(runDirs[n]!);
    const s = run.model.encoder.shape;
    run.model.dispose();
    if (i === 0) {
      model = {
        preset: run.config.model.preset,
        patchSize: s.patchSize,
        dim: s.dim,
        depth: s.depth,
        heads: s.heads,
        mlpRatio: s.mlpRatio,
      };
      imageSize = s.imageSize;
      patchSize = s.patchSize;
    } else if (
      s.imageSize !== imageSize || s.patchSize !== patchSize || s.dim !== model.dim ||
      s.depth !== model.depth
    ) {
      throw new RangeError(
        `${
          runDirs[n]
        }: encoder ${s.dim}x${s.depth} patch ${s.patchSize} at ${s.imageSize}px differs from ` +
          `${
            runDirs[pretrained[0]]
          } (${model.dim}x${model.depth} patch ${patchSize} at ${imageSize}px); ` +
          "Table 3 compares backbones of one shape",
      );
    }
  }
  if (pretrained.length === 0) {
    const { PRESETS } = await import("../lib/vit/presets.ts");
    imageSize = PRESETS[b.pretrain.preset].imageSize;
    patchSize = PRESETS[b.pretrain.preset].patchSize;
  }

  // ---- scenes -------------------------------------------------------------------------------
  const size = imageSize * b.scenes.multiple;
  const sceneDir = `${dir}/data/scenes-${size}`;
  const trainData = await writeCocoScenes(sceneDir, {
    count: b.scenes.train,
    seed: 0,
    split: "train",
    size,
  });
  const valData = await writeCocoScenes(sceneDir, {
    count: b.scenes.val,
    seed: 0,
    split: "val",
    size,
  });
  const dataNote =
    `${b.scenes.train} train / ${b.scenes.val} held-out Fashion-MNIST scenes of ${size}x${size} px ` +
    `(${SCENE_DEFAULTS.minObjects}-${SCENE_DEFAULTS.maxObjects} items at ${SCENE_DEFAULTS.minScale}-${SCENE_DEFAULTS.maxScale}x, ` +
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
  const results: DetectRunResult[] = [];
  for (const [i, n] of names.entries()) {
    log(`\n[${i + 1}/${names.length}] detector from ${BACKBONES[n].label}`);
    const source: BackboneSource = runDirs[n]
      ? { kind: "run", runDir: runDirs[n]!, label: BACKBONES[n].label }
      : { kind: "random", model, label: BACKBONES[n].label };
    results.push(
      await fineTuneDetector({
        runDir: `${dir}/detectors/${n}`,
        backbone: source,
        trainSet,
        valSet,
        train: { ...b.train, seed: 0 },
        dataNote,
        quiet,
      }),
    );
  }

  // ---- tables and figures -------------------------------------------------------------------
  const seconds = (performance.now() - t0) / 1000;
  const shape = `ViT ${model.dim}x${model.depth}, patch ${patchSize}, ${imageSize}px pre-training`;
  const caption =
    `Box / mask AP (COCO metrics, %) of a ViTDet-style detector (simple feature pyramid, ` +
    `CenterNet-style head with prototype masks) fine-tuned from each backbone (${shape}) on ${dataNote}; ` +
    `evaluated on the ${b.scenes.val} held-out scenes. Budget "${b.name}": ${b.note}. ` +
    `Paper: Mask R-CNN with ViT-B/16 pre-trained on ImageNet-1K, COCO and LVIS (Table 3). ` +
    `Backend ${info.backend} (${info.threads} thread${
      info.threads === 1 ? "" : "s"
    }); this invocation took ` +
    `${formatDuration(seconds)}.`;
  const rows = results.map((r, i) => ({ name: names[i], r, spec: BACKBONES[names[i]] }));
  let md = `# Table 3: detection and instance segmentation\n\n${caption}\n\n`;
  md +=
    "| backbone | box AP | box AP50 | box AP75 | mask AP | mask AP50 | mask AP75 | box APs / APm | " +
    "paper COCO box / mask | paper LVIS box / mask | detector run | backbone run |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const { name, r, spec } of rows) {
    const run = relative(dir, r.runDir);
    const bb = runDirs[name] ? `[${runDirs[name]}](${relative(dir, runDirs[name]!)})` : "—";
    const f1 = (v: number) => v.toFixed(1);
    const cells = [
      spec.label,
      formatAp(r.box.AP),
      formatAp(r.box.AP50),
      formatAp(r.box.AP75),
      formatAp(r.mask.AP),
      formatAp(r.mask.AP50),
      formatAp(r.mask.AP75),
      `${formatAp(r.box.APs)} / ${formatAp(r.box.APm)}`,
      `${f1(spec.paper.coco[0])} / ${f1(spec.paper.coco[1])}`,
      `${f1(spec.paper.lvis[0])} / ${f1(spec.paper.lvis[1])}`,
      `[${run}](${run}/results.json)`,
      bb,
    ];
    md += `| ${cells.join(" | ")} |\n`;
  }
  md += `\nAP is averaged over IoU 0.50:0.95 and the categories with ground truth; APl is n/a ` +
    `because no scene object exceeds 96² px. Figures: [figures/ap.png](figures/ap.png), ` +
    `[figures/predictions.png](figures/predictions.png).\n`;
  await Deno.writeTextFile(`${dir}/tables.md`, md);
  const csvHead = "backbone,box_AP,box_AP50,box_AP75,box_APs,box_APm,mask_AP,mask_AP50,mask_AP75," +
    "paper_coco_box,paper_coco_mask,paper_lvis_box,paper_lvis_mask,steps,train_seconds,detector_run,backbone_run";
  const pct = (v: number) => (v < 0 ? "" : (100 * v).toFixed(2));
  const csv = [
    csvHead,
    ...rows.map(({ name, r, spec }) =>
      [
        name,
        pct(r.box.AP),
        pct(r.box.AP50),
        pct(r.box.AP75),
        pct(r.box.APs),
        pct(r.box.APm),
        pct(r.mask.AP),
        pct(r.mask.AP50),
        pct(r.mask.AP75),
        spec.paper.coco[0],
        spec.paper.coco[1],
        spec.paper.lvis[0],
        spec.paper.lvis[1],
        r.steps,
        r.trainSeconds.toFixed(1),
        r.runDir,
        runDirs[name] ?? "",
      ].join(",")
    ),
  ].join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/tables.csv`, csv);
  await Deno.writeTextFile(
    `${dir}/results.json`,
    JSON.stringify(
      {
        budget: b,
        data: { note: dataNote, train: trainData.annotations, val: valData.annotations, size },
        backend: info,
        seconds,
        rows: rows.map(({ name, r, spec }) => ({
          name,
          label: spec.label,
          backboneRun: runDirs[name],
          paper: spec.paper,
          ...r,
        })),
      },
      null,
      2,
    ) + "\n",
  );
  await Deno.mkdir(`${dir}/figures`, { recursive: true });
  const v = (x: number) => (x < 0 ? null : 100 * x);
  const svg = await barChart({
    title: `Table 3: ours (scenes, ${b.name}) vs paper (COCO)`,
    yFormat: ".1f",
    yLabel: "AP (%)",
    groups: rows.map(({ spec }) => spec.label),
    series: [
      { name: "box AP (ours)", values: rows.map(({ r }) => v(r.box.AP)) },
      { name: "mask AP (ours)", values: rows.map(({ r }) => v(r.mask.AP)) },
      { name: "box AP (paper, COCO)", values: rows.map(({ spec }) => spec.paper.coco[0]) },
      { name: "mask AP (paper, COCO)", values: rows.map(({ spec }) => spec.paper.coco[1]) },
    ],
    width: 760,
  });
  await svgToPng(svg, `${dir}/figures/ap.png`);
  await predictionFigure(
    `${dir}/figures/predictions.png`,
    valData.annotations,
    valData.images,
    size,
    results,
    names,
    6,
  );
  const val = await readCocoJson(valData.annotations);
  log(`\n${md}`);
  log(
    `detect done in ${formatDuration((performance.now() - t0) / 1000)}: ${dir}/tables.md ` +
      `(${val.images.length} held-out scenes, ${val.annotations.length} objects)`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RangeError || (e as Error).name === "DataError") {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
