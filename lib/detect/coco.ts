/**
 * COCO-format instance datasets (COCO, LVIS, the embedded scenes): an
 * instances JSON plus a folder of images, decoded with sharp and fitted to a
 * square detector input by letterbox (scale to fit, pad) or stretch, with
 * boxes and masks carried along.
 *
 * Coordinates: COCO boxes `[x, y, w, h]` are in original image pixels;
 * {@link CocoSample} boxes and masks are in input pixels. A
 * {@link FitTransform} maps between the two (`x_in = x * scaleX + padX`).
 *
 * @module
 */
import sharp from "sharp";
import { basename, join } from "node:path";
import { DataError } from "../data/errors.ts";
import type { Raster } from "../data/types.ts";
import { segmentationToRle } from "./rle.ts";
import { decodeMask } from "./rle.ts";
import type { CocoAnnotation, CocoCategory, CocoDataset, CocoImage } from "./types.ts";

/** How an image is fitted into the square input. */
export type FitMode = "letterbox" | "stretch";

/** The map from original to input pixels: `x_in = x * scaleX + padX`, `y_in = y * scaleY + padY`. */
export interface FitTransform {
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
  /** Original size. */
  width: number;
  height: number;
  /** Input side. */
  size: number;
}

/**
 * The fit of a `width x height` image into a `size x size` input. Letterbox
 * keeps the aspect ratio (content `round(w * s) x round(h * s)` centred, the
 * rest padded); stretch scales each axis on its own.
 */
export function fitTransform(
  width: number,
  height: number,
  size: number,
  mode: FitMode,
): FitTransform {
  if (mode === "stretch") {
    return { scaleX: size / width, scaleY: size / height, padX: 0, padY: 0, width, height, size };
  }
  const s = Math.min(size / width, size / height);
  const cw = Math.round(width * s), ch = Math.round(height * s);
  return {
    scaleX: cw / width,
    scaleY: ch / height,
    padX: Math.floor((size - cw) / 2),
    padY: Math.floor((size - ch) / 2),
    width,
    height,
    size,
  };
}

/** A box `[x, y, w, h]` from original to input pixels. */
export function boxToInput(
  box: readonly number[],
  t: FitTransform,
): [number, number, number, number] {
  return [
    box[0] * t.scaleX + t.padX,
    box[1] * t.scaleY + t.padY,
    box[2] * t.scaleX,
    box[3] * t.scaleY,
  ];
}

/** A box `[x, y, w, h]` from input back to original pixels, clipped to the image. */
export function boxToOriginal(
  box: readonly number[],
  t: FitTransform,
): [number, number, number, number] {
  const x0 = clamp((box[0] - t.padX) / t.scaleX, 0, t.width);
  const y0 = clamp((box[1] - t.padY) / t.scaleY, 0, t.height);
  const x1 = clamp((box[0] + box[2] - t.padX) / t.scaleX, 0, t.width);
  const y1 = clamp((box[1] + box[3] - t.padY) / t.scaleY, 0, t.height);
  return [x0, y0, x1 - x0, y1 - y0];
}

/**
 * Resample a row-major bitmap between two pixel grids related by `x_dst = x_src * sx + ox`
 * (nearest pixel centre; outside the source = 0).
 */
function resampleMask(
  src: Uint8Array,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
  sx: number,
  sy: number,
  ox: number,
  oy: number,
): Uint8Array {
  const out = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const ys = Math.floor((y + 0.5 - oy) / sy);
    if (ys < 0 || ys >= sh) continue;
    for (let x = 0; x < dw; x++) {
      const xs = Math.floor((x + 0.5 - ox) / sx);
      if (xs < 0 || xs >= sw) continue;
      out[y * dw + x] = src[ys * sw + xs];
    }
  }
  return out;
}

/** An original-size bitmap in input pixels. */
export function maskToInput(mask: Uint8Array, t: FitTransform): Uint8Array {
  return resampleMask(mask, t.width, t.height, t.size, t.size, t.scaleX, t.scaleY, t.padX, t.padY);
}

/** An input-size bitmap back in original pixels. */
export function maskToOriginal(mask: Uint8Array, t: FitTransform): Uint8Array {
  return resampleMask(
    mask,
    t.size,
    t.size,
    t.width,
    t.height,
    1 / t.scaleX,
    1 / t.scaleY,
    -t.padX / t.scaleX,
    -t.padY / t.scaleY,
  );
}

/** One object of a {@link CocoSample}, in input pixels. */
export interface CocoInstance {
  annotationId: number;
  /** The COCO category id. */
  categoryId: number;
  /** Contiguous class index 0..K-1 (categories sorted by id). */
  label: number;
  /** `[x, y, w, h]` in input pixels. */
  bbox: [number, number, number, number];
  /** Row-major `size x size` bitmap, or null when the annotation has no segmentation. */
  mask: Uint8Array | null;
  /** Area in original pixels (the JSON's `area`). */
  area: number;
  iscrowd: boolean;
}

/** One image fitted to the input, with its objects. */
export interface CocoSample {
  imageId: number;
  file: string;
  /** `size x size x channels` uint8 pixels. */
  image: Raster;
  instances: CocoInstance[];
  transform: FitTransform;
}

