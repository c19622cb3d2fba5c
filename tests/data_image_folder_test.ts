import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { DataError, openImageFolder } from "../lib/data/mod.ts";

/** Encodes a solid-colour w x h image as PNG or JPEG. */
function solid(w: number, h: number, rgb: [number, number, number], format: "png" | "jpeg") {
  const img = sharp({
    create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } },
  });
  return (format === "png" ? img.png() : img.jpeg({ quality: 95 })).toBuffer();
}

async function write(path: string, bytes: Uint8Array | Promise<Uint8Array>) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, await bytes);
}

const RED: [number, number, number] = [220, 20, 20];
const GREEN: [number, number, number] = [20, 220, 20];
const BLUE: [number, number, number] = [20, 20, 220];

/** Mean colour of an RGB raster. */
function meanRgb(data: Uint8Array | Float32Array): number[] {
  const m = [0, 0, 0];
  for (let p = 0; p < data.length; p++) m[p % 3] += data[p];
  return m.map((v) => v / (data.length / 3));
}

function near(a: number[], b: number[], tol: number) {
  assert.ok(a.every((v, k) => Math.abs(v - b[k]) <= tol), `${a} vs ${b}`);
}

Deno.test("openImageFolder() reads the Tiny ImageNet layout in wnids.txt order", async () => {
  const root = await Deno.makeTempDir();
  try {
    // wnids.txt order differs from sorted order on purpose.
    await Deno.writeTextFile(join(root, "wnids.txt"), "n02\nn01\n");
    await write(join(root, "train/n01/images/n01_0.JPEG"), solid(64, 64, RED, "jpeg"));
    await write(join(root, "train/n01/images/n01_1.JPEG"), solid(64, 64, RED, "jpeg"));
    await write(join(root, "train/n02/images/n02_0.JPEG"), solid(64, 64, GREEN, "jpeg"));
    await write(join(root, "train/n02/n02_boxes.txt"), new TextEncoder().encode("x"));
    await write(join(root, "val/images/val_0.JPEG"), solid(64, 64, GREEN, "jpeg"));
    await write(join(root, "val/images/val_1.JPEG"), solid(64, 64, RED, "jpeg"));
    await Deno.writeTextFile(
      join(root, "val/val_annotations.txt"),
      "val_0.JPEG\tn02\t0\t0\t10\t10\nval_1.JPEG\tn01\t1\t2\t30\t40\n",
    );
    const train = openImageFolder({ layout: "tiny-imagenet", root, split: "train" });
    assert.deepEqual(train.classNames, ["n02", "n01"]);
    assert.equal(train.length, 3);
    assert.deepEqual(Array.from(train.labels), [1, 1, 0]);
    const item = await train.get(2);
    assert.deepEqual([item.image.height, item.image.width, item.image.channels], [64, 64, 3]);
    near(meanRgb(item.image.data), GREEN, 6);
    const val = openImageFolder({ layout: "tiny-imagenet", root, split: "val", decodeSize: 32 });
    assert.deepEqual(Array.from(val.labels), [0, 1]);
    const v1 = await val.get(1);
    assert.equal(v1.image.width, 32);
    near(meanRgb(v1.image.data), RED, 6);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openImageFolder() reads the ImageNet layout; decodes cover-resized PNG and JPEG", async () => {
  const root = await Deno.makeTempDir();
  try {
    await write(join(root, "train/n0002/b.JPEG"), solid(40, 30, BLUE, "jpeg"));
    await write(join(root, "train/n0001/a.png"), solid(20, 50, RED, "png"));
    await write(join(root, "val/n0002/c.JPEG"), solid(16, 16, BLUE, "jpeg"));
    const train = openImageFolder({ layout: "imagenet", root, split: "train", decodeSize: 24 });
    assert.deepEqual(train.classNames, ["n0001", "n0002"]);
    const a = await train.get(0);
    assert.equal(a.label, 0);
    assert.deepEqual([a.image.height, a.image.width, a.image.channels], [24, 24, 3]);
    near(meanRgb(a.image.data), RED, 2);
    const val = openImageFolder({ layout: "imagenet", root, split: "val", decodeSize: 24 });
    const c = await val.get(0);
    assert.equal(c.label, 1); // indexed by the train classes
    near(meanRgb(c.image.data), BLUE, 6);
    assert.equal(openImageFolder({ layout: "imagenet", root, split: "train" }).decodeSize, 256);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openImageFolder() cover-resizes with a centred crop", async () => {
  const root = await Deno.makeTempDir();
  try {
    // 30 wide x 10 high: red | green | blue thirds. Cover to 10x10 keeps the green centre.
    const px = new Uint8Array(30 * 10 * 3);
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 30; x++) px.set(x < 10 ? RED : x < 20 ? GREEN : BLUE, (y * 30 + x) * 3);
    }
    const png = await sharp(px, { raw: { width: 30, height: 10, channels: 3 } }).png().toBuffer();
    await write(join(root, "train/only/x.png"), png);
    const ds = openImageFolder({ layout: "image-folder", root, split: "train", decodeSize: 10 });
    near(meanRgb((await ds.get(0)).image.data), GREEN, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openImageFolder() skips or fails on a corrupt file, naming it", async () => {
  const root = await Deno.makeTempDir();
  try {
    await write(join(root, "train/cat/0.png"), solid(8, 8, RED, "png"));
    const bad = join(root, "train/cat/1.jpg");
    await write(bad, new TextEncoder().encode("this is not a jpeg"));
    await write(
      join(root, "train/dog/2.webp"),
      sharp({ create: { width: 8, height: 8, channels: 3, background: "#1414dc" } }).webp({
        lossless: true,
      }).toBuffer(),
    );
    const warnings: string[] = [];
    const skip = openImageFolder({
      layout: "image-folder",
      root,
      split: "train",
      decodeSize: 8,
      onWarning: (m) => warnings.push(m),
    });
    assert.equal(skip.length, 3);
    const item = await skip.get(1); // the corrupt one → next readable (the dog)
    assert.equal(item.index, 1);
    assert.equal(item.label, 1);
    near(meanRgb(item.image.data), BLUE, 2);
    await skip.get(1);
    assert.equal(warnings.length, 1, "warns once per file");
    assert.ok(warnings[0].includes(bad), warnings[0]);

    const fail = openImageFolder({
      layout: "image-folder",
      root,
      split: "train",
      decodeSize: 8,
      onBadImage: "fail",
    });
    await assert.rejects(
      () => fail.get(1),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(bad) && /onBadImage/.test(e.message),
    );
    assert.throws(
      () => openImageFolder({ layout: "image-folder", root, split: "train", onBadImage: "ignore" }),
      /"ignore"/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openImageFolder() names the path and the layout for missing or empty folders", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.throws(
      () => openImageFolder({ layout: "imagenet", root, split: "val" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(join(root, "val")) &&
        e.message.includes("train/<wnid>/*.JPEG"),
    );
    await Deno.mkdir(join(root, "train/empty"), { recursive: true });
    assert.throws(
      () => openImageFolder({ layout: "image-folder", root, split: "train" }),
      (e: unknown) => e instanceof DataError && /no images/.test(e.message),
    );
    assert.throws(
      () => openImageFolder({ layout: "tiny-imagenet", root: join(root, "none"), split: "train" }),
      (e: unknown) => e instanceof DataError && e.message.includes("wnids.txt"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openImageFolder() refuses (fail) or warns about and upscales (skip) images smaller than the decode size", async () => {
  const root = await Deno.makeTempDir();
  try {
    await write(join(root, "train/n0001/small.png"), solid(10, 12, GREEN, "png"));
    await write(join(root, "train/n0001/big.png"), solid(40, 40, RED, "png"));
    const fail = openImageFolder({
      layout: "imagenet",
      root,
      split: "train",
      decodeSize: 32,
      onBadImage: "fail",
    });
    const small = fail.files.findIndex((f) => f.endsWith("small.png"));
    await assert.rejects(() => fail.get(small), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(
        e.message,
        /small\.png.*10x12 px, smaller than the decode size 32 px.*data\.imageSize/s,
      );
      return true;
    });
    assert.equal((await fail.get(1 - small)).image.height, 32); // a big enough image is fine
    const warnings: string[] = [];
    const skip = openImageFolder({
      layout: "imagenet",
      root,
      split: "train",
      decodeSize: 32,
      onBadImage: "skip",
      onWarning: (m) => warnings.push(m),
    });
    const item = await skip.get(small);
    await skip.get(small);
    assert.deepEqual([item.image.height, item.image.width], [32, 32]);
    near(meanRgb(item.image.data), GREEN, 3);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /small\.png is 10x12 px.*upscaled/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
