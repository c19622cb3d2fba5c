import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { MaskedAutoencoder, uploadPlan } from "../lib/mim/mae.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { randomMaskPlan } from "../lib/mim/random.ts";
import { denseOp } from "../lib/vit/layers.ts";
import { AdamW } from "../lib/optim/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

const shape = {
  imageSize: 8,
  patchSize: 2,
  channels: 3,
  dim: 16,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  decoderDim: 8,
  decoderDepth: 1,
  decoderHeads: 2,
};
const B = 3, L = 16, P = 12;

function randomPatches(seed: number): Float32Array {
  const rng = makeRng(seed, "patches");
  return Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1);
}

function lossOf(mae: MaskedAutoencoder, data: Float32Array, plan: MaskPlan): number {
  return tf.tidy(() => mae.lossFn(tf.tensor2d(data, [B * L, P]), plan).dataSync()[0]);
}

/** Replace patch `i` of image `b` with new values. */
function perturb(data: Float32Array, b: number, i: number): Float32Array {
  const out = data.slice();
  for (let q = 0; q < P; q++) out[(b * L + i) * P + q] += 3 + q;
  return out;
}

Deno.test("denseOp() gradients equal tf.matMul's", () => {
  const rng = makeRng(0, "d");
  const x = tf.tensor2d(Float32Array.from({ length: 15 }, () => rng()), [5, 3]);
  const w = tf.tensor2d(Float32Array.from({ length: 12 }, () => rng()), [3, 4]);
  const b = tf.tensor1d([0.1, 0.2, 0.3, 0.4]);
  const dy = tf.tensor2d(Float32Array.from({ length: 20 }, () => rng()), [5, 4]);
  const ours = tf.grads((x, w, b) =>
    tf.sum(tf.mul(denseOp(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), dy))
  );
  const ref = tf.grads((x, w, b) =>
    tf.sum(tf.mul(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b), dy))
  );
  const g1 = ours([x, w, b]), g2 = ref([x, w, b]);
  for (let i = 0; i < 3; i++) {
    const d = tf.max(tf.abs(tf.sub(g1[i], g2[i]))).dataSync()[0];
    assert.ok(d < 1e-5, `grad ${i} differs by ${d}`);
  }
});

Deno.test("MaskedAutoencoder.loss() counts masked patches only", () => {
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const plan = randomMaskPlan(B, L, 0.75, makeRng(1, "m"));
  const data = randomPatches(1);
  const v = plan.visible[0];
  const m = plan.masked[0];
  const value = (target: Float32Array) =>
    tf.tidy(() => {
      const idx = uploadPlan(plan);
      const input = tf.tensor2d(data, [B * L, P]);
      const pred = mae.decode(mae.encode(input, plan, idx), plan, idx);
      return mae.loss(tf.tensor2d(target, [B * L, P]), pred, idx).dataSync()[0];
    });
  const base = value(data);
  assert.ok(Math.abs(value(perturb(data, 0, v)) - base) < 1e-7, "visible target changed the loss");
  assert.ok(
    Math.abs(value(perturb(data, 0, m)) - base) > 1e-3,
    "masked target did not change the loss",
  );
  mae.dispose();
});

Deno.test("MaskedAutoencoder encoder sees only visible patches; thrown patches change nothing", () => {
  const mae = new MaskedAutoencoder({ shape, normPixLoss: false, seed: 0 });
  // a hand-made plan with throwing: 6 masked, 6 thrown, 4 visible per image
  const masked = new Int32Array(B * 6),
    thrown = new Int32Array(B * 6),
    visible = new Int32Array(B * 4);
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < 6; k++) masked[b * 6 + k] = k;
    for (let k = 0; k < 6; k++) thrown[b * 6 + k] = 6 + k;
    for (let k = 0; k < 4; k++) visible[b * 4 + k] = 12 + k;
  }
  const plan: MaskPlan = {
    batch: B,
    numPatches: L,
    numMasked: 6,
    numThrown: 6,
    numVisible: 4,
    masked,
    thrown,
    visible,
  };
  const data = randomPatches(2);
  const grads = (d: Float32Array) =>
    tf.tidy(() => {
      const x = tf.tensor2d(d, [B * L, P]);
      const { grads } = tf.variableGrads(() => mae.lossFn(x, plan), mae.variables());
      return Object.values(grads).map((g) => Array.from(g.dataSync()));
    });
  const base = lossOf(mae, data, plan);
  const baseGrads = grads(data);
  const thrownChanged = perturb(data, 1, 7);
  assert.equal(lossOf(mae, thrownChanged, plan), base);
  assert.deepEqual(grads(thrownChanged), baseGrads);
  // a masked patch's input pixels do not reach the encoder: predictions are unchanged
  const pred = (d: Float32Array) =>
    tf.tidy(() => Array.from(mae.predict(tf.tensor2d(d, [B * L, P]), plan).dataSync()));
  assert.deepEqual(pred(perturb(data, 1, 2)), pred(data));
  assert.notDeepEqual(pred(perturb(data, 1, 13)), pred(data));
  mae.dispose();
});