/** Options of {@link openCocoDataset}. */
export interface CocoReaderOptions {
  /** Instances JSON (COCO `instances_*.json`, LVIS `lvis_v1_*.json`). */
  annotations: string;
  /** Folder holding the images (`file_name`, or the last part of LVIS's `coco_url`). */
  images: string;
  /** Side of the square input (pixels). */
  inputSize: number;
  /** Default "letterbox". */
  fit?: FitMode;
  /** 1 (grey) or 3 (RGB); default 3. */
  channels?: 1 | 3;
  /** Grey level of letterbox padding, 0..255 (default 0). */
  padValue?: number;
  /** Use only the first N images (0 = all). */
  limit?: number;
  /** Check that every image file exists when opening (default true). */
  checkFiles?: boolean;
}

const COCO_HINT = "Check that the file is a COCO instances JSON (keys images, annotations, " +
  "categories) and that the images folder matches it";

/**
 * Read and check an instances JSON: the three arrays, ids, and that every
 * annotation names a known image and category. Errors name the file.
 */
export async function readCocoJson(path: string): Promise<CocoDataset> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const what = e instanceof Deno.errors.NotFound ? "file not found" : `unreadable (${e})`;
    throw new DataError(path, `expected an instances JSON, ${what}`, COCO_HINT, { cause: e });
  }
  let json: CocoDataset;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(path, `malformed JSON (${(e as Error).message})`, COCO_HINT, { cause: e });
  }
  checkCocoJson(json, path);
  return json;
}

/** Throw a DataError naming `path` unless `json` is a consistent instances dataset. */
export function checkCocoJson(json: unknown, path: string): asserts json is CocoDataset {
  const bad = (problem: string): never => {
    throw new DataError(path, problem, COCO_HINT);
  };
  if (!json || typeof json !== "object" || Array.isArray(json)) bad("expected a JSON object");
  const d = json as Record<string, unknown>;
  for (const k of ["images", "annotations", "categories"]) {
    if (!Array.isArray(d[k])) bad(`expected an array "${k}", found ${typeof d[k]}`);
  }
  const images = d.images as CocoImage[];
  const imageIds = new Set<number>();
  images.forEach((im, i) => {
    if (!im || typeof im.id !== "number") bad(`images[${i}] has no numeric id`);
    if (!(im.width > 0) || !(im.height > 0)) {
      bad(
        `images[${i}] (id ${im.id}) needs positive width and height, found ${im.width}x${im.height}`,
      );
    }
    if (imageIds.has(im.id)) bad(`images[${i}]: duplicate image id ${im.id}`);
    imageIds.add(im.id);
  });
  const catIds = new Set<number>();
  (d.categories as CocoCategory[]).forEach((c, i) => {
    if (!c || typeof c.id !== "number") bad(`categories[${i}] has no numeric id`);
    catIds.add(c.id);
  });
  (d.annotations as CocoAnnotation[]).forEach((a, i) => {
    const where = `annotations[${i}] (id ${a?.id})`;
    if (!a || typeof a !== "object") bad(`annotations[${i}] is not an object`);
    if (!imageIds.has(a.image_id)) bad(`${where}: image_id ${a.image_id} is not in images`);
    if (!catIds.has(a.category_id)) {
      bad(`${where}: category_id ${a.category_id} is not in categories`);
    }
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4 || a.bbox.some((v) => !Number.isFinite(v))) {
      bad(`${where}: bbox must be [x, y, w, h], found ${JSON.stringify(a.bbox)}`);
    }
  });
}

/** The file of an image entry: `file_name`, else the last part of LVIS's `coco_url`. */
export function imageFileName(im: CocoImage): string {
  if (typeof im.file_name === "string" && im.file_name) return im.file_name;
  if (typeof im.coco_url === "string" && im.coco_url) {
    return basename(new URL(im.coco_url).pathname);
  }
  throw new Error(`image ${im.id} has neither file_name nor coco_url`);
}

/** A COCO-format dataset fitted to a square input; images are decoded on `get`. */
export class CocoDetectionDataset {
  readonly length: number;
  /** Categories sorted by id; `label` i is `categories[i]`. */
  readonly categories: CocoCategory[];
  readonly labelOf: Map<number, number>;
  readonly images: CocoImage[];
  readonly fit: FitMode;
  readonly channels: 1 | 3;
  #byImage = new Map<number, CocoAnnotation[]>();

