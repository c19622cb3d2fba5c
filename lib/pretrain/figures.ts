/**
 * The per-epoch figure hook of the trainer.
 *
 * @module
 */
import { AmtPlanner } from "../amt/planner.ts";
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/mod.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { writeCurveFigures, writeImageFigures, writeSaliencyFigure } from "./run_plots.ts";

/**
 * Write the figures of 0-based `epoch`, just finished (see `run_plots.ts`):
 * `plots/saliency_epochNN.png` when the AMT planner's saliency pass after
 * this epoch updated its maps, the run's curves, and this epoch's image
 * figures.
 */
export async function writeRunFigures(opts: {
  runDir: string;
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  config: Readonly<Config>;
  imageSize: number;
  epoch: number;
}): Promise<void> {
  const { planner } = opts;
  if (planner instanceof AmtPlanner && planner.store.updatedAfterEpoch === opts.epoch + 1) {
    await writeSaliencyFigure({ ...opts, planner });
  }
  await writeCurveFigures(opts.runDir);
  await writeImageFigures({ ...opts, epochCopy: true });
}
