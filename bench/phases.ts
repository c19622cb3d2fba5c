/**
 * `deno run -A bench/phases.ts [--precision=bf16|fp32] [--batches=16,64]`
 *
 * Splits a vit-tiny-32 MAE random-75 training step into its phases at each batch: the forward
 * pass and loss alone (no tape), forward + backward (`tf.variableGrads`), and the whole step
 * (`AdamW.minimize`: plus the gradient norm and the update). The difference between the last two
 * is the optimizer's share; two batches separate what grows with the batch from what does not
 * (the fixed cost the README's performance section discusses). 25th percentile of 12 steps,
 * after 2 warm-up steps; run it with nothing else on the machine.
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
  setMatmulPrecision,
} from "../mod.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      precision: { type: "string", default: "bf16" },
      batches: { type: "string", default: "16,64" },
    },
    strict: true,
  });
  if (values.precision !== "bf16" && values.precision !== "fp32") {
    throw new RangeError(`--precision=${values.precision}: use bf16 or fp32`);
  }
  await initBackend({ backend: "wasm", quiet: true });
  setMatmulPrecision(values.precision);
  const shape = { ...PRESETS["vit-tiny-32"], channels: 3 };
  const L = 64, P = 48;
  const q1 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 2];
  const time = async (f: () => Promise<void>) => {
    const ts: number[] = [];
    for (let i = 0; i < 14; i++) {
      const t0 = performance.now();
      await f();
      if (i >= 2) ts.push(performance.now() - t0);
    }
    return q1(ts);
  };
  for (const B of values.batches!.split(",").map(Number)) {
    const rng = makeRng(0, "phases", B);
    const patches = tf.tensor2d(
      Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1),
      [B * L, P],
    );
    const model = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
    const params = [...model.store.params.values()];
    const opt = new AdamW(params, {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.05,
      clipGrad: 0,
    });
    const loss = () => model.lossFn(patches, randomMaskPlan(B, L, 0.75, rng));
    const fwd = await time(async () => {
      const l = tf.tidy(loss);
      await l.data();
      l.dispose();
    });
    const bwd = await time(async () => {
      const { value, grads } = tf.variableGrads(loss, params.map((p) => p.variable));
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    });
    const step = await time(async () => {
      const { loss: l, gradNorm } = opt.minimize(loss, 1e-4);
      await l.data();
      tf.dispose([l, gradNorm]);
    });
    console.log(
      `batch ${B} (${values.precision}): forward + loss ${fwd.toFixed(1)} ms, + backward ` +
        `${bwd.toFixed(1)} ms, whole step ${step.toFixed(1)} ms (optimizer ${
          (step - bwd).toFixed(1)
        } ms)`,
    );
    model.dispose();
    opt.dispose();
    patches.dispose();
  }
}
