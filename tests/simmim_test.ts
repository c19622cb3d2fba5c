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
