/**
 * Optimisation shared by pre-training, fine-tuning and detection: AdamW with
 * decoupled weight decay, and the warm-up + cosine learning-rate schedule.
 *
 * @module
 */

// AdamW (fused, fp32 master weights).
export { AdamW, type AdamWOptions } from "./adamw.ts";

// Warm-up + cosine learning rate.
export { lrAt, peakLr } from "./schedule.ts";
