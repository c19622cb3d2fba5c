/**
 * `deno task pretrain --config configs/<exp>.yaml [--section.key=value ...]`
 *
 * Pre-trains a MIM model (MAE / SimMIM, random or AMT masking) and writes a run
 * folder. Running the same command on an unfinished run folder resumes it; a
 * second process on a folder that another one is writing exits at once with
 * status 2, naming the other process.
 */
import { EXPERIMENT_SECTIONS, parseTask, pretrain, runTask, taskHelp } from "../mod.ts";
import type { TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "pretrain",
  usage: "--config FILE [--section.key=value ...]",
  keys: EXPERIMENT_SECTIONS,
};

if (import.meta.main) {
  await runTask(async () => {
    const args = await parseTask(TASK, Deno.args);
    if (args.help) return console.log(taskHelp(TASK, args.config));
    await pretrain(args.config);
  });
}
