/**
 * Learning-rate schedule: linear warm-up, then half-cosine decay to `minLr`,
 * evaluated per step (MAE's `adjust_learning_rate`, per iteration).
 *
 * @module
 */

/**
 * Peak learning rate from the base rate: `baseLr * batchSize / lrBatch`, the
 * linear scaling rule with MAE's reference batch of 256 by default (SimMIM
 * gives its base rate per 512 images).
 */
export function peakLr(baseLr: number, batchSize: number, lrBatch = 256): number {
  return baseLr * batchSize / lrBatch;
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
