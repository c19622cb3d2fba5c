/**
 * Fine-tuning a detector from a pre-training run's encoder (or from random
 * init) on a COCO-format dataset, and evaluating it with COCO box and mask AP.
 *
 * One run folder per detector: `config.json`, `metrics.jsonl`,
 * `checkpoints/detector.ckpt`, `detections_val.json` (COCO results),
 * `results.json` (AP numbers) and `plots/`. A folder holding `results.json`
 * is finished and is read back instead of trained again.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD } from "../data/idx.ts";
import { AdamW } from "../optim/mod.ts";
import {
  formatDuration,
  loadRun,
  MetricsLog,
  Progress,
  saveCheckpoint,
  type StepInfo,
  truncateMetrics,
} from "../run/mod.ts";
import { makeRng, permutation } from "../util/rng.ts";
import { writeFileAtomic } from "../util/fs.ts";
import type { VitShape } from "../vit/presets.ts";
import { resolveShape, type ShapeOverrides } from "../vit/vit.ts";
import { imageGridPng, lineChart, svgToPng } from "../viz/mod.ts";
import {
  boxToOriginal,
  type CocoDetectionDataset,
  type CocoSample,
  maskToOriginal,
} from "./coco.ts";
import { type CocoMetrics, evaluateCoco } from "./coco_eval.ts";
import { decodeDetections, type Detection } from "./decode.ts";
import { drawDetections } from "./draw.ts";
import { Detector, DETECTOR_DEFAULTS, type DetectorConfig, disposeOutput } from "./model.ts";
import { compressRle, encodeMask } from "./rle.ts";
import { buildTargets, type GtObject } from "./targets.ts";
import type { CocoDetection } from "./types.ts";

/** Optimisation of a detector fine-tune. */
export interface DetectTrainConfig {
  steps: number;
  batchSize: number;
  /** Peak learning rate (AdamW). */
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  /** Layer-wise lr decay of the backbone (ViTDet: block i gets decay^(depth + 1 - (i + 1))). */
  layerDecay: number;
  clipGrad: number;
  /** Read the loss every N steps. */
  logEvery: number;
  /** Random horizontal flips. */
  flip: boolean;
  boxWeight: number;
  maskWeight: number;
  seed: number;
  /** Images per inference batch. */
  evalBatchSize: number;
}

/** Defaults for small CPU runs. */
export const DETECT_TRAIN_DEFAULTS: Readonly<DetectTrainConfig> = Object.freeze({
  steps: 300,
  batchSize: 16,
  lr: 1e-3,
  minLr: 1e-5,
  warmupSteps: 30,
  weightDecay: 0.05,
  layerDecay: 0.75,
  clipGrad: 5,
  logEvery: 10,
  flip: true,
  boxWeight: 1,
  maskWeight: 1,
  seed: 0,
  evalBatchSize: 32,
});

/** Where the backbone comes from. */
export type BackboneSource =
  | { kind: "run"; runDir: string; label?: string }
  | { kind: "random"; model: ShapeOverrides; label?: string };

/** Options of {@link fineTuneDetector}. */
export interface FineTuneDetectorOptions {
  /** Output run folder. */
  runDir: string;
  backbone: BackboneSource;
  trainSet: CocoDetectionDataset;
  valSet: CocoDetectionDataset;
  detector?: Partial<Omit<DetectorConfig, "numClasses">>;
  train?: Partial<DetectTrainConfig>;
  /** What the result records about the data (for tables). */
  dataNote?: string;
  quiet?: boolean;
  /** Write plots (default true). */
  figures?: boolean;
}

/** What a finished detector run reports (also `results.json`). */
export interface DetectRunResult {
  runDir: string;
  backbone: { kind: string; runDir: string | null; label: string; shape: VitShape };
  box: CocoMetrics;
  mask: CocoMetrics;
  steps: number;
  trainSeconds: number;
  evalSeconds: number;
  firstLoss: number;
  finalLoss: number;
  parameters: number;
  valImages: number;
  trainImages: number;
}

