/**
 * MNIST / Fashion-MNIST readers for IDX files, gzipped or not.
 *
 * Layout of `root`: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
 * `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
 * IDX format: big-endian magic (0x00000803 images, 0x00000801 labels), one
 * big-endian uint32 per dimension, then the uint8 payload.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { badSplit, checkIndex, errText, isFile, readBytes } from "./_common.ts";
import { DataError, formatBytes } from "./errors.ts";
import type { Dataset, Item } from "./types.ts";

/** IDX magic number of a uint8 3-D array (images [N, H, W]). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** IDX magic number of a uint8 1-D array (labels [N]). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** Fashion-MNIST class names, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);
/** Fashion-MNIST pixel mean (pixels in [0, 1]). */
export const FASHION_MNIST_MEAN: readonly number[] = Object.freeze([0.2860]);
/** Fashion-MNIST pixel std (pixels in [0, 1]). */
export const FASHION_MNIST_STD: readonly number[] = Object.freeze([0.3530]);
/** MNIST class names ("0".."9"). */
export const MNIST_CLASSES: readonly string[] = Object.freeze(
  Array.from({ length: 10 }, (_, i) => String(i)),
);
/** MNIST pixel mean (pixels in [0, 1]). */
export const MNIST_MEAN: readonly number[] = Object.freeze([0.1307]);
/** MNIST pixel std (pixels in [0, 1]). */
export const MNIST_STD: readonly number[] = Object.freeze([0.3081]);

/** Debian's `dataset-fashion-mnist` package installs the files here. */
export const DEBIAN_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist";

/** A decoded IDX file: its dimensions and a view of its uint8 payload. */
export interface IdxArray {
  /** e.g. [N, 28, 28] for images, [N] for labels. */
  dims: number[];
  /** Row-major payload, `prod(dims)` bytes. */
  data: Uint8Array;
}

const IDX_HINT = "Re-download the file (Fashion-MNIST: github.com/zalandoresearch/fashion-mnist; " +
  "MNIST: the official IDX files) and check it against its SHA256SUMS";

/** True when `bytes` start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes (gunzipping first when they start with 1f 8b) and checks
 * the magic number and that the payload size matches the header.
 *
 * @param bytes raw file contents
 * @param file path quoted in errors
 * @param magic expected magic number (`IDX_IMAGES_MAGIC` or `IDX_LABELS_MAGIC`)
 */
export function parseIdx(bytes: Uint8Array, file: string, magic: number): IdxArray {
  let raw = bytes;
  if (isGzip(bytes)) {
    try {
      raw = gunzipSync(bytes);
    } catch (e) {
      throw new DataError(
        file,
        `gzip stream is corrupt or truncated (${errText(e)}); file has ${
          formatBytes(bytes.length)
        }`,
        IDX_HINT,
        { cause: e },
      );
    }
  }
  const hex = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");
  if (raw.length < 4) {
    throw new DataError(
      file,
      `expected an IDX header of at least 4 bytes, found ${formatBytes(raw.length)}`,
      IDX_HINT,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    throw new DataError(
      file,
      `expected IDX magic number ${hex(magic)} (${
        magic === IDX_IMAGES_MAGIC ? "uint8 images" : "uint8 labels"
      }), found ${hex(found)}`,
      `Check that this is the right file (images vs labels) and not corrupt. ${IDX_HINT}`,
    );
  }
  const ndims = found & 0xff;
  const headerBytes = 4 + 4 * ndims;
  if (raw.length < headerBytes) {
    throw new DataError(
      file,
      `truncated header: expected ${headerBytes} bytes for ${ndims} dimensions, found ${
        formatBytes(raw.length)
      }`,
      IDX_HINT,
    );
  }
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const n = view.getUint32(4 + 4 * d, false);
    dims.push(n);
    count *= n;
  }
  const expected = headerBytes + count;
  if (raw.length !== expected) {
    const what = raw.length < expected ? "truncated" : "has trailing bytes";
    throw new DataError(
      file,
      `${what}: header says dims [${dims.join(", ")}], so expected ${
        formatBytes(expected)
      } (uncompressed), found ${formatBytes(raw.length)}`,
      IDX_HINT,
    );
  }
  return { dims, data: raw.subarray(headerBytes) };
}

