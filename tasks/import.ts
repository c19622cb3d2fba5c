/**
 * `deno task import --weights=FILE.safetensors [--config=FILE.json] --out=RUN_DIR [...]`
 *
 * Reads weights in timm `VisionTransformer` names (MAE's decoder and SimMIM's head too) or
 * Hugging Face `ViTMAEModel` / `ViTMAEForPreTraining` names, with the shape and mean / std of
 * the `config.json` beside them (or `--config`), refuses a tensor whose shape differs (naming
 * it and both shapes), and writes a run folder that `linprobe`, `knn`, `finetune`,
 * `features`, `plots` and `pretrain` (to continue) accept. `--data.*` names the dataset those
 * tasks read; `--mim.*`, `--train.*`... set the recipe a continued pre-training runs.
 */
import { EXPERIMENT_SECTIONS, importSource, importTask, parseTask } from "../mod.ts";
import { runTask, takeConfigFlag, taskHelp, type TaskSpec } from "../mod.ts";

export const TASK: TaskSpec = {
  name: "import",
  usage: "--weights=FILE.safetensors [--config=FILE.json] --out=RUN_DIR [--data.key=value ...]",
  about: "--config=FILE.json is the weights' config (default: config.json beside the weights): " +
    "timm's (img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, " +
    "pretrained_cfg.mean/std) or Hugging Face's ViTMAEConfig.",
  keys: EXPERIMENT_SECTIONS.filter((s) => s !== "model"),
  flags: {
    "weights=FILE": "the .safetensors file (required)",
    "out=RUN_DIR": "the run folder to write (required)",
    "force": "overwrite a run folder that exists",
  },
};

if (import.meta.main) {
  await runTask(async () => {
    const { config, argv } = takeConfigFlag(Deno.args);
    const source = importSource(config);
    const args = await parseTask(TASK, argv, { base: source.base });
    if (args.help) return console.log(taskHelp(TASK));
    await importTask(args, source);
  });
}
