/**
 * `deno task detect [--budget=smoke|small] [--detect.key=value ...] [--run.dir=DIR]
 *  [--run.backend=auto] [--run.threads=0] [--quiet]`
 *
 * The paper's Table 3 on the embedded detection scenes (`runDetectExperiment`
 * in lib/detect/experiment.ts): detectors fine-tuned from random init, MAE,
 * MAE + attn-mask and MAE + AMT encoders, scored with COCO box and mask AP on
 * held-out scenes. Writes `config.json`, `tables.md`, `tables.csv`,
 * `results.json` and `figures/` under `run.dir` (default
 * `runs/detect-<budget>`). Backbones come from `detect.maeRun` etc., else from
 * finished `deno task repro` runs in `detect.reproDir`, else are pre-trained
 * here. Everything finished is skipped on re-invocation.
 */
import { parseTask, runDetectExperiment, runTask, switchOn, taskHelp } from "../mod.ts";
import type { TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "detect",
  usage: "[--budget=smoke|small] [--detect.key=value ...] [--run.dir=DIR] [--quiet]",
  keys: ["detect", "run.dir", "run.backend", "run.threads", "train.precision"],
  aliases: { budget: "detect.budget", backbones: "detect.backbones" },
  deprecated: {
    "train.steps": "detect.steps",
    "train.batchSize": "detect.batchSize",
    "scenes.train": "detect.trainScenes",
    "scenes.val": "detect.valScenes",
    "repro.dir": "detect.reproDir",
    "ckpt.mae": "detect.maeRun",
    "ckpt.mae-attn": "detect.maeAttnRun",
    "ckpt.mae-amt": "detect.maeAmtRun",
  },
  flags: { quiet: "print nothing but errors" },
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args);
    if (args.help) return console.log(taskHelp(TASK));
    await runDetectExperiment(args.config, { quiet: switchOn(args.extras, "quiet") });
  });
}