/** Reads and parses one IDX file (see `parseIdx`). */
export function readIdx(file: string, magic: number): IdxArray {
  return parseIdx(readBytes(file, IDX_HINT), file, magic);
}

/** Options of `openIdx`. */
export interface IdxOptions {
  /** Folder holding the four IDX files. */
  root: string;
  /** "train" or "test" (the `t10k-*` files). */
  split: string;
  /** Dataset name used in `Dataset.name` and messages (default "fashion-mnist"). */
  name?: string;
  /** Default: Fashion-MNIST's. */
  classNames?: readonly string[];
  /** Default: Fashion-MNIST's. */
  mean?: readonly number[];
  std?: readonly number[];
}

/** The valid splits of IDX datasets. */
export const IDX_SPLITS: readonly string[] = Object.freeze(["train", "test"]);

/** An IDX image set held in memory: items are [H, W, 1] uint8 rasters. */
export class IdxDataset implements Dataset {
  readonly name: string;
  readonly length: number;
  readonly channels = 1;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** The folder the files were read from. */
  readonly root: string;
  readonly height: number;
  readonly width: number;
  #pixels: Uint8Array;
  #labels: Uint8Array;

  /**
   * @param pixels [N, H, W] uint8
   * @param labels [N] uint8
   */
  constructor(
    fields: {
      name: string;
      root: string;
      classNames: readonly string[];
      mean: readonly number[];
      std: readonly number[];
    },
    pixels: IdxArray,
    labels: IdxArray,
  ) {
    this.name = fields.name;
    this.root = fields.root;
    this.classNames = fields.classNames;
    this.numClasses = fields.classNames.length;
    this.mean = fields.mean;
    this.std = fields.std;
    [this.length, this.height, this.width] = pixels.dims;
    this.#pixels = pixels.data;
    this.#labels = labels.data;
  }

  /** Item `i`: a fresh [H, W, 1] uint8 copy and its label. */
  get(i: number): Promise<Item> {
    checkIndex(i, this.length, this.name);
    const hw = this.height * this.width;
    return Promise.resolve({
      image: {
        data: this.#pixels.slice(i * hw, (i + 1) * hw),
        height: this.height,
        width: this.width,
        channels: 1,
      },
      label: this.#labels[i],
      index: i,
    });
  }
}

/** Path of `base` or `base.gz` inside `root`, whichever exists (gz preferred). */
function findIdxFile(root: string, base: string, layout: string): string {
  for (const name of [base + ".gz", base]) {
    const p = join(root, name);
    if (isFile(p)) return p;
  }
  throw new DataError(
    join(root, base + "[.gz]"),
    "file not found",
    `Expected the IDX layout ${layout} in ${root}; pass the folder with --data.root`,
  );
}

/**
 * Opens an MNIST-style IDX split held in `root`, checking magic numbers,
 * dimensions, sizes and that images and labels have the same count.
 *
 * @example
 * ```ts
 * import { fashionMnistRoot, openIdx } from "./idx.ts";
 * const ds = openIdx({ root: fashionMnistRoot(), split: "test" }); // the vendored copy
 * const item = await ds.get(0); // item.image: [28, 28, 1]
 * if (ds.length !== 10000 || item.image.height !== 28 || item.image.channels !== 1) {
 *   throw new Error(`unexpected Fashion-MNIST test split: ${ds.length} items`);
 * }
 * ```
 */
