/**
 * Embedded detection scenes: Fashion-MNIST items pasted onto textured grey
 * backgrounds, with exact boxes and instance masks, written as a COCO dataset.
 *
 * A scene is a pure function of `(seed, split, index)`: items are drawn from
 * Fashion-MNIST's train split for `split = "train"` and from its test split
 * otherwise, so train and held-out scenes never share an item. Each item is
 * resized by a factor in `[minScale, maxScale]`; its mask is its
 * non-background pixels (value > `threshold`). Later items occlude earlier
 * ones; a placement is retried when it would hide more than `maxOcclusion` of
 * an earlier item's visible pixels. Boxes are the tight boxes of the visible
 * masks (`w = x_max - x_min + 1`, as COCO's `toBbox`), areas their pixel counts.
 *
 * @module
 */
import { join } from "node:path";
import { FASHION_MNIST_CLASSES, type IdxDataset, openFashionMnist } from "../data/idx.ts";
import type { Raster } from "../data/types.ts";
import { makeRng, type Rng } from "../util/rng.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { encodePng } from "../viz/png.ts";
import { compressRle, encodeMask, type Polygons, type Segmentation } from "./rle.ts";
import type { CocoAnnotation, CocoDataset } from "./types.ts";

/** How scenes are composed. */
export interface SceneOptions {
  /** Square side in pixels (default 56). */
  size: number;
  minObjects: number;
  maxObjects: number;
  /** Item scale range relative to its 28 px (default 0.5..1.5). */
  minScale: number;
  maxScale: number;
  /** Largest fraction of an earlier item's visible pixels a later one may cover (default 0.3). */
  maxOcclusion: number;
  /** Item pixels above this grey level (0..255) are the object (default 24). */
  threshold: number;
}

/** Scene defaults: 56 px (2x the 28 px pre-training input), 1-4 items at 0.5-1.5x. */
export const SCENE_DEFAULTS: Readonly<SceneOptions> = Object.freeze({
  size: 56,
  minObjects: 1,
  maxObjects: 4,
  minScale: 0.5,
  maxScale: 1.5,
  maxOcclusion: 0.3,
  threshold: 24,
});

/** One object of a scene. */
export interface SceneObject {
  /** Fashion-MNIST class 0..9. */
  label: number;
  /** Index of the item in its Fashion-MNIST split. */
  item: number;
  /** Tight box `[x, y, w, h]` of the visible mask. */
  bbox: [number, number, number, number];
  /** Visible pixels, row-major `size x size`. */
  mask: Uint8Array;
  area: number;
}

/** One composed scene. */
export interface Scene {
  /** `size x size x 1` uint8. */
  image: Raster;
  objects: SceneObject[];
}

/** A source of 28x28 grey items with labels (Fashion-MNIST). */
export interface ItemSource {
  readonly length: number;
  get(i: number): Promise<{ image: Raster; label: number }>;
}

/** The Fashion-MNIST split scenes of `split` draw from: train for "train", test otherwise. */
export function sceneSource(split: string): IdxDataset {
  return openFashionMnist({ root: "", split: split === "train" ? "train" : "test" });
}

/** Fashion-MNIST's class names, the scene categories (COCO ids 1..10). */
export const SCENE_CLASSES: readonly string[] = FASHION_MNIST_CLASSES;

/**
 * Compose scene `index` of `split` (deterministic in `seed`, `split`, `index`).
 */
