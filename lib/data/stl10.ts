/**
 * STL-10 reader for the official binary version (`stl10_binary/`).
 *
 * Files: `train_X.bin`, `train_y.bin`, `test_X.bin`, `test_y.bin`,
 * `unlabeled_X.bin`, `class_names.txt`. Each image is 96x96x3 bytes stored
 * as 3 channel planes, each plane column-major, i.e. [C][W][H]. Labels are
 * bytes 1..10, stored here as 0..9; the unlabeled split has label -1.
 *
 * Pixels are read on demand through a file handle (the unlabeled file is
 * 2.7 GB); call `close()` when done to release it.
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

/** STL-10 image side in pixels. */
export const STL10_SIZE = 96;
const IMAGE_BYTES = 3 * STL10_SIZE * STL10_SIZE; // 27648

/** STL-10 class names, used when `class_names.txt` is absent. */
export const STL10_CLASSES: readonly string[] = Object.freeze([
  "airplane",
  "bird",
  "car",
  "cat",
  "deer",
  "dog",
  "horse",
  "monkey",
  "ship",
  "truck",
]);
/** STL-10 per-channel mean (RGB, pixels in [0, 1]). */
export const STL10_MEAN: readonly number[] = Object.freeze([0.4467, 0.4398, 0.4066]);
/** STL-10 per-channel std (RGB, pixels in [0, 1]). */
export const STL10_STD: readonly number[] = Object.freeze([0.2603, 0.2566, 0.2713]);

/** The valid STL-10 splits. */
export const STL10_SPLITS: readonly string[] = Object.freeze([
  "train",
  "test",
  "unlabeled",
  "train+unlabeled",
]);

const STL10_LAYOUT = "stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin, " +
  "unlabeled_X.bin, class_names.txt} (the STL-10 binary version)";
const STL10_HINT = "Re-download the binary version from cs.stanford.edu/~acoates/stl10";

/** One image file opened lazily, with its labels (null: unlabeled). */
class StlPart {
  readonly file: string;
  readonly count: number;
  readonly labels: Int8Array | null;
  #handle: Deno.FsFile | null = null;

  constructor(file: string, count: number, labels: Int8Array | null) {
    this.file = file;
    this.count = count;
    this.labels = labels;
  }

  /** Reads image `k` ([C][W][H] bytes) into `buf`. */
  read(k: number, buf: Uint8Array): void {
    if (this.#handle === null) this.#handle = Deno.openSync(this.file, { read: true });
    const h = this.#handle;
    // Synchronous seek + read: no other get() can interleave between them.
    h.seekSync(k * IMAGE_BYTES, Deno.SeekMode.Start);
    let got = 0;
    while (got < IMAGE_BYTES) {
      const n = h.readSync(buf.subarray(got));
      if (n === null || n === 0) {
        throw new DataError(
          this.file,
          `unexpected end of file reading image ${k} (byte ${k * IMAGE_BYTES + got})`,
          `The file changed or was truncated after opening. ${STL10_HINT}`,
        );
      }
      got += n;
    }
  }

  close(): void {
    this.#handle?.close();
    this.#handle = null;
  }
}

/** An STL-10 split read on demand: items are [96, 96, 3] uint8 rasters. */
export class Stl10Dataset implements Dataset {
  readonly name: string;
  readonly length: number;
  readonly channels = 3;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly mean: readonly number[] = STL10_MEAN;
  readonly std: readonly number[] = STL10_STD;
  /** The binary folder the files are read from. */
  readonly root: string;
  #parts: StlPart[];
  #buf = new Uint8Array(IMAGE_BYTES);

  constructor(name: string, root: string, classNames: readonly string[], parts: StlPart[]) {
    this.name = name;
    this.root = root;
    this.classNames = classNames;
    this.numClasses = classNames.length;
    this.#parts = parts;
    this.length = parts.reduce((n, p) => n + p.count, 0);
  }

