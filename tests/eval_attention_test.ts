import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  attentionOnObject,
  attentionOnObjectFigure,
  objectMaskOf,
  objectShare,
  patchObjectFraction,
} from "../lib/eval/mod.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import type { Dataset, Item } from "../lib/data/types.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { resolveShape, VisionTransformer } from "../lib/vit/vit.ts";

/** An 8x8 mask with the object on the top-left 4x4 block plus two pixels of the next patch. */
function mask8(): { data: Uint8Array; height: number; width: number; channels: number } {
  const data = new Uint8Array(64);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) data[y * 8 + x] = 1;
  data[0 * 8 + 4] = 1;
  data[1 * 8 + 4] = 1;
  return { data, height: 8, width: 8, channels: 1 };
}

Deno.test("patchObjectFraction() gives each patch's share of object pixels", () => {
  const f = patchObjectFraction(mask8(), 8, 4);
  assert.deepEqual(Array.from(f), [1, 2 / 16, 0, 0]);
  // resizing the mask to a larger input keeps the fractions
  const g = patchObjectFraction({ ...mask8(), data: mask8().data }, 16, 8);
  assert.ok(Math.abs(g[0] - 1) < 1e-6 && g[3] === 0);
});

Deno.test("objectShare() is 1 when all saliency is on the object and the area fraction for a uniform map", () => {
  const frac = patchObjectFraction(mask8(), 8, 4); // area = (16 + 2) / 64
  assert.equal(objectShare([0.7, 0, 0, 0], frac), 1);
  assert.ok(Math.abs(objectShare([1, 1, 1, 1], frac) - 18 / 64) < 1e-7);
  assert.ok(
    Math.abs(objectShare([0, 0, 0, 0], frac) - 18 / 64) < 1e-7,
    "all-zero map counts as uniform",
  );
  assert.equal(objectShare([0, 0, 1, 1], frac), 0);
  assert.throws(() => objectShare([1, 1], frac), /patches/);
});

Deno.test("objectMaskOf() uses the synthetic masks and thresholds plain images", async () => {
  const ds = makeSynthetic({ count: 3, size: 16 });
  assert.deepEqual((await objectMaskOf(ds, 1)).data, ds.objectMask(1).data);
  const plain: Dataset = {
    name: "plain",
    length: 1,
    channels: 1,
    numClasses: 1,
    mean: [0],
    std: [1],
    get: (i: number): Promise<Item> =>
      Promise.resolve({
        image: { data: Uint8Array.from([0, 20, 30, 255]), height: 2, width: 2, channels: 1 },
        label: 0,
        index: i,
      }),
  };
  assert.deepEqual(Array.from((await objectMaskOf(plain, 0, 0.1)).data), [0, 0, 1, 1]);
});

Deno.test("attentionOnObject() scores a tiny encoder on synthetic objects and writes a figure", async () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 1, heads: 2 },
    3,
    16,
  );
  const store = new ParamStore(0);
  const encoder = new VisionTransformer(store, shape);
  const ds = makeSynthetic({ count: 12, size: 16 });
  const before = tf.memory().numTensors;
  const r = await attentionOnObject(encoder, ds, { imageSize: 16, batchSize: 5, limit: 10 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.perImage.length, 10);
  assert.ok(r.perImage.every((v) => v >= 0 && v <= 1));
  assert.ok(r.areaFraction > 0.03 && r.areaFraction < 0.3, `area ${r.areaFraction}`);
  // a mask covering everything puts all saliency on the object
  const full = await attentionOnObject(encoder, ds, {
    imageSize: 16,
    limit: 4,
    maskOf: () => ({ data: new Uint8Array(256).fill(1), height: 16, width: 16, channels: 1 }),
  });
  assert.ok(Math.abs(full.mean - 1) < 1e-6);
  const dir = await Deno.makeTempDir();
  await attentionOnObjectFigure(
    [{ name: "MAE", mean: r.mean, areaFraction: r.areaFraction }, {
      name: "MAE+AMT",
      mean: 0.4,
      areaFraction: r.areaFraction,
    }],
    `${dir}/bars.png`,
  );
  await attentionOnObjectFigure(
    [{ name: "MAE", mean: 0.3, curve: [{ epoch: 1, mean: 0.2 }, { epoch: 2, mean: 0.3 }] }],
    `${dir}/curve.png`,
  );
  for (const f of ["bars.png", "curve.png"]) {
    assert.ok((await Deno.stat(`${dir}/${f}`)).size > 1000);
  }
  encoder.dispose();
  store.dispose();
});
