/**
 * CIFAR-10 and CIFAR-100 readers for the official binary versions.
 *
 * CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin`,
 * `test_batch.bin`, `batches.meta.txt`; each record is 1 label byte + 3072
 * pixel bytes laid out [C=3][H=32][W=32].
 * CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`,
 * `fine_label_names.txt`; each record is coarse byte, fine byte, 3072 pixel
 * bytes. The fine label is used.
 *
 * Files are held in memory as read; pixels are converted CHW → HWC per item.
 *
 * @module
 */

import { join } from "node:path";
import {
  badSplit,
  checkIndex,
  fileSize,
  isDir,
  isFile,
  readBytes,
  readLinesIfExists,
} from "./_common.ts";
import { DataError, formatBytes } from "./errors.ts";
import type { Dataset, Item } from "./types.ts";

/** CIFAR image side in pixels. */
export const CIFAR_SIZE = 32;
const PIXELS = 3 * CIFAR_SIZE * CIFAR_SIZE; // 3072

/** CIFAR-10 class names, used when `batches.meta.txt` is absent. */
export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
]);
/** CIFAR-10 per-channel mean (RGB, pixels in [0, 1]). */
export const CIFAR10_MEAN: readonly number[] = Object.freeze([0.4914, 0.4822, 0.4465]);
/** CIFAR-10 per-channel std (RGB, pixels in [0, 1]). */
export const CIFAR10_STD: readonly number[] = Object.freeze([0.2470, 0.2435, 0.2616]);
/** CIFAR-100 per-channel mean (RGB, pixels in [0, 1]). */
export const CIFAR100_MEAN: readonly number[] = Object.freeze([0.5071, 0.4865, 0.4409]);
/** CIFAR-100 per-channel std (RGB, pixels in [0, 1]). */
export const CIFAR100_STD: readonly number[] = Object.freeze([0.2673, 0.2564, 0.2762]);

/** CIFAR-100 fine class names (alphabetical = label order), used when `fine_label_names.txt` is absent. */
export const CIFAR100_CLASSES: readonly string[] = Object.freeze(
  ("apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus " +
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch " +
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo " +
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain " +
    "mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain " +
    "plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk " +
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone " +
    "television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm")
    .split(" "),
);

/** The valid CIFAR splits. */
export const CIFAR_SPLITS: readonly string[] = Object.freeze(["train", "test"]);

/** Where `root` points: the parent of the binary folder, or that folder itself. */
function resolveFolder(root: string, folder: string, marker: string, layout: string): string {
  const inside = join(root, folder);
  if (isDir(inside)) return inside;
  if (isDir(root) && isFile(join(root, marker))) return root;
  throw new DataError(
    inside,
    "folder not found",
    `Expected ${layout}; set --data.root to the folder holding ${folder}/ (or to ${folder}/ itself)`,
  );
}

/** One parsed CIFAR record file. */
interface RecordFile {
  file: string;
  bytes: Uint8Array;
  count: number;
}

/** Reads a record file and checks its size is a whole number of records. */
function readRecords(file: string, recordBytes: number, hint: string): RecordFile {
  fileSize(file, hint);
  const bytes = readBytes(file, hint);
  if (bytes.length === 0 || bytes.length % recordBytes !== 0) {
    throw new DataError(
      file,
      `expected a whole number of ${recordBytes}-byte records, found ${
        formatBytes(bytes.length)
      } (${Math.floor(bytes.length / recordBytes)} records + ${bytes.length % recordBytes} bytes)`,
      `The file is truncated or not the binary version. ${hint}`,
    );
  }
  return { file, bytes, count: bytes.length / recordBytes };
}

/** A CIFAR split held in memory: items are [32, 32, 3] uint8 rasters. */
export class CifarDataset implements Dataset {
  readonly name: string;
  readonly length: number;
  readonly channels = 3;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** The binary folder the files were read from. */
  readonly root: string;
  #files: RecordFile[];
  #starts: number[];
  #recordBytes: number;
  #labelOffset: number;

  constructor(
    fields: {
      name: string;
      root: string;
      classNames: readonly string[];
      mean: readonly number[];
      std: readonly number[];
    },
    files: RecordFile[],
    recordBytes: number,
    labelOffset: number,
  ) {
    this.name = fields.name;
    this.root = fields.root;
    this.classNames = fields.classNames;
    this.numClasses = fields.classNames.length;
    this.mean = fields.mean;
    this.std = fields.std;
    this.#files = files;
    this.#recordBytes = recordBytes;
    this.#labelOffset = labelOffset;
    this.#starts = [];
    let n = 0;
    for (const f of files) {
      this.#starts.push(n);
      n += f.count;
    }
    this.length = n;
    this.#checkLabels();
  }

