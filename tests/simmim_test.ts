import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { SimMim } from "../lib/mim/simmim.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { unitRandomMaskPlan } from "../lib/mim/random.ts";
import { makeRng } from "../lib/util/rng.ts";

const shape = {
  imageSize: 8,
  patchSize: 2,
  channels: 1,
  dim: 16,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  decoderDim: 8,
  decoderDepth: 1,
  decoderHeads: 2,
};
const B = 2, L = 16, P = 4;

function data(seed: number): Float32Array {
  const rng = makeRng(seed, "p");
  return Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1);
}
function perturb(d: Float32Array, b: number, i: number): Float32Array {
  const out = d.slice();
  for (let q = 0; q < P; q++) out[(b * L + i) * P + q] += 2 + q;
  return out;
}

/** 4 masked, 6 thrown, 6 visible per image. */
function throwPlan(): MaskPlan {
  const rows = (start: number, n: number) => {
    const a = new Int32Array(B * n);
    for (let b = 0; b < B; b++) for (let k = 0; k < n; k++) a[b * n + k] = start + k;
    return a;
  };
  return {
    batch: B,
    numPatches: L,
    numMasked: 4,
    numThrown: 6,
    numVisible: 6,
    masked: rows(0, 4),
    thrown: rows(4, 6),
    visible: rows(10, 6),
  };
}

Deno.test("SimMim: loss on masked pixels only; masked inputs are replaced by the mask token; thrown tokens are absent", () => {
  const model = new SimMim({ shape, seed: 1 });
  const plan = throwPlan();
  const x = data(1);
  const loss = (d: Float32Array) =>
    tf.tidy(() => model.lossFn(tf.tensor2d(d, [B * L, P]), plan).dataSync()[0]);
  const pred = (d: Float32Array) =>
    tf.tidy(() => Array.from(model.predict(tf.tensor2d(d, [B * L, P]), plan).dataSync()));
  const grads = (d: Float32Array) =>
    tf.tidy(() => {
      const t = tf.tensor2d(d, [B * L, P]);
      const { grads } = tf.variableGrads(() => model.lossFn(t, plan), model.variables());
      return Object.values(grads).map((g) => Array.from(g.dataSync()));
    });
  // thrown patch: no effect on loss or any gradient
  assert.equal(loss(perturb(x, 0, 5)), loss(x));
  assert.deepEqual(grads(perturb(x, 0, 5)), grads(x));
  // masked patch's input pixels do not reach the encoder (predictions unchanged) but its target counts
  assert.deepEqual(pred(perturb(x, 1, 2)), pred(x));
  assert.notEqual(loss(perturb(x, 1, 2)), loss(x));
  // a visible patch changes predictions
  assert.notDeepEqual(pred(perturb(x, 1, 12)), pred(x));
  // the loss equals the mean absolute error over masked pixels, computed by hand
  const p = pred(x);
  let s = 0;
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < 4; k++) {
      for (let q = 0; q < P; q++) s += Math.abs(p[(b * 4 + k) * P + q] - x[(b * L + k) * P + q]);
    }
  }
  assert.ok(Math.abs(loss(x) - s / (B * 4 * P)) < 1e-5);
  model.dispose();
});

Deno.test("unitRandomMaskPlan() masks whole 2x2 units with SimMIM's ceil counting", () => {
  const plan = unitRandomMaskPlan(8, 16, 2, 0.6, makeRng(0, "u"));
  // 4 units, ceil(4 * 0.6) = 3 masked units = 12 patches
  assert.equal(plan.numMasked, 12);
  assert.equal(plan.numVisible, 4);
  for (let b = 0; b < 8; b++) {
    const vis = Array.from(plan.visible.subarray(b * 4, b * 4 + 4));
    // the visible patches form one 2x2 unit of the 4x4 grid
    const rows = new Set(vis.map((i) => Math.floor(Math.floor(i / 4) / 2)));
    const cols = new Set(vis.map((i) => Math.floor((i % 4) / 2)));
    assert.equal(rows.size, 1);
    assert.equal(cols.size, 1);
  }
});

Deno.test("SimMim.lossFn() with stochastic depth: seeded per step, off when omitted", () => {
  const model = new SimMim({ shape, seed: 1 });
  try {
    const plan = throwPlan();
    const x = data(2);
    const loss = (train?: { dropPath: number; seed: number }) =>
      tf.tidy(() => model.lossFn(tf.tensor2d(x, [B * L, P]), plan, train).dataSync()[0]);
    const plain = loss();
    assert.equal(loss({ dropPath: 0, seed: 5 }), plain); // rate 0 is the identity
    // rate 0.9 at the last block drops whole residual branches of some images: a new loss
    const seeds = [1, 2, 3, 4, 5, 6].map((seed) => loss({ dropPath: 0.9, seed }));
    assert.ok(seeds.some((v) => v !== plain), `drop-path changed no loss: ${seeds}`);
    assert.equal(loss({ dropPath: 0.9, seed: 3 }), seeds[2]); // same step seed, same draws
    assert.ok(new Set(seeds).size > 1, "different step seeds draw different paths");
  } finally {
    model.dispose();
  }
});

Deno.test("configs/simmim.yaml follows SimMIM's recipe: crop 0.67, drop-path 0.1, clip 5, lr per 512", async () => {
  const { resolveConfig } = await import("../lib/config/mod.ts");
  const { peakLr } = await import("../lib/optim/mod.ts");
  for (const file of ["configs/simmim.yaml", "configs/simmim_amt.yaml"]) {
    const { config } = resolveConfig({ argv: ["--config", file] });
    assert.deepEqual(config.data.cropScale, [0.67, 1], file);
    assert.equal(config.model.dropPath, 0.1, file);
    assert.equal(config.train.clipGrad, 5, file);
    assert.equal(config.train.lrBatch, 512, file);
    assert.equal(config.train.beta2, 0.999, file);
    assert.ok(config.train.minLr > 0, file);
    assert.equal(config.amt.counting, "ceil", file); // the method's rule, resolved
    // the peak stays where it was before the switch to per-512 rates (2.5e-4 at batch 64)
    assert.ok(Math.abs(peakLr(config.train.baseLr, 64, config.train.lrBatch) - 2.5e-4) < 1e-12);
  }
  // MAE keeps its own: no drop-path, crop 0.2, per 256, floor counting
  const { config: mae } = resolveConfig({ argv: ["--config", "configs/mae_amt.yaml"] });
  assert.deepEqual(
    [mae.model.dropPath, mae.data.cropScale[0], mae.train.lrBatch, mae.amt.counting],
    [0, 0.2, 256, "floor"],
  );
});
