/**
 * What `deno task repro` runs: the paper's Tables 1, 2 and 4 (Table 1 with
 * MaskFeat rows the paper does not have) as a set of pre-training runs (each trained once and shared by every table that needs
 * it) and the evaluations each table reads, at a budget the machine affords.
 *
 * @module
 */

/** One pre-training configuration of the paper's tables. */
export interface ReproRun {
  /** Folder name under `<run.dir>/runs/` (with `-s<seed>`) and record name. */
  id: string;
  /** The row label. */
  label: string;
  method: "mae" | "simmim" | "maskfeat";
  /** `amt.strategy` ("none" = the method's random masking). */
  strategy: string;
  maskRatio: number;
  throwRatio: number;
  /** Seeds to train (the default; `--seeds` overrides them). */
  seeds: number[];
  /**
   * "pretrain" (default): pre-train, then evaluate. "random-init": probe a freshly initialised
   * encoder of the same shape (the MAE random run's config and seed), no pre-training.
   */
  kind?: "pretrain" | "random-init";
  /**
   * A knob run of the saliency study (`lib/repro/study.ts`): the one setting it changes from
   * the budget's MAE random run (e.g. `normalize=unit`).
   */
  knob?: string;
  /** Trained only when named with `--only` (the saliency study's runs; not in the paper's tables). */
  optIn?: boolean;
  /** Config overrides after the budget's (the knob's settings). */
  args?: readonly string[];
  /** Linear-probe (and kNN) the run (default: {@linkcode isProbed}'s rule). */
  probe?: boolean;
}

/** A budget: model, data and epochs for pre-training and evaluation. */
export interface ReproBudget {
  name: string;
  preset: string;
  /** Training images (0 = all). */
  limit: number;
  /** MAE's pre-training epochs. */
  epochs: number;
  /**
   * SimMIM's, and MaskFeat's: both run every non-thrown token through the encoder, so they get
   * the mask-token methods' (shorter, in the paper) schedule.
   */
  simmimEpochs: number;
  batchSize: number;
  /** AMT: epochs of random masking before the first saliency pass (`amt.warmup`). */
  warmup: number;
  /** AMT: epochs between saliency passes (`amt.interval`). */
  interval: number;
  /** Pre-training lr warm-up epochs (default min(1, epochs / 4)). */
  lrWarmup?: number;
  /**
   * Matmul precision of every run and evaluation (`train.precision`): fixed per budget so that
   * its records compare like for like; `--train.precision` on the command line overrides it.
   */
  precision: "auto" | "fp32" | "bf16";
  /** Extra config overrides for the MAE pre-training runs (`--section.key=value`). */
  maeArgs?: readonly string[];
  /** Extra config overrides for the SimMIM runs (default none: configs/simmim.yaml's recipe). */
  simmimArgs?: readonly string[];
  /** Linear probe: epochs and images (0 = all). */
  probeEpochs: number;
  probeTrain: number;
  probeTest: number;
  /** Linear probe base lr (peak lr = baseLr * batch / 256; default 0.1). */
  probeBaseLr?: number;
  /** Linear probe batch (default 256). */
  probeBatchSize?: number;
  /** Linear probe lr warm-up epochs (default a tenth of the epochs). */
  probeWarmup?: number;
  /** Also linear-probe (and kNN) the SimMIM runs (default: MAE and MaskFeat runs only). */
  probeSimmim?: boolean;
  /** Fine-tuning: epochs (0 = no fine-tuning; the records hold `finetune: null`) and images. */
  finetuneEpochs: number;
  finetuneTrain: number;
  finetuneTest: number;
  /** Fine-tuning base lr (peak lr = baseLr * batch / 256). */
  finetuneBaseLr: number;
  /** Seeds for the MAE random vs AMT pair (and the random-init baseline). */
  pairSeeds: number[];
  /** Seeds of MAE attention-driven masking (default [0]). */
  attnSeeds?: number[];
  /**
   * The attention monitor during pre-training (`eval.attnEvery`, 0 = off): attention on the
   * object of the `cls-last` and `rollout` maps every N epochs on the first `monitorImages`
   * training images, into each record's `attnCurve`.
   */
  monitorEvery?: number;
  /** Training images the monitor scores (default 256). */
  monitorImages?: number;
  /**
   * The saliency study's tables go to `results/saliency` beside the budget's results folder
   * (the budget the study is run at), not into `<results>/saliency`.
   */
  studyBeside?: boolean;
  /** Images for the attention-on-object measure (0 = all test images). */
  objectImages: number;
  /** What a reader should know about this budget. */
  note: string;
}

