import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  cachedFeatures,
  decodeFeatureFile,
  encodeFeatureFile,
  extractFeatures,
  featureCachePath,
  labelledSplits,
} from "../lib/eval/mod.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { resolveShape, VisionTransformer } from "../lib/vit/vit.ts";

function tinyEncoder(seed = 0) {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 1, heads: 2 },
    3,
    16,
  );
  const store = new ParamStore(seed);
  const encoder = new VisionTransformer(store, shape);
  return { encoder, dispose: () => (encoder.dispose(), store.dispose()) };
}

Deno.test("extractFeatures() returns the CLS feature after the final norm, batch-size independent, no leaks", async () => {
  const { encoder, dispose } = tinyEncoder();
  const ds = makeSynthetic({ count: 10, size: 16 });
  const before = tf.memory().numTensors;
  const a = await extractFeatures(encoder, ds, { imageSize: 16, batchSize: 4 });
  const b = await extractFeatures(encoder, ds, { imageSize: 16, batchSize: 10 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(a.count, 10);
  assert.equal(a.dim, 16);
  for (let i = 0; i < a.features.length; i++) {
    assert.ok(Math.abs(a.features[i] - b.features[i]) < 1e-4);
  }
  for (let i = 0; i < 10; i++) assert.equal(a.labels[i], (await ds.get(i)).label);
  // after LayerNorm with unit gain and zero bias each row has mean 0 and variance ~1
  const row = Array.from(a.features.subarray(0, 16));
  const mean = row.reduce((x, v) => x + v, 0) / 16;
  const variance = row.reduce((x, v) => x + (v - mean) ** 2, 0) / 16;
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(variance - 1) < 1e-2, `${mean} ${variance}`);
  await assert.rejects(
    () => extractFeatures(encoder, ds, { imageSize: 32, batchSize: 4 }),
    /imageSize 32/,
  );
  dispose();
});

Deno.test("encodeFeatureFile() / decodeFeatureFile() round-trip and reject torn files", () => {
  const set = {
    features: Float32Array.from([1.5, -2, 3, 4.25, 0, 1e-7]),
    labels: Int32Array.from([2, 0]),
    count: 2,
    dim: 3,
    seconds: 1,
  };
  const header = { step: 7, split: "test", dataset: "x/test", count: 2, dim: 3, imageSize: 16 };
  const bytes = encodeFeatureFile(header, set);
  const back = decodeFeatureFile(bytes)!;
  assert.deepEqual(back.header, header);
  assert.deepEqual(back.set.features, set.features);
  assert.deepEqual(back.set.labels, set.labels);
  assert.equal(decodeFeatureFile(bytes.subarray(0, bytes.length - 4)), null);
  assert.equal(decodeFeatureFile(new Uint8Array(20)), null);
});

Deno.test("cachedFeatures() hits on the same step and is invalidated by a new checkpoint step", async () => {
  const dir = await Deno.makeTempDir();
  const ds = makeSynthetic({ count: 6, size: 16, split: "test" });
  const first = tinyEncoder(0);
  const opts = { imageSize: 16, batchSize: 4, dataset: ds };
  const a = await cachedFeatures(dir, "test", { ...opts, step: 10, encoder: first.encoder });
  assert.equal(a.cached, false);
  assert.equal(a.path, `${dir}/eval/features_test_step10.bin`);
  assert.equal(a.path, featureCachePath(dir, "test", 10));
  const again = await cachedFeatures(dir, "test", { ...opts, step: 10, encoder: first.encoder });
  assert.equal(again.cached, true);
  assert.deepEqual(again.features, a.features);
  // a new checkpoint (other weights, new step) recomputes and removes the stale file
  const second = tinyEncoder(1);
  const b = await cachedFeatures(dir, "test", { ...opts, step: 20, encoder: second.encoder });
  assert.equal(b.cached, false);
  assert.notDeepEqual(b.features, a.features);
  const files = [];
  for await (const e of Deno.readDir(`${dir}/eval`)) files.push(e.name);
  assert.deepEqual(files, ["features_test_step20.bin"]);
  // a different dataset behind the same name and step does not hit either
  const other = makeSynthetic({ count: 5, size: 16, split: "test" });
  const c = await cachedFeatures(dir, "test", {
    ...opts,
    dataset: other,
    step: 20,
    encoder: second.encoder,
  });
  assert.equal(c.cached, false);
  assert.equal(c.count, 5);
  first.dispose();
  second.dispose();
});

Deno.test("labelledSplits() picks STL-10's labelled train split and val for image folders", () => {
  assert.deepEqual(labelledSplits("stl10"), { train: "train", test: "test" });
  assert.deepEqual(labelledSplits("fashion-mnist"), { train: "train", test: "test" });
  assert.deepEqual(labelledSplits("tiny-imagenet"), { train: "train", test: "val" });
});