export async function makeScene(
  source: ItemSource,
  seed: number,
  split: string,
  index: number,
  options: Partial<SceneOptions> = {},
): Promise<Scene> {
  const o = { ...SCENE_DEFAULTS, ...options };
  checkSceneOptions(o);
  const S = o.size;
  const rng = makeRng(seed, "scene", split, index);
  const image = background(S, rng);
  const n = o.minObjects + Math.floor(rng() * (o.maxObjects - o.minObjects + 1));
  /** Owner of each pixel: object index, or -1 for background. */
  const owner = new Int16Array(S * S).fill(-1);
  const placed: { label: number; item: number; pixels: number }[] = [];
  for (let k = 0; k < n; k++) {
    const itemIndex = Math.floor(rng() * source.length);
    const item = await source.get(itemIndex);
    const scale = o.minScale + rng() * (o.maxScale - o.minScale);
    const side = Math.max(4, Math.min(S, Math.round(item.image.height * scale)));
    const pix = resizeGrey(item.image, side);
    const inside = new Uint8Array(side * side);
    for (let i = 0; i < inside.length; i++) inside[i] = pix[i] > o.threshold ? 1 : 0;
    // try positions until no earlier object loses too much of what is left of it
    for (let attempt = 0; attempt < 25; attempt++) {
      const x0 = Math.floor(rng() * (S - side + 1));
      const y0 = Math.floor(rng() * (S - side + 1));
      const lost = new Array<number>(placed.length).fill(0);
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          if (!inside[y * side + x]) continue;
          const who = owner[(y0 + y) * S + x0 + x];
          if (who >= 0) lost[who]++;
        }
      }
      if (lost.some((l, j) => l > o.maxOcclusion * placed[j].pixels)) continue;
      const id = placed.length;
      let pixels = 0;
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          if (!inside[y * side + x]) continue;
          const p = (y0 + y) * S + x0 + x;
          const prev = owner[p];
          if (prev >= 0) placed[prev].pixels--;
          owner[p] = id;
          image.data[p] = pix[y * side + x];
          pixels++;
        }
      }
      placed.push({ label: item.label, item: itemIndex, pixels });
      break;
    }
  }
  const objects: SceneObject[] = [];
  placed.forEach((p, id) => {
    const mask = new Uint8Array(S * S);
    let x0 = S, y0 = S, x1 = -1, y1 = -1, area = 0;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        if (owner[y * S + x] !== id) continue;
        mask[y * S + x] = 1;
        area++;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    if (area === 0) return; // an item with no pixel above the threshold
    objects.push({
      label: p.label,
      item: p.item,
      bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
      mask,
      area,
    });
  });
  return { image, objects };
}

function checkSceneOptions(o: SceneOptions): void {
  if (!Number.isInteger(o.size) || o.size < 16) {
    throw new RangeError(`scenes: size must be an integer >= 16, got ${o.size}`);
  }
  if (!(o.minObjects >= 1 && o.maxObjects >= o.minObjects)) {
    throw new RangeError(
      `scenes: need 1 <= minObjects <= maxObjects, got ${o.minObjects}..${o.maxObjects}`,
    );
  }
  if (!(o.minScale > 0 && o.maxScale >= o.minScale)) {
    throw new RangeError(`scenes: need 0 < minScale <= maxScale, got ${o.minScale}..${o.maxScale}`);
  }
  if (!(o.maxOcclusion >= 0 && o.maxOcclusion < 1)) {
    throw new RangeError(`scenes: maxOcclusion must be in [0, 1), got ${o.maxOcclusion}`);
  }
}

/** Bilinear resize of a square grey uint8 raster to `side x side`. */
function resizeGrey(r: Raster, side: number): Uint8Array {
  const { height: h, width: w, data, channels: C } = r;
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    const fy = Math.min(Math.max((y + 0.5) * h / side - 0.5, 0), h - 1);
    const ya = Math.floor(fy), yb = Math.min(ya + 1, h - 1), ty = fy - ya;
    for (let x = 0; x < side; x++) {
      const fx = Math.min(Math.max((x + 0.5) * w / side - 0.5, 0), w - 1);
      const xa = Math.floor(fx), xb = Math.min(xa + 1, w - 1), tx = fx - xa;
      const v = (data[(ya * w + xa) * C] * (1 - tx) + data[(ya * w + xb) * C] * tx) * (1 - ty) +
        (data[(yb * w + xa) * C] * (1 - tx) + data[(yb * w + xb) * C] * tx) * ty;
      out[y * side + x] = Math.round(v);
    }
  }
  return out;
}

/**
 * A textured grey background, darker than most items (levels ~10..110): a
 * gradient, stripes, a checkerboard or soft blobs, plus pixel noise.
 */
function background(S: number, rng: Rng): Raster {
  const data = new Uint8Array(S * S);
  const kind = Math.floor(rng() * 4);
  const base = 15 + rng() * 35, amp = 15 + rng() * 45;
  const angle = rng() * Math.PI, freq = 0.08 + rng() * 0.35, phase = rng() * 2 * Math.PI;
  const cell = 4 + Math.floor(rng() * 9);
  const blobs = Array.from({ length: 3 + Math.floor(rng() * 4) }, () => ({
    x: rng() * S,
    y: rng() * S,
    r: 4 + rng() * S / 3,
    a: (rng() - 0.3) * amp,
  }));
  const ca = Math.cos(angle), sa = Math.sin(angle);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let v = base;
      const u = x * ca + y * sa;
      if (kind === 0) v += amp * (u / (S * 1.5) + 0.3);
      else if (kind === 1) v += amp * 0.5 * (1 + Math.sin(u * freq * 2 + phase));
      else if (kind === 2) v += ((Math.floor(x / cell) + Math.floor(y / cell)) % 2) * amp * 0.6;
      else {
        for (const b of blobs) {
          v += b.a * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r));
        }
      }
      v += (rng() - 0.5) * 16;
      data[y * S + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return { data, height: S, width: S, channels: 1 };
}