/** Per-parameter lr scales: ViTDet's layer-wise decay over the encoder, 1 elsewhere. */
export function vitDetLrScales(names: string[], depth: number, decay: number): number[] {
  return names.map((name) => {
    let layer = depth + 1;
    const m = name.match(/^encoder\.blocks\.(\d+)\./);
    if (m) layer = Number(m[1]) + 1;
    else if (/^encoder\.(patch_embed|cls_token|pos)/.test(name)) layer = 0;
    return decay ** (depth + 1 - layer);
  });
}

/** Linear warm-up then cosine to `minLr`, per step. */
export function detectLrAt(
  step: number,
  c: Pick<DetectTrainConfig, "lr" | "minLr" | "warmupSteps" | "steps">,
): number {
  if (step < c.warmupSteps) return c.lr * (step + 1) / c.warmupSteps;
  const p = Math.min(1, (step - c.warmupSteps) / Math.max(1, c.steps - c.warmupSteps));
  return c.minLr + (c.lr - c.minLr) * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Normalised images `[B, S, S, C]` of samples, optionally flipped left-right. */
function batchImages(
  samples: CocoSample[],
  flips: boolean[],
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const { height: S, channels: C } = samples[0].image;
  const out = new Float32Array(samples.length * S * S * C);
  samples.forEach((s, b) => {
    const d = s.image.data;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const sx = flips[b] ? S - 1 - x : x;
        for (let c = 0; c < C; c++) {
          out[((b * S + y) * S + x) * C + c] = (d[(y * S + sx) * C + c] / 255 - mean[c]) / std[c];
        }
      }
    }
  });
  return out;
}

/** Ground truth of a sample as target objects (flipped when asked). */
function gtObjects(s: CocoSample, flip: boolean): GtObject[] {
  const S = s.image.width;
  return s.instances.map((inst) => {
    if (!flip) {
      return { label: inst.label, bbox: inst.bbox, mask: inst.mask, iscrowd: inst.iscrowd };
    }
    let mask: Uint8Array | null = null;
    if (inst.mask) {
      mask = new Uint8Array(S * S);
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) mask[y * S + x] = inst.mask[y * S + S - 1 - x];
      }
    }
    const [x, y, w, h] = inst.bbox;
    return { label: inst.label, bbox: [S - x - w, y, w, h], mask, iscrowd: inst.iscrowd };
  });
}

/** Every sample of a dataset, decoded once (the scene sets are small). */
export async function loadAllSamples(ds: CocoDetectionDataset): Promise<CocoSample[]> {
  const out: CocoSample[] = [];
  for (let i = 0; i < ds.length; i++) out.push(await ds.get(i));
  return out;
}

/** Inference on samples: detections per sample in input pixels. */
export async function predictSamples(
  det: Detector,
  samples: CocoSample[],
  norm: { mean: readonly number[]; std: readonly number[] },
  batchSize = 32,
): Promise<Detection[][]> {
  const out: Detection[][] = [];
  const L = det.vit.numPatches, ppc = det.vit.patchDim;
  for (let i = 0; i < samples.length; i += batchSize) {
    const chunk = samples.slice(i, i + batchSize);
    const B = chunk.length;
    const images = batchImages(chunk, chunk.map(() => false), norm.mean, norm.std);
    const patches = tf.tensor2d(det.backbone.patches(images, B), [B * L, ppc]);
    const res = det.predictRaw(patches, B);
    try {
      out.push(
        ...(await decodeDetections(res, {
          imageSize: det.shape.imageSize,
          strides: det.strides,
          protoStride: det.protoStride,
        })),
      );
    } finally {
      patches.dispose();
      disposeOutput(res);
    }
  }
  return out;
}

/** Detections as COCO results in original image pixels (masks as compressed RLE). */
export function toCocoResults(
  ds: CocoDetectionDataset,
  samples: CocoSample[],
  dets: Detection[][],
): CocoDetection[] {
  const res: CocoDetection[] = [];
  samples.forEach((s, i) => {
    const t = s.transform;
    for (const d of dets[i]) {
      const bbox = boxToOriginal(d.bbox, t).map((v) => Math.round(v * 100) / 100) as [
        number,
        number,
        number,
        number,
      ];
      const r: CocoDetection = {
        image_id: s.imageId,
        category_id: ds.categories[d.label].id,
        bbox,
        score: Math.round(d.score * 1e5) / 1e5,
      };
      if (d.mask) {
        r.segmentation = compressRle(encodeMask(maskToOriginal(d.mask, t), t.height, t.width));
      }
      res.push(r);
    }
  });
  return res;
}

