import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  DataError,
  embeddedFashionMnistRoot,
  fashionMnistRoot,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  makeSynthetic,
  openCifar10,
  openCifar100,
  openFashionMnist,
  openIdx,
  openStl10,
  SYNTHETIC_BACKGROUND_MAX,
  SYNTHETIC_OBJECT_MIN,
} from "../lib/data/mod.ts";

/** The value `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail("expected an exception");
}

/** IDX bytes: magic, big-endian dims, payload. */
function idx(magic: number, dims: number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

/** Writes an IDX split of `n` images of 4x3 (pixel = 10 * image + position) into `dir`. */
function writeIdxSplit(dir: string, prefix: string, n: number, gz: boolean, nLabels = n) {
  const px = new Uint8Array(n * 12).map((_, p) => (Math.floor(p / 12) * 10 + (p % 12)) % 256);
  const labels = new Uint8Array(nLabels).map((_, i) => i % 10);
  const enc = (b: Uint8Array) => (gz ? gzipSync(b) : b);
  const sfx = gz ? ".gz" : "";
  Deno.writeFileSync(
    join(dir, `${prefix}-images-idx3-ubyte${sfx}`),
    enc(idx(IDX_IMAGES_MAGIC, [n, 4, 3], px)),
  );
  Deno.writeFileSync(
    join(dir, `${prefix}-labels-idx1-ubyte${sfx}`),
    enc(idx(IDX_LABELS_MAGIC, [nLabels], labels)),
  );
}

Deno.test("openIdx() reads gzipped and raw IDX splits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeIdxSplit(dir, "train", 5, true);
    writeIdxSplit(dir, "t10k", 3, false);
    const train = openIdx({ root: dir, split: "train" });
    const test = openIdx({ root: dir, split: "test" });
    assert.equal(train.length, 5);
    assert.equal(test.length, 3);
    assert.equal(train.name, "fashion-mnist/train");
    const item = await train.get(2);
    assert.deepEqual([item.image.height, item.image.width, item.image.channels], [4, 3, 1]);
    assert.deepEqual(Array.from(item.image.data), Array.from({ length: 12 }, (_, p) => 20 + p));
    assert.equal(item.label, 2);
    assert.equal(item.index, 2);
    assert.equal((await test.get(1)).image.data[5], 15);
    assert.throws(() => train.get(5), RangeError);
    assert.throws(() => openIdx({ root: dir, split: "val" }), /"train", "test"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openIdx() rejects truncated files with expected vs found bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeIdxSplit(dir, "train", 5, false);
    const file = join(dir, "train-images-idx3-ubyte");
    const bytes = Deno.readFileSync(file);
    Deno.writeFileSync(file, bytes.subarray(0, bytes.length - 7));
    const e = thrown(() => openIdx({ root: dir, split: "train" }));
    assert.ok(e instanceof DataError, String(e));
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, /truncated/);
    assert.match(e.message, /expected 76 bytes/);
    assert.match(e.message, /found 69 bytes/);
    assert.match(e.message, /[Rr]e-download/);
    // A truncated gzip stream is a DataError naming the file too.
    const gz = join(dir, "t10k-images-idx3-ubyte.gz");
    writeIdxSplit(dir, "t10k", 5, true);
    const z = Deno.readFileSync(gz);
    Deno.writeFileSync(gz, z.subarray(0, z.length - 10));
    assert.throws(
      () => openIdx({ root: dir, split: "test" }),
      (e: unknown) => e instanceof DataError && e.message.includes(gz) && /gzip/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openIdx() rejects a wrong magic number, naming the file and both values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeIdxSplit(dir, "train", 2, true);
    // Swap: labels file where images are expected.
    const lab = Deno.readFileSync(join(dir, "train-labels-idx1-ubyte.gz"));
    const file = join(dir, "train-images-idx3-ubyte.gz");
    Deno.writeFileSync(file, lab);
    assert.throws(
      () => openIdx({ root: dir, split: "train" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(file) && e.message.includes("0x00000803") &&
        e.message.includes("0x00000801"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openIdx() rejects image/label count mismatch and missing files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeIdxSplit(dir, "train", 4, true, 3);
    assert.throws(
      () => openIdx({ root: dir, split: "train" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes("train-labels-idx1-ubyte.gz") &&
        /expected 4 labels/.test(e.message) && /found 3/.test(e.message),
    );
    assert.throws(
      () => openIdx({ root: dir, split: "test" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes("t10k-images-idx3-ubyte") &&
        /--data.root/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openFashionMnist() opens the embedded copy: 60000/10000 items of 28x28x1", async () => {
  const root = fashionMnistRoot("");
  assert.ok(root.endsWith("fashion-mnist"), root);
  assert.equal(embeddedFashionMnistRoot(), root);
  const train = openFashionMnist({ root: "", split: "train" });
  const test = openFashionMnist({ root: "", split: "test" });
  assert.equal(train.length, 60000);
  assert.equal(test.length, 10000);
  assert.equal(train.root, root);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < test.length; i += 1) counts[(await test.get(i)).label]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  const item = await train.get(59999);
  assert.deepEqual([item.image.height, item.image.width, item.image.channels], [28, 28, 1]);
  assert.ok(item.image.data instanceof Uint8Array);
  assert.equal(train.classNames[9], "Ankle boot");
  assert.deepEqual([train.mean, train.std], [[0.2860], [0.3530]]);
});

/** CIFAR records: pixel (c, y, x) of record r = (r * 7 + c * 50 + y + x) % 256, stored CHW. */
function cifarRecords(n: number, labelBytes: number[][]): Uint8Array {
  const rec = labelBytes[0].length + 3072;
  const out = new Uint8Array(n * rec);
  for (let r = 0; r < n; r++) {
    out.set(labelBytes[r], r * rec);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          out[r * rec + labelBytes[r].length + c * 1024 + y * 32 + x] = (r * 7 + c * 50 + y + x) %
            256;
        }
      }
    }
  }
  return out;
}

Deno.test("openCifar10() reads the binary batches and converts CHW to HWC", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bin = join(dir, "cifar-10-batches-bin");
    Deno.mkdirSync(bin);
    for (let k = 1; k <= 5; k++) {
      Deno.writeFileSync(join(bin, `data_batch_${k}.bin`), cifarRecords(2, [[k], [9]]));
    }
    Deno.writeFileSync(join(bin, "test_batch.bin"), cifarRecords(3, [[0], [1], [2]]));
    Deno.writeTextFileSync(join(bin, "batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
    for (const root of [dir, bin]) {
      const train = openCifar10({ root, split: "train" });
      assert.equal(train.length, 10);
      assert.deepEqual(train.classNames, [..."abcdefghij"]);
      assert.deepEqual(
        await Promise.all([0, 1, 2, 9].map(async (i) => (await train.get(i)).label)),
        [1, 9, 2, 9],
      );
    }
    const test = openCifar10({ root: dir, split: "test" });
    const item = await test.get(2);
    assert.deepEqual([item.image.height, item.image.width, item.image.channels], [32, 32, 3]);
    const y = 5, x = 11;
    for (let c = 0; c < 3; c++) {
      assert.equal(item.image.data[(y * 32 + x) * 3 + c], (2 * 7 + c * 50 + y + x) % 256);
    }
    // Not a whole number of records.
    const bad = join(bin, "test_batch.bin");
    Deno.writeFileSync(bad, new Uint8Array(3073 * 2 + 5));
    assert.throws(
      () => openCifar10({ root: dir, split: "test" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(bad) && /3073-byte records/.test(e.message),
    );
    assert.throws(() => openCifar10({ root: join(dir, "nope"), split: "test" }), DataError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openCifar100() uses the fine label", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bin = join(dir, "cifar-100-binary");
    Deno.mkdirSync(bin);
    Deno.writeFileSync(join(bin, "test.bin"), cifarRecords(2, [[3, 77], [19, 99]]));
    const ds = openCifar100({ root: dir, split: "test" });
    assert.equal(ds.numClasses, 100);
    assert.equal(ds.classNames[99], "worm");
    assert.equal((await ds.get(0)).label, 77);
    assert.equal((await ds.get(1)).label, 99);
    assert.equal((await ds.get(1)).image.data[3 * 33 + 1], (7 + 50 + 2) % 256);
    Deno.writeFileSync(join(bin, "train.bin"), new Uint8Array(3073));
    assert.throws(() => openCifar100({ root: bin, split: "train" }), /3074-byte records/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** STL-10 image bytes in the official [C][W][H] layout: value(c, y, x) = (n*3 + c*40 + 2y + x) % 256. */
function stlImages(n: number, first = 0): Uint8Array {
  const out = new Uint8Array(n * 27648);
  for (let k = 0; k < n; k++) {
    for (let c = 0; c < 3; c++) {
      for (let x = 0; x < 96; x++) {
        for (let y = 0; y < 96; y++) {
          out[k * 27648 + c * 9216 + x * 96 + y] = ((first + k) * 3 + c * 40 + 2 * y + x) % 256;
        }
      }
    }
  }
  return out;
}

Deno.test("openStl10() reads column-major planes, labels 1..10 as 0..9, unlabeled as -1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bin = join(dir, "stl10_binary");
    Deno.mkdirSync(bin);
    Deno.writeFileSync(join(bin, "train_X.bin"), stlImages(3));
    Deno.writeFileSync(join(bin, "train_y.bin"), new Uint8Array([1, 10, 4]));
    Deno.writeFileSync(join(bin, "test_X.bin"), stlImages(2));
    Deno.writeFileSync(join(bin, "test_y.bin"), new Uint8Array([2, 3]));
    Deno.writeFileSync(join(bin, "unlabeled_X.bin"), stlImages(4, 100));
    const train = openStl10({ root: dir, split: "train" });
    try {
      assert.equal(train.length, 3);
      const item = await train.get(1);
      assert.equal(item.label, 9);
      assert.deepEqual([item.image.height, item.image.width, item.image.channels], [96, 96, 3]);
      // A known pixel: y = 7, x = 30 (not symmetric, so a transposed read would differ).
      const y = 7, x = 30;
      for (let c = 0; c < 3; c++) {
        assert.equal(item.image.data[(y * 96 + x) * 3 + c], (1 * 3 + c * 40 + 2 * y + x) % 256);
      }
      assert.equal((await train.get(0)).label, 0);
    } finally {
      train.close();
    }
    const both = openStl10({ root: bin, split: "train+unlabeled" });
    try {
      assert.equal(both.length, 7);
      const u = await both.get(4); // unlabeled image 1
      assert.equal(u.label, -1);
      assert.equal(u.index, 4);
      assert.equal(u.image.data[(2 * 96 + 5) * 3], (101 * 3 + 4 + 5) % 256);
      assert.equal((await both.get(2)).label, 3);
    } finally {
      both.close();
    }
    const unl = openStl10({ root: dir, split: "unlabeled" });
    assert.equal(unl.length, 4);
    unl.close();
    // Label count mismatch and a partial image.
    Deno.writeFileSync(join(bin, "test_y.bin"), new Uint8Array([2, 3, 4]));
    assert.throws(
      () => openStl10({ root: dir, split: "test" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes("test_y.bin") &&
        /expected 2 labels/.test(e.message),
    );
    Deno.writeFileSync(join(bin, "train_X.bin"), stlImages(1).subarray(0, 1000));
    assert.throws(
      () => openStl10({ root: dir, split: "train" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes("train_X.bin") &&
        /27648-byte images/.test(e.message),
    );
    assert.throws(() => openStl10({ root: dir, split: "val" }), /train\+unlabeled/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeSynthetic() is deterministic and its object mask marks the bright pixels", async () => {
  for (const channels of [1, 3]) {
    const a = makeSynthetic({ count: 20, size: 24, channels, seed: 5 });
    const b = makeSynthetic({ count: 20, size: 24, channels, seed: 5 });
    const labels = new Set<number>();
    for (let i = 0; i < a.length; i++) {
      const x = await a.get(i);
      assert.deepEqual(x.image.data, (await b.get(i)).image.data);
      labels.add(x.label);
      const mask = a.objectMask(i).data;
      let area = 0;
      for (let p = 0; p < 24 * 24; p++) {
        area += mask[p];
        for (let c = 0; c < channels; c++) {
          const v = x.image.data[p * channels + c];
          if (mask[p]) assert.ok(v >= SYNTHETIC_OBJECT_MIN, `object pixel ${v}`);
          else assert.ok(v <= SYNTHETIC_BACKGROUND_MAX, `background pixel ${v}`);
        }
      }
      assert.ok(area > 0);
    }
    assert.deepEqual([...labels].sort(), [0, 1, 2]);
    assert.equal(a.mean.length, channels);
    const other = makeSynthetic({ count: 20, size: 24, channels, seed: 6 });
    assert.notDeepEqual((await other.get(0)).image.data, (await a.get(0)).image.data);
  }
});