/**
 * The budgets. `small` is sized to finish in about 50 minutes on 2 cores; `medium` is meant to
 * be run in parts (one (run, seed) per job, see results/README.md).
 */
export const BUDGETS: Readonly<Record<string, ReproBudget>> = Object.freeze({
  smoke: {
    name: "smoke",
    precision: "auto",
    preset: "vit-micro-28",
    limit: 256,
    epochs: 2,
    simmimEpochs: 2,
    batchSize: 64,
    warmup: 1,
    interval: 1,
    probeEpochs: 3,
    probeTrain: 1024,
    probeTest: 500,
    finetuneEpochs: 1,
    finetuneTrain: 256,
    finetuneTest: 256,
    finetuneBaseLr: 4e-3,
    pairSeeds: [0],
    monitorEvery: 1,
    monitorImages: 64,
    objectImages: 64,
    note: "plumbing check only: the numbers mean nothing",
  },
  small: {
    name: "small",
    precision: "fp32",
    preset: "vit-micro-28",
    limit: 4096,
    epochs: 8,
    simmimEpochs: 8,
    batchSize: 64,
    warmup: 3,
    interval: 2,
    probeEpochs: 20,
    probeTrain: 10000,
    probeTest: 2000,
    // 6 epochs on 4,096 images at base lr 2e-2 (lr 2.5e-3 at batch 32): 3 epochs on 2,048 at
    // 4e-3 stayed near 39 % (below the linear probe); base lr 2e-3 / 2e-2 / 5e-2 gave 31 / 68 /
    // 69 % on the MAE random run
    finetuneEpochs: 6,
    finetuneTrain: 4096,
    finetuneTest: 2000,
    finetuneBaseLr: 2e-2,
    pairSeeds: [0, 1, 2],
    objectImages: 512,
    note: "ViT-Micro (dim 96, depth 4, decoder 64x1) on 4,096 Fashion-MNIST images for 8 " +
      "epochs, about 50 minutes on a 2-core machine with OpenBLAS (MAE random and AMT with 3 " +
      "seeds): a first look, where differences of a point or two can be run-to-run noise (see the " +
      "paired intervals)",
  },
  medium: {
    name: "medium",
    // bf16 matmuls (oneDNN, AVX512_BF16): 1.5x the fp32 throughput at this shape, final losses
    // within 0.1 % (tests/bf16_train_test.ts); a machine without bf16 says so and stops, and
    // --train.precision=fp32 runs it there (its records then say fp32)
    precision: "bf16",
    preset: "vit-tiny-28",
    limit: 0,
    epochs: 8,
    simmimEpochs: 8,
    batchSize: 256,
    // random masking in epochs 1-2, saliency recomputed after epochs 2, 4 and 6 (never after 8)
    warmup: 2,
    interval: 2,
    lrWarmup: 1,
    // MAE's recipe; SimMIM keeps its own (configs/simmim.yaml: crop 0.67-1, AdamW 0.9/0.999,
    // lr per 512 images, drop-path 0.1, clipping 5) with the same epochs, batch and schedule
    maeArgs: [
      "--train.baseLr=0.001",
      "--train.lrBatch=256",
      "--train.minLr=0",
      "--train.weightDecay=0.05",
      "--train.beta1=0.9",
      "--train.beta2=0.95",
      "--data.cropScale=0.35,1",
      "--data.cropRatio=0.75,1.3333333333333333",
      "--data.flip=true",
    ],
    probeEpochs: 100,
    probeTrain: 0,
    probeTest: 0,
    probeBaseLr: 0.1,
    probeBatchSize: 256,
    probeWarmup: 0,
    probeSimmim: true,
    finetuneEpochs: 0,
    finetuneTrain: 0,
    finetuneTest: 0,
    finetuneBaseLr: 1e-3,
    pairSeeds: [0, 1, 2],
    attnSeeds: [0, 1, 2],
    // the attention's share on the object after epochs 2, 4, 6 and 8 (a few seconds each)
    monitorEvery: 2,
    monitorImages: 1024,
    studyBeside: true,
    objectImages: 0,
    note:
      "ViT-Tiny (dim 192, depth 6, 3 heads, decoder 128x2) pre-trained on all 60,000 Fashion-MNIST training images " +
      "for 8 epochs at batch 256 (AdamW 0.9/0.95, wd 0.05, base lr 1e-3, 1 warm-up epoch then " +
      "cosine to 0; RandomResizedCrop scale 0.35-1, flip; normalised-pixel loss; SimMIM with its " +
      "own recipe from configs/simmim.yaml); linear " +
      "probe and kNN-20 on all 60,000 / 10,000 images (SGD momentum 0.9, lr 0.1 at batch 256, 100 " +
      "epochs, cosine, no warm-up, last-epoch accuracy); no fine-tuning; bf16 matmuls (fp32 master " +
      "weights). About 18 min per MAE random run on 2 cores with nothing else running (14-15 min " +
      "pre-training, 3-4 min evaluation; SimMIM about twice that): meant to be run in parts (one " +
      "run and seed per job) and merged from the record files",
  },
  full: {
    name: "full",
    precision: "auto",
    preset: "vit-tiny-28",
    limit: 0,
    epochs: 400,
    simmimEpochs: 200,
    batchSize: 256,
    warmup: 40,
    interval: 40,
    probeEpochs: 90,
    probeTrain: 0,
    probeTest: 0,
    finetuneEpochs: 100,
    finetuneTrain: 0,
    finetuneTest: 0,
    finetuneBaseLr: 1e-3,
    pairSeeds: [0, 1],
    objectImages: 2000,
    note: "the paper's schedule (MAE 400 epochs, SimMIM 200, saliency every 40) on the whole " +
      "training set; days on a CPU",
  },
});

