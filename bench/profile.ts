/**
 * `deno run -A bench/profile.ts [--case=mae|amt|simmim|saliency] [--threads=N] [--top=25]
 *  [--precision=fp32|bf16] [--preset=vit-tiny-32|reference] [--batch=N] [--block=fused|composite]`
 *
 * One vit-tiny-32 training step (batch 64, after 2 warm-up steps; `amt`: MAE at 45 % masked /
 * 40 % thrown; `--preset=reference`: the reference-scale run's vit-tiny-28 step, 1 channel,
 * batch 256), or one saliency pass over
 * 256 images (`--case=saliency`), under `tf.profile`: kernel
 * time and launch count by kernel name, the three costliest input shapes of each, and the
 * matMul time split into plain 2-D and batched products. The tool behind the kernel work in
 * `lib/backend/` (see bench/README.md). The transformer blocks run as one kernel each
 * (`AmtBlockFwd` / `AmtBlockBwd` rows) unless `--block=composite` shows the kernels inside.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import {
  AdamW,
  computeSaliency,
  initBackend,
  makeRng,
  makeSynthetic,
  MaskedAutoencoder,
  PRESETS,
  randomMaskPlan,
  sampleMaskPlans,
  setMatmulPrecision,
  SimMim,
  unitRandomMaskPlan,
} from "../mod.ts";
import { setFusedBlockEnabled } from "../lib/backend/mod.ts";

interface Row {
  ms: number;
  count: number;
  byShape: Map<string, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      case: { type: "string", default: "mae" },
      threads: { type: "string", default: "0" },
      backend: { type: "string", default: "wasm" },
      top: { type: "string", default: "25" },
      precision: { type: "string", default: "fp32" },
      preset: { type: "string", default: "vit-tiny-32" },
      batch: { type: "string" },
      block: { type: "string", default: "fused" },
    },
  });
  if (values.preset !== "vit-tiny-32" && values.preset !== "reference") {
    throw new RangeError(`--preset=${values.preset}: use vit-tiny-32 or reference`);
  }
  if (!["mae", "amt", "simmim", "saliency"].includes(values.case!)) {
    throw new RangeError(`--case=${values.case}: use mae, amt, simmim or saliency`);
  }
  await initBackend({ backend: values.backend as "wasm", threads: Number(values.threads) });
  if (values.precision !== "fp32" && values.precision !== "bf16") {
    throw new RangeError(`--precision=${values.precision}: use fp32 or bf16`);
  }
  setMatmulPrecision(values.precision);
  if (values.block !== "fused" && values.block !== "composite") {
    throw new RangeError(`--block=${values.block}: use fused or composite`);
  }
  // the one-kernel block hides the kernels inside it from tf.profile; composite shows them
  setFusedBlockEnabled(values.block === "fused");
  const reference = values.preset === "reference";
  const shape = reference
    ? { ...PRESETS["vit-tiny-28"], channels: 1 }
    : { ...PRESETS["vit-tiny-32"], channels: 3 };
  const B = values.batch !== undefined ? Number(values.batch) : reference ? 256 : 64;
  if (!(Number.isInteger(B) && B >= 1)) throw new RangeError(`--batch=${values.batch}: >= 1`);
  const L = (shape.imageSize / shape.patchSize) ** 2;
  const P = shape.patchSize ** 2 * shape.channels;
  const rng = makeRng(0, "profile");
  const patches = tf.tensor2d(
    Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1),
    [B * L, P],
  );
  const model = values.case === "simmim"
    ? new SimMim({ shape, seed: 0 })
    : new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const opt = new AdamW([...model.store.params.values()], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.05,
    clipGrad: 0,
  });
  const plan = () =>
    values.case === "simmim"
      ? unitRandomMaskPlan(B, L, reference ? 1 : 2, 0.6, rng)
      : values.case === "amt"
      ? sampleMaskPlans(Float32Array.from({ length: B * L }, () => rng()), B, {
        maskRatio: 0.45,
        throwRatio: 0.40,
        counting: "floor",
        rng,
      })
      : randomMaskPlan(B, L, 0.75, rng);
  const images = makeSynthetic({
    count: 256,
    size: shape.imageSize,
    channels: shape.channels,
    seed: 1,
  });
  const step = values.case === "saliency"
    ? async () => {
      await computeSaliency(
        (model as MaskedAutoencoder).encoder,
        images,
        { imageSize: shape.imageSize, batchSize: 256 },
      );
    }
    : async () => {
      const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan()), 1e-4);
      await loss.data();
      tf.dispose([loss, gradNorm]);
    };
  await step();
  await step();
  const t0 = performance.now();
  const info = await tf.profile(step);
  const wall = performance.now() - t0;

  const rows = new Map<string, Row>();
  for (const k of info.kernels) {
    const row = rows.get(k.name) ?? { ms: 0, count: 0, byShape: new Map() };
    const ms = await k.kernelTimeMs as number;
    row.ms += ms;
    row.count++;
    const key = JSON.stringify(k.inputShapes);
    row.byShape.set(key, (row.byShape.get(key) ?? 0) + ms);
    rows.set(k.name, row);
  }
  const sorted = [...rows.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(
    `${values.case} step: wall ${wall.toFixed(0)} ms under the profiler, ` +
      `${info.kernels.length} kernel launches (custom-gradient "forward" rows include the ` +
      `kernels inside them)`,
  );
  for (const [name, row] of sorted.slice(0, Number(values.top))) {
    const shapes = [...row.byShape.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
      .map(([s, ms]) => `${s.length > 60 ? s.slice(0, 57) + "..." : s} ${ms.toFixed(0)}`)
      .join("  ");
    console.log(
      `${name.padEnd(18)} ${row.ms.toFixed(1).padStart(8)} ms ${
        String(row.count).padStart(5)
      }x  ${shapes}`,
    );
  }
  const mm = rows.get("BatchMatMul");
  if (mm) {
    let plain = 0, batched = 0;
    for (const [s, ms] of mm.byShape) {
      if ((JSON.parse(s) as number[][])[0].length === 2) plain += ms;
      else batched += ms;
    }
    console.log(`matMul: plain 2-D ${plain.toFixed(0)} ms, batched ${batched.toFixed(0)} ms`);
  }
  opt.dispose();
  model.dispose();
  patches.dispose();
}

if (import.meta.main) await main();
