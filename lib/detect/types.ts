/**
 * COCO instances-format types (also LVIS): the JSON a dataset ships and the
 * detection results an evaluator reads.
 *
 * Boxes are `[x, y, w, h]` in pixels of the original image, `(x, y)` the
 * top-left corner.
 *
 * @module
 */
import type { Segmentation } from "./rle.ts";

/** One image entry of an instances JSON. */
export interface CocoImage {
  id: number;
  file_name?: string;
  width: number;
  height: number;
  [key: string]: unknown;
}

/** One annotation (object instance) of an instances JSON. */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** `[x, y, w, h]` */
  bbox: [number, number, number, number];
  /** Segment area in pixels (COCO's area ranges use it). */
  area: number;
  /** 1 for crowd regions (RLE); matched detections are ignored. */
  iscrowd?: number;
  segmentation?: Segmentation;
  [key: string]: unknown;
}

/** One category of an instances JSON. */
export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  [key: string]: unknown;
}

/** A whole instances JSON (`instances_val2017.json`, LVIS `lvis_v1_val.json`). */
export interface CocoDataset {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  info?: Record<string, unknown>;
  licenses?: unknown[];
  [key: string]: unknown;
}

/** One detection result, as in a COCO results JSON. */
export interface CocoDetection {
  image_id: number;
  category_id: number;
  /** `[x, y, w, h]`; for segm results it may be left out (taken from the mask). */
  bbox?: [number, number, number, number];
  segmentation?: Segmentation;
  score: number;
}
