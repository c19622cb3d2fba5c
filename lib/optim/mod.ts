/**
 * Optimisation shared by pre-training, fine-tuning and detection: AdamW with
 * decoupled weight decay, and the warm-up + cosine learning-rate schedule.
 *
 * @module
 */
export * from "./adamw.ts";
export * from "./schedule.ts";