/** The runs of Tables 1, 2 and 4, each trained once, and the random-init baseline. */
export function reproRuns(budget: ReproBudget): ReproRun[] {
  const pair = budget.pairSeeds;
  return [
    {
      id: "random-init",
      label: "random init",
      method: "mae",
      strategy: "none",
      maskRatio: 0.75,
      throwRatio: 0,
      seeds: pair,
      kind: "random-init",
    },
    {
      id: "mae-random-75",
      label: "MAE random",
      method: "mae",
      strategy: "none",
      maskRatio: 0.75,
      throwRatio: 0,
      seeds: pair,
    },
    {
      id: "mae-attn-75",
      label: "MAE attn-mask",
      method: "mae",
      strategy: "attn-mask",
      maskRatio: 0.75,
      throwRatio: 0,
      seeds: budget.attnSeeds ?? [0],
    },
    {
      id: "mae-amt-45-40",
      label: "MAE AMT",
      method: "mae",
      strategy: "amt",
      maskRatio: 0.45,
      throwRatio: 0.40,
      seeds: pair,
    },
    {
      id: "simmim-random-60",
      label: "SimMIM random",
      method: "simmim",
      strategy: "none",
      maskRatio: 0.6,
      throwRatio: 0,
      seeds: [0],
    },
    {
      id: "simmim-attn-60",
      label: "SimMIM attn-mask",
      method: "simmim",
      strategy: "attn-mask",
      maskRatio: 0.6,
      throwRatio: 0,
      seeds: [0],
    },
    {
      id: "simmim-amt-44-26",
      label: "SimMIM AMT",
      method: "simmim",
      strategy: "amt",
      maskRatio: 0.44,
      throwRatio: 0.26,
      seeds: [0],
    },
    {
      id: "simmim-amt-33-50",
      label: "SimMIM AMT",
      method: "simmim",
      strategy: "amt",
      maskRatio: 0.33,
      throwRatio: 0.50,
      seeds: [0],
    },
    // MaskFeat (HOG targets), not in the paper's tables: its random masking at MaskFeat's 0.4,
    // and AMT keeping random masking's masked : visible balance (40 : 60) while throwing SimMIM
    // AMT's 26 %: 0.40 * 0.74 = 0.296 ~ 30 % masked, 44 % visible (as SimMIM's 60/40 becomes
    // 44/30 and MAE's 75/25 becomes 45/15 under AMT)
    {
      id: "maskfeat-random-40",
      label: "MaskFeat random",
      method: "maskfeat",
      strategy: "none",
      maskRatio: 0.4,
      throwRatio: 0,
      seeds: [0],
    },
    {
      id: "maskfeat-amt-30-26",
      label: "MaskFeat AMT",
      method: "maskfeat",
      strategy: "amt",
      maskRatio: 0.30,
      throwRatio: 0.26,
      seeds: [0],
    },
    {
      id: "mae-random-throw-45-40",
      label: "random throw",
      method: "mae",
      strategy: "random-throw",
      maskRatio: 0.45,
      throwRatio: 0.40,
      seeds: [0],
    },
    {
      id: "mae-throw-low-75-10",
      label: "attn + throw low",
      method: "mae",
      strategy: "attn-throw-low",
      maskRatio: 0.75,
      throwRatio: 0.10,
      seeds: [0],
    },
    {
      id: "mae-throw-low-45-40",
      label: "attn + throw low",
      method: "mae",
      strategy: "attn-throw-low",
      maskRatio: 0.45,
      throwRatio: 0.40,
      seeds: [0],
    },
    ...studyRuns(budget),
  ];
}