  #checkLabels(): void {
    for (const f of this.#files) {
      for (let r = 0; r < f.count; r++) {
        const label = f.bytes[r * this.#recordBytes + this.#labelOffset];
        if (label >= this.numClasses) {
          throw new DataError(
            f.file,
            `record ${r} has label ${label}; expected 0..${this.numClasses - 1}`,
            "The file is corrupt or from another dataset; re-download it",
          );
        }
      }
    }
  }

  /** Item `i`: a fresh [32, 32, 3] uint8 raster (converted from CHW) and its label. */
  get(i: number): Promise<Item> {
    checkIndex(i, this.length, this.name);
    let k = this.#files.length - 1;
    while (this.#starts[k] > i) k--;
    const f = this.#files[k];
    const off = (i - this.#starts[k]) * this.#recordBytes;
    const label = f.bytes[off + this.#labelOffset];
    const src = f.bytes.subarray(off + this.#recordBytes - PIXELS, off + this.#recordBytes);
    const hw = CIFAR_SIZE * CIFAR_SIZE;
    const out = new Uint8Array(PIXELS);
    for (let p = 0; p < hw; p++) {
      // [C, H, W] → [H, W, C]
      out[3 * p] = src[p];
      out[3 * p + 1] = src[hw + p];
      out[3 * p + 2] = src[2 * hw + p];
    }
    return Promise.resolve({
      image: { data: out, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3 },
      label,
      index: i,
    });
  }
}

const CIFAR10_LAYOUT =
  "cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt} " +
  "(the CIFAR-10 binary version)";
const CIFAR100_LAYOUT = "cifar-100-binary/{train.bin, test.bin, fine_label_names.txt} " +
  "(the CIFAR-100 binary version)";
const CIFAR_HINT = "Re-download the binary version from www.cs.toronto.edu/~kriz/cifar.html";

/**
 * Opens CIFAR-10 (binary version). `root` is the folder containing
 * `cifar-10-batches-bin/`, or that folder itself.
 *
 * @example
 * ```ts ignore
 * const ds = openCifar10({ root: "/data", split: "test" }); // 10000 items, [32, 32, 3]
 * ```
 */
export function openCifar10(opts: { root: string; split: string }): CifarDataset {
  if (!CIFAR_SPLITS.includes(opts.split)) throw badSplit("cifar10", opts.split, CIFAR_SPLITS);
  const dir = resolveFolder(opts.root, "cifar-10-batches-bin", "test_batch.bin", CIFAR10_LAYOUT);
  const names = opts.split === "train"
    ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`)
    : ["test_batch.bin"];
  const files = names.map((n) => readRecords(join(dir, n), 1 + PIXELS, CIFAR_HINT));
  const classNames = readLinesIfExists(join(dir, "batches.meta.txt")) ?? CIFAR10_CLASSES;
  return new CifarDataset(
    {
      name: `cifar10/${opts.split}`,
      root: dir,
      classNames,
      mean: CIFAR10_MEAN,
      std: CIFAR10_STD,
    },
    files,
    1 + PIXELS,
    0,
  );
}

/**
 * Opens CIFAR-100 (binary version) with fine labels. `root` is the folder
 * containing `cifar-100-binary/`, or that folder itself.
 */
export function openCifar100(opts: { root: string; split: string }): CifarDataset {
  if (!CIFAR_SPLITS.includes(opts.split)) throw badSplit("cifar100", opts.split, CIFAR_SPLITS);
  const dir = resolveFolder(opts.root, "cifar-100-binary", "test.bin", CIFAR100_LAYOUT);
  const file = readRecords(join(dir, `${opts.split}.bin`), 2 + PIXELS, CIFAR_HINT);
  const classNames = readLinesIfExists(join(dir, "fine_label_names.txt")) ?? CIFAR100_CLASSES;
  return new CifarDataset(
    {
      name: `cifar100/${opts.split}`,
      root: dir,
      classNames,
      mean: CIFAR100_MEAN,
      std: CIFAR100_STD,
    },
    [file],
    2 + PIXELS,
    1,
  );
}
