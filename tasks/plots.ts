/**
 * `deno task plots --run.dir=RUN_DIR [--run.vizImages=N] [--run.backend=auto]`
 *
 * Regenerates every figure of a pre-training run folder (`RUN_DIR/plots/*.png`)
 * from the folder alone: loss / lr / accuracy curves from its metrics files,
 * and the image | saliency | mask plan | reconstruction grid from its config
 * and checkpoint (`run.vizImages` images; default the run's own).
 */
import { ConfigError, initBackend, parseTask, pathExists, runPaths, runTask } from "../mod.ts";
import { taskHelp, type TaskSpec, writeAllRunFigures } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "plots",
  usage: "--run.dir=RUN_DIR [--run.vizImages=N] [--run.backend=auto|wasm|cpu|...]",
  keys: ["run.dir", "run.vizImages", "run.backend", "run.threads"],
  aliases: { images: "run.vizImages" },
  deprecated: { backend: "run.backend" },
};

if (import.meta.main) {
  await runTask(async () => {
    const { config, help, sources } = await parseTask(TASK, Deno.args);
    if (help) return console.log(taskHelp(TASK));
    const dir = config.run.dir.replace(/\/+$/, "");
    const paths = runPaths(dir);
    if (!dir || !(await pathExists(paths.config) || await pathExists(paths.metrics))) {
      throw new ConfigError(
        `--run.dir=${dir || '""'}: not a run folder (no config.json or metrics.jsonl); ` +
          `pass a pre-training run folder, e.g. --run.dir=runs/mae/<hash>`,
        { key: "run.dir", source: "command line" },
      );
    }
    await initBackend({ backend: config.run.backend, threads: config.run.threads, quiet: true });
    const t0 = performance.now();
    // the run's own image count unless the command line names one
    const images = sources.keys["run.vizImages"] === "command line"
      ? config.run.vizImages
      : undefined;
    const { written, skipped } = await writeAllRunFigures(dir, { images });
    for (const path of written) console.log(`wrote ${path}`);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`${written.length} figures, ${skipped.length} skipped (${seconds} s)`);
  });
}
