/**
 * One entry point for every dataset: `openDataset({ name, root, split, ... })`.
 *
 * @module
 */

import { openCifar10, openCifar100 } from "./cifar.ts";
import { DataError } from "./errors.ts";
import { openImageFolder } from "./image_folder.ts";
import { openFashionMnist } from "./idx.ts";
import { DATASET_NAMES } from "./names.ts";
import { checkNormalization, normalizedDataset, withNormalization } from "./normalize.ts";

export { withNormalization };
import { openStl10 } from "./stl10.ts";
import { makeSynthetic } from "./synthetic.ts";
import type { Dataset, Item } from "./types.ts";

/** Options of `openDataset` (the `data` section of the config, minus augmentation). */
export interface OpenOptions {
  /** One of `DATASET_NAMES`. */
  name: string;
  /** Dataset folder; "" = embedded default (fashion-mnist) or generated (synthetic). */
  root: string;
  split: string;
  /** Keep only the first N items (0/absent = all). */
  limit?: number;
  /** Decode side for image folders; image side for synthetic (0/absent = default). */
  imageSize?: number;
  /** Image folders: "skip" (warn) or "fail" on an unreadable file. */
  onBadImage?: string;
  /** Synthetic only: generator seed (default 0). */
  seed?: number;
  /**
   * Per-channel mean and std (pixels in [0, 1]) that replace the dataset's own normalisation
   * constants, e.g. a run's imported `config.json`; absent: the dataset's (the default).
   */
  mean?: readonly number[];
  std?: readonly number[];
  /**
   * `data.normalize`: `standard` (default: the dataset's mean / std) or `unit` (x / 255, mean 0
   * and std 1; see `normalize.ts`). Explicit `mean` / `std` win over it.
   */
  normalize?: string;
}

/** Where each dataset expects `--data.root` to point. */
const ROOT_LAYOUTS: Readonly<Record<string, string>> = Object.freeze({
  "cifar10": "a folder holding cifar-10-batches-bin/ (data_batch_1..5.bin, test_batch.bin)",
  "cifar100": "a folder holding cifar-100-binary/ (train.bin, test.bin)",
  "stl10": "a folder holding stl10_binary/ (train_X.bin, train_y.bin, test_X.bin, ...)",
  "tiny-imagenet": "tiny-imagenet-200/ (wnids.txt, train/<wnid>/images/, val/images/, " +
    "val/val_annotations.txt)",
  "imagenet": "a folder with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG",
  "image-folder": "a folder with <split>/<class>/*.{jpg,jpeg,png,webp}",
});

/**
 * Native (or default decoded) image side of a dataset, used when
 * `data.imageSize` is 0: 28, 32, 32, 96, 64, 256, 256, 32.
 */
export function nativeSize(name: string): number {
  switch (name) {
    case "fashion-mnist":
      return 28;
    case "cifar10":
    case "cifar100":
    case "synthetic":
      return 32;
    case "stl10":
      return 96;
    case "tiny-imagenet":
      return 64;
    case "imagenet":
    case "image-folder":
      return 256;
  }
  throw unknownName(name);
}

/** Channels of a dataset's items (1 for fashion-mnist, 3 otherwise; synthetic defaults to 3). */
export function nativeChannels(name: string): number {
  if (!DATASET_NAMES.includes(name)) throw unknownName(name);
  return name === "fashion-mnist" ? 1 : 3;
}

function unknownName(name: string): Error {
  return new Error(
    `unknown dataset "${name}"; expected one of ${
      DATASET_NAMES.map((n) => `"${n}"`).join(", ")
    } (set --data.name)`,
  );
}

/**
 * Wraps `ds` to its first `n` items (`ds` itself when `n` is 0 or >= its length).
 */
export function limitDataset(ds: Dataset, n: number): Dataset {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`limit ${n}: expected a non-negative integer (0 = all items)`);
  }
  if (n === 0 || n >= ds.length) return ds;
  const inner = ds;
  return {
    name: `${ds.name}[:${n}]`,
    length: n,
    channels: ds.channels,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    mean: ds.mean,
    std: ds.std,
    get(i: number): Promise<Item> {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        throw new RangeError(`${this.name}: index ${i} out of range; expected 0..${n - 1}`);
      }
      return inner.get(i);
    },
    close(): void {
      inner.close?.();
    },
  };
}

/**
 * Opens dataset `name` from `root`, split `split`, optionally limited to its
 * first `limit` items. Unknown names list the valid ones; a missing root (for
 * anything but fashion-mnist and synthetic) says which layout is expected.
 * `mean` / `std` replace the dataset's normalisation ({@linkcode withNormalization}).
 *
 * @example
 * ```ts
 * import { openDataset } from "./registry.ts";
 * const ds = await openDataset({ name: "fashion-mnist", root: "", split: "train", limit: 1000 });
 * if (ds.length !== 1000) throw new Error(`limit 1000 gave ${ds.length} items`);
 * ```
 */
export function openDataset(opts: OpenOptions): Promise<Dataset> {
  return Promise.resolve().then(() => {
    const rule = checkNormalization(opts.normalize ?? "standard");
    const ds = normalizedDataset(limitDataset(openUnlimited(opts), opts.limit ?? 0), rule);
    if (opts.mean === undefined && opts.std === undefined) return ds;
    try {
      return withNormalization(ds, opts.mean ?? ds.mean, opts.std ?? ds.std);
    } catch (e) {
      ds.close?.();
      throw e;
    }
  });
}

function openUnlimited(opts: OpenOptions): Dataset {
  const { name, root, split } = opts;
  if (!DATASET_NAMES.includes(name)) throw unknownName(name);
  if (name === "fashion-mnist") return openFashionMnist({ root, split });
  if (name === "synthetic") {
    return makeSynthetic({
      size: opts.imageSize || nativeSize("synthetic"),
      count: opts.limit || 1024,
      split,
      seed: opts.seed ?? 0,
    });
  }
  if (root === "") {
    throw new DataError(
      `--data.root (for ${name})`,
      "no dataset folder given (only fashion-mnist and synthetic have a built-in default)",
      `Download ${name} and pass ${ROOT_LAYOUTS[name]} as --data.root=/path/to/folder`,
    );
  }
  switch (name) {
    case "cifar10":
      return openCifar10({ root, split });
    case "cifar100":
      return openCifar100({ root, split });
    case "stl10":
      return openStl10({ root, split });
    case "tiny-imagenet":
    case "imagenet":
    case "image-folder":
      return openImageFolder({
        layout: name,
        root,
        split,
        decodeSize: opts.imageSize || 0,
        onBadImage: opts.onBadImage ?? "skip",
      });
  }
  throw unknownName(name);
}
