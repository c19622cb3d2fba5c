/**
 * Load a pre-training run folder back: its config, its model with the
 * checkpoint's weights, and what it recorded about data and backend.
 *
 * @module
 */
import { loadSavedConfig } from "../config/mod.ts";
import type { Config } from "../config/schema.ts";
import type { MimModel } from "../mim/types.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { buildModel } from "./factory.ts";
import { restoreState } from "./pretrain.ts";

/** What `run.json` records. */
export interface RunInfo {
  backend: string;
  threads: number;
  dataset: string;
  images: number;
  channels: number;
  mean: number[];
  std: number[];
  imageSize: number;
  stepsPerEpoch: number;
  totalSteps: number;
  [key: string]: unknown;
}

/** A loaded run. The caller owns (and disposes) `model`. */
export interface LoadedRun {
  runDir: string;
  config: Readonly<Config>;
  info: RunInfo;
  model: MimModel;
  /** Optimiser steps in the loaded checkpoint. */
  step: number;
  /** Whether the run finished (summary.json exists). */
  finished: boolean;
}

/**
 * Build the run's model and load its newest good checkpoint.
 * Errors name the run folder and the missing file.
 */
export async function loadRun(runDir: string): Promise<LoadedRun> {
  const config = await loadSavedConfig(runDir);
  let info: RunInfo;
  try {
    info = JSON.parse(await Deno.readTextFile(`${runDir}/run.json`));
  } catch (e) {
    throw new Error(
      `${runDir}/run.json: cannot read it (${
        (e as Error).message
      }); is ${runDir} a pre-training run folder?`,
    );
  }
  const loaded = await loadCheckpoint(`${runDir}/checkpoints/checkpoint.ckpt`);
  if (!loaded) {
    throw new Error(
      `${runDir}/checkpoints/checkpoint.ckpt: no checkpoint yet; run the pre-training first (deno task pretrain --run.dir=${runDir} ...)`,
    );
  }
  if (loaded.warning) console.warn(`warning: ${loaded.warning}`);
  const model = buildModel(config, info.channels, info.imageSize);
  try {
    restoreState(loaded.ckpt, model, null, null, loaded.file);
  } catch (e) {
    model.dispose();
    throw e;
  }
  let finished = false;
  try {
    await Deno.stat(`${runDir}/summary.json`);
    finished = true;
  } catch {
    // unfinished run
  }
  return { runDir, config, info, model, step: loaded.ckpt.meta.globalStep as number, finished };
}
