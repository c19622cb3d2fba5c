/**
 * `deno task bench --preset=vit-tiny-32|fashion-mnist|reference [--out=FILE.json] [--steps=8]
 *  [--repeats=3] [--backend=auto|wasm|cpu|webgpu|tensorflow] [--threads=N] [--only=name,...]
 *  [--precision=fp32|bf16|auto] [--batch=N]`
 *
 * Times full training steps (forward + backward + AdamW update) of the fixed
 * benchmark models, the saliency pass and the data pipeline: 2 warm-up steps, then
 * `--repeats` blocks of `--steps` (>= 8) steps; the minimum of the blocks' medians is reported
 * (as bench/pytorch_bench.py does). Prints a table and writes JSON:
 * `{backend, threads, precision, precision_reason, results: [{name, ms_per_step, images_per_s}],
 * memory}`. `--precision` (default fp32): the matmul precision (`bf16` needs the wasm backend's
 * native matmul with oneDNN on a CPU with AVX512_BF16/AMX, else it fails with what is missing;
 * `auto` takes bf16 where it runs, else fp32); the same cases run either way.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import {
  AdamW,
  applyCrop,
  batchPatchWeights,
  computeSaliency,
  expandUnitPlan,
  initBackend,
  loadBatch,
  makeRng,
  makeSynthetic,
  MaskedAutoencoder,
  type MaskPlan,
  type MimModel,
  openDataset,
  patchify,
  type PrecisionChoice,
  PRESETS as VIT_PRESETS,
  randomMaskPlan,
  resolvePrecision,
  sampleMaskPlans,
  setMatmulPrecision,
  SimMim,
  unitRandomMaskPlan,
  type VitShape,
  writeFileAtomic,
} from "../mod.ts";

/** A benchmark preset: model shape and the dataset the data-pipeline case reads. */
interface BenchPreset {
  shape: VitShape;
  batch: number;
  data: "synthetic" | "fashion-mnist";
}

const PRESETS: Record<string, BenchPreset> = {
  "vit-tiny-32": {
    shape: { ...VIT_PRESETS["vit-tiny-32"], channels: 3 },
    batch: 64,
    data: "synthetic",
  },
  "fashion-mnist": {
    shape: { ...VIT_PRESETS["vit-tiny-28"], channels: 1 },
    batch: 64,
    data: "fashion-mnist",
  },
  // the step of the reference-scale run (issue #14: vit-tiny-28, batch 256)
  reference: {
    shape: { ...VIT_PRESETS["vit-tiny-28"], channels: 1 },
    batch: 256,
    data: "fashion-mnist",
  },
};

/** One result row. */
export interface BenchResult {
  name: string;
  ms_per_step: number;
  images_per_s: number;
  /** Steps timed per block. */
  steps: number;
  /** The median of each timed block (ms); `ms_per_step` is the smallest. */
  medians: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
}

/** Timed blocks per case; the reported time is the minimum of the blocks' medians. */
let repeats = 3;

/**
 * Time `fn` (which must finish its device work before resolving): 2 warm-up calls, then
 * `repeats` blocks of `steps` calls. Returns each block's median, in ms (as
 * `bench/pytorch_bench.py` does, so the two compare like for like).
 */
async function timeSteps(steps: number, fn: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 2; i++) await fn(); // warm-up
  const medians: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
      sampleRss();
    }
    medians.push(median(times));
  }
  return medians;
}

/** Fixed-count plan for MIM training steps (what the trainer would get from a planner). */
type Planner = (rng: () => number) => MaskPlan;

async function trainCase(
  name: string,
  model: MimModel,
  preset: BenchPreset,
  planner: Planner,
  steps: number,
  memory: Record<string, unknown>,
): Promise<BenchResult> {
  const { batch: B } = preset;
  const s = preset.shape;
  const L = (s.imageSize / s.patchSize) ** 2;
  const P = s.patchSize * s.patchSize * s.channels;
  const rng = makeRng(0, "bench", name);
  const data = Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1);
  const patches = tf.tensor2d(data, [B * L, P]);
  const opt = new AdamW([...model.store.params.values()], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.05,
    clipGrad: 0,
  });
  let before = { numTensors: 0, numBytes: 0 };
  let count = 0;
  const times = await timeSteps(steps, async () => {
    const plan = planner(rng);
    const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan), 1e-4);
    await loss.data();
    tf.dispose([loss, gradNorm]);
    if (++count === 2) before = { ...tf.memory() };
  });
  const after = tf.memory();
  memory[name] = {
    tensorsAfterWarmup: before.numTensors,
    tensorsAtEnd: after.numTensors,
    bytesAfterWarmup: before.numBytes,
    bytesAtEnd: after.numBytes,
  };
  opt.dispose();
  patches.dispose();
  model.dispose();
  const ms = Math.min(...times);
  return { name, ms_per_step: ms, images_per_s: B * 1000 / ms, steps, medians: times };
}

