/** Dataset names accepted by `data.name`. */
export const DATASET_NAMES: readonly string[] = Object.freeze([
  "fashion-mnist",
  "cifar10",
  "cifar100",
  "stl10",
  "tiny-imagenet",
  "imagenet",
  "image-folder",
  "synthetic",
]);