/** How masks are written into the JSON. */
export type MaskFormat = "rle" | "rle-uncompressed" | "polygon";

/**
 * A mask as COCO segmentation: compressed RLE, uncompressed RLE, or polygons
 * (one rectangle per horizontal run of pixels, which pixel-centre
 * rasterisation turns back into exactly the same mask).
 */
export function maskToSegmentation(
  mask: Uint8Array,
  h: number,
  w: number,
  format: MaskFormat,
): Segmentation {
  if (format === "polygon") {
    const polys: Polygons = [];
    for (let y = 0; y < h; y++) {
      let x = 0;
      while (x < w) {
        if (!mask[y * w + x]) {
          x++;
          continue;
        }
        const start = x;
        while (x < w && mask[y * w + x]) x++;
        polys.push([start, y, x, y, x, y + 1, start, y + 1]);
      }
    }
    return polys;
  }
  const rle = encodeMask(mask, h, w);
  return format === "rle" ? compressRle(rle) : rle;
}

/** Options of {@link writeCocoScenes}. */
export interface WriteScenesOptions extends Partial<SceneOptions> {
  count: number;
  seed: number;
  /** "train" draws items from Fashion-MNIST train, anything else from its test split. */
  split: string;
  /** Default "rle" (compressed). */
  maskFormat?: MaskFormat;
  /** Item source (default: the embedded Fashion-MNIST split for `split`). */
  source?: ItemSource;
}

/** Where {@link writeCocoScenes} put the dataset. */
export interface ScenesOnDisk {
  /** `<dir>/annotations/instances_<split>.json` */
  annotations: string;
  /** `<dir>/<split>/` holding `<id>.png` */
  images: string;
  /** True when an identical dataset was already there and nothing was written. */
  reused: boolean;
}

/**
 * Write `count` scenes as a COCO dataset under `dir` (PNG images, instances
 * JSON with masks). The JSON is written last and records the options, so an
 * existing complete dataset with the same options is reused as it is.
 */
export async function writeCocoScenes(
  dir: string,
  options: WriteScenesOptions,
): Promise<ScenesOnDisk> {
  const { count, seed, split } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`writeCocoScenes: count must be a positive integer, got ${count}`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(split)) {
    throw new RangeError(`writeCocoScenes: split "${split}" must be letters, digits, "_" or "-"`);
  }
  const sceneOptions: SceneOptions = { ...SCENE_DEFAULTS };
  for (const k of Object.keys(SCENE_DEFAULTS) as (keyof SceneOptions)[]) {
    if (options[k] !== undefined) sceneOptions[k] = options[k]!;
  }
  const maskFormat = options.maskFormat ?? "rle";
  const annotations = join(dir, "annotations", `instances_${split}.json`);
  const images = join(dir, split);
  const recipe = {
    generator: "amt-mim scenes v1",
    count,
    seed,
    split,
    maskFormat,
    ...sceneOptions,
  };
  try {
    const old = JSON.parse(await Deno.readTextFile(annotations));
    if (JSON.stringify(old.info?.recipe) === JSON.stringify(recipe)) {
      return { annotations, images, reused: true };
    }
  } catch {
    // nothing usable there: write it
  }
  await Deno.mkdir(images, { recursive: true });
  const source = options.source ?? sceneSource(split);
  const S = sceneOptions.size;
  const json: CocoDataset = {
    info: {
      description: `Fashion-MNIST scenes (${split}), ${count} images of ${S}x${S}`,
      recipe,
    },
    images: [],
    annotations: [],
    categories: SCENE_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: "fashion" })),
  };
  let annId = 1;
  for (let i = 0; i < count; i++) {
    const scene = await makeScene(source, seed, split, i, sceneOptions);
    const id = i + 1;
    const file = `${String(id).padStart(6, "0")}.png`;
    await writeFileAtomic(join(images, file), await encodePng(scene.image), { sync: false });
    json.images.push({ id, file_name: file, width: S, height: S });
    for (const ob of scene.objects) {
      const ann: CocoAnnotation = {
        id: annId++,
        image_id: id,
        category_id: ob.label + 1,
        bbox: ob.bbox,
        area: ob.area,
        iscrowd: 0,
        segmentation: maskToSegmentation(ob.mask, S, S, maskFormat),
      };
      json.annotations.push(ann);
    }
  }
  await writeFileAtomic(annotations, JSON.stringify(json));
  return { annotations, images, reused: false };
}
