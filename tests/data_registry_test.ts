import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DataError,
  DATASET_NAMES,
  limitDataset,
  makeSynthetic,
  nativeChannels,
  nativeSize,
  openDataset,
} from "../lib/data/mod.ts";

Deno.test("openDataset() opens the embedded Fashion-MNIST and applies the limit", async () => {
  const ds = await openDataset({ name: "fashion-mnist", root: "", split: "test", limit: 100 });
  assert.equal(ds.length, 100);
  assert.equal(ds.channels, 1);
  assert.equal(ds.numClasses, 10);
  assert.equal((await ds.get(99)).index, 99);
  assert.throws(() => ds.get(100), RangeError);
});

Deno.test("openDataset() lists valid names for an unknown one", async () => {
  await assert.rejects(
    () => openDataset({ name: "mnist10", root: "", split: "train" }),
    (e: unknown) =>
      e instanceof Error && e.message.includes('"mnist10"') &&
      DATASET_NAMES.every((n) => e.message.includes(n)),
  );
});

Deno.test("openDataset() says which layout to pass as --data.root when root is missing", async () => {
  for (
    const name of ["cifar10", "cifar100", "stl10", "tiny-imagenet", "imagenet", "image-folder"]
  ) {
    await assert.rejects(
      () => openDataset({ name, root: "", split: "train" }),
      (e: unknown) => e instanceof DataError && /--data\.root/.test(e.message),
    );
  }
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => openDataset({ name: "cifar10", root: dir, split: "train" }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(join(dir, "cifar-10-batches-bin")),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDataset() makes a synthetic set of the configured size", async () => {
  const ds = await openDataset({
    name: "synthetic",
    root: "",
    split: "train",
    imageSize: 20,
    limit: 7,
  });
  assert.equal(ds.length, 7);
  assert.equal((await ds.get(6)).image.height, 20);
});

Deno.test("nativeSize() and nativeChannels() know every dataset name", () => {
  for (const n of DATASET_NAMES) assert.ok(nativeSize(n) > 0 && nativeChannels(n) > 0);
  assert.equal(nativeSize("fashion-mnist"), 28);
  assert.equal(nativeSize("stl10"), 96);
  assert.throws(() => nativeSize("nope"), /"nope"/);
});

Deno.test("limitDataset() keeps the first n items and passes 0 through", async () => {
  const ds = makeSynthetic({ count: 10, size: 8 });
  assert.equal(limitDataset(ds, 0), ds);
  assert.equal(limitDataset(ds, 50), ds);
  const small = limitDataset(ds, 4);
  assert.equal(small.length, 4);
  assert.deepEqual((await small.get(3)).image.data, (await ds.get(3)).image.data);
  assert.throws(() => limitDataset(ds, -1), /limit -1/);
});
