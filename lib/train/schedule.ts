/**
 * Learning-rate schedule: linear warm-up, then half-cosine decay to `minLr`,
 * evaluated per step (MAE's `adjust_learning_rate`, per iteration).
 *
 * @module
 */

/** Peak learning rate from the base rate: `baseLr * batchSize / 256`. */
export function peakLr(baseLr: number, batchSize: number): number {
  return baseLr * batchSize / 256;
}

/**
 * Learning rate at fractional epoch `epoch` (e.g. 2.5 = halfway through epoch 3).
 */
export function lrAt(
  epoch: number,
  opts: { lr: number; minLr: number; warmupEpochs: number; epochs: number },
): number {
  const { lr, minLr, warmupEpochs, epochs } = opts;
  if (epoch < warmupEpochs) return lr * epoch / warmupEpochs;
  const span = Math.max(epochs - warmupEpochs, 1e-12);
  const progress = Math.min(1, (epoch - warmupEpochs) / span);
  return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