/** One setting the saliency study changes from the budget's MAE random run. */
export interface StudyKnob {
  /** `name=value`, as in `results/saliency/results.json`. */
  knob: string;
  /** Run id (`knob-...`). */
  id: string;
  /** The config overrides. */
  args: readonly string[];
  /** What it tests. */
  why: string;
}

/**
 * The knobs of the saliency study (issue 16, part 1), each changed alone from the budget's MAE
 * random masking run (`mae-random-75`, the `default` row): what decides whether the CLS
 * attention lands on the object.
 */
export const STUDY_KNOBS: readonly StudyKnob[] = Object.freeze([
  {
    knob: "normalize=unit",
    id: "knob-normalize-unit",
    args: ["--data.normalize=unit"],
    why: "raw pixels / 255: a black background patch embeds to a pure position code",
  },
  {
    knob: "decay=all",
    id: "knob-decay-all",
    args: ["--train.noDecay=none"],
    why: "weight decay on biases, norms and tokens too",
  },
  {
    knob: "model=micro",
    id: "knob-model-micro",
    args: ["--model.preset=vit-micro-28"],
    why: "ViT-Micro (dim 96, depth 4, decoder 64x1) instead of ViT-Tiny",
  },
  {
    knob: "images=4096",
    id: "knob-images-4096",
    args: ["--data.limit=4096"],
    why: "the small budget's 4,096 training images instead of 60,000",
  },
  {
    knob: "registers=4",
    id: "knob-registers-4",
    args: ["--model.registers=4"],
    why: "4 register tokens after CLS, left out of the map (Darcet et al. 2024)",
  },
  {
    knob: "target=raw",
    id: "knob-target-raw",
    args: ["--mim.normPixLoss=false"],
    why: "pixel targets not normalised per patch (as SimMIM's), MAE's loss otherwise",
  },
]);

/**
 * The saliency study's runs of a budget that monitors attention (`monitorEvery`): MAE random
 * with one knob changed, the pair's seeds, not probed (the study reads the attention monitor
 * and the test-set attention on the object). None for the other budgets.
 */
export function studyRuns(budget: ReproBudget): ReproRun[] {
  if (!budget.monitorEvery) return [];
  const knobs = STUDY_KNOBS.map((k): ReproRun => ({
    id: k.id,
    label: `MAE random, ${k.knob}`,
    method: "mae" as const,
    strategy: "none",
    maskRatio: 0.75,
    throwRatio: 0,
    seeds: budget.pairSeeds,
    knob: k.knob,
    args: k.args,
    probe: false,
    optIn: true,
  }));
  // part 3: MAE+AMT with another map, probed, against MAE random at the same settings
  const sources: ReproRun[] = STUDY_SOURCES.map((src) => ({
    id: `mae-amt-${src}-45-40`,
    label: `MAE AMT (${src})`,
    method: "mae",
    strategy: "amt",
    maskRatio: 0.45,
    throwRatio: 0.40,
    seeds: budget.pairSeeds,
    args: [`--amt.saliency=${src}`],
    optIn: true,
  }));
  return [...knobs, ...sources];
}

