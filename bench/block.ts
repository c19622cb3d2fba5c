/**
 * `deno run -A bench/block.ts [--precision=bf16|fp32] [--batches=16,64] [--rounds=4]
 *  [--threads=N]`
 *
 * The transformer block as one kernel forward and one backward (`lib/backend/_block.ts`)
 * against the composite block, on the vit-tiny-32 MAE training step (random 75 % masking, and
 * 45 % masked / 40 % thrown as MAE+AMT's step), at each batch. The two are interleaved: each
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
  PRESETS,
  randomMaskPlan,
  sampleMaskPlans,
  setMatmulPrecision,
} from "../mod.ts";
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
    const model = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
    const opt = new AdamW([...model.store.params.values()], {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.05,
      clipGrad: 0,
    });
    const plans = {
      "MAE random 75": () => randomMaskPlan(B, L, 0.75, rng),
      "MAE+AMT 45/40": () =>
        sampleMaskPlans(Float32Array.from({ length: B * L }, () => rng()), B, {
          maskRatio: 0.45,
          throwRatio: 0.4,
          counting: "floor",
          rng,
        }),
    };
    const best = new Map<string, number[]>();
    try {
      for (let r = 0; r < rounds; r++) {
        for (const [kind, plan] of Object.entries(plans)) {
          for (const fused of [false, true]) {
            setFusedBlockEnabled(fused);
            const ts: number[] = [];
            for (let i = 0; i < 6; i++) {
              const p = plan();
              const t0 = performance.now();
              const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, p), 1e-4);
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
    for (const kind of Object.keys(plans)) {
      const a = median(best.get(`${kind}:false`)!), b = median(best.get(`${kind}:true`)!);
      console.log(
        `| ${B} | ${kind} | ${a.toFixed(1)} ms | ${b.toFixed(1)} ms | ${(a - b).toFixed(1)} ms |`,
      );
    }
    model.dispose();
    opt.dispose();
    patches.dispose();
  }
}
