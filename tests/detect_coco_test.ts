import assert from "node:assert/strict";
import { DataError } from "../lib/data/errors.ts";
import {
  boxToInput,
  boxToOriginal,
  encodeMask,
  fitTransform,
  maskToInput,
  maskToOriginal,
  openCocoDataset,
  readCocoJson,
} from "../lib/detect/mod.ts";
import { writePng } from "../lib/viz/mod.ts";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "detect_coco_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A grey image with the rectangle [x0, x1) x [y0, y1) at 200 on 50. */
function rectImage(w: number, h: number, r: [number, number, number, number]) {
  const data = new Uint8Array(w * h).fill(50);
  for (let y = r[1]; y < r[1] + r[3]; y++) {
    for (let x = r[0]; x < r[0] + r[2]; x++) data[y * w + x] = 200;
  }
  return { data, height: h, width: w, channels: 1 };
}

/** Two images: a 40x20 one with a polygon object, a 20x20 one with an RLE object. */
async function writeTiny(dir: string) {
  await Deno.mkdir(`${dir}/img`);
  await writePng(`${dir}/img/a.png`, rectImage(40, 20, [8, 4, 12, 8]));
  await writePng(`${dir}/img/b.png`, rectImage(20, 20, [2, 3, 5, 6]));
  const m = new Uint8Array(400);
  for (let y = 3; y < 9; y++) for (let x = 2; x < 7; x++) m[y * 20 + x] = 1;
  const json = {
    images: [
      { id: 10, file_name: "a.png", width: 40, height: 20 },
      // LVIS style: no file_name, the file is the last part of coco_url
      { id: 11, coco_url: "http://images.cocodataset.org/val2017/b.png", width: 20, height: 20 },
    ],
    categories: [{ id: 5, name: "five" }, { id: 2, name: "two" }],
    annotations: [
      {
        id: 1,
        image_id: 10,
        category_id: 5,
        bbox: [8, 4, 12, 8],
        area: 96,
        iscrowd: 0,
        segmentation: [[8, 4, 20, 4, 20, 12, 8, 12]],
      },
      {
        id: 2,
        image_id: 11,
        category_id: 2,
        bbox: [2, 3, 5, 6],
        area: 30,
        iscrowd: 0,
        segmentation: encodeMask(m, 20, 20),
      },
    ],
  };
  await Deno.writeTextFile(`${dir}/instances.json`, JSON.stringify(json));
  return json;
}

Deno.test("fitTransform() letterboxes and the box / mask maps invert each other", () => {
  const t = fitTransform(40, 20, 20, "letterbox");
  assert.deepEqual([t.scaleX, t.scaleY, t.padX, t.padY], [0.5, 0.5, 0, 5]);
  assert.deepEqual(boxToInput([8, 4, 12, 8], t), [4, 7, 6, 4]);
  assert.deepEqual(boxToOriginal([4, 7, 6, 4], t), [8, 4, 12, 8]);
  const s = fitTransform(40, 20, 20, "stretch");
  assert.deepEqual([s.scaleX, s.scaleY, s.padX, s.padY], [0.5, 1, 0, 0]);
  // a mask at 2x2-pixel granularity survives the round trip exactly
  const m = new Uint8Array(800);
  for (let y = 4; y < 12; y++) for (let x = 8; x < 20; x++) m[y * 40 + x] = 1;
  assert.deepEqual(maskToOriginal(maskToInput(m, t), t), m);
});

Deno.test("openCocoDataset() reads images, boxes and masks fitted to the input", async () => {
  await withTmp(async (dir) => {
    await writeTiny(dir);
    const ds = await openCocoDataset({
      annotations: `${dir}/instances.json`,
      images: `${dir}/img`,
      inputSize: 20,
      channels: 1,
      padValue: 7,
    });
    assert.equal(ds.length, 2);
    assert.deepEqual(ds.classNames, ["two", "five"]); // sorted by id
    const a = await ds.get(0);
    assert.equal(a.imageId, 10);
    assert.deepEqual([a.image.height, a.image.width, a.image.channels], [20, 20, 1]);
    // letterbox: rows 0..4 and 15..19 are padding
    assert.equal(a.image.data[0], 7);
    assert.equal(a.image.data[19 * 20 + 10], 7);
    assert.equal(a.image.data[8 * 20 + 6], 200); // inside the rectangle
    assert.equal(a.image.data[6 * 20 + 1], 50); // content row, background
    const inst = a.instances[0];
    assert.equal(inst.label, 1);
    assert.equal(inst.categoryId, 5);
    assert.deepEqual(inst.bbox, [4, 7, 6, 4]);
    let n = 0;
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 20; x++) {
        const want = x >= 4 && x < 10 && y >= 7 && y < 11 ? 1 : 0;
        assert.equal(inst.mask![y * 20 + x], want, `mask at (${x}, ${y})`);
        n += want;
      }
    }
    assert.equal(n, 24);
    const b = await ds.get(1);
    assert.equal(b.instances[0].label, 0);
    assert.deepEqual(b.instances[0].bbox, [2, 3, 5, 6]);
    assert.equal(b.instances[0].mask!.reduce((s, v) => s + v, 0), 30);
    // rgb output replicates the grey levels
    const rgb = await openCocoDataset({
      annotations: `${dir}/instances.json`,
      images: `${dir}/img`,
      inputSize: 20,
    });
    const c = await rgb.get(1);
    assert.equal(c.image.channels, 3);
    assert.deepEqual(Array.from(c.image.data.subarray((3 * 20 + 2) * 3, (3 * 20 + 2) * 3 + 3)), [
      200,
      200,
      200,
    ]);
  });
});

Deno.test("openCocoDataset() names the file when the JSON is malformed or an image is missing", async () => {
  await withTmp(async (dir) => {
    const json = await writeTiny(dir);
    await Deno.writeTextFile(`${dir}/bad.json`, '{"images": [');
    await assert.rejects(
      () => readCocoJson(`${dir}/bad.json`),
      (e: Error) =>
        e instanceof DataError && e.message.includes(`${dir}/bad.json`) &&
        /malformed JSON/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/nokeys.json`, JSON.stringify({ images: [] }));
    await assert.rejects(
      () => readCocoJson(`${dir}/nokeys.json`),
      /nokeys.json: expected an array "annotations"/,
    );
    const orphan = { ...json, annotations: [{ ...json.annotations[0], image_id: 99 }] };
    await Deno.writeTextFile(`${dir}/orphan.json`, JSON.stringify(orphan));
    await assert.rejects(
      () => readCocoJson(`${dir}/orphan.json`),
      /orphan.json: annotations\[0\] \(id 1\): image_id 99/,
    );
    await assert.rejects(
      () => readCocoJson(`${dir}/none.json`),
      /none.json: expected an instances JSON, file not found/,
    );
    await Deno.remove(`${dir}/img/b.png`);
    await assert.rejects(
      () =>
        openCocoDataset({
          annotations: `${dir}/instances.json`,
          images: `${dir}/img`,
          inputSize: 20,
        }),
      (e: Error) => e instanceof DataError && e.message.startsWith(`${dir}/img/b.png: image 11`),
    );
    // without the up-front check, get() names the file
    const ds = await openCocoDataset({
      annotations: `${dir}/instances.json`,
      images: `${dir}/img`,
      inputSize: 20,
      checkFiles: false,
    });
    await assert.rejects(() => ds.get(1), /img\/b.png: image 11 not found/);
  });
});
