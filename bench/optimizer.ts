/**
 * `deno run -A bench/optimizer.ts [--steps=30]`
 *
 * The AdamW step alone over vit-tiny-32 MAE's parameters (3.1 M values in 108 tensors, random
 * gradients), three ways: the fused kernel launched once per parameter with the gradient norm
 * as a separate kernel (the path before the in-place step, still the cpu backend's), the
 * in-place pass on one thread, and the in-place pass with the helper thread. Median and 25th
 * percentile of `--steps` steps after warm-up; run it with nothing else on the machine (two
 * threads cannot beat one on a machine whose other core is busy).
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initBackend, MaskedAutoencoder, PRESETS } from "../mod.ts";
import { adamWInPlace, fusedAdamW, fusedAvailable, fusedSumSquares } from "../lib/backend/fused.ts";
import { setStepThreads, stepThreadStats } from "../lib/backend/_helper.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { steps: { type: "string", default: "30" } },
    strict: true,
  });
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 4) throw new RangeError(`--steps=${values.steps}: >= 4`);
  await initBackend({ backend: "wasm", threads: 2, quiet: true });
  if (!fusedAvailable()) throw new Error("the fused kernels did not register on wasm");
  const shape = { ...PRESETS["vit-tiny-32"], channels: 3 };
  const model = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const params = [...model.store.params.values()];
  const m = params.map((p) => tf.variable(tf.tidy(() => tf.zerosLike(p.variable))));
  const v = params.map((p) => tf.variable(tf.tidy(() => tf.zerosLike(p.variable))));
  const grads = params.map((p) => tf.randomNormal(p.variable.shape, 0, 1e-3, "float32", 1));
  const size = params.reduce((a, p) => a + p.variable.size, 0);
  const attrs = { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, c1: 1.1, c2: 1.2 };
  const perParameter = () =>
    tf.tidy(() => {
      const norm = tf.sqrt(fusedSumSquares(grads));
      const one = tf.scalar(1);
      params.forEach((p, i) => {
        const [np, nm, nv] = fusedAdamW(p.variable, grads[i], m[i], v[i], one, {
          ...attrs,
          weightDecay: p.decay ? 0.05 : 0,
        });
        m[i].assign(nm);
        v[i].assign(nv);
        p.variable.assign(np);
      });
      return norm;
    }).dispose();
  const inPlace = () => {
    const slots = params.map((p, i) => ({
      p: p.variable,
      g: grads[i],
      m: m[i],
      v: v[i],
      lr: attrs.lr,
      weightDecay: p.decay ? 0.05 : 0,
    }));
    if (adamWInPlace(slots, { ...attrs, clipGrad: 0 }) === null) {
      throw new Error("the in-place step declined (a parameter's memory is shared)");
    }
  };
  const time = async (f: () => void) => {
    const ts: number[] = [];
    for (let i = 0; i < steps + 3; i++) {
      await new Promise((r) => setTimeout(r, 1)); // lets the helper start (an event-loop turn)
      const t0 = performance.now();
      f();
      if (i >= 3) ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    return `median ${ts[ts.length >> 1].toFixed(2)} ms, q1 ${ts[ts.length >> 2].toFixed(2)} ms`;
  };
  console.log(`AdamW over ${params.length} tensors, ${size.toLocaleString("en")} values`);
  console.log(`per-parameter kernels + norm kernel: ${await time(perParameter)}`);
  setStepThreads(1);
  console.log(`in place, 1 thread:                  ${await time(inPlace)}`);
  setStepThreads(2);
  const before = stepThreadStats().helped;
  const two = await time(inPlace);
  const helped = stepThreadStats().helped - before;
  console.log(
    `in place, 2 threads:                 ${two} (helper took ${helped} of ${steps + 3})`,
  );
}
