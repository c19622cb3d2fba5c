import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  accuracy,
  BatchNormNoAffine,
  batchNormNoAffine,
  confusionMatrix,
  crossEntropy,
  type FeatureSet,
  larsDirection,
  topKAccuracy,
  trainLinearProbe,
} from "../lib/eval/mod.ts";
import { makeRng, normalFrom } from "../lib/util/rng.ts";

/** `count` rows around one centre per class (centres 4 apart), labels cycling 0..K-1. */
function clustered(count: number, K: number, D: number, seed: number, noise = 0.5): FeatureSet {
  const normal = normalFrom(makeRng(seed, "clustered"));
  const features = new Float32Array(count * D);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % K;
    for (let j = 0; j < D; j++) {
      features[i * D + j] = (j === labels[i] ? 4 : 0) + 10 + noise * normal(); // offset: BN must centre it
    }
  }
  return { features, labels, count, dim: D, seconds: 0 };
}

Deno.test("batchNormNoAffine() gives zero mean and unit variance over the batch", () => {
  const normal = normalFrom(makeRng(1, "bn"));
  const N = 64, D = 5;
  const x = tf.tensor2d(
    Float32Array.from({ length: N * D }, (_, i) => 7 + (1 + (i % D)) * normal()),
    [N, D],
  );
  const r = batchNormNoAffine(x as tf.Tensor2D);
  const out = r.out.arraySync() as number[][];
  for (let j = 0; j < D; j++) {
    const col = out.map((row) => row[j]);
    const mean = col.reduce((a, b) => a + b, 0) / N;
    const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / N;
    assert.ok(Math.abs(mean) < 1e-5, `column ${j} mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 1e-4, `column ${j} variance ${variance}`);
  }
  // the unbiased variance is the biased one times N / (N - 1)
  const [v, u] = [r.variance.dataSync(), r.unbiased.dataSync()];
  for (let j = 0; j < D; j++) assert.ok(Math.abs(u[j] - v[j] * N / (N - 1)) < 1e-4 * u[j]);
  tf.dispose([x, r.out, r.mean, r.variance, r.unbiased]);
});

Deno.test("BatchNormNoAffine updates running statistics like torch (momentum 0.1, unbiased variance)", () => {
  const bn = new BatchNormNoAffine(2);
  const x = tf.tensor2d([[1, 10], [3, 14]]); // mean [2, 12], unbiased var [2, 8]
  const before = tf.memory().numTensors;
  tf.dispose(bn.train(x as tf.Tensor2D));
  assert.equal(tf.memory().numTensors, before);
  const rm = bn.runningMean.dataSync(), rv = bn.runningVar.dataSync();
  assert.ok(Math.abs(rm[0] - 0.2) < 1e-6 && Math.abs(rm[1] - 1.2) < 1e-6, `running mean ${rm}`);
  assert.ok(Math.abs(rv[0] - 1.1) < 1e-6 && Math.abs(rv[1] - 1.7) < 1e-5, `running var ${rv}`);
  // test mode uses the running statistics
  const y = bn.apply(tf.tensor2d([[0.2, 1.2]]) as tf.Tensor2D).dataSync();
  assert.ok(Math.abs(y[0]) < 1e-6 && Math.abs(y[1]) < 1e-6);
  x.dispose();
  bn.dispose();
});

Deno.test("crossEntropy() with label smoothing matches a hand computation", () => {
  const logits = [2, 1, 0], s = 0.1, K = 3;
  const lse = Math.log(logits.reduce((a, v) => a + Math.exp(v), 0));
  const logp = logits.map((v) => v - lse);
  const expected = -logp.reduce((a, lp, k) => a + ((k === 0 ? 1 - s : 0) + s / K) * lp, 0);
  const plain = -logp[2];
  const l = tf.tensor2d([logits, logits]) as tf.Tensor2D;
  const smooth = crossEntropy(l, tf.tensor1d([0, 0], "int32"), s).dataSync()[0];
  const hard = crossEntropy(l, tf.tensor1d([2, 2], "int32")).dataSync()[0];
  assert.ok(Math.abs(smooth - expected) < 1e-5, `${smooth} vs ${expected}`);
  assert.ok(Math.abs(hard - plain) < 1e-5, `${hard} vs ${plain}`);
  // timm's form: (1 - s) * nll + s * mean(-log p)
  const timm = (1 - s) * -logp[0] + s * -(logp[0] + logp[1] + logp[2]) / 3;
  assert.ok(Math.abs(smooth - timm) < 1e-5);
  assert.throws(() => crossEntropy(l, tf.tensor1d([0, 0], "int32"), 1), /label smoothing/);
});

Deno.test("topKAccuracy(), accuracy() and confusionMatrix() count what they say", () => {
  const scores = [0.1, 0.7, 0.2, /**/ 0.5, 0.3, 0.2, /**/ 0.2, 0.3, 0.5];
  const labels = Int32Array.from([1, 1, 0]);
  assert.equal(topKAccuracy(scores, labels, 1), 1 / 3);
  assert.equal(topKAccuracy(scores, labels, 2), 2 / 3);
  assert.equal(topKAccuracy(scores, labels, 3), 1);
  const pred = Int32Array.from([1, 0, 2]);
  assert.equal(accuracy(pred, labels), 1 / 3);
  assert.deepEqual(confusionMatrix(pred, labels, 3), [[0, 0, 1], [1, 1, 0], [0, 0, 0]]);
});

Deno.test("trainLinearProbe() separates clustered features almost perfectly, without leaking tensors", async () => {
  const train = clustered(300, 3, 8, 1), test = clustered(150, 3, 8, 2);
  const before = tf.memory().numTensors;
  const r = await trainLinearProbe(train, test, { epochs: 10, batchSize: 32, baseLr: 0.5 });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.top1 >= 0.98, `top-1 ${r.top1}`);
  assert.ok(r.trainTop1 >= 0.98, `train top-1 ${r.trainTop1}`);
  assert.equal(r.top5, null);
  assert.equal(r.history.length, 10);
  assert.ok(r.history[9].loss < r.history[0].loss, "loss fell");
  assert.deepEqual(r.confusion.map((row) => row.reduce((a, b) => a + b, 0)), [50, 50, 50]);
  assert.equal(r.history[9].testTop1, r.top1);
});

Deno.test("trainLinearProbe() on random labels scores about chance on the test set", async () => {
  const rng = makeRng(5, "labels");
  const shuffle = (s: FeatureSet): FeatureSet => ({
    ...s,
    labels: Int32Array.from(s.labels, () => Math.floor(rng() * 4)),
  });
  const train = shuffle(clustered(400, 4, 8, 3, 3)), test = shuffle(clustered(400, 4, 8, 4, 3));
  const r = await trainLinearProbe(train, test, { epochs: 5, batchSize: 64, numClasses: 4 });
  assert.ok(Math.abs(r.top1 - 0.25) < 0.1, `top-1 ${r.top1} is not near chance 0.25`);
});

Deno.test("larsDirection() rescales the update to trust * |w| (with weight decay folded in)", () => {
  const w = tf.tensor2d([[3, 0], [0, 4]]); // |w| = 5
  const g = tf.tensor2d([[1, 2], [2, 1]]);
  const d = larsDirection(w, g, 0.001, 0.5);
  const expected = [[2.5, 2], [2, 3]]; // g + 0.5 w
  const norm = Math.hypot(...expected.flat());
  const got = d.arraySync() as number[][];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      assert.ok(Math.abs(got[i][j] - expected[i][j] * 0.005 / norm) < 1e-8, `${got[i][j]}`);
    }
  }
  const zero = larsDirection(tf.zeros([2, 2]), g); // |w| = 0: plain gradient
  assert.deepEqual(zero.arraySync(), g.arraySync());
  tf.dispose([w, g, d, zero]);
});

Deno.test("trainLinearProbe() with LARS learns at a large lr, and is seeded", async () => {
  const train = clustered(240, 6, 8, 6), test = clustered(120, 6, 8, 7);
  // LARS steps are trust * |w| long: a small batch needs a large lr (MAE: 0.1 * 16384 / 256)
  const opts = { epochs: 8, batchSize: 32, optimizer: "lars" as const, baseLr: 1000 };
  const a = await trainLinearProbe(train, test, opts);
  const b = await trainLinearProbe(train, test, opts);
  assert.ok(a.top1 >= 0.9, `LARS top-1 ${a.top1}`);
  assert.ok(a.top5 !== null && a.top5 >= a.top1);
  assert.deepEqual(a.predictions, b.predictions);
  assert.deepEqual(a.history.map((h) => h.loss), b.history.map((h) => h.loss));
});

Deno.test("trainLinearProbe() rejects unlabeled items and mismatched dims", async () => {
  const train = clustered(30, 3, 4, 1), test = clustered(30, 3, 4, 2);
  await assert.rejects(
    () =>
      trainLinearProbe({ ...train, labels: train.labels.map((v, i) => (i === 3 ? -1 : v)) }, test),
    /unlabeled/,
  );
  await assert.rejects(() => trainLinearProbe(train, clustered(30, 3, 5, 2)), /dim/);
});