/** Box and mask AP of a detector on a dataset (all its images), plus the results list. */
export async function evaluateDetector(
  det: Detector,
  ds: CocoDetectionDataset,
  samples: CocoSample[],
  norm: { mean: readonly number[]; std: readonly number[] },
  batchSize = 32,
): Promise<
  { box: CocoMetrics; mask: CocoMetrics; results: CocoDetection[]; detections: Detection[][] }
> {
  const detections = await predictSamples(det, samples, norm, batchSize);
  const results = toCocoResults(ds, samples, detections);
  const gt = { ...ds.json, images: ds.images };
  const box = evaluateCoco(gt, results, { iouType: "bbox" });
  const hasMasks = ds.json.annotations.some((a) => a.segmentation !== undefined);
  const mask = hasMasks
    ? evaluateCoco(gt, results, { iouType: "segm" })
    : { ...box, AP: -1, AP50: -1, AP75: -1, APs: -1, APm: -1, APl: -1 };
  return { box, mask, results, detections };
}

/** Build the detector for a backbone source; returns it with the normalisation to use. */
export async function buildDetector(
  source: BackboneSource,
  inputSize: number,
  channels: number,
  numClasses: number,
  config: Partial<Omit<DetectorConfig, "numClasses">>,
  seed: number,
): Promise<{ det: Detector; mean: readonly number[]; std: readonly number[]; note: string }> {
  const full: DetectorConfig = { ...DETECTOR_DEFAULTS, ...config, numClasses };
  if (source.kind === "random") {
    const shape = resolveShape(source.model, channels, inputSize);
    return {
      det: new Detector(shape, full, seed),
      mean: FASHION_MNIST_MEAN.slice(0, 1).concat(Array(channels - 1).fill(FASHION_MNIST_MEAN[0])),
      std: FASHION_MNIST_STD.slice(0, 1).concat(Array(channels - 1).fill(FASHION_MNIST_STD[0])),
      note: "random init",
    };
  }
  const run = await loadRun(source.runDir);
  try {
    const s = run.model.encoder.shape;
    if (s.channels !== channels) {
      throw new RangeError(
        `${source.runDir}: the encoder takes ${s.channels}-channel images but the detection data has ${channels}`,
      );
    }
    if (inputSize % s.patchSize !== 0) {
      throw new RangeError(
        `detector input ${inputSize} px is not a multiple of the patch size ${s.patchSize} of ${source.runDir}`,
      );
    }
    const shape: VitShape = { ...s, imageSize: inputSize };
    const det = new Detector(shape, full, seed);
    det.loadEncoder(run.model.store);
    const note =
      `${run.config.mim.method} ${run.config.amt.strategy}, ${run.step} steps, ${run.info.imageSize} px`;
    return { det, mean: run.info.mean, std: run.info.std, note };
  } finally {
    run.model.dispose();
  }
}

/**
 * Fine-tune a detector and evaluate it on the validation set. A run folder
 * that already holds `results.json` is returned as it is.
 */
