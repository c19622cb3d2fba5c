/**
 * The per-epoch figure hook of the trainer.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/mod.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { writeCurveFigures, writeImageFigures } from "./run_plots.ts";

/** Write the run's curves and this epoch's image figures (see `run_plots.ts`). */
export async function writeRunFigures(opts: {
  runDir: string;
  model: MimModel;
  dataset: Dataset;
  planner: MaskPlanner;
  config: Readonly<Config>;
  imageSize: number;
  epoch: number;
}): Promise<void> {
  await writeCurveFigures(opts.runDir);
  await writeImageFigures({ ...opts, epochCopy: true });
}