/**
 * The maps the saliency study pre-trains MAE+AMT with besides the paper's `cls-last` (chosen on
 * the attention monitor's training images, never on the test set): `rollout` stayed above the
 * object's area on the first MAE+AMT runs where `cls-last` fell below it.
 */
export const STUDY_SOURCES: readonly string[] = Object.freeze(["rollout"]);

/** What {@link runArgs} takes from the repro invocation. */
export interface RunArgsOptions {
  data: { name: string; root: string };
  backend: string;
  threads: number;
  /** Overrides the budget's precision. */
  precision?: string;
}

/** The `pretrain` command-line overrides of one (run, seed) of a budget. */
export function runArgs(
  run: ReproRun,
  seed: number,
  b: ReproBudget,
  o: RunArgsOptions,
  dir: string,
): string[] {
  const base = `configs/${run.method}.yaml`; // the method's recipe (configs/mae.yaml, ...)
  const args = [
    "--config",
    base,
    `--data.name=${o.data.name}`,
    `--data.root=${o.data.root}`,
    `--data.limit=${b.limit}`,
    `--model.preset=${b.preset}`,
    `--train.epochs=${run.method === "mae" ? b.epochs : b.simmimEpochs}`,
    `--train.batchSize=${b.batchSize}`,
    `--train.warmupEpochs=${b.lrWarmup ?? Math.min(1, b.epochs / 4)}`,
    `--run.seed=${seed}`,
    `--run.dir=${dir}`,
    `--run.backend=${o.backend}`,
    `--run.threads=${o.threads}`,
    `--train.precision=${o.precision ?? b.precision}`,
    `--run.name=${run.id}`,
    `--train.logEvery=20`,
    "--eval.knnEvery=0", // evaluated after pre-training instead
    ...(b.monitorEvery
      ? [
        `--eval.attnEvery=${b.monitorEvery}`,
        `--eval.attnImages=${b.monitorImages ?? 256}`,
        "--eval.attnSources=cls-last,rollout",
      ]
      : []),
    // MaskFeat keeps configs/maskfeat.yaml's recipe at every budget
    ...((run.method === "mae" ? b.maeArgs : run.method === "simmim" ? b.simmimArgs : []) ?? []),
    ...(run.args ?? []),
  ];
  if (run.strategy === "none") {
    args.push(`--mim.maskRatio=${run.maskRatio}`, "--amt.strategy=none");
  } else {
    args.push(
      `--amt.strategy=${run.strategy}`,
      `--amt.maskRatio=${run.maskRatio}`,
      `--amt.throwRatio=${run.throwRatio}`,
      `--amt.warmup=${b.warmup}`,
      `--amt.interval=${b.interval}`,
      // amt.counting is left to the config: the method owns its rounding of patch counts
    );
  }
  return args;
}

/** One (run, seed) to train and evaluate. */
export interface ReproTodo {
  run: ReproRun;
  seed: number;
}

/** What `--only` and `--seeds` select. */
export interface TodoSelection {
  /** Run ids (default: every run of the budget). */
  only?: readonly string[];
  /** Seeds for every selected run instead of each run's own. */
  seeds?: readonly number[];
}

/**
 * The (run, seed) pairs a repro invocation trains, in plan order: the runs named by `only`
 * (all but the saliency study's when absent), each with `seeds` when given, else its own seeds.
 *
 * @throws {RangeError} for an unknown run id, an empty selection or a seed that is not a
 * non-negative integer.
 */