/** Run the benchmark; returns the JSON object that is also written to `out`. */
export async function runBench(opts: {
  preset: string;
  steps: number;
  backend: string;
  threads: number;
  only?: string[];
  /** Timed blocks per case (default 3). */
  repeats?: number;
  /** Matmul precision: `fp32` (default), `bf16` or `auto`. */
  precision?: string;
  /** Overrides the preset's training batch (to fit a step's fixed cost: time = a + b * batch). */
  batch?: number;
}): Promise<Record<string, unknown>> {
  const named = PRESETS[opts.preset];
  if (!named) {
    throw new RangeError(
      `--preset=${opts.preset}: unknown; valid: ${Object.keys(PRESETS).join(", ")}`,
    );
  }
  if (opts.batch !== undefined && !(Number.isInteger(opts.batch) && opts.batch >= 1)) {
    throw new RangeError(`--batch=${opts.batch}: a whole number >= 1`);
  }
  const preset = { ...named, batch: opts.batch ?? named.batch };
  if (!(opts.steps >= 8)) throw new RangeError(`--steps=${opts.steps}: at least 8 are timed`);
  repeats = opts.repeats ?? 3;
  if (!(Number.isInteger(repeats) && repeats >= 1)) {
    throw new RangeError(`--repeats=${opts.repeats}: a whole number >= 1`);
  }
  const choice = opts.precision ?? "fp32";
  if (!["fp32", "bf16", "auto"].includes(choice)) {
    throw new RangeError(`--precision=${choice}: one of fp32, bf16, auto`);
  }
  const info = await initBackend({ backend: opts.backend as "auto", threads: opts.threads });
  let resolved: ReturnType<typeof resolvePrecision>;
  try {
    resolved = resolvePrecision(choice as PrecisionChoice);
  } catch (e) {
    throw new RangeError(`--precision=${choice}: ${(e as Error).message}`);
  }
  const { precision, reason } = resolved;
  setMatmulPrecision(precision);
  console.log(`precision: ${precision} (${reason})`);
  try {
    return await runCases(opts, preset, info, precision, reason);
  } finally {
    setMatmulPrecision("fp32");
  }
}