  constructor(readonly json: CocoDataset, readonly options: CocoReaderOptions) {
    this.fit = options.fit ?? "letterbox";
    this.channels = options.channels ?? 3;
    if (!Number.isInteger(options.inputSize) || options.inputSize < 1) {
      throw new RangeError(`inputSize must be a positive integer, got ${options.inputSize}`);
    }
    this.categories = [...json.categories].sort((a, b) => a.id - b.id);
    this.labelOf = new Map(this.categories.map((c, i) => [c.id, i]));
    const limit = options.limit ?? 0;
    this.images = limit > 0 ? json.images.slice(0, limit) : json.images;
    this.length = this.images.length;
    for (const a of json.annotations) {
      if (!this.#byImage.has(a.image_id)) this.#byImage.set(a.image_id, []);
      this.#byImage.get(a.image_id)!.push(a);
    }
  }

  /** Class names in label order. */
  get classNames(): string[] {
    return this.categories.map((c) => c.name);
  }

  /** The annotations of an image id, as in the JSON (original pixels). */
  annotationsOf(imageId: number): CocoAnnotation[] {
    return this.#byImage.get(imageId) ?? [];
  }

  /** Image `i` decoded, fitted to the input, with its objects transformed. */
  async get(i: number): Promise<CocoSample> {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new RangeError(`coco dataset: index ${i} out of range [0, ${this.length - 1}]`);
    }
    const im = this.images[i];
    const size = this.options.inputSize;
    const file = join(this.options.images, imageFileName(im));
    const t = fitTransform(im.width, im.height, size, this.fit);
    const image = await this.#decode(file, im, t);
    const instances: CocoInstance[] = [];
    for (const a of this.annotationsOf(im.id)) {
      let mask: Uint8Array | null = null;
      if (a.segmentation !== undefined && a.segmentation !== null) {
        let full: Uint8Array;
        try {
          full = decodeMask(segmentationToRle(a.segmentation, im.height, im.width));
        } catch (e) {
          throw new DataError(
            this.options.annotations,
            `annotation ${a.id} (image ${im.id}): bad segmentation (${(e as Error).message})`,
            COCO_HINT,
            { cause: e },
          );
        }
        mask = maskToInput(full, t);
      }
      instances.push({
        annotationId: a.id,
        categoryId: a.category_id,
        label: this.labelOf.get(a.category_id)!,
        bbox: boxToInput(a.bbox, t),
        mask,
        area: typeof a.area === "number" ? a.area : a.bbox[2] * a.bbox[3],
        iscrowd: !!a.iscrowd,
      });
    }
    return { imageId: im.id, file, image, instances, transform: t };
  }

  async #decode(file: string, im: CocoImage, t: FitTransform): Promise<Raster> {
    const C = this.channels;
    const cw = Math.round(im.width * t.scaleX), ch = Math.round(im.height * t.scaleY);
    let data: Uint8Array, info: { width: number; height: number; channels: number };
    try {
      let img = sharp(file).removeAlpha();
      const meta = await sharp(file).metadata();
      if (meta.width !== im.width || meta.height !== im.height) {
        throw new DataError(
          file,
          `image is ${meta.width}x${meta.height} but the JSON (image ${im.id}) says ${im.width}x${im.height}`,
          "Fix the width/height in the JSON or use the images it was made for",
        );
      }
      img = img.resize(cw, ch, { fit: "fill", kernel: "linear" });
      img = C === 1 ? img.grayscale() : img.toColourspace("srgb");
      const out = await img.raw().toBuffer({ resolveWithObject: true });
      data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
      info = out.info;
    } catch (e) {
      if (e instanceof DataError) throw e;
      const missing = !(await exists(file));
      throw new DataError(
        file,
        missing
          ? `image ${im.id} not found`
          : `cannot decode image ${im.id} (${(e as Error).message})`,
        `The images folder ${this.options.images} must hold every file named in ${this.options.annotations}`,
        { cause: e },
      );
    }
    const S = t.size;
    const out = new Uint8Array(S * S * C).fill(this.options.padValue ?? 0);
    const srcC = info.channels;
    for (let y = 0; y < info.height; y++) {
      for (let x = 0; x < info.width; x++) {
        const s = (y * info.width + x) * srcC;
        const d = ((y + t.padY) * S + (x + t.padX)) * C;
        for (let c = 0; c < C; c++) out[d + c] = data[s + Math.min(c, srcC - 1)];
      }
    }
    return { data: out, height: S, width: S, channels: C };
  }
}

/**
 * Open a COCO-format dataset: read and check the JSON, and (by default) that
 * every image file exists, so a bad folder fails before training starts.
 *
 * @example
 * ```ts ignore
 * const ds = await openCocoDataset({ annotations: "coco/annotations/instances_val2017.json",
 *   images: "coco/val2017", inputSize: 224 });
 * const s = await ds.get(0); // s.image [224, 224, 3], s.instances[k].bbox in input pixels
 * ```
 */
export async function openCocoDataset(options: CocoReaderOptions): Promise<CocoDetectionDataset> {
  const json = await readCocoJson(options.annotations);
  const ds = new CocoDetectionDataset(json, options);
  if (options.checkFiles !== false) {
    for (const im of ds.images) {
      let name: string;
      try {
        name = imageFileName(im);
      } catch (e) {
        throw new DataError(options.annotations, (e as Error).message, COCO_HINT);
      }
      const file = join(options.images, name);
      if (!(await exists(file))) {
        throw new DataError(
          file,
          `image ${im.id} named in ${options.annotations} is missing`,
          `Put the images next to the JSON's names in ${options.images} (or pass the right folder)`,
        );
      }
    }
  }
  return ds;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
