/**
 * Readers for folders of encoded images (JPEG, PNG, WebP), decoded with sharp.
 *
 * Layouts (class index = position in the sorted class folder names, or in
 * `wnids.txt` for Tiny ImageNet):
 * - `imagenet`: `<root>/<split>/<wnid>/*.JPEG` (split = train | val; val must
 *   be sorted into wnid folders). Classes come from `<root>/train` when it
 *   exists, so every split shares one indexing.
 * - `tiny-imagenet`: `<root>/wnids.txt` (root may also be the folder holding
 *   `tiny-imagenet-200/`), `<root>/train/<wnid>/images/*.JPEG`,
 *   `<root>/val/images/*.JPEG` + `<root>/val/val_annotations.txt`
 *   (tab-separated: file, wnid, box), `<root>/test/images/*.JPEG` (label -1).
 * - `image-folder`: `<root>/<split>/<class>/*.{jpg,jpeg,png,webp}`; classes
 *   from `<root>/train` when it exists, else from the split folder.
 *
 * Decoding: each image is resized to cover `decodeSize x decodeSize` (centre
 * crop of the excess), alpha dropped, converted to sRGB → [S, S, 3] uint8.
 *
 * Bad files are found lazily, when `get` decodes them: with
 * `onBadImage: "skip"`, `get(i)` warns once per bad file and returns the next
 * readable image in order (wrapping), still with `index: i`, so the
 * substitution is deterministic; with `"fail"` it throws a DataError naming
 * the file.
 *
 * @module
 */

import { basename, extname, join } from "node:path";
import sharp from "sharp";
import { checkIndex, errText, isDir, readLinesIfExists, subDirs } from "./_common.ts";
import { DataError } from "./errors.ts";
import type { Dataset, Item, Raster } from "./types.ts";

/** Folder layouts understood by `openImageFolder`. */
export type ImageLayout = "imagenet" | "tiny-imagenet" | "image-folder";

/** What to do with a file that cannot be decoded. */
export type OnBadImage = "skip" | "fail";

/** File extensions read as images (compared lower-case). */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze([
  ".jpg",
  ".jpeg",
  ".png",
  ".webp",
]);

/** ImageNet per-channel mean (RGB, pixels in [0, 1]); also used for generic folders. */
export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
/** ImageNet per-channel std (RGB, pixels in [0, 1]). */
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);
/** Tiny ImageNet per-channel mean (RGB, pixels in [0, 1]). */
export const TINY_IMAGENET_MEAN: readonly number[] = Object.freeze([0.4802, 0.4481, 0.3975]);
/** Tiny ImageNet per-channel std (RGB, pixels in [0, 1]). */
export const TINY_IMAGENET_STD: readonly number[] = Object.freeze([0.2770, 0.2691, 0.2821]);

/** Default decode side per layout (used when `decodeSize` is 0 or absent). */
export const DEFAULT_DECODE_SIZE: Readonly<Record<ImageLayout, number>> = Object.freeze({
  "imagenet": 256,
  "tiny-imagenet": 64,
  "image-folder": 256,
});

const LAYOUTS: Readonly<Record<ImageLayout, string>> = Object.freeze({
  "imagenet": "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG " +
    "(val sorted into wnid folders)",
  "tiny-imagenet": "<root>/wnids.txt, <root>/train/<wnid>/images/*.JPEG, " +
    "<root>/val/images/*.JPEG with <root>/val/val_annotations.txt, <root>/test/images/*.JPEG",
  "image-folder": "<root>/<split>/<class>/*.{jpg,jpeg,png,webp}",
});

/** Options of `openImageFolder`. */
export interface ImageFolderOptions {
  layout: ImageLayout;
  root: string;
  /** Sub-folder of `root`: train | val (| test for tiny-imagenet), or any name for image-folder. */
  split: string;
  /** Side of the decoded square images (0/absent = `DEFAULT_DECODE_SIZE[layout]`). */
  decodeSize?: number;
  /** Default "skip". */
  onBadImage?: OnBadImage | string;
  /** Receives skip warnings (default `console.warn`). */
  onWarning?: (message: string) => void;
  /** Default: Tiny ImageNet's for tiny-imagenet, else ImageNet's. */
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * Decodes one image file to a `size x size` RGB raster: resize to cover,
 * centre crop, drop alpha, convert to sRGB.
 *
 * @returns [size, size, 3] uint8
 */
export async function decodeImage(file: string, size: number): Promise<Raster> {
  const { data, info } = await sharp(file, { failOn: "error" })
    .resize(size, size, { fit: "cover", position: "centre" })
    .removeAlpha()
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== size || info.height !== size) {
    throw new Error(
      `decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`,
    );
  }
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    height: size,
    width: size,
    channels: 3,
  };
}

function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/** Sorted image files directly inside `dir` (full paths). */
function imagesIn(dir: string): string[] {
  if (!isDir(dir)) return [];
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory && isImageFile(e.name)) out.push(e.name);
  }
  out.sort();
  return out.map((n) => join(dir, n));
}