  /** Item `i`: a fresh [96, 96, 3] uint8 raster (converted from [C][W][H]) and its label. */
  get(i: number): Promise<Item> {
    checkIndex(i, this.length, this.name);
    let k = i;
    let part = this.#parts[0];
    for (const p of this.#parts) {
      part = p;
      if (k < p.count) break;
      k -= p.count;
    }
    const src = this.#buf;
    part.read(k, src);
    const s = STL10_SIZE;
    const plane = s * s;
    const out = new Uint8Array(IMAGE_BYTES);
    for (let c = 0; c < 3; c++) {
      const base = c * plane;
      for (let x = 0; x < s; x++) {
        const col = base + x * s; // column x of plane c: s bytes, y = 0..s-1
        for (let y = 0; y < s; y++) out[(y * s + x) * 3 + c] = src[col + y];
      }
    }
    return Promise.resolve({
      image: { data: out, height: s, width: s, channels: 3 },
      label: part.labels === null ? -1 : part.labels[k],
      index: i,
    });
  }

  /** Releases the open file handles (reading again reopens them). */
  close(): void {
    for (const p of this.#parts) p.close();
  }
}

/** Checks an images file's size and reads its labels file (when given). */
function openPart(dir: string, xName: string, yName: string | null): StlPart {
  const xFile = join(dir, xName);
  const size = fileSize(xFile, `Expected ${STL10_LAYOUT}. ${STL10_HINT}`);
  if (size === 0 || size % IMAGE_BYTES !== 0) {
    throw new DataError(
      xFile,
      `expected a whole number of ${IMAGE_BYTES}-byte images (96x96x3), found ${
        formatBytes(size)
      } (${Math.floor(size / IMAGE_BYTES)} images + ${size % IMAGE_BYTES} bytes)`,
      `The file is truncated or not the binary version. ${STL10_HINT}`,
    );
  }
  const count = size / IMAGE_BYTES;
  if (yName === null) return new StlPart(xFile, count, null);
  const yFile = join(dir, yName);
  const raw = readBytes(yFile, `Expected ${STL10_LAYOUT}. ${STL10_HINT}`);
  if (raw.length !== count) {
    throw new DataError(
      yFile,
      `expected ${count} labels (one per image in ${xFile}), found ${raw.length}`,
      `Images and labels come from different downloads or one is truncated. ${STL10_HINT}`,
    );
  }
  const labels = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    if (raw[i] < 1 || raw[i] > 10) {
      throw new DataError(
        yFile,
        `label byte ${raw[i]} at index ${i}; expected 1..10`,
        `The file is corrupt. ${STL10_HINT}`,
      );
    }
    labels[i] = raw[i] - 1;
  }
  return new StlPart(xFile, count, labels);
}

/**
 * Opens STL-10 (binary version). `root` is the folder containing
 * `stl10_binary/`, or that folder itself. Splits: train | test | unlabeled |
 * train+unlabeled (train items first, then the unlabeled ones with label -1).
 *
 * @example
 * ```ts ignore
 * const ds = openStl10({ root: "/data", split: "train" }); // 5000 items, [96, 96, 3]
 * const { image } = await ds.get(0);
 * ds.close();
 * ```
 */
export function openStl10(opts: { root: string; split: string }): Stl10Dataset {
  if (!STL10_SPLITS.includes(opts.split)) throw badSplit("stl10", opts.split, STL10_SPLITS);
  let dir = join(opts.root, "stl10_binary");
  if (!isDir(dir)) {
    const self = ["train_X.bin", "test_X.bin", "unlabeled_X.bin"].some((f) =>
      isFile(join(opts.root, f))
    );
    if (!self) {
      throw new DataError(
        dir,
        "folder not found",
        `Expected ${STL10_LAYOUT}; set --data.root to the folder holding stl10_binary/ ` +
          "(or to stl10_binary/ itself)",
      );
    }
    dir = opts.root;
  }
  const parts: StlPart[] = [];
  if (opts.split === "train" || opts.split === "train+unlabeled") {
    parts.push(openPart(dir, "train_X.bin", "train_y.bin"));
  }
  if (opts.split === "test") parts.push(openPart(dir, "test_X.bin", "test_y.bin"));
  if (opts.split === "unlabeled" || opts.split === "train+unlabeled") {
    parts.push(openPart(dir, "unlabeled_X.bin", null));
  }
  const classNames = readLinesIfExists(join(dir, "class_names.txt")) ?? STL10_CLASSES;
  return new Stl10Dataset(`stl10/${opts.split}`, dir, classNames, parts);
}