Deno.test("MaskedAutoencoder loss does not depend on the order of plan rows (decoder is permutation-equivariant)", () => {
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 3 });
  const plan = randomMaskPlan(B, L, 0.75, makeRng(5, "m"));
  const shuffled: MaskPlan = {
    ...plan,
    visible: plan.visible.slice(),
    masked: plan.masked.slice(),
  };
  for (let b = 0; b < B; b++) {
    shuffled.visible.subarray(b * plan.numVisible, (b + 1) * plan.numVisible).reverse();
    shuffled.masked.subarray(b * plan.numMasked, (b + 1) * plan.numMasked).reverse();
  }
  const data = randomPatches(3);
  assert.ok(Math.abs(lossOf(mae, data, plan) - lossOf(mae, data, shuffled)) < 1e-5);
  mae.dispose();
});

Deno.test("MaskedAutoencoder: every parameter gets a finite non-zero gradient, and steps do not leak", () => {
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const data = tf.tensor2d(randomPatches(4), [B * L, P]);
  const plan = randomMaskPlan(B, L, 0.75, makeRng(2, "m"));
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => mae.lossFn(data, plan), mae.variables());
    for (const p of mae.store.params.values()) {
      const g = grads[p.variable.name].dataSync();
      assert.ok(g.every(Number.isFinite), `${p.name}: non-finite gradient`);
      assert.ok(g.some((x) => x !== 0), `${p.name}: zero gradient`);
    }
  });
  const opt = new AdamW([...mae.store.params.values()], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.05,
    clipGrad: 1,
  });
  const counts: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const { loss, gradNorm } = opt.minimize(() => mae.lossFn(data, plan), 1e-2);
    losses.push(loss.dataSync()[0]);
    tf.dispose([loss, gradNorm]);
    counts.push(tf.memory().numTensors);
  }
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor count grew: ${counts}`);
  assert.ok(losses[3] < losses[0], `loss did not fall on a fixed batch: ${losses}`);
  opt.dispose();
  data.dispose();
  mae.dispose();
});

Deno.test("mimForwardFlops(): AMT 45/40 costs about 0.63 of MAE 75/0 on ViT-Tiny-32, and SimMIM scales with kept tokens", async () => {
  const { blockFlops } = await import("../lib/mim/flops.ts");
  const { mimForwardFlops } = await import("../lib/mim/methods.ts");
  const s = {
    ...shape,
    imageSize: 32,
    patchSize: 4,
    channels: 3,
    dim: 192,
    depth: 6,
    heads: 3,
    mlpRatio: 4,
    decoderDim: 128,
    decoderDepth: 2,
    decoderHeads: 4,
  };
  // a block by hand: T=2, D=4, ratio 1 -> qkv 2*2*4*12=192, attn 4*4*4=64, proj 64, mlp 2*2*2*4*4=128
  assert.equal(blockFlops(2, 4, 1), 192 + 64 + 64 + 128);
  const mae = mimForwardFlops("mae", s, { masked: 48, thrown: 0, visible: 16 });
  const amt = mimForwardFlops("mae", s, { masked: 28, thrown: 26, visible: 10 });
  assert.ok(amt / mae > 0.55 && amt / mae < 0.72, `ratio ${amt / mae}`);
  const sim = mimForwardFlops("simmim", s, { masked: 40, thrown: 0, visible: 24 });
  const simAmt = mimForwardFlops("simmim", s, { masked: 32, thrown: 20, visible: 12 });
  assert.ok(simAmt < sim);
});

Deno.test("MAE decays its CLS and mask tokens (MAE's parameter groups); SimMIM does not", async () => {
  const { SimMim } = await import("../lib/mim/simmim.ts");
  const shape = {
    imageSize: 8,
    patchSize: 4,
    channels: 1,
    dim: 8,
    depth: 1,
    heads: 2,
    mlpRatio: 2,
    decoderDim: 8,
    decoderDepth: 1,
    decoderHeads: 2,
  };
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const simmim = new SimMim({ shape, seed: 0 });
  try {
    const decay = (m: { store: { params: Map<string, { decay: boolean }> } }, name: string) =>
      m.store.params.get(name)?.decay;
    assert.equal(decay(mae, "encoder.cls_token"), true);
    assert.equal(decay(mae, "decoder.mask_token"), true);
    assert.equal(decay(simmim, "encoder.cls_token"), false);
    assert.equal(decay(simmim, "encoder.mask_token"), false);
    for (const m of [mae, simmim]) {
      for (const [name, p] of m.store.params) {
        // every 1-D parameter (norms, biases) is excluded, every matrix decays
        if (p.variable.shape.length === 1) assert.equal(p.decay, false, name);
        if (p.variable.shape.length === 2) assert.equal(p.decay, true, name);
      }
    }
  } finally {
    mae.dispose();
    simmim.dispose();
  }
});
