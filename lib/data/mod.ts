/**
 * Datasets, augmentation and batching for masked image modeling.
 *
 * Items are native-resolution HWC rasters; `loadBatch` crops, flips, resizes
 * and normalises them into [B, S, S, C] Float32Arrays, and returns the crop
 * boxes so saliency maps can be cropped the same way with `applyCrop`.
 *
 * @module
 */

// Items, rasters and crop boxes.
export { type CropBox, type Dataset, FULL_BOX, type Item, type Raster } from "./types.ts";

// Dataset names and the error every reader throws.
export { DATASET_NAMES } from "./names.ts";
export { DataError } from "./errors.ts";

// Opening a dataset by name.
export {
  limitDataset,
  nativeChannels,
  nativeSize,
  openDataset,
  type OpenOptions,
  withNormalization,
} from "./registry.ts";

// The readers.
export {
  embeddedFashionMnistRoot,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  fashionMnistRoot,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  IdxDataset,
  type IdxOptions,
  openFashionMnist,
  openIdx,
  openMnist,
} from "./idx.ts";
export { CifarDataset, openCifar10, openCifar100 } from "./cifar.ts";
export { openStl10, Stl10Dataset } from "./stl10.ts";
export {
  ImageFolderDataset,
  type ImageFolderOptions,
  type ImageLayout,
  type OnBadImage,
  openImageFolder,
} from "./image_folder.ts";
export {
  makeSynthetic,
  SYNTHETIC_BACKGROUND_MAX,
  SYNTHETIC_OBJECT_MIN,
  SyntheticDataset,
  type SyntheticOptions,
} from "./synthetic.ts";

// RandomResizedCrop as a box, and applying a box to any raster.
export { applyCrop, type CropOptions, randomResizedCrop } from "./augment.ts";

// The normalisation rule (`data.normalize`), carried by the dataset's mean / std.
export {
  checkNormalization,
  type Normalization,
  NORMALIZATIONS,
  normalizedDataset,
} from "./normalize.ts";

// Batches: crop, flip, resize, normalise; and back to pixels.
export { type Batch, type BatchOptions, denormalize, loadBatch } from "./batch.ts";