/** A folder of encoded images, decoded on demand: items are [S, S, 3] uint8 rasters. */
export class ImageFolderDataset implements Dataset {
  readonly name: string;
  readonly length: number;
  readonly channels = 3;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** Side of every decoded item. */
  readonly decodeSize: number;
  readonly onBadImage: OnBadImage;
  /** Image paths, in item order. */
  readonly files: readonly string[];
  /** [N] class index per file (-1 when unlabeled). */
  readonly labels: Int32Array;
  #warn: (message: string) => void;
  #bad = new Set<number>();
  #sizeChecked = new Set<number>();

  constructor(
    fields: {
      name: string;
      classNames: readonly string[];
      mean: readonly number[];
      std: readonly number[];
      decodeSize: number;
      onBadImage: OnBadImage;
      onWarning: (message: string) => void;
    },
    files: string[],
    labels: Int32Array,
  ) {
    this.name = fields.name;
    this.classNames = fields.classNames;
    this.numClasses = fields.classNames.length;
    this.mean = fields.mean;
    this.std = fields.std;
    this.decodeSize = fields.decodeSize;
    this.onBadImage = fields.onBadImage;
    this.#warn = fields.onWarning;
    this.files = files;
    this.labels = labels;
    this.length = files.length;
  }

  /**
   * An image smaller than the decode size (hence than any crop of it) is bad
   * input: with `onBadImage: "fail"` a DataError, else a one-time warning and
   * the image is upscaled.
   */
  async #checkSize(j: number): Promise<void> {
    if (this.#sizeChecked.has(j)) return;
    this.#sizeChecked.add(j);
    let meta: { width?: number; height?: number };
    try {
      meta = await sharp(this.files[j]).metadata();
    } catch {
      return; // unreadable: decodeImage reports it
    }
    const side = Math.min(meta.width ?? 0, meta.height ?? 0);
    if (side === 0 || side >= this.decodeSize) return;
    const problem = `is ${meta.width}x${meta.height} px, smaller than the decode size ` +
      `${this.decodeSize} px`;
    if (this.onBadImage === "fail") {
      throw new DataError(
        this.files[j],
        problem,
        "Lower data.imageSize, remove the file, or set --data.onBadImage=skip to upscale such images with a warning",
      );
    }
    this.#warn(`${this.name}: ${this.files[j]} ${problem}; it is upscaled`);
  }

  /**
   * Item `i` decoded to [S, S, 3]. With `onBadImage: "skip"` an unreadable
   * file is replaced by the next readable one (its pixels and label), keeping
   * `index: i`.
   */
  async get(i: number): Promise<Item> {
    checkIndex(i, this.length, this.name);
    for (let k = 0; k < this.length; k++) {
      const j = (i + k) % this.length;
      if (this.#bad.has(j)) continue;
      try {
        await this.#checkSize(j);
        const image = await decodeImage(this.files[j], this.decodeSize);
        return { image, label: this.labels[j], index: i };
      } catch (e) {
        if (e instanceof DataError) throw e;
        if (this.onBadImage === "fail") {
          throw new DataError(
            this.files[j],
            `expected a readable JPEG/PNG/WebP image, decoding failed (${errText(e)})`,
            "Delete or replace the file, or set --data.onBadImage=skip to skip bad files",
            { cause: e },
          );
        }
        this.#bad.add(j);
        this.#warn(
          `${this.name}: skipping unreadable image ${this.files[j]} (${errText(e)}); ` +
            "items that point at it get the next readable image",
        );
      }
    }
    throw new DataError(
      this.files[i],
      `no readable image in the whole dataset (${this.length} files tried)`,
      "Check that the files are JPEG/PNG/WebP images",
    );
  }
}

function missing(path: string, layout: ImageLayout, what: string): DataError {
  return new DataError(
    path,
    what,
    `Expected the ${layout} layout ${LAYOUTS[layout]}; pass the dataset folder with --data.root`,
  );
}

/** Files and labels of an `<dir>/<class>/[sub]/*` split, classes fixed by `classes`. */
function classFolders(
  dir: string,
  classes: readonly string[],
  sub: string,
  layout: ImageLayout,
): { files: string[]; labels: number[] } {
  const index = new Map(classes.map((c, k) => [c, k]));
  const files: string[] = [];
  const labels: number[] = [];
  for (const c of subDirs(dir)) {
    const k = index.get(c);
    if (k === undefined) {
      throw new DataError(
        join(dir, c),
        `class folder "${c}" is not among the ${classes.length} known classes`,
        `Class indices come from ${LAYOUTS[layout]}; give every split the same class folders`,
      );
    }
    for (const f of imagesIn(join(dir, c, sub))) {
      files.push(f);
      labels.push(k);
    }
  }
  return { files, labels };
}

