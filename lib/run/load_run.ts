/**
 * Load a pre-training run folder back: its config, its model with the
 * checkpoint's weights, and what it recorded about data and backend.
 *
 * @module
 */
import { loadSavedConfig } from "../config/mod.ts";
import type { Config } from "../config/schema.ts";
import { buildModel } from "./model.ts";
import type { MimModel } from "../mim/types.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { runPaths } from "./folder.ts";
import {
  isFinished,
  readRunInfo,
  type RunInfo,
  type RunNormalization,
  runNormalization,
} from "./info.ts";
import { restoreState } from "./state.ts";

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
  /**
   * The normalisation that replaces the dataset's own wherever the run's images are read
   * (`run.json` `normalization: "run"`, e.g. imported weights); undefined: the dataset's.
   */
  normalization?: RunNormalization;
}

/**
 * Build the run's model and load its newest good checkpoint.
 * Errors name the run folder and the missing file.
 */
export async function loadRun(runDir: string): Promise<LoadedRun> {
  const paths = runPaths(runDir);
  const config = await loadSavedConfig(runDir);
  const info = await readRunInfo(runDir);
  const loaded = await loadCheckpoint(paths.checkpoint);
  if (!loaded) {
    throw new Error(
      `${paths.checkpoint}: no checkpoint yet; run the pre-training first (deno task pretrain --run.dir=${runDir} ...)`,
    );
  }
  if (loaded.warning) console.warn(`warning: ${loaded.warning}`);
  const model = buildModel(config, info.channels, info.imageSize, info.shape?.posEmbed);
  try {
    restoreState(loaded.ckpt, model, null, null, loaded.file);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const finished = await isFinished(runDir).catch(() => false);
  return {
    runDir,
    config,
    info,
    model,
    step: loaded.ckpt.meta.globalStep as number,
    finished,
    normalization: runNormalization(info),
  };
}
