/**
 * Leak tests: each hot path, run on the cpu backend, leaves `tf.memory().numTensors` where it
 * found it, and each model's `dispose()` releases everything the model made. Only the public
 * API (`../mod.ts`) is used, so the tests follow the code when it moves between packages.
 */
import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  AdamW,
  computeSaliency,
  makeRng,
  MaskedAutoencoder,
  ParamStore,
  randomMaskPlan,
  SimMim,
  SyntheticDataset,
  unitRandomMaskPlan,
  VisionTransformer,
} from "../mod.ts";

/** 16 px, patch 4 (L = 16), one channel: small enough for the cpu backend in well under 1 s. */
const shape = {
  imageSize: 16,
  patchSize: 4,
  channels: 1,
  dim: 16,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  decoderDim: 8,
  decoderDepth: 1,
  decoderHeads: 2,
};
const B = 3, L = 16, P = 16;

function randomPatches(seed: number): tf.Tensor2D {
  const rng = makeRng(seed, "leak");
  return tf.tensor2d(Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1), [B * L, P]);
}

/**
 * Runs `step` once (a first call may build what later calls reuse), then `runs` more times,
 * and asserts that those left the tensor count unchanged.
 */
async function assertStepKeepsCount(
  what: string,
  step: (i: number) => void | Promise<void>,
  runs = 2,
): Promise<void> {
  assert.equal(tf.getBackend(), "cpu", "leak tests count tensors on the cpu backend");
  await step(0);
  const before = tf.memory().numTensors;
  for (let i = 1; i <= runs; i++) await step(i);
  const after = tf.memory().numTensors;
  assert.equal(after, before, `${what}: ${after - before} tensors left over by ${runs} calls`);
}

function assertBackTo(baseline: number, what: string): void {
  const now = tf.memory().numTensors;
  assert.equal(now, baseline, `${what}: ${now - baseline} tensors left after dispose()`);
}

Deno.test("AdamW.minimize() on an MAE loss: a pre-training step leaks no tensor; dispose() frees model and optimiser", async () => {
  const baseline = tf.memory().numTensors;
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const opt = new AdamW([...mae.store.params.values()], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.05,
    clipGrad: 1,
  });
  const patches = randomPatches(1);
  await assertStepKeepsCount("MAE + AdamW step", async (i) => {
    const plan = randomMaskPlan(B, L, 0.75, makeRng(2, "plan", i));
    const { loss, gradNorm } = opt.minimize(() => mae.lossFn(patches, plan), 1e-3);
    try {
      assert.ok(Number.isFinite((await loss.data())[0]), "non-finite loss");
    } finally {
      tf.dispose([loss, gradNorm]);
    }
  });
  assert.equal(opt.step, 3);
  patches.dispose();
  opt.dispose();
  mae.dispose();
  assertBackTo(baseline, "MaskedAutoencoder + AdamW");
});

Deno.test("computeSaliency() on a tiny synthetic set leaks no tensor and returns one map per image", async () => {
  const baseline = tf.memory().numTensors;
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const ds = new SyntheticDataset({ count: 5, size: 16, channels: 1, seed: 3 });
  await assertStepKeepsCount("saliency pass", async () => {
    // batch 2 over 5 images: two full batches and a partial one
    const { maps } = await computeSaliency(mae.encoder, ds, { imageSize: 16, batchSize: 2 });
    assert.equal(maps.length, 5 * L);
    assert.ok(maps.every((v) => v >= 0 && v <= 1), "saliency outside [0, 1]");
  });
  mae.dispose();
  assertBackTo(baseline, "MaskedAutoencoder after saliency");
});

Deno.test("SimMim.lossFn() under tf.variableGrads(): loss and gradients are all that survive", async () => {
  const baseline = tf.memory().numTensors;
  const model = new SimMim({ shape, seed: 1 });
  const patches = randomPatches(4);
  const vars = model.variables();
  await assertStepKeepsCount("SimMIM loss + grad", async (i) => {
    // SimMIM's own plan: mask units of 2x2 patches (k = 2 patches per side), ceil counting
    const plan = unitRandomMaskPlan(B, L, 2, 0.6, makeRng(5, "plan", i));
    const { value, grads } = tf.variableGrads(() => model.lossFn(patches, plan), vars);
    try {
      assert.equal(Object.keys(grads).length, vars.length);
      assert.ok(Number.isFinite((await value.data())[0]), "non-finite loss");
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  });
  patches.dispose();
  model.dispose();
  assertBackTo(baseline, "SimMim");
});

Deno.test("VisionTransformer.forwardFeatures() in tf.tidy: only tokens, cls and attention survive", async () => {
  const baseline = tf.memory().numTensors;
  const store = new ParamStore(7);
  const vit = new VisionTransformer(store, shape);
  const rng = makeRng(8, "x");
  const x = tf.tensor3d(Float32Array.from({ length: B * L * P }, () => rng()), [B, L, P]);
  await assertStepKeepsCount("forwardFeatures", async () => {
    const r = tf.tidy(() => {
      const { tokens, cls, attention } = vit.forwardFeatures(x, true);
      assert.ok(attention !== undefined, "keepAttention=true returned no attention");
      return { tokens, cls, attention };
    });
    try {
      assert.deepEqual(r.tokens.shape, [B, 1 + L, shape.dim]);
      assert.deepEqual(r.cls.shape, [B, shape.dim]);
      assert.deepEqual(r.attention.shape, [B, shape.heads, 1 + L, 1 + L]);
      assert.ok((await r.cls.data()).every(Number.isFinite));
    } finally {
      tf.dispose([r.tokens, r.cls, r.attention]);
    }
  });
  x.dispose();
  vit.dispose(); // the position table; the weights belong to the store
  store.dispose();
  assertBackTo(baseline, "VisionTransformer + ParamStore");
});