async function runCases(
  opts: { steps: number; preset: string; only?: string[] },
  preset: BenchPreset,
  info: Awaited<ReturnType<typeof initBackend>>,
  precision: string,
  reason: string,
): Promise<Record<string, unknown>> {
  const s = preset.shape;
  const B = preset.batch;
  const L = (s.imageSize / s.patchSize) ** 2;
  const want = (n: string) => !opts.only || opts.only.includes(n);
  const results: BenchResult[] = [];
  const memory: Record<string, unknown> = {};
  const unitK = s.imageSize % (2 * s.patchSize) === 0 ? 2 : 1;
  const amtPlan = (mask: number, thr: number, counting: "floor" | "ceil", k: number): Planner => {
    const U = L / (k * k);
    return (rng) => {
      const w = Float32Array.from({ length: B * U }, () => rng());
      const p = sampleMaskPlans(w, B, { maskRatio: mask, throwRatio: thr, counting, rng });
      return k > 1 ? expandUnitPlan(p, k) : p;
    };
  };
  const cases: [string, () => MimModel, Planner][] = [
    [
      "mae-random-75",
      () => new MaskedAutoencoder({ shape: s, normPixLoss: true, seed: 0 }),
      (rng) => randomMaskPlan(B, L, 0.75, rng),
    ],
    [
      "mae-amt-45-40",
      () => new MaskedAutoencoder({ shape: s, normPixLoss: true, seed: 0 }),
      amtPlan(0.45, 0.40, "floor", 1),
    ],
    [
      "simmim-random-60",
      () => new SimMim({ shape: s, seed: 0 }),
      (rng) => unitRandomMaskPlan(B, L, unitK, 0.6, rng),
    ],
    [
      "simmim-amt-44-26",
      () => new SimMim({ shape: s, seed: 0 }),
      amtPlan(0.44, 0.26, "ceil", unitK),
    ],
  ];
  for (const [name, make, planner] of cases) {
    if (!want(name)) continue;
    const r = await trainCase(name, make(), preset, planner, opts.steps, memory);
    results.push(r);
    console.log(`${name.padEnd(18)} ${r.ms_per_step.toFixed(1).padStart(8)} ms/step`);
  }
  if (want("saliency-b256")) {
    const model = new MaskedAutoencoder({ shape: s, normPixLoss: true, seed: 0 });
    const ds = makeSynthetic({ count: 256, size: s.imageSize, channels: s.channels, seed: 1 });
    const times = await timeSteps(opts.steps, async () => {
      await computeSaliency(model.encoder, ds, { imageSize: s.imageSize, batchSize: 256 });
    });
    model.dispose();
    const ms = Math.min(...times);
    results.push({
      name: "saliency-b256",
      ms_per_step: ms,
      images_per_s: 256 * 1000 / ms,
      steps: opts.steps,
      medians: times,
    });
    console.log(`${"saliency-b256".padEnd(18)} ${ms.toFixed(1).padStart(8)} ms/batch`);
  }
  const dataCase = `data-augment-b${B}`;
  if (want(dataCase)) {
    // decode + crop + flip (loadBatch) + map crop and per-patch weights + patchify, as a step does
    const ds = preset.data === "fashion-mnist"
      ? await openDataset({ name: "fashion-mnist", root: "", split: "train", limit: 4096 })
      : makeSynthetic({ count: 4096, size: s.imageSize, channels: s.channels, seed: 2 });
    const g = s.imageSize / s.patchSize;
    const maps = Float32Array.from({ length: g * g }, (_, i) => (i % 7) / 7);
    const gridMap = { data: maps, height: g, width: g, channels: 1 };
    let step = 0;
    const times = await timeSteps(opts.steps, async () => {
      const rng = makeRng(0, "augment", step++);
      const indices = Int32Array.from({ length: B }, () => Math.floor(rng() * ds.length));
      const batch = await loadBatch(ds, indices, { imageSize: s.imageSize, augment: true, rng });
      const full = applyCrop(
        gridMap,
        { y0: 0, x0: 0, y1: 1, x1: 1, flip: false },
        s.imageSize,
        s.imageSize,
      );
      const cropped = batch.boxes.map((box) => applyCrop(full, box, s.imageSize, s.imageSize));
      batchPatchWeights(cropped, s.patchSize);
      patchify(batch.images, B, s.imageSize, s.channels, s.patchSize);
    });
    const ms = Math.min(...times);
    results.push({
      name: dataCase,
      ms_per_step: ms,
      images_per_s: B * 1000 / ms,
      steps: opts.steps,
      medians: times,
    });
    console.log(`${dataCase.padEnd(18)} ${ms.toFixed(1).padStart(8)} ms/batch`);
  }
  sampleRss();
  return {
    backend: info.backend,
    threads: info.threads,
    simd: info.simd,
    matmul: info.matmul ?? "",
    native_matmul: info.nativeMatmul ?? false,
    precision,
    precision_reason: reason,
    preset: opts.preset,
    batch: B,
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    tfjs: tf.version.tfjs,
    results,
    memory: { ...memory, peakRssBytes: peakRss },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      preset: { type: "string", default: "vit-tiny-32" },
      out: { type: "string" },
      steps: { type: "string", default: "8" },
      backend: { type: "string", default: "auto" },
      threads: { type: "string", default: "0" },
      only: { type: "string" },
      repeats: { type: "string", default: "3" },
      precision: { type: "string", default: "fp32" },
      batch: { type: "string" },
    },
    strict: true,
  });
  try {
    const report = await runBench({
      preset: values.preset!,
      steps: Number(values.steps),
      backend: values.backend!,
      threads: Number(values.threads),
      only: values.only?.split(","),
      repeats: Number(values.repeats),
      precision: values.precision,
      batch: values.batch === undefined ? undefined : Number(values.batch),
    });
    const rows = report.results as BenchResult[];
    console.log(
      `\nbackend ${report.backend}, ${report.threads} thread(s), ${report.precision}, preset ` +
        values.preset,
    );
    console.log("| case | ms/step | images/s |\n|---|---|---|");
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.ms_per_step.toFixed(1)} | ${r.images_per_s.toFixed(0)} |`);
    }
    const mae = rows.find((r) => r.name === "mae-random-75");
    const amt = rows.find((r) => r.name === "mae-amt-45-40");
    if (mae && amt) {
      console.log(
        `MAE+AMT / MAE step-time ratio: ${(amt.ms_per_step / mae.ms_per_step).toFixed(3)}`,
      );
    }
    console.log(
      `peak RSS ${
        (((report.memory as { peakRssBytes: number }).peakRssBytes) / 2 ** 20).toFixed(0)
      } MiB`,
    );
    if (values.out) await writeFileAtomic(values.out, JSON.stringify(report, null, 2) + "\n");
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