export function planTodo(runs: readonly ReproRun[], sel: TodoSelection = {}): ReproTodo[] {
  const ids = runs.map((r) => r.id);
  const only = sel.only?.map((s) => s.trim()).filter((s) => s !== "");
  if (only) {
    const unknown = only.filter((id) => !ids.includes(id));
    if (unknown.length > 0) {
      throw new RangeError(`--only=${unknown.join(",")}: unknown run id; valid: ${ids.join(", ")}`);
    }
    if (only.length === 0) {
      throw new RangeError(`--only: matches no run id; valid: ${ids.join(", ")}`);
    }
  }
  if (sel.seeds) {
    const bad = sel.seeds.filter((s) => !Number.isInteger(s) || s < 0);
    if (bad.length > 0 || sel.seeds.length === 0) {
      throw new RangeError(
        `--seeds=${sel.seeds.join(",")}: expected non-negative integers, e.g. 0,1,2`,
      );
    }
  }
  const seeds = sel.seeds ? [...new Set(sel.seeds)] : null;
  return runs
    .filter((r) => (only ? only.includes(r.id) : !r.optIn))
    .flatMap((run) => (seeds ?? run.seeds).map((seed) => ({ run, seed })));
}

/** Parse `--seeds=0,1,2` (undefined when absent). */
export function parseSeeds(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const seeds = parts.map(Number);
  if (parts.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new RangeError(`--seeds=${text}: expected non-negative integers, e.g. 0,1,2`);
  }
  return seeds;
}

/** The budget of a name. @throws {RangeError} naming the valid budgets. */
export function budgetOf(name: string): ReproBudget {
  const b = BUDGETS[name];
  if (!b) {
    throw new RangeError(`--budget=${name}: unknown; valid: ${Object.keys(BUDGETS).join(", ")}`);
  }
  return b;
}

/** The paper's numbers (AMT_SPEC section 8), ViT-B/16 pre-trained on ImageNet-1K. */
export const PAPER = Object.freeze({
  /** Table 1: linear / fine-tune top-1 % per dataset. */
  table1: {
    "mae-random-75": {
      "cifar10": [85.2, 96.5],
      "cifar100": [65.2, 87.4],
      "tiny-imagenet": [55.2, 76.5],
      "stl10": [80.9, 96.5],
      "imagenet": [56.6, 82.6],
    },
    "mae-attn-75": {
      "cifar10": [89.4, 97.4],
      "cifar100": [69.9, 87.3],
      "tiny-imagenet": [59.9, 76.3],
      "stl10": [87.1, 97.4],
      "imagenet": [61.5, 82.5],
    },
    "mae-amt-45-40": {
      "cifar10": [88.1, 97.5],
      "cifar100": [68.7, 87.8],
      "tiny-imagenet": [59.6, 77.8],
      "stl10": [86.8, 97.5],
      "imagenet": [61.7, 82.8],
    },
    "simmim-random-60": {
      "cifar10": [null, 95.0],
      "cifar100": [null, 80.3],
      "tiny-imagenet": [null, 74.0],
      "stl10": [null, 92.3],
      "imagenet": [null, 81.5],
    },
    "simmim-attn-60": {
      "cifar10": [null, 97.8],
      "cifar100": [null, 85.9],
      "tiny-imagenet": [null, 78.8],
      "stl10": [null, 96.5],
      "imagenet": [null, 81.5],
    },
    "simmim-amt-44-26": {
      "cifar10": [null, 97.7],
      "cifar100": [null, 86.1],
      "tiny-imagenet": [null, 75.8],
      "stl10": [null, 96.5],
      "imagenet": [null, 80.7],
    },
  } as Record<string, Record<string, (number | null)[]>>,
  /** Table 2: SimMIM, Tiny ImageNet fine-tune top-1 % and relative pre-training cost. */
  table2: {
    "simmim-random-60": { top1: 74.0, cost: 1.0 },
    "simmim-attn-60": { top1: 78.8, cost: 1.0 },
    "simmim-amt-44-26": { top1: 75.8, cost: 0.76 },
    "simmim-amt-33-50": { top1: 75.1, cost: 0.62 },
  } as Record<string, { top1: number; cost: number }>,
  /** Table 4: MAE ablation, Tiny ImageNet fine-tune top-1 %. */
  table4: {
    "mae-random-75": 52.3,
    "mae-attn-75": 50.1,
    "mae-random-throw-45-40": 50.8,
    "mae-throw-low-75-10": 51.7,
    "mae-throw-low-45-40": 52.6,
    "mae-amt-45-40": 53.3,
  } as Record<string, number>,
});