export async function fineTuneDetector(o: FineTuneDetectorOptions): Promise<DetectRunResult> {
  const log = o.quiet ? () => {} : (s: string) => console.log(s);
  try {
    const done = JSON.parse(await Deno.readTextFile(`${o.runDir}/results.json`)) as DetectRunResult;
    log(
      `${o.runDir}: finished earlier (box AP ${fmt(done.box.AP)}, mask AP ${
        fmt(done.mask.AP)
      }), skipping`,
    );
    return done;
  } catch {
    // not finished: train
  }
  const cfg: DetectTrainConfig = { ...DETECT_TRAIN_DEFAULTS, ...o.train };
  const S = o.trainSet.options.inputSize;
  if (o.valSet.options.inputSize !== S) {
    throw new RangeError(`train and val input sizes differ: ${S} vs ${o.valSet.options.inputSize}`);
  }
  const K = o.trainSet.categories.length;
  if (o.valSet.categories.length !== K) {
    throw new RangeError(`train has ${K} categories but val has ${o.valSet.categories.length}`);
  }
  const t0 = performance.now();
  const { det, mean, std, note } = await buildDetector(
    o.backbone,
    S,
    o.trainSet.channels,
    K,
    o.detector ?? {},
    cfg.seed,
  );
  const label = o.backbone.label ?? (o.backbone.kind === "run" ? o.backbone.runDir : "random init");
  await Deno.mkdir(`${o.runDir}/plots`, { recursive: true });
  await Deno.mkdir(`${o.runDir}/checkpoints`, { recursive: true });
  await writeFileAtomic(
    `${o.runDir}/config.json`,
    JSON.stringify(
      {
        backbone: { ...o.backbone, note },
        shape: det.shape,
        detector: det.config,
        train: cfg,
        data: {
          train: o.trainSet.options.annotations,
          val: o.valSet.options.annotations,
          inputSize: S,
          note: o.dataNote ?? "",
        },
        normalisation: { mean, std },
        tfjs: tf.version.tfjs,
        backend: tf.getBackend(),
      },
      null,
      2,
    ) + "\n",
  );
  const metricsPath = `${o.runDir}/metrics.jsonl`;
  await truncateMetrics(metricsPath, 0);
  const params = det.trainableParams();
  // built in a tidy: AdamW's `zerosLike` initial values would otherwise outlive it
  const opt = tf.tidy(() =>
    new AdamW(params, {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: cfg.weightDecay,
      clipGrad: cfg.clipGrad,
      lrScales: vitDetLrScales(params.map((p) => p.name), det.vit.blocks.length, cfg.layerDecay),
    }) as unknown as tf.TensorContainer
  ) as unknown as AdamW;
  const metrics = new MetricsLog<StepInfo & { lr: number }>({
    every: cfg.logEvery,
    path: metricsPath,
    records: (w) =>
      w.steps.map((s) => {
        const [total, heat, box, mask] = s.values;
        return { type: "step", step: s.info.step, loss: total, heat, box, mask, lr: s.info.lr };
      }),
    nonFinite: ({ loss, info }) => ({
      message:
        `detector loss is ${loss} at step ${info.step}; lower train.lr or set train.clipGrad`,
    }),
    progress: {
      bar: new Progress(cfg.steps, "detect", undefined, o.quiet),
      total: cfg.steps,
      since: t0,
      status: (w) => `loss ${w.last.loss.toFixed(3)}`,
    },
  });
  try {
    log(
      `detector ${o.runDir}: backbone ${label} (${note}), ${det.shape.dim}x${det.shape.depth} patch ` +
        `${det.shape.patchSize}, window ${det.backbone.window}, levels stride ${
          det.strides.join("/")
        }, ` +
        `${det.store.count().toLocaleString()} params; ${o.trainSet.length} train / ${o.valSet.length} val images of ${S}px`,
    );
    const trainSamples = await loadAllSamples(o.trainSet);
    const valSamples = await loadAllSamples(o.valSet);
    if (trainSamples.length < cfg.batchSize) {
      throw new RangeError(
        `${trainSamples.length} training images is fewer than train.batchSize ${cfg.batchSize}`,
      );
    }
    const L = det.vit.numPatches, ppc = det.vit.patchDim;
    const geometry = {
      imageSize: S,
      numClasses: K,
      strides: det.strides,
      protoStride: det.protoStride,
      objectCells: det.config.objectCells,
    };
    const perEpoch = Math.floor(trainSamples.length / cfg.batchSize);
    let order = permutation(trainSamples.length, makeRng(cfg.seed, "detect-order", 0));
    for (let step = 0; step < cfg.steps; step++) {
      const epoch = Math.floor(step / perEpoch), s = step % perEpoch;
      if (s === 0) {
        order = permutation(trainSamples.length, makeRng(cfg.seed, "detect-order", epoch));
      }
      const rng = makeRng(cfg.seed, "detect-flip", step);
      const chunk = Array.from(
        order.subarray(s * cfg.batchSize, (s + 1) * cfg.batchSize),
        (i) => trainSamples[i],
      );
      const flips = chunk.map(() => cfg.flip && rng() < 0.5);
      const images = batchImages(chunk, flips, mean, std);
      const targets = buildTargets(chunk.map((c, b) => gtObjects(c, flips[b])), geometry);
      const patches = tf.tensor2d(det.backbone.patches(images, chunk.length), [
        chunk.length * L,
        ppc,
      ]);
      const lr = detectLrAt(step, cfg);
      let parts: tf.Tensor1D | null = null;
      const { loss, gradNorm } = opt.minimize(() => {
        const l = det.loss(det.forward(patches, chunk.length), targets, {
          box: cfg.boxWeight,
          mask: cfg.maskWeight,
        });
        parts = tf.keep(tf.stack([l.total, l.heat, l.box, l.mask])) as tf.Tensor1D;
        return l.total;
      }, lr);
      patches.dispose();
      loss.dispose();
      gradNorm.dispose();
      await metrics.push(parts!, { step: step + 1, lr });
    }
    await metrics.flush();
    metrics.finishLine();
    const trainSeconds = (performance.now() - t0) / 1000;

    // ---- evaluation --------------------------------------------------------------------------
    const e0 = performance.now();
    const ev = await evaluateDetector(det, o.valSet, valSamples, { mean, std }, cfg.evalBatchSize);
    const evalSeconds = (performance.now() - e0) / 1000;
    await writeFileAtomic(`${o.runDir}/detections_val.json`, JSON.stringify(ev.results));
    await saveCheckpoint(`${o.runDir}/checkpoints/detector.ckpt`, {
      meta: { steps: cfg.steps, backbone: label },
      arrays: new Map(
        [...det.store.params.values()].map((p) => [
          `param/${p.name}`,
          { shape: p.variable.shape, data: p.variable.dataSync() as Float32Array },
        ]),
      ),
    });
    const result: DetectRunResult = {
      runDir: o.runDir,
      backbone: {
        kind: o.backbone.kind,
        runDir: o.backbone.kind === "run" ? o.backbone.runDir : null,
        label,
        shape: det.shape,
      },
      box: ev.box,
      mask: ev.mask,
      steps: cfg.steps,
      trainSeconds,
      evalSeconds,
      firstLoss: metrics.first,
      finalLoss: metrics.last,
      parameters: det.store.count(),
      valImages: valSamples.length,
      trainImages: trainSamples.length,
    };
    if (o.figures !== false) await writeDetectorFigures(o.runDir, valSamples, ev.detections, label);
    await writeFileAtomic(`${o.runDir}/results.json`, JSON.stringify(result, null, 2) + "\n");
    log(
      `detector ${o.runDir}: box AP ${fmt(ev.box.AP)} (AP50 ${fmt(ev.box.AP50)}), mask AP ${
        fmt(ev.mask.AP)
      } ` +
        `(AP50 ${fmt(ev.mask.AP50)}); train ${formatDuration(trainSeconds)}, eval ${
          formatDuration(evalSeconds)
        }`,
    );
    return result;
  } finally {
    metrics.dispose();
    opt.dispose();
    det.dispose();
  }
}

