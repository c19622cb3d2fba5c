import assert from "node:assert/strict";
import {
  applyCrop,
  denormalize,
  FULL_BOX,
  loadBatch,
  makeSynthetic,
  openDataset,
} from "../lib/data/mod.ts";
import { makeRng } from "../lib/util/rng.ts";

Deno.test("loadBatch() without augmentation resizes and normalises each item", async () => {
  const ds = makeSynthetic({ count: 10, size: 16, channels: 3, seed: 2 });
  const b = await loadBatch(ds, [3, 0, 7], { imageSize: 16, augment: false, rng: makeRng(0) });
  assert.equal(b.images.length, 3 * 16 * 16 * 3);
  assert.deepEqual([b.size, b.channels], [16, 3]);
  assert.deepEqual(Array.from(b.indices), [3, 0, 7]);
  assert.deepEqual(b.boxes, [FULL_BOX, FULL_BOX, FULL_BOX]);
  for (let k = 0; k < 3; k++) {
    const item = await ds.get(b.indices[k]);
    assert.equal(b.labels[k], item.label);
    for (let p = 0; p < 16 * 16 * 3; p += 37) {
      const c = p % 3;
      const want = (item.image.data[p] / 255 - ds.mean[c]) / ds.std[c];
      assert.ok(Math.abs(b.images[k * 768 + p] - want) < 1e-5);
    }
  }
  // denormalize() gives the [0, 1] pixels back.
  const px = denormalize(b.images, ds.mean, ds.std);
  const first = (await ds.get(3)).image.data;
  for (let p = 0; p < 768; p++) assert.ok(Math.abs(px[p] - first[p] / 255) < 1e-5);
});

Deno.test("loadBatch() normalises the embedded Fashion-MNIST to about zero mean, unit std", async () => {
  const ds = await openDataset({ name: "fashion-mnist", root: "", split: "train", limit: 512 });
  const idx = Array.from({ length: 512 }, (_, i) => i);
  const b = await loadBatch(ds, idx, { imageSize: 28, augment: false, rng: makeRng(0) });
  assert.equal(b.images.length, 512 * 28 * 28);
  let s = 0, s2 = 0;
  for (const v of b.images) (s += v, s2 += v * v);
  const mean = s / b.images.length;
  const std = Math.sqrt(s2 / b.images.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - 1) < 0.05, `mean ${mean}, std ${std}`);
});

Deno.test("loadBatch() with augmentation is reproducible from the rng and records its boxes", async () => {
  const ds = makeSynthetic({ count: 8, size: 32, channels: 1 });
  const opts = (seed: number) => ({
    imageSize: 24,
    augment: true,
    rng: makeRng(seed, "aug"),
    scale: [0.3, 1] as [number, number],
  });
  const idx = Int32Array.from([1, 2, 3, 4, 5]);
  const a = await loadBatch(ds, idx, opts(1));
  const b = await loadBatch(ds, idx, opts(1));
  const c = await loadBatch(ds, idx, opts(2));
  assert.equal(a.images.length, 5 * 24 * 24);
  assert.deepEqual(a.images, b.images);
  assert.deepEqual(a.boxes, b.boxes);
  assert.notDeepEqual(a.boxes, c.boxes);
  // Each image is exactly its item cropped with the recorded box, then normalised.
  for (let k = 0; k < 5; k++) {
    const item = await ds.get(idx[k]);
    const crop = applyCrop(item.image, a.boxes[k], 24, 24).data;
    for (let p = 0; p < crop.length; p++) {
      const want = (crop[p] / 255 - ds.mean[0]) / ds.std[0];
      assert.ok(Math.abs(a.images[k * 576 + p] - want) < 1e-5);
    }
  }
  assert.ok(a.boxes.some((x) => x.y1 - x.y0 < 1 || x.x1 - x.x0 < 1), "some crops are partial");
  await assert.rejects(
    () => loadBatch(ds, idx, { imageSize: 0, augment: false, rng: makeRng(0) }),
    /imageSize 0/,
  );
});
