/**
 * `deno run -A bench/block.ts [--precision=bf16|fp32] [--batches=16,64] [--rounds=4]
 *  [--threads=N]`
 *
 * The transformer block as one kernel forward and one backward (`lib/backend/_block.ts`)
 * against the composite block, on vit-tiny-32 training steps at each batch: MAE (random 75 %
 * masking, and 45 % masked / 40 % thrown as MAE+AMT's step) and SimMIM (random 60 % in 2x2
 * units, with the stochastic depth 0.1 it pre-trains with). The two are interleaved: each
 * round times 5 steps (after one warm-up) of each case on each path, and the table gives the
 * median over rounds of each round's fastest step, so that a load that comes and goes hits both
 * paths alike. Both compute the same numbers bit for bit (`tests/fused_block_test.ts`); only the
 * time differs.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import {
  AdamW,
  initBackend,
  makeRng,
  MaskedAutoencoder,
  type MaskPlan,
  type MimModel,
  PRESETS,
  randomMaskPlan,
  sampleMaskPlans,
  setMatmulPrecision,
  SimMim,
  unitRandomMaskPlan,
} from "../mod.ts";
import type { TrainCall } from "../lib/mim/types.ts";
import { setFusedBlockEnabled } from "../lib/backend/mod.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      precision: { type: "string", default: "bf16" },
      batches: { type: "string", default: "16,64" },
      rounds: { type: "string", default: "4" },
      threads: { type: "string", default: "0" },
    },
    strict: true,
  });
  if (values.precision !== "bf16" && values.precision !== "fp32") {
    throw new RangeError(`--precision=${values.precision}: use bf16 or fp32`);
  }
  const rounds = Number(values.rounds);
  if (!(Number.isInteger(rounds) && rounds >= 1)) {
    throw new RangeError(`--rounds=${values.rounds}: use a whole number >= 1`);
  }
  const info = await initBackend({ backend: "wasm", quiet: true, threads: Number(values.threads) });
  setMatmulPrecision(values.precision);
  console.log(
    `wasm, ${info.threads} thread(s), ${values.precision}, vit-tiny-32, ${rounds} rounds`,
  );
  const shape = { ...PRESETS["vit-tiny-32"], channels: 3 };
  const L = 64, P = 48;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log("| batch | step | composite | one kernel | saved |");
  console.log("|---|---|---|---|---|");
  for (const B of values.batches!.split(",").map(Number)) {
    const rng = makeRng(0, "bench-block", B);
    const patches = tf.tensor2d(
      Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1),
      [B * L, P],
    );
    const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
    const simmim = new SimMim({ shape, seed: 0 });
    const adamW = (m: MimModel) =>
      new AdamW([...m.store.params.values()], {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.05,
        clipGrad: 0,
      });
    const maeOpt = adamW(mae), simmimOpt = adamW(simmim);
    let seed = 0;
    // each case: its model, optimizer, plan and the loss's training call
    const cases: Record<string, [MimModel, AdamW, () => MaskPlan, () => TrainCall | undefined]> = {
      "MAE random 75": [mae, maeOpt, () => randomMaskPlan(B, L, 0.75, rng), () => undefined],
      "MAE+AMT 45/40": [
        mae,
        maeOpt,
        () =>
          sampleMaskPlans(Float32Array.from({ length: B * L }, () => rng()), B, {
            maskRatio: 0.45,
            throwRatio: 0.4,
            counting: "floor",
            rng,
          }),
        () => undefined,
      ],
      // as SimMIM pre-trains: stochastic depth 0.1
      "SimMIM 60, drop-path 0.1": [
        simmim,
        simmimOpt,
        () => unitRandomMaskPlan(B, L, 2, 0.6, rng),
        () => ({ dropPath: 0.1, seed: seed++ }),
      ],
    };
    const best = new Map<string, number[]>();
    try {
      for (let r = 0; r < rounds; r++) {
        for (const [kind, [model, opt, plan, train]] of Object.entries(cases)) {
          for (const fused of [false, true]) {
            setFusedBlockEnabled(fused);
            const ts: number[] = [];
            for (let i = 0; i < 6; i++) {
              const p = plan(), t = train();
              const t0 = performance.now();
              const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, p, t), 1e-4);
              await loss.data();
              tf.dispose([loss, gradNorm]);
              if (i > 0) ts.push(performance.now() - t0);
            }
            const key = `${kind}:${fused}`;
            best.set(key, [...(best.get(key) ?? []), Math.min(...ts)]);
          }
        }
      }
    } finally {
      setFusedBlockEnabled(true);
    }
    for (const kind of Object.keys(cases)) {
      const a = median(best.get(`${kind}:false`)!), b = median(best.get(`${kind}:true`)!);
      console.log(
        `| ${B} | ${kind} | ${a.toFixed(1)} ms | ${b.toFixed(1)} ms | ${(a - b).toFixed(1)} ms |`,
      );
    }
    for (const m of [mae, simmim]) m.dispose();
    for (const o of [maeOpt, simmimOpt]) o.dispose();
    patches.dispose();
  }
}