/** `plots/loss.png` and `plots/predictions.png` (ground truth | prediction for 8 images). */
async function writeDetectorFigures(
  runDir: string,
  samples: CocoSample[],
  dets: Detection[][],
  label: string,
): Promise<void> {
  const n = Math.min(8, samples.length);
  const rows = Array.from({ length: n }, (_, i) => {
    const s = samples[i];
    const gt = s.instances.map((inst) => ({ label: inst.label, bbox: inst.bbox, mask: inst.mask }));
    return [drawDetections(s.image, gt), drawDetections(s.image, dets[i])];
  });
  await imageGridPng(`${runDir}/plots/predictions.png`, rows, {
    colLabels: ["ground truth", "prediction"],
    title: `${label}: best 8 detections with score >= 0.2`,
  });
  const records = (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const x = records.map((r) => r.step as number);
  const series = ["loss", "heat", "box", "mask"].map((k) => ({
    name: k,
    x,
    y: records.map((r) => r[k] as number),
  }));
  const svg = await lineChart({
    title: `detector loss (${label})`,
    xLabel: "step",
    yLabel: "loss",
    series,
    logY: true,
  });
  await svgToPng(svg, `${runDir}/plots/loss.png`);
}

function fmt(v: number): string {
  return v < 0 ? "n/a" : (100 * v).toFixed(1);
}
