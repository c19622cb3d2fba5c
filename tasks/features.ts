/**
 * `deno task features --ckpt=RUN_DIR [--data.*] [--split=train|test] [--limit=N] --out=FILE.npy`
 *
 * Writes the CLS features after the final norm of the first N images of a split (default
 * `test`; `val` for image folders) as float32 `[N, D]` in NumPy's `.npy` format (v1.0,
 * `<f4`, C order). Images are resized, not cropped, and normalised as the run's are.
 */
import { evalBase, featuresTask, parseTask, runTask, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "features",
  usage: "--ckpt=RUN_DIR [--data.key=value ...] [--split=train|test] [--limit=N] --out=FILE.npy",
  keys: ["data", "run.backend", "run.threads", "train.precision"],
  positional: "RUN_DIR (the same as --ckpt)",
  flags: {
    "ckpt=RUN_DIR": "run folder (required; its config.json is the base)",
    "out=FILE.npy": "the .npy file to write (required)",
    "split=NAME": "train | test (the labelled splits) or another split name; default test",
    "limit=N": "first N images (default 0 = all)",
    "batchSize=N": "images per forward pass (default 64)",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args, { base: evalBase });
    if (args.help) return console.log(taskHelp(TASK));
    await featuresTask(args);
  });
}
