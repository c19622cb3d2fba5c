/**
 * Shared data types: rasters, dataset items, crop boxes.
 *
 * Pixel layout is always HWC (row-major, channels last).
 *
 * @module
 */

/** An image or map in HWC layout. */
export interface Raster {
  data: Float32Array | Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/** One training example: native-resolution pixels, label and dataset index. */
export interface Item {
  /** HWC pixels; `Uint8Array` in [0, 255] for real data. */
  image: Raster;
  /** Class label, or -1 when the split is unlabeled. */
  label: number;
  /** Position of this item in its dataset (stable key for per-image state). */
  index: number;
}

/** The interface every dataset reader implements. */
export interface Dataset {
  /** e.g. "fashion-mnist/train". */
  readonly name: string;
  readonly length: number;
  /** Channels of every item (1 grayscale, 3 RGB). */
  readonly channels: number;
  /** Number of classes (0 when unknown). */
  readonly numClasses: number;
  readonly classNames?: readonly string[];
  /** Per-channel mean and std of pixels scaled to [0, 1], used to normalise. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** Item `i`, `0 <= i < length`. */
  get(i: number): Promise<Item>;
  /** Releases open file handles, for readers that stream from disk (STL-10). */
  close?(): void;
}

/**
 * A crop in normalised coordinates of the source raster (0..1 on each axis),
 * plus a horizontal flip. The same box crops an image and its saliency map,
 * whatever their resolutions.
 */
export interface CropBox {
  y0: number;
  x0: number;
  y1: number;
  x1: number;
  flip: boolean;
}

/** The identity crop. */
export const FULL_BOX: Readonly<CropBox> = Object.freeze({
  y0: 0,
  x0: 0,
  y1: 1,
  x1: 1,
  flip: false,
});
