/**
 * AMT's schedule: `warmup` epochs of plain random masking while all maps are
 * uniform; saliency recomputed after epoch `warmup`, then every `interval`
 * epochs, never after the last epoch.
 *
 * Epochs are counted here as "finished epochs" (1-based): an update "after
 * epoch 40" happens when 40 epochs are done and serves epochs 41 onwards.
 *
 * @module
 */

/** Schedule settings. */
export interface AmtSchedule {
  warmup: number;
  interval: number;
  epochs: number;
}

/** Whether saliency is recomputed once `done` epochs have finished. */
export function isSaliencyUpdate(done: number, s: AmtSchedule): boolean {
  if (done < 1 || done >= s.epochs || done < s.warmup) return false;
  return (done - s.warmup) % s.interval === 0;
}

/** The finished-epoch counts after which saliency is recomputed. */
export function saliencyUpdates(s: AmtSchedule): number[] {
  const out: number[] = [];
  for (let done = 1; done < s.epochs; done++) if (isSaliencyUpdate(done, s)) out.push(done);
  return out;
}

/**
 * Phase of 0-based epoch `epoch`: "warmup" (random masking with the method's
 * own ratio) before `warmup` epochs are done, "amt" afterwards.
 */
export function amtPhase(epoch: number, s: Pick<AmtSchedule, "warmup">): "warmup" | "amt" {
  return epoch < s.warmup ? "warmup" : "amt";
}
