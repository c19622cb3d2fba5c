import assert from "node:assert/strict";
import {
  decodeMask,
  type ItemSource,
  makeScene,
  maskToSegmentation,
  openCocoDataset,
  polygonsToMask,
  readCocoJson,
  sceneSource,
  segmentationToRle,
  writeCocoScenes,
} from "../lib/detect/mod.ts";

/** Ten 28x28 items: a filled square of side 10..19 px, label = index. */
const squares: ItemSource = {
  length: 10,
  get(i: number) {
    const data = new Uint8Array(28 * 28);
    const s = 10 + i, o = Math.floor((28 - s) / 2);
    for (let y = o; y < o + s; y++) for (let x = o; x < o + s; x++) data[y * 28 + x] = 220;
    return Promise.resolve({ image: { data, height: 28, width: 28, channels: 1 }, label: i });
  },
};

Deno.test("makeScene() is deterministic and its boxes, areas and masks agree", async () => {
  const src = sceneSource("val");
  for (let i = 0; i < 12; i++) {
    const a = await makeScene(src, 3, "val", i);
    const b = await makeScene(src, 3, "val", i);
    assert.deepEqual(a, b);
    assert.ok(a.objects.length >= 1 && a.objects.length <= 4, `${a.objects.length} objects`);
    const S = a.image.width;
    assert.equal(S, 56);
    const seen = new Uint8Array(S * S);
    for (const ob of a.objects) {
      let x0: number = S, y0: number = S, x1 = -1, y1 = -1, area = 0;
      for (let p = 0; p < S * S; p++) {
        if (!ob.mask[p]) continue;
        assert.equal(seen[p], 0, "masks overlap"); // occlusion leaves every pixel one owner
        seen[p] = 1;
        area++;
        const x = p % S, y = Math.floor(p / S);
        x0 = Math.min(x0, x), x1 = Math.max(x1, x), y0 = Math.min(y0, y), y1 = Math.max(y1, y);
        assert.ok(a.image.data[p] > 24, "mask pixel below the item threshold");
      }
      assert.equal(ob.area, area);
      assert.deepEqual(ob.bbox, [x0, y0, x1 - x0 + 1, y1 - y0 + 1]);
      assert.ok(ob.label >= 0 && ob.label < 10);
    }
  }
  const other = await makeScene(src, 4, "val", 0);
  assert.notDeepEqual(other.image.data, (await makeScene(src, 3, "val", 0)).image.data);
});

Deno.test("makeScene() limits occlusion of earlier items", async () => {
  // Opaque squares at scale 1 have a known full area (10 + label)^2. Each later item may hide
  // at most 20% of what is still visible, so with 4 items at least 0.8^3 of an item remains.
  let occluded = 0, placed = 0;
  for (let i = 0; i < 40; i++) {
    const s = await makeScene(squares, 1, "t", i, {
      size: 48,
      minObjects: 4,
      maxObjects: 4,
      minScale: 1,
      maxScale: 1,
      maxOcclusion: 0.2,
    });
    for (const ob of s.objects) {
      const full = (10 + ob.label) ** 2;
      assert.ok(ob.area <= full && ob.area >= 0.8 ** 3 * full, `area ${ob.area} of ${full}`);
      if (ob.area < full) occluded++;
    }
    placed += s.objects.length;
  }
  assert.ok(occluded > 0, "no scene had any occlusion");
  assert.ok(placed > 40 * 2, `only ${placed} items placed in 40 scenes`);
});

Deno.test("maskToSegmentation() polygons and RLE rasterise back to the same mask", () => {
  const S = 9;
  const m = new Uint8Array(S * S);
  for (const p of [0, 1, 2, 10, 20, 21, 40, 41, 42, 43, 80, 50, 59, 68]) m[p] = 1;
  for (const f of ["rle", "rle-uncompressed", "polygon"] as const) {
    const seg = maskToSegmentation(m, S, S, f);
    assert.deepEqual(decodeMask(segmentationToRle(seg, S, S)), m, f);
  }
  const poly = maskToSegmentation(m, S, S, "polygon") as number[][];
  assert.deepEqual(polygonsToMask(poly, S, S), m);
});

Deno.test("writeCocoScenes() writes a COCO dataset the reader reads back exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "detect_scenes_test_" });
  try {
    for (const maskFormat of ["rle", "polygon"] as const) {
      const out = await writeCocoScenes(`${dir}/${maskFormat}`, {
        count: 6,
        seed: 11,
        split: "val",
        size: 48,
        maskFormat,
        source: squares,
      });
      assert.equal(out.reused, false);
      const json = await readCocoJson(out.annotations);
      assert.equal(json.images.length, 6);
      assert.equal(json.categories.length, 10);
      const ds = await openCocoDataset({
        annotations: out.annotations,
        images: out.images,
        inputSize: 48,
        channels: 1,
      });
      for (let i = 0; i < 6; i++) {
        const scene = await makeScene(squares, 11, "val", i, { size: 48 });
        const s = await ds.get(i);
        assert.deepEqual(s.image.data, scene.image.data, `pixels of image ${i}`);
        assert.equal(s.instances.length, scene.objects.length);
        s.instances.forEach((inst, k) => {
          const ob = scene.objects[k];
          assert.equal(inst.label, ob.label);
          assert.equal(inst.categoryId, ob.label + 1);
          assert.deepEqual(inst.bbox, ob.bbox);
          assert.equal(inst.area, ob.area);
          assert.deepEqual(inst.mask, ob.mask, `${maskFormat} mask ${i}/${k}`);
        });
      }
      const again = await writeCocoScenes(`${dir}/${maskFormat}`, {
        count: 6,
        seed: 11,
        split: "val",
        size: 48,
        maskFormat,
        source: squares,
      });
      assert.equal(again.reused, true);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
