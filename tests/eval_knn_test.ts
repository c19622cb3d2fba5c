import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { knnAccuracy, knnClassify, l2NormalizeRows, makeKnnMonitor } from "../lib/eval/mod.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { resolveShape, VisionTransformer } from "../lib/vit/vit.ts";
import { makeRng, normalFrom } from "../lib/util/rng.ts";

/** Brute-force weighted kNN on the host: cosine similarity, full sort, exp(sim / T) votes. */
function reference(
  train: Float32Array,
  trainLabels: Int32Array,
  test: Float32Array,
  D: number,
  k: number,
  T: number,
  K: number,
): Int32Array {
  const a = l2NormalizeRows(train, D), b = l2NormalizeRows(test, D);
  const N = trainLabels.length, M = test.length / D;
  const out = new Int32Array(M);
  for (let m = 0; m < M; m++) {
    const sims = Array.from({ length: N }, (_, n) => {
      let s = 0;
      for (let j = 0; j < D; j++) s += a[n * D + j] * b[m * D + j];
      return { s, n };
    }).sort((x, y) => y.s - x.s);
    const votes = new Float64Array(K);
    for (const { s, n } of sims.slice(0, k)) votes[trainLabels[n]] += Math.exp(s / T);
    out[m] = votes.indexOf(Math.max(...votes));
  }
  return out;
}

function randomSet(count: number, D: number, K: number, seed: number, spread: number) {
  const normal = normalFrom(makeRng(seed, "knn"));
  const centres = normalFrom(makeRng(99, "centres"));
  const c = Array.from({ length: K * D }, () => centres());
  const feats = new Float32Array(count * D);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % K;
    for (let j = 0; j < D; j++) feats[i * D + j] = c[labels[i] * D + j] + spread * normal();
  }
  return { feats, labels };
}

Deno.test("knnAccuracy() is exact on well-separated clusters", async () => {
  const D = 16, K = 5;
  const train = randomSet(200, D, K, 1, 0.05), test = randomSet(100, D, K, 2, 0.05);
  const top1 = await knnAccuracy(train.feats, train.labels, test.feats, test.labels, {
    k: 20,
    T: 0.07,
  });
  assert.equal(top1, 1);
});

Deno.test("knnClassify() matches a brute-force reference on overlapping clusters, in any chunking", async () => {
  const D = 8, K = 4, k = 7, T = 0.1;
  const train = randomSet(150, D, K, 3, 1.2), test = randomSet(60, D, K, 4, 1.2);
  const want = reference(train.feats, train.labels, test.feats, D, k, T, K);
  const before = tf.memory().numTensors;
  for (const chunkValues of [150, 150 * 7, 8_000_000]) {
    const r = await knnClassify(train.feats, train.labels, test.feats, test.labels, {
      k,
      T,
      chunkValues,
    });
    assert.deepEqual(r.predictions, want, `chunkValues ${chunkValues}`);
    assert.ok(r.top1 > 0.3 && r.top1 < 1, `overlap should make some errors: ${r.top1}`);
    assert.equal(r.top5, null);
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("knnClassify() is scale invariant (cosine) and clamps k to the training set", async () => {
  const D = 4, K = 3;
  const train = randomSet(12, D, K, 5, 0.3), test = randomSet(9, D, K, 6, 0.3);
  const scaled = train.feats.map((v, i) => v * (1 + (Math.floor(i / D) % 5)));
  const a = await knnClassify(train.feats, train.labels, test.feats, test.labels, { k: 3 });
  const b = await knnClassify(scaled, train.labels, test.feats, test.labels, { k: 3 });
  assert.deepEqual(a.predictions, b.predictions);
  const all = await knnClassify(train.feats, train.labels, test.feats, test.labels, { k: 100 });
  assert.equal(all.predictions.length, 9);
  await assert.rejects(
    () => knnClassify(train.feats, train.labels, test.feats.subarray(1), test.labels),
    /test values/,
  );
});

Deno.test("makeKnnMonitor() measures a tiny encoder on synthetic data and is due every N epochs", async () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 1, heads: 2 },
    3,
    16,
  );
  const store = new ParamStore(0);
  const encoder = new VisionTransformer(store, shape);
  const monitor = makeKnnMonitor(
    { name: "synthetic", root: "", split: "train", imageSize: 16 },
    { every: 2, k: 5, trainLimit: 48, testLimit: 24, imageSize: 16, batchSize: 16 },
  );
  assert.deepEqual([1, 2, 3, 4, 5].map((e) => monitor.due(e, 5)), [false, true, false, true, true]);
  const before = tf.memory().numTensors;
  const r = await monitor.measure(encoder);
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.knnTop1 >= 0 && r.knnTop1 <= 1);
  assert.ok(r.knnSeconds > 0);
  monitor.close();
  encoder.dispose();
  store.dispose();
  const off = makeKnnMonitor({ name: "synthetic", root: "", split: "train", imageSize: 16 }, {
    every: 0,
    imageSize: 16,
  });
  assert.equal(off.due(10, 10), false);
});