export function openIdx(opts: IdxOptions): IdxDataset {
  const name = opts.name ?? "fashion-mnist";
  if (!IDX_SPLITS.includes(opts.split)) throw badSplit(name, opts.split, IDX_SPLITS);
  const prefix = opts.split === "train" ? "train" : "t10k";
  const layout = "{train,t10k}-images-idx3-ubyte[.gz] and {train,t10k}-labels-idx1-ubyte[.gz]";
  const imagesFile = findIdxFile(opts.root, `${prefix}-images-idx3-ubyte`, layout);
  const labelsFile = findIdxFile(opts.root, `${prefix}-labels-idx1-ubyte`, layout);
  const images = readIdx(imagesFile, IDX_IMAGES_MAGIC);
  const labels = readIdx(labelsFile, IDX_LABELS_MAGIC);
  if (images.dims.length !== 3 || images.dims[1] === 0 || images.dims[2] === 0) {
    throw new DataError(
      imagesFile,
      `expected 3 dimensions [N, H, W] with H, W > 0, found [${images.dims.join(", ")}]`,
      IDX_HINT,
    );
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new DataError(
      labelsFile,
      `expected ${images.dims[0]} labels (one per image in ${imagesFile}), found ${labels.dims[0]}`,
      "The images and labels files come from different splits or downloads; re-download both",
    );
  }
  const classNames = opts.classNames ?? FASHION_MNIST_CLASSES;
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] >= classNames.length) {
      throw new DataError(
        labelsFile,
        `label ${labels.data[i]} at index ${i} is out of range; expected 0..${
          classNames.length - 1
        }`,
        IDX_HINT,
      );
    }
  }
  return new IdxDataset(
    {
      name: `${name}/${opts.split}`,
      root: opts.root,
      classNames,
      mean: opts.mean ?? FASHION_MNIST_MEAN,
      std: opts.std ?? FASHION_MNIST_STD,
    },
    images,
    labels,
  );
}

/**
 * The Fashion-MNIST copy vendored in this repository (`<repo>/data/fashion-mnist`),
 * or `null` when this module is not loaded from a checkout that holds it.
 */
export function embeddedFashionMnistRoot(): string | null {
  const url = new URL("../../data/fashion-mnist", import.meta.url);
  if (url.protocol !== "file:") return null;
  const dir = fileURLToPath(url);
  return hasIdxFiles(dir) ? dir : null;
}

function hasIdxFiles(dir: string): boolean {
  return ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"].every((b) =>
    isFile(join(dir, b + ".gz")) || isFile(join(dir, b))
  );
}

/**
 * The folder Fashion-MNIST is read from: `root` when non-empty, else the
 * vendored copy `<repo>/data/fashion-mnist`, else Debian's
 * `/usr/share/datasets/fashion-mnist`. Use it to report where the data came from.
 */
export function fashionMnistRoot(root = ""): string {
  if (root !== "") return root;
  const embedded = embeddedFashionMnistRoot();
  if (embedded !== null) return embedded;
  if (hasIdxFiles(DEBIAN_FASHION_MNIST_ROOT)) return DEBIAN_FASHION_MNIST_ROOT;
  const repoDir = new URL("../../data/fashion-mnist", import.meta.url).href;
  throw new DataError(
    repoDir,
    `no embedded Fashion-MNIST found (looked there and in ${DEBIAN_FASHION_MNIST_ROOT})`,
    "Restore data/fashion-mnist from the repository, install Debian's dataset-fashion-mnist, " +
      "or pass a folder holding the IDX files with --data.root",
  );
}

/**
 * Opens Fashion-MNIST; `root` "" means the embedded copy (see `fashionMnistRoot`).
 *
 * @example
 * ```ts
 * import { openFashionMnist } from "./idx.ts";
 * const ds = openFashionMnist({ root: "", split: "train" }); // 60000 items, [28, 28, 1]
 * if (ds.length !== 60000 || ds.numClasses !== 10) throw new Error(`${ds.length} items`);
 * ```
 */
export function openFashionMnist(opts: { root: string; split: string }): IdxDataset {
  return openIdx({ root: fashionMnistRoot(opts.root), split: opts.split, name: "fashion-mnist" });
}

/** Opens MNIST from a folder holding its four IDX files. */
export function openMnist(opts: { root: string; split: string }): IdxDataset {
  return openIdx({
    root: opts.root,
    split: opts.split,
    name: "mnist",
    classNames: MNIST_CLASSES,
    mean: MNIST_MEAN,
    std: MNIST_STD,
  });
}
