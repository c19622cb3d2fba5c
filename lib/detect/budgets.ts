/**
 * The data of the detection experiment (`deno task detect`): its budgets and
 * the backbones of the paper's Table 3 with the paper's numbers.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";

/** One budget of the detection experiment. */
export interface DetectBudget {
  name: string;
  /** Pre-training when no run folder is given or found (as `deno task repro`'s budget). */
  pretrain: {
    preset: string;
    limit: number;
    epochs: number;
    batchSize: number;
    /** AMT: epochs of random masking, then epochs between saliency passes. */
    warmup: number;
    interval: number;
  };
  /** Generated scenes: training, held-out, and the scene side as a multiple of the image side. */
  scenes: { train: number; val: number; multiple: number };
  /** Detector fine-tuning. */
  train: {
    steps: number;
    batchSize: number;
    lr: number;
    minLr: number;
    warmupSteps: number;
    logEvery: number;
  };
  /** What a reader should know about the numbers. */
  note: string;
}

/** The budgets, by `detect.budget`. */
export const DETECT_BUDGETS: Readonly<Record<string, DetectBudget>> = Object.freeze({
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
});

/**
 * The budget named `name`.
 *
 * @throws {ConfigError} naming the budgets when there is none of that name.
 */
export function detectBudget(name: string): DetectBudget {
  const b = DETECT_BUDGETS[name];
  if (!b) {
    throw new ConfigError(
      `detect.budget = ${JSON.stringify(name)} is not one of: ${
        Object.keys(DETECT_BUDGETS).join(", ")
      }.`,
      { key: "detect.budget" },
    );
  }
  return b;
}

/** A backbone of Table 3: how it is pre-trained, and the paper's box / mask AP. */
export interface Table3Backbone {
  label: string;
  /** The pre-training config (null: random init, nothing to pre-train). */
  config: string | null;
  /** The `deno task repro` run of the same recipe, reused when finished. */
  reproId: string | null;
  /** The `detect.*` key naming a pre-training run folder of it. */
  runKey: "maeRun" | "maeAttnRun" | "maeAmtRun" | null;
  /** The paper's box / mask AP (%) on COCO and LVIS (Mask R-CNN, ViT-B/16, ImageNet-1K). */
  paper: { coco: [number, number]; lvis: [number, number] };
}

/** The backbones of Table 3, by name (`detect.backbones`). */
export const TABLE3_BACKBONES: Readonly<Record<string, Table3Backbone>> = Object.freeze({
  random: {
    label: "random init",
    config: null,
    reproId: null,
    runKey: null,
    paper: { coco: [28.1, 26.2], lvis: [14.6, 14.3] },
  },
  mae: {
    label: "MAE",
    config: "configs/mae.yaml",
    reproId: "mae-random-75",
    runKey: "maeRun",
    paper: { coco: [40.1, 36.6], lvis: [25.0, 24.2] },
  },
  "mae-attn": {
    label: "MAE + attn-mask",
    config: "configs/mae_attn.yaml",
    reproId: "mae-attn-75",
    runKey: "maeAttnRun",
    paper: { coco: [42.2, 38.3], lvis: [26.2, 25.4] },
  },
  "mae-amt": {
    label: "MAE + AMT",
    config: "configs/mae_amt.yaml",
    reproId: "mae-amt-45-40",
    runKey: "maeAmtRun",
    paper: { coco: [42.8, 36.6], lvis: [26.9, 26.0] },
  },
});

/**
 * The backbone names of a `detect.backbones` list (`"random, mae"`).
 *
 * @throws {ConfigError} for an unknown name or an empty list.
 */
export function parseBackbones(list: string): string[] {
  const names = list.split(",").map((s) => s.trim()).filter((s) => s);
  const valid = Object.keys(TABLE3_BACKBONES).join(", ");
  for (const n of names) {
    if (!Object.hasOwn(TABLE3_BACKBONES, n)) {
      throw new ConfigError(`detect.backbones: unknown "${n}"; valid: ${valid}.`, {
        key: "detect.backbones",
      });
    }
  }
  if (names.length === 0) {
    throw new ConfigError(`detect.backbones names none; valid: ${valid}.`, {
      key: "detect.backbones",
    });
  }
  return names;
}