function tinyImageNet(root: string, split: string): {
  classes: string[];
  files: string[];
  labels: number[];
} {
  const layout = "tiny-imagenet";
  const wnids = readLinesIfExists(join(root, "wnids.txt")) ?? subDirs(join(root, "train"));
  if (wnids.length === 0) throw missing(join(root, "wnids.txt"), layout, "file not found");
  if (split === "train") {
    const dir = join(root, "train");
    if (!isDir(dir)) throw missing(dir, layout, "folder not found");
    return { classes: wnids, ...classFolders(dir, wnids, "images", layout) };
  }
  if (split === "val") {
    const dir = join(root, "val", "images");
    const ann = join(root, "val", "val_annotations.txt");
    if (!isDir(dir)) throw missing(dir, layout, "folder not found");
    const lines = readLinesIfExists(ann);
    if (lines === null) throw missing(ann, layout, "file not found");
    const index = new Map(wnids.map((c, k) => [c, k]));
    const labelOf = new Map<string, number>();
    for (const [n, line] of lines.entries()) {
      const [file, wnid] = line.split("\t");
      const k = index.get(wnid);
      if (file === undefined || k === undefined) {
        throw new DataError(
          ann,
          `line ${n + 1} "${line}": expected "<file>\\t<wnid>\\t..." with a wnid from wnids.txt`,
          "Re-extract tiny-imagenet-200.zip",
        );
      }
      labelOf.set(file, k);
    }
    const files = imagesIn(dir);
    const labels = files.map((f) => {
      const base = basename(f);
      const k = labelOf.get(base);
      if (k === undefined) {
        throw new DataError(ann, `no annotation for ${base}`, "Re-extract tiny-imagenet-200.zip");
      }
      return k;
    });
    return { classes: wnids, files, labels };
  }
  if (split === "test") {
    const dir = join(root, "test", "images");
    if (!isDir(dir)) throw missing(dir, layout, "folder not found");
    const files = imagesIn(dir);
    return { classes: wnids, files, labels: files.map(() => -1) };
  }
  throw new Error(
    `tiny-imagenet: unknown split "${split}"; expected "train", "val" or "test" (set --data.split)`,
  );
}

/**
 * Indexes an image folder (no decoding yet) and returns a dataset that decodes
 * on `get`. Missing or empty folders throw a DataError naming the path and the
 * expected layout.
 *
 * @example
 * ```ts ignore
 * const ds = openImageFolder({ layout: "tiny-imagenet", root: "/data/tiny-imagenet-200", split: "val" });
 * const { image } = await ds.get(0); // [64, 64, 3]
 * ```
 */
export function openImageFolder(opts: ImageFolderOptions): ImageFolderDataset {
  const { layout, root, split } = opts;
  if (!(layout in LAYOUTS)) {
    throw new Error(
      `unknown image layout "${layout}"; expected one of ${Object.keys(LAYOUTS).join(", ")}`,
    );
  }
  const onBadImage = opts.onBadImage ?? "skip";
  if (onBadImage !== "skip" && onBadImage !== "fail") {
    throw new Error(
      `onBadImage "${onBadImage}": expected "skip" or "fail" (set --data.onBadImage)`,
    );
  }
  const decodeSize = opts.decodeSize || DEFAULT_DECODE_SIZE[layout];
  if (!Number.isInteger(decodeSize) || decodeSize < 1) {
    throw new RangeError(`decodeSize ${decodeSize}: expected a positive integer`);
  }
  if (!isDir(root)) throw missing(root, layout, "dataset folder not found");

  let classes: string[];
  let files: string[];
  let labels: number[];
  if (layout === "tiny-imagenet") {
    // Accept the folder that holds the extracted zip, too.
    const inner = join(root, "tiny-imagenet-200");
    const dir = !isDir(join(root, "train")) && isDir(inner) ? inner : root;
    ({ classes, files, labels } = tinyImageNet(dir, split));
  } else {
    const dir = join(root, split);
    if (!isDir(dir)) throw missing(dir, layout, `split folder "${split}" not found`);
    const trainDir = join(root, "train");
    classes = subDirs(isDir(trainDir) ? trainDir : dir);
    if (classes.length === 0) {
      const flat = imagesIn(dir).length > 0 ? " (images lie directly in it)" : "";
      throw missing(dir, layout, `expected one sub-folder per class, found none${flat}`);
    }
    ({ files, labels } = classFolders(dir, classes, "", layout));
  }
  if (files.length === 0) {
    throw missing(
      join(root, split),
      layout,
      `no images with extensions ${IMAGE_EXTENSIONS.join(" ")} found`,
    );
  }
  const tiny = layout === "tiny-imagenet";
  return new ImageFolderDataset(
    {
      name: `${layout}/${split}`,
      classNames: classes,
      mean: opts.mean ?? (tiny ? TINY_IMAGENET_MEAN : IMAGENET_MEAN),
      std: opts.std ?? (tiny ? TINY_IMAGENET_STD : IMAGENET_STD),
      decodeSize,
      onBadImage,
      onWarning: opts.onWarning ?? ((m) => console.warn(m)),
    },
    files,
    Int32Array.from(labels),
  );
}
